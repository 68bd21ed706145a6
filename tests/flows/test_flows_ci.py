"""`flows test` for CI systems and teams (issue 22, item 5): JUnit XML, `-k`, and `flows coverage`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.kit.botkit import TEST_SETTINGS
from unogas_bot.cli.main import main as cli_main
from unogas_bot.flows.coverage import coverage, listing
from unogas_bot.flows.runner import run_scripts

SCRIPTS = Path(__file__).parent / "scripts"


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    status = cli_main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_junit_xml_has_a_case_per_script_and_the_failure_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = (SCRIPTS / "en" / "registration_cancel.flow").read_text(encoding="utf-8")
    (tmp_path / "good.flow").write_text(good, encoding="utf-8")
    (tmp_path / "bad.flow").write_text(good.replace("Step 1 of 12", "Step one of 12", 1), encoding="utf-8")
    report = tmp_path / "out" / "flows.xml"
    report.parent.mkdir()
    status, out, _ = _cli(monkeypatch, capsys, "flows", "test", str(tmp_path), "--junit", str(report))
    assert status == 1 and "1 script(s): " not in out and "2 script(s): 1 passed, 1 failed" in out
    suite = ET.fromstring(report.read_bytes())
    assert suite.tag == "testsuite" and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"good", "bad"} and cases["good"].find("failure") is None
    failure = cases["bad"].find("failure")
    assert failure is not None
    number = next(i for i, line in enumerate(good.splitlines(), 1) if "Step 1 of 12" in line)
    assert failure.get("message", "").startswith(f"{tmp_path / 'bad.flow'}:{number}: 1 step(s) did not match")
    assert "bot: Step one of 12" in (failure.text or "")
    assert float(suite.get("time", "0")) > 0


def test_k_picks_scripts_by_path(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _cli(monkeypatch, capsys, "flows", "test", str(SCRIPTS), "-k", "it/login")
    assert status == 0
    ran = [line.split()[1] for line in out.splitlines() if line.startswith("PASS")]
    assert ran and all("/it/login" in path for path in ran) and len(ran) == 2, ran
    status, out, _ = _cli(monkeypatch, capsys, "flows", "test", str(SCRIPTS), "-k", "*lockout.flow")
    assert status == 0 and out.count("PASS") == 2
    status, _, err = _cli(monkeypatch, capsys, "flows", "test", str(SCRIPTS), "-k", "nessuno")
    assert status == 1 and err == "unogas-bot: no *.flow script matches -k 'nessuno'\n"


async def test_coverage_maps_a_lockout_onto_the_login_diagram() -> None:
    outcomes = await run_scripts([SCRIPTS / "it" / "login_lockout.flow"], TEST_SETTINGS)
    login = coverage(outcomes)["login"]
    taken = {(e.source, e.target) for e in login.edges}
    assert ("s_password", "s_password") in taken  # the wrong password, asked again
    assert ("s_password", "x_login_wait") in taken  # the fifth: the lock
    assert ("start", "s_email") in taken and ("s_email", "s_password") in taken
    assert ("s_password", "x_login_ok") not in taken  # never logged in
    shown = listing(coverage(outcomes))
    assert "login: 2/2 questions, 4/9 paths" in shown
    assert "  never taken: s_password -> x_login_ok «Accesso effettuato. Salve, Mario Rossi!»" in shown
    assert "change_email: 0/2 questions, 0/10 paths" in shown and "  never asked: s_current «" in shown


def test_the_coverage_command_lists_every_form_and_the_totals(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _cli(monkeypatch, capsys, "flows", "coverage", str(SCRIPTS), "-k", "it/")
    assert status == 0
    forms = [line.split(":")[0] for line in out.splitlines() if not line.startswith((" ", "total"))]
    assert forms[:3] == ["registration", "login", "recovery"] and "erase" in forms
    total = out.splitlines()[-1]
    assert total.startswith("total: 38/38 questions, ") and total.endswith(" paths")
