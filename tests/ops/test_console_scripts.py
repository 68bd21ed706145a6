"""The piped sessions support staff are shown (issue 22, item 9): the documentation's example and
scripts/demo-session.txt, each run as a real `unogas-bot console` process on a database with the demo
customers, end where they should, with status 0, and echo no secret."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.kit.console import run_cli

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "docs" / "support.md"
SAVED = "Le informazioni relative al proprio profilo sono state correttamente salvate."


def _demo_database(tmp_path: Path) -> Path:
    db = tmp_path / "console.db"
    demo = run_cli(["customers", "demo"], db)
    assert demo.returncode == 0, demo.stderr
    return db


def test_the_documented_piped_example_registers_the_demo_customer(tmp_path: Path) -> None:
    text = SUPPORT.read_text(encoding="utf-8")
    found = re.search(r"<!-- piped console example[^>]*-->\n```bash\n(.*?)```", text, re.S)
    assert found is not None, "docs/support.md's piped console example"
    command = found.group(1)
    assert "| .venv/bin/unogas-bot console" in command
    # The same inputs, to this interpreter's `unogas-bot` (a checkout's .venv, or whatever runs the suite).
    command = command.replace(".venv/bin/unogas-bot", f"{shlex.quote(sys.executable)} -m unogas_bot")
    db = _demo_database(tmp_path)
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{db}", "BCRYPT_ROUNDS": "4"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    run = subprocess.run(
        ["bash", "-c", "set -o pipefail\n" + command],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert SAVED in run.stdout
    assert "Lanterna verde 1987" not in run.stdout and "> Briciola" not in run.stdout


def test_the_demo_session_runs_to_its_end(tmp_path: Path) -> None:
    db = _demo_database(tmp_path)
    lines = (ROOT / "scripts" / "demo-session.txt").read_text(encoding="utf-8")
    run = run_cli(["console"], db, stdin=lines)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert SAVED in out
    assert out.count("Accesso effettuato. Salve, Mario Rossi!") == 2
    assert "E-mail o password non valide" in out  # the wrong password, on purpose
    assert "La password è stata cambiata" in out
    assert out.count("Codice cliente: UG-100234") >= 3  # the summary and two profiles
    assert out.rstrip().endswith("Per rientrare usi /accedi.")  # the last /esci
    for secret in ("Lanterna verde 1987", "Sole sul mare 2024", "Girasoli in fila 88", "> Briciola"):
        assert secret not in out, secret
