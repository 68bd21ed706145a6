"""The terminal mode and the chat as a customer meets them (issue 22, item 7): /start and /aiuto list what
the customer can do in their state; /lingua in the middle of a form asks the open question again in the
new language; the console says which number a contact share sends; Ctrl-C ends the console at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def test_ctrl_c_ends_the_console_at_once(tmp_path: Path) -> None:
    """SIGINT while the console waits for a line on an open pipe: it ends within seconds, status 130,
    without waiting for Enter."""
    db = tmp_path / "c.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{db}", "BCRYPT_ROUNDS": "4"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "unogas_bot", "console"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # the echoed /start: the console is up and waits for input
        assert first.startswith("> /start"), first
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        status = process.wait(timeout=15)
        assert status == 130 and time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
