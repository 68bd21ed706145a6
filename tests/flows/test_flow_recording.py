"""A recording never holds a secret, right or wrong, and still replays (issue 22, item 2); scripts that
start from a fixture (`# accounts: demo`, item 1); a script's header or CSV mistake is one line (item 5)."""

from __future__ import annotations

import dataclasses
import io
import sys
from pathlib import Path

import pytest

from tests.kit.botkit import TEST_SETTINGS
from unogas_bot.cli.console import EndedMidForm, run_console
from unogas_bot.cli.main import main as cli_main
from unogas_bot.flows import runner
from unogas_bot.flows.runner import report, run_scripts
from unogas_bot.flows.script import ScriptError, parse
from unogas_bot.flows.secrets import MASK, Mark, parse_mark

SCRIPTS = Path(__file__).parent / "scripts"
RIGHT, ANSWER = "Lanterna verde 1987", "Ortensia rossa"
WRONG = [f"Tentativo sbagliato {n}" for n in range(1, 6)]
REGISTRATION = [
    "/registrati",
    "continua",
    "UG-100234",
    "1",
    "Mario",
    "Rossi",
    "RSSMRA75C12H501H",
    "salta",
    "mario.rossi@example.it",
    RIGHT,
    RIGHT,
    "Come si chiamava il mio primo gatto?",
    ANSWER,
    ANSWER,
    "salva",
]
LOCKOUT = [
    *REGISTRATION,
    "/accedi",
    "mario.rossi@example.it",
    *WRONG,
    RIGHT,
    "/accedi",
    "mario.rossi@example.it",
]


def _record(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    path: Path,
    typed: list[str],
    *extra: str,
) -> tuple[int, str, str]:
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(typed) + "\n"))
    status = cli_main(["flows", "record", str(path), *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _replay(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], path: Path
) -> tuple[int, str]:
    status = cli_main(["flows", "test", str(path)])
    return status, capsys.readouterr().out


def test_a_recorded_lockout_holds_no_secret_right_or_wrong_and_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "lockout.flow"
    status, shown, notes = _record(monkeypatch, capsys, script, LOCKOUT)
    assert status == 0
    recorded = script.read_text(encoding="utf-8")
    for secret in (RIGHT, ANSWER, "ortensia", *WRONG):
        assert secret not in recorded, f"{secret!r} is in the recording"
        assert secret not in shown, f"{secret!r} was echoed"
    assert "Troppi tentativi di accesso non riusciti" in recorded
    assert recorded.count(f"> {MASK} (refused)\n") == 5
    # The right password typed after the lock, deleted by the bot: masked as the script's password.
    after_lock = recorded.split("Troppi tentativi di accesso non riusciti", 1)[1]
    assert after_lock.startswith(f"{after_lock.split(chr(10))[0]}\n> {MASK}\n")
    assert "> mario.rossi@example.it" in after_lock  # typed in clear before: no secret, kept
    lines = recorded.splitlines()
    refused = [n for n, line in enumerate(lines, 1) if line == f"> {MASK} (refused)"]
    for number in refused:
        assert f"note: line {number}: a refused secret is recorded as `> {MASK} (refused)`" in notes
    status, out = _replay(monkeypatch, capsys, script)
    assert status == 0 and out.startswith("PASS"), out


def test_a_refused_new_password_and_answer_are_recorded_with_the_reason_and_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typed = list(REGISTRATION)
    at = typed.index(RIGHT)
    # A common password, a repetition that differs, an answer found in the question, then the right ones.
    typed[at:at] = ["password123", RIGHT, "Lanterna verde 1988"]
    at = typed.index(ANSWER)
    typed[at:at] = ["gatto"]
    script = tmp_path / "refused.flow"
    status, _, notes = _record(monkeypatch, capsys, script, typed)
    assert status == 0
    recorded = script.read_text(encoding="utf-8")
    for secret in ("password123", RIGHT, "Lanterna verde 1988", ANSWER, "> gatto"):
        assert secret not in recorded
    assert f"> {MASK} (refused: password.common)\n" in recorded
    assert f"> {MASK} (refused: answer.in_question)\n" in recorded
    assert recorded.count(f"> {MASK} (refused)\n") == 1  # the repetition that differed
    assert "one refused for the same reason (password.common)" in notes
    status, out = _replay(monkeypatch, capsys, script)
    assert status == 0 and out.startswith("PASS"), out


def test_a_second_password_gets_its_own_mark_and_the_replay_logs_in_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """/cambia_password from the fixture: the new password is `(2)`, and logging in with it replays."""
    monkeypatch.setattr(
        runner, "generated_secrets", lambda: {"password": "Faro sul molo 4242", "answer": "Blu 12"}
    )
    typed = ["/cambia_password", "Faro sul molo 4242", "Onde alte 5151", "Onde alte 5151", "/esci"]
    typed += ["/accedi", "mario.rossi@example.it", "Faro sul molo 4242", "Onde alte 5151", "/profilo"]
    script = tmp_path / "change.flow"
    status, _, notes = _record(monkeypatch, capsys, script, typed, "--accounts", "demo")
    assert status == 0
    assert "the demo customer is registered and logged in: mario.rossi@example.it" in notes
    recorded = script.read_text(encoding="utf-8")
    assert (
        "# accounts: demo\n" in recorded and "Faro sul molo" not in recorded and "Onde alte" not in recorded
    )
    # The old password, refused at the login after the change, is still the script's password: the replay
    # types it and is refused the same way.
    assert recorded.count(f"> {MASK} (2)\n") == 3 and recorded.count(f"> {MASK}\n") == 2
    assert "E-mail o password non valide" in recorded and "Accesso effettuato" in recorded
    assert "Registrato il: 29/11/2026" in recorded
    monkeypatch.undo()
    status, out = _replay(monkeypatch, capsys, script)
    assert status == 0 and out.startswith("PASS"), out


async def test_a_script_can_start_logged_in_as_the_demo_customer(tmp_path: Path) -> None:
    script = tmp_path / "profile.flow"
    script.write_text(
        "# accounts: demo\n"
        "> /profilo\n"
        "bot: Il suo profilo\n"
        "     Codice cliente: UG-100234\n"
        "...\n"
        "     E-mail: mario.rossi@example.it\n"
        "...\n"
        "> /cambia_telefono\n"
        "bot: Passo 1 di 2\n"
        "     Per sicurezza scriva la sua password attuale.{*}\n"
        f"> {MASK} (refused)\n"
        "     (il suo messaggio è stato cancellato per sicurezza)\n"
        "bot: La password non è corretta.{*}\n"
        "...\n"
        f"> {MASK}\n"
        "     (il suo messaggio è stato cancellato per sicurezza)\n"
        "bot: Passo 2 di 2\n"
        "...\n",
        encoding="utf-8",
    )
    (outcome,) = await run_scripts([script], TEST_SETTINGS)
    assert outcome.passed, report(outcome)
    # Without the fixture the same script fails at its first step: the fixture is what logged in.
    script.write_text(script.read_text(encoding="utf-8").replace("# accounts: demo\n", ""), encoding="utf-8")
    (outcome,) = await run_scripts([script], TEST_SETTINGS)
    assert not outcome.passed


def test_the_marks_read_back_as_written() -> None:
    for mark in (
        Mark(),
        Mark(2),
        Mark(1, "answer"),
        Mark(3, "password"),
        Mark(None),
        Mark(None, None, "x.y"),
    ):
        assert parse_mark(mark.text()) == mark, mark.text()
    assert parse_mark("••••") is None and parse_mark(f"{MASK} (boh)") is None and parse_mark("ciao") is None


def test_piped_console_input_that_ends_in_a_form_fails_saying_where(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    from tests.kit.console import run_cli

    result = run_cli(["console"], db, stdin="/registrati\ncontinua\nUG-100234\n")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "the input ended in the middle of the registration form, at its question 'kind'" in result.stderr
    assert "(«Il contratto è intestato a una persona o a un'azienda?»)" in result.stderr
    complete = run_cli(["console", "--fresh"], db, stdin="/registrati\n/annulla\n")
    assert complete.returncode == 0, complete.stderr


async def test_the_console_echo_masks_what_the_bot_deleted(tmp_path: Path) -> None:
    out = io.StringIO()
    settings = dataclasses.replace(TEST_SETTINGS, database_url=f"sqlite+aiosqlite:///{tmp_path / 'e.db'}")
    from storage.db import Database
    from storage.demo import load_demo
    from storage.registry import CustomerRegistry

    db = Database(settings.database_url)
    await db.upgrade()
    await load_demo(CustomerRegistry(db))
    stdin = io.StringIO("\n".join(LOCKOUT) + "\n")
    with pytest.raises(EndedMidForm, match="the login form, at its question 'password'"):
        await run_console(settings, stdin=stdin, out=out, db=db)
    shown = out.getvalue()
    assert "Troppi tentativi di accesso non riusciti" in shown
    for secret in (RIGHT, ANSWER, *WRONG):
        assert secret not in shown


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("# langauge: en", "x.flow:2: unknown header 'langauge' (did you mean 'language'?)"),
        ("# accounts: tutti", "x.flow:2: accounts must be none or demo, not 'tutti'"),
        ("# chat: channel", "x.flow:2: chat must be private or group, not 'channel'"),
    ],
)
def test_a_header_mistake_names_the_file_and_line(header: str, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse(f"# A comment.\n{header}\n> /start\n", Path("x.flow"))
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        (None, "customers: no such CSV file"),
        ("codice;tipo\n1;2\n", "cannot be imported"),
    ],
)
def test_a_missing_or_bad_csv_is_one_line_naming_the_script_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    csv: str | None,
    message: str,
) -> None:
    if csv is not None:
        (tmp_path / "clienti.csv").write_text(csv, encoding="utf-8")
    script = tmp_path / "x.flow"
    script.write_text("# language: it\n# customers: clienti.csv\n> /start\n", encoding="utf-8")
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    status = cli_main(["flows", "test", str(script)])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"unogas-bot: {script}:2: customers: ") and message in err


@pytest.mark.parametrize("path", sorted(SCRIPTS.rglob("*.flow")), ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_no_shipped_script_types_a_secret_in_clear(path: Path) -> None:
    """Every input the bot deleted for safety is a mask, or a valid answer to the (not secret) question
    it was typed at, such as the e-mail typed again right after a lock."""
    from conversations.forms import FORMS
    from unogas_bot.rules import Invalid

    deleted = (
        "(il suo messaggio è stato cancellato per sicurezza)",
        "(your message was deleted for your security)",
    )
    steps = {form.name: form.by_key for form in FORMS}
    (outcome,) = await run_scripts([path], TEST_SETTINGS)
    assert outcome.passed, report(outcome)
    for seen in outcome.observations:
        if not any(line.strip() in deleted for line in seen.said) or parse_mark(seen.typed) is not None:
            continue
        assert seen.before is not None, f"{path}: {seen.typed!r} typed in clear outside a form and deleted"
        step = steps[seen.before[0]][seen.before[1]]
        assert not step.secret, f"{path}: {seen.typed!r} typed in clear at a secret question"
        try:
            step.parse(seen.typed, {})
        except Invalid:
            pytest.fail(f"{path}: {seen.typed!r} in clear, and no answer to {seen.before}")


def test_update_writes_the_frozen_date_whatever_the_machine_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--update` rewrites a dated line with the script's frozen instant, not the machine's day."""
    from datetime import UTC, datetime, tzinfo

    from unogas_bot import clock

    moved = datetime(2031, 3, 14, 23, 59, tzinfo=UTC)

    class MovedDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return moved.astimezone(tz)

    monkeypatch.setattr(clock, "datetime", MovedDatetime)
    source = (SCRIPTS / "it" / "login_profile_logout.flow").read_text(encoding="utf-8")
    script = tmp_path / "dated.flow"
    script.write_text(
        source.replace("Registrato il: 29/11/2026", "Registrato il: 01/01/2000"), encoding="utf-8"
    )
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    assert cli_main(["flows", "test", "--update", str(script)]) == 0
    assert "UPDATED" in capsys.readouterr().out
    assert script.read_text(encoding="utf-8") == source


def test_a_known_secret_typed_at_the_wrong_question_is_masked_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A slip: the password typed at the e-mail question. The recording and the echo mask it (it was typed
    as a secret before); the replay types the same password there."""
    script = tmp_path / "slip.flow"
    typed = [*REGISTRATION, "/accedi", RIGHT, "mario.rossi@example.it", RIGHT]
    status, shown, _ = _record(monkeypatch, capsys, script, typed)
    assert status == 0
    recorded = script.read_text(encoding="utf-8")
    assert RIGHT not in recorded and RIGHT not in shown
    after = recorded.split("> /accedi\n", 1)[1]
    assert after.count(f"> {MASK}\n") == 2 and "Accesso effettuato" in after
    status, out = _replay(monkeypatch, capsys, script)
    assert status == 0 and out.startswith("PASS"), out
