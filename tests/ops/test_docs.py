"""The documentation: a short README for a newcomer, the pages by audience under docs/, and the site MkDocs
builds from them with no broken link or anchor (`mkdocs build --strict`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("support.md", "operations.md", "architecture.md", "security.md", "performance.md")


def test_the_readme_is_short_and_points_to_every_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "bash scripts/run.sh" in readme and "bash scripts/test.sh" in readme
    for page in PAGES:
        assert f"(docs/{page})" in readme, page
    assert "../shared" not in readme and "shared/seed" not in readme  # users do not have it


def test_the_ci_script_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^exec bash scripts/test\.sh$", ci, re.MULTILINE)


def test_every_page_is_in_the_site_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (*PAGES, "index.md"):
        assert (ROOT / "docs" / page).is_file(), page
        assert f": {page}" in config, page


def _build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.skip("mkdocs is not installed in this environment (scripts/_env.sh installs it)")
    return subprocess.run(
        # No --quiet: it hides the warnings --strict counts, and a broken link would pass.
        [mkdocs, "build", "--strict", "--site-dir", str(site)],
        cwd=project,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )


def test_the_site_builds_with_no_broken_link(tmp_path: Path) -> None:
    built = _build(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "security" / "index.html").is_file()


def test_a_broken_anchor_fails_the_strict_build(tmp_path: Path) -> None:
    """The check above can fail: a link to a heading that does not exist breaks the build."""
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "index.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n[x](security.md#no-such-heading)\n", "utf-8")
    built = _build(copy, tmp_path / "site")
    assert built.returncode != 0 and "no-such-heading" in built.stderr
