"""The terminal mode as support staff use it: a real `unogas-bot` process fed lines on its standard input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# A whole registration typed into the console: numbers press the numbered buttons (1: Continua on the
# privacy notice, then 1: Persona).
CONSOLE_REGISTRATION = [
    "/registrati",
    "1",
    "UG-100234",
    "1",
    "Mario",
    "Rossi",
    "RSSMRA75C12H501H",
    "salta",
    "mario.rossi@example.it",
    "Lanterna verde 1987",
    "Lanterna verde 1987",
    "Come si chiamava il mio primo gatto?",
    "Briciola",
    "briciola",
    "salva",
]


def run_cli(args: list[str], db: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`python -m unogas_bot ARGS` on the SQLite file `db`, cheap bcrypt, no token (so console, not run)."""
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{db}", "BCRYPT_ROUNDS": "4"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "unogas_bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
