"""The terminal mode and the chat as a customer meets them (issue 22, item 7): /start and /aiuto list what
the customer can do in their state; /lingua in the middle of a form asks the open question again in the
new language; the console says which number a contact share sends; Ctrl-C ends the console at once."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.kit.accountkit import login, registered, said
from tests.kit.botkit import Bot, answer_all, last_text
from tests.kit.console import run_cli

SELF_SERVICE = ("/cambia_password", "/cambia_email", "/cambia_telefono", "/i_miei_dati", "/cancella_profilo")


async def test_start_and_help_list_what_the_customer_can_do_before_and_after_login(bot: Bot) -> None:
    user = await registered(bot)
    for command in ("/start", "/aiuto"):
        text = last_text(await user.send(command))
        assert "/registrati" in text and "/accedi" in text, command
        assert not any(c in text for c in (*SELF_SERVICE, "/esci", "/profilo")), command
    await login(user)
    for command in ("/start", "/aiuto", "ciao"):
        text = last_text(await user.send(command))
        assert all(c in text for c in (*SELF_SERVICE, "/profilo", "/esci")), command
        assert "/registrati" not in text and "mario.rossi@example.it" in text, command
    english = last_text(await bot.user(3003, language_code="en").send("/help"))
    assert "/register" in english and "/change_email" not in english
    await user.send("/esci")
    assert "/cambia_email" not in last_text(await user.send("/aiuto"))


async def test_the_language_chosen_mid_form_asks_the_open_question_again(bot: Bot) -> None:
    user = bot.user(1001)
    await answer_all(user, "/registrati")
    await user.press("Continua")
    await user.send("UG-100234")
    events = await user.send("/lingua")
    assert user.buttons(events[-1]) == ["Italiano", "English"]
    events = await user.press("English")
    texts = said(events)
    assert "Step 2 of 12" in texts and "Is the contract in the name of a person or a business?" in texts
    assert user.buttons() == ["Person", "Business"]
    events = await user.press("Person")  # the new question's buttons work, in the new language
    assert "Step 3 of 12" in said(events)
    # Outside a form the choice only confirms itself.
    other = bot.user(2002)
    await other.send("/lingua")
    events = await other.press("English")
    assert len(said(events).splitlines()) == 1


def test_the_console_says_which_number_the_share_button_sends(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    assert run_cli(["customers", "demo"], db).returncode == 0
    lines = [
        "/registrati",
        "continua",
        "UG-100234",
        "1",
        "Mario",
        "Rossi",
        "RSSMRA75C12H501H",
        "1",
        "/annulla",
    ]
    run = run_cli(["console"], db, stdin="\n".join(lines) + "\n")
    assert run.returncode == 0, run.stderr
    assert "> 1\n     (numero condiviso: +393471234567)\nbot: I dati corrispondono" in run.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="needs a Linux pseudo-terminal")
def test_ctrl_c_ends_the_console_at_once(tmp_path: Path) -> None:
    """Ctrl-C typed in a real (pseudo-)terminal while the console waits for a line: it ends within a
    second or two with status 130, without waiting for Enter (it used to wait for the reading thread)."""
    import pty
    import select

    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", "BCRYPT_ROUNDS": "4"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the console, with the pseudo-terminal as its controlling terminal
        # As an interactive shell starts a foreground job: a suite run in the background (`&`, nohup, some
        # CI runners) has SIGINT ignored, which exec passes on, and the Ctrl-C below would do nothing.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execve(sys.executable, [sys.executable, "-m", "unogas_bot", "console"], env)
    try:
        shown, deadline = b"", time.monotonic() + 60
        while b"\n> " not in shown and time.monotonic() < deadline:  # the prompt: it waits for a line
            if select.select([terminal], [], [], 0.5)[0]:
                shown += os.read(terminal, 4096)
        assert b"\n> " in shown, shown[-500:]
        os.write(terminal, b"\x03")  # Ctrl-C: the terminal sends SIGINT
        started, status = time.monotonic(), None
        while status is None and time.monotonic() - started < 10:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
            elif select.select([terminal], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    os.read(terminal, 4096)
        assert status == 130, f"still waiting after {time.monotonic() - started:.1f} s"
    finally:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        os.close(terminal)


@pytest.mark.skipif(sys.platform != "linux", reason="needs a Linux pseudo-terminal")
def test_ctrl_d_at_a_hidden_input_prompt_ends_the_console_without_a_traceback(tmp_path: Path) -> None:
    """End of input (Ctrl-D) typed where the password is read without echo: the console ends as at any
    other prompt, no traceback, and the terminal's echo is back on."""
    import pty
    import select
    import termios

    db = tmp_path / "c.db"
    assert run_cli(["customers", "demo"], db).returncode == 0
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{db}", "BCRYPT_ROUNDS": "4"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    pid, terminal = pty.fork()
    if pid == 0:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execve(sys.executable, [sys.executable, "-m", "unogas_bot", "console"], env)
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
        os.write(terminal, b"\x04")  # Ctrl-D at the hidden prompt: end of input
        status, deadline = None, time.monotonic() + 20
        while status is None and time.monotonic() < deadline:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
            elif select.select([terminal], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    shown += os.read(terminal, 4096)
        assert status == 0, (status, shown[-800:])
        assert b"Traceback" not in shown and b"EOFError" not in shown
        assert termios.tcgetattr(terminal)[3] & termios.ECHO, "the echo is still off"
    finally:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        os.close(terminal)
