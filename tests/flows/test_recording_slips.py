"""A recording holds no secret whatever the customer's slip: a password typed as the security question,
before it was ever asked for, inside a longer message, in capitals, as a command's argument, a wrong one
typed again at another question; and a button pressed while a secret question is open is a press. Each
recording still replays (issue 22, item 2: found by the attacks on `flows record`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.flows.test_flow_recording import REGISTRATION, RIGHT, _record, _replay
from unogas_bot.flows.secrets import MASK

QUESTION = "Come si chiamava il mio primo gatto?"


def _clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret.casefold() not in text.casefold(), f"{secret!r} is in:\n{text}"


def _replays(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], script: Path) -> None:
    status, out = _replay(monkeypatch, capsys, script)
    assert status == 0 and out.startswith("PASS"), out


def test_the_password_typed_as_the_security_question_is_refused_and_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bot refuses the password as the question (deleted, never stored, the question asked again):
    the file and the echo mask it, and the recording replays."""
    at = REGISTRATION.index(QUESTION)
    typed = [*REGISTRATION[:at], RIGHT, *REGISTRATION[at:]]
    script = tmp_path / "question.flow"
    status, shown, _ = _record(monkeypatch, capsys, script, typed)
    assert status == 0
    recorded = script.read_text(encoding="utf-8")
    _clean(recorded, RIGHT)
    _clean(shown, RIGHT)
    assert f"Domanda di sicurezza: {QUESTION}" in recorded  # the summary shows the question typed after
    assert "correttamente salvate" in recorded
    _replays(monkeypatch, capsys, script)


def test_a_password_typed_before_it_was_asked_for_is_masked_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """At the phone and the e-mail questions, before the password question: nothing tells it is a secret
    then, but the recording is written at the end, when it is known; `record` says which lines it masked.
    (A piped session's echo has shown it already: the input file holds it anyway.)"""
    typed = list(REGISTRATION)
    typed[typed.index("salta") : typed.index("salta") + 1] = [RIGHT, "salta"]
    typed[typed.index("mario.rossi@example.it") : typed.index("mario.rossi@example.it")] = [RIGHT]
    script = tmp_path / "early.flow"
    status, _, notes = _record(monkeypatch, capsys, script, typed)
    assert status == 0
    recorded = script.read_text(encoding="utf-8")
    _clean(recorded, RIGHT)
    lines = recorded.splitlines()
    early = [n for n, line in enumerate(lines, 1) if line == f"> {MASK}"][:2]
    assert len(early) == 2
    for number in early:
        assert f"note: line {number}: a secret typed in clear before it was known is masked" in notes
    _replays(monkeypatch, capsys, script)


def test_a_secret_inside_a_message_in_capitals_or_as_a_command_argument_is_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typed = [
        *REGISTRATION,
        "/accedi",
        f"la mia password è {RIGHT}",
        RIGHT.upper(),
        f"/contatto {RIGHT}",
        f"  {RIGHT}  ",
        "mario.rossi@example.it",
        RIGHT,
    ]
    script = tmp_path / "inside.flow"
    status, shown, _ = _record(monkeypatch, capsys, script, typed)
    assert status == 0
    recorded = script.read_text(encoding="utf-8")
    _clean(recorded, RIGHT)
    _clean(shown, RIGHT)
    assert f"> la mia password è {MASK}\n" in recorded and f"> /contatto {MASK}\n" in recorded
    assert "Accesso effettuato" in recorded
    _replays(monkeypatch, capsys, script)


def test_a_wrong_password_typed_again_at_another_question_is_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused at the login, then typed at the registration's customer-code question (a valid code by its
    form, so the bot keeps it): still a secret, right or wrong."""
    wrong = "Sbagliata-prima-1"
    typed = [*REGISTRATION, "/accedi", "mario.rossi@example.it", wrong, "/annulla"]
    typed += ["/registrati", "continua", wrong, "/annulla"]
    script = tmp_path / "again.flow"
    status, shown, _ = _record(monkeypatch, capsys, script, typed)
    assert status == 0
    recorded = script.read_text(encoding="utf-8")
    _clean(recorded, wrong)
    _clean(shown, wrong)
    _replays(monkeypatch, capsys, script)


def test_a_button_pressed_while_a_secret_question_is_open_is_recorded_as_the_press(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """/lingua at the password question, then «2» for English: a press, not a refused password."""
    typed = [*REGISTRATION, "/accedi", "mario.rossi@example.it", "/lingua", "2", RIGHT]
    script = tmp_path / "language.flow"
    status, shown, _ = _record(monkeypatch, capsys, script, typed)
    assert status == 0
    recorded = script.read_text(encoding="utf-8")
    assert "> /lingua\n" in recorded and "> [English]\n" in recorded and "(refused)" not in recorded
    assert "> 2\n" in shown
    _clean(recorded, RIGHT)
    _replays(monkeypatch, capsys, script)


async def test_update_never_writes_a_secret_the_replay_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the bot ever to show a secret a mask typed (it shows none today: a password typed as the
    question is refused), `--update` writes `{*}` there, not the value (the header's, or the one generated
    for the run, which would fail the next run)."""
    import dataclasses

    from tests.kit.botkit import TEST_SETTINGS
    from unogas_bot.flows import runner

    script = tmp_path / "shown.flow"
    script.write_text("# password: Mia Password Vera 2024\n> /start\nbot: Scritto: nulla\n", encoding="utf-8")
    replay = runner.Replayer.replay

    async def showing_the_secret(self: runner.Replayer, parsed: object) -> runner.Outcome:
        outcome = await replay(self, parsed)  # type: ignore[arg-type]
        outcome.typed.remember("Mia Password Vera 2024")
        shown = [[*lines, "bot: Scritto: Mia Password Vera 2024"] for lines in outcome.actual]
        return dataclasses.replace(outcome, actual=shown)

    monkeypatch.setattr(runner.Replayer, "replay", showing_the_secret)
    (outcome,) = await runner.run_scripts([script], TEST_SETTINGS, update=True)
    assert not outcome.passed  # the stale line was rewritten
    updated = script.read_text(encoding="utf-8")
    assert "Mia Password Vera 2024" not in updated.split("\n", 1)[1]  # only the header keeps it
    assert "bot: Scritto: {*}" in updated


def test_a_recording_ended_by_ctrl_c_is_saved_masked(tmp_path: Path) -> None:
    """Ctrl-C is how most people leave a terminal program: the session recorded so far is saved (its
    secrets masked), not silently lost."""
    import contextlib
    import os
    import pty
    import select
    import signal
    import time

    script = tmp_path / "interrupted.flow"
    env = {**os.environ, "BCRYPT_ROUNDS": "4"}
    pid, terminal = pty.fork()
    if pid == 0:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execve(sys.executable, [sys.executable, "-m", "unogas_bot", "flows", "record", str(script)], env)
    shown = b""

    def until(token: bytes) -> None:
        nonlocal shown
        deadline = time.monotonic() + 60
        while token not in shown and time.monotonic() < deadline:
            if select.select([terminal], [], [], 0.5)[0]:
                with contextlib.suppress(OSError):
                    shown += os.read(terminal, 4096)
        assert token in shown, shown[-500:]

    try:
        until(b"\n> ")
        os.write(terminal, b"/accedi\r")
        until(b"Passo 1 di 2")
        until(b"\n> ")
        os.write(terminal, b"mario.rossi@example.it\r")
        until(b"(nascosto) > ")
        os.write(terminal, f"{RIGHT}\r".encode())  # a wrong password (nobody is registered)
        until(b"non valide")
        until(b"(nascosto) > ")
        os.write(terminal, b"\x03")
        status, deadline = None, time.monotonic() + 20
        while status is None and time.monotonic() < deadline:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
            elif select.select([terminal], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    shown += os.read(terminal, 4096)
        assert status == 130, (status, shown[-800:])
    finally:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        os.close(terminal)
    assert b"Traceback" not in shown
    recorded = script.read_text(encoding="utf-8")
    assert "> /accedi\n" in recorded and f"> {MASK} (refused)\n" in recorded and RIGHT not in recorded
    assert b"interrupted: the session so far is saved" in shown
