"""The shipped flow scripts (tests/flows/scripts) replayed against the real Application, and
`unogas-bot flows test|record` as support staff use them (issue 13)."""

from __future__ import annotations

import io
import re
import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import pytest

from tests.kit.botkit import TEST_SETTINGS
from unogas_bot.cli.main import main as cli_main
from unogas_bot.flows.runner import find_scripts, report, run_scripts
from unogas_bot.flows.script import ScriptError, parse

SCRIPTS = Path(__file__).parent / "scripts"
SUPPORT = Path(__file__).resolve().parents[2] / "docs" / "support.md"


@pytest.mark.parametrize("path", list(find_scripts([SCRIPTS])), ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_every_shipped_flow_script_passes(path: Path) -> None:
    (outcome,) = await run_scripts([path], TEST_SETTINGS)
    assert outcome.passed, report(outcome)


async def test_a_shipped_script_that_shows_a_date_passes_whatever_the_machine_date_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The machine's clock moved years away (the bot's one clock reads it through `clock.datetime`): the
    replay's frozen clock still shows the script's date."""
    from unogas_bot import clock

    moved = datetime(2031, 3, 14, 23, 59, tzinfo=UTC)

    class MovedDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return moved.astimezone(tz)

    monkeypatch.setattr(clock, "datetime", MovedDatetime)
    assert clock.utcnow() == moved
    path = SCRIPTS / "it" / "login_profile_logout.flow"
    assert "Registrato il: 29/11/2026" in path.read_text(encoding="utf-8")
    (outcome,) = await run_scripts([path], TEST_SETTINGS)
    assert outcome.passed, report(outcome)


async def test_the_now_header_moves_the_date_the_bot_shows(tmp_path: Path) -> None:
    source = (SCRIPTS / "en" / "login_profile_logout.flow").read_text(encoding="utf-8")
    script = tmp_path / "dated.flow"
    moved = source.replace("29/11/2026", "03/02/2027")
    script.write_text("# now: 2027-02-03T08:30\n" + moved, encoding="utf-8")
    (outcome,) = await run_scripts([script], TEST_SETTINGS)
    assert outcome.passed, report(outcome)
    script.write_text("# now: 2027-02-03T08:30\n" + source, encoding="utf-8")
    (outcome,) = await run_scripts([script], TEST_SETTINGS)
    assert not outcome.passed and "29/11/2026" in report(outcome)


def test_a_bad_now_header_names_the_script() -> None:
    with pytest.raises(
        ScriptError, match=r"x.flow:1: now must be a time such as 2026-11-29T10:00, not 'ieri'"
    ):
        parse("# now: ieri\n> /start\n", Path("x.flow"))


def test_every_flow_is_scripted_in_both_languages() -> None:
    names = {lang: {p.stem for p in (SCRIPTS / lang).glob("*.flow")} for lang in ("it", "en")}
    assert names["it"] == names["en"]
    for flow in ("registration_person", "registration_business", "login_lockout", "recovery", "group"):
        assert flow in names["it"]


async def test_a_changed_expected_line_fails_with_a_diff_naming_that_line(tmp_path: Path) -> None:
    source = (SCRIPTS / "it" / "registration_person.flow").read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(source, 1) if "Passo 3 di 12" in line)
    source[number - 1] = source[number - 1].replace("Passo 3 di 12", "Passo 4 di 12")
    script = tmp_path / "changed.flow"
    script.write_text("\n".join(source) + "\n", encoding="utf-8")
    (outcome,) = await run_scripts([script], TEST_SETTINGS)
    shown = report(outcome)
    assert shown.startswith(f"FAIL {script}")
    assert f"{script}:{number}: expected after `> [Persona]`:\n    bot: Passo 4 di 12" in shown
    assert "but the bot said:\n    bot: Passo 3 di 12" in shown
    assert f"  - {number:4d} bot: Passo 4 di 12" in shown


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    status = cli_main(list(args))
    return status, capsys.readouterr().out


def test_the_command_passes_fails_and_updates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "cancel.flow"
    good = (SCRIPTS / "en" / "registration_cancel.flow").read_text(encoding="utf-8")
    script.write_text(good.replace("Step 1 of 12", "Step one of 12", 1), encoding="utf-8")
    status, out = _cli(monkeypatch, capsys, "flows", "test", str(tmp_path))
    assert status == 1 and out.startswith(f"FAIL {script}") and "1 script(s): 0 passed, 1 failed" in out
    status, out = _cli(monkeypatch, capsys, "flows", "test", "--update", str(script))
    assert status == 0 and out.startswith(f"UPDATED {script}")
    assert "Step one of 12" not in script.read_text(encoding="utf-8")
    status, out = _cli(monkeypatch, capsys, "flows", "test", str(script))
    assert status == 0 and out.startswith(f"PASS {script}")


def test_a_recorded_session_replays_as_a_passing_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typed = [
        "/registrati",
        "continua",
        "UG-200102",
        "2",
        "Bar Sport di Luca Esposito",
        "SPSLCU80A30L219H",
        "salta",
    ]
    typed += ["bar@example.it", "Faro sul molo 7788", "Faro sul molo 7788", "Dove apriamo?", "In piazza 12"]
    typed += ["In piazza 12", "salva"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(typed) + "\n"))
    script = tmp_path / "recorded.flow"
    status, _ = _cli(monkeypatch, capsys, "flows", "record", str(script))
    assert status == 0
    recorded = script.read_text(encoding="utf-8")
    headers = "# language: it\n# user: 1001\n# customers: demo\n# now: 2026-11-29T10:00\n"
    assert recorded.startswith(headers + "> /start\n")
    assert "> [Azienda]" in recorded and "Faro sul molo" not in recorded and "In piazza" not in recorded
    assert recorded.count("> ••••••••") == 4
    status, out = _cli(monkeypatch, capsys, "flows", "test", str(script))
    assert status == 0 and out.startswith("PASS"), out


async def test_the_documented_example_script_passes(tmp_path: Path) -> None:
    """A script written from the documentation alone: its example is replayed as it is printed there."""
    example = re.search(r"```text\n(# Login.*?)```", SUPPORT.read_text(encoding="utf-8"), re.S)
    assert example is not None, "docs/support.md's flow script example"
    script = tmp_path / "readme.flow"
    script.write_text(example.group(1), encoding="utf-8")
    (outcome,) = await run_scripts([script], TEST_SETTINGS)
    assert outcome.passed, report(outcome)
