"""The real `unogas-bot` process in terminal mode, fed through a pipe as a support operator would."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from tests.kit.console import CONSOLE_REGISTRATION, run_cli
from unogas_bot.cli.console import CONSOLE_USER_ID

SCRIPT = CONSOLE_REGISTRATION


def test_piped_registration_script_registers_a_demo_customer(tmp_path: Path) -> None:
    db = tmp_path / "console.db"
    demo = run_cli(["customers", "demo"], db)
    assert demo.returncode == 0, demo.stderr
    assert "UG-100234" in demo.stdout and "RSSMRA75C12H501H" in demo.stdout

    run = run_cli(["console"], db, stdin="\n".join(SCRIPT) + "\n")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "Le informazioni relative al proprio profilo sono state correttamente salvate." in out
    assert "[1] Persona  [2] Azienda" in out
    assert out.count("(il suo messaggio è stato cancellato per sicurezza)") == 4
    assert "Traceback" not in run.stderr

    again = run_cli(["console"], db, stdin="\n".join(SCRIPT[:8]) + "\n")
    assert "ha già un profilo" in again.stdout

    # The operator played a user id Telegram never assigns: no real customer's chat state was touched.
    with closing(sqlite3.connect(db)) as conn:
        (registered_by,) = conn.execute("SELECT registered_by FROM accounts").fetchone()
    assert registered_by == CONSOLE_USER_ID >= 2**52


def test_import_rejects_a_bad_file_with_line_numbers(tmp_path: Path) -> None:
    db = tmp_path / "import.db"
    good = tmp_path / "good.csv"
    good.write_text(
        "customer_code,kind,first_name,last_name,company_name,tax_code\n"
        "UG-1,person,Mario,Rossi,,RSSMRA75C12H501H\n"
        "UG-2,business,,,Idrotermica Ferraro S.r.l.,02847390586\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "customer_code,kind,first_name,last_name,company_name,tax_code\n"
        "UG-10,person,Mario,Rossi,,RSSMRA75C12H501X\n"
        "UG-11,alien,Mario,Rossi,,RSSMRA75C12H501H\n"
        "UG-12,business,,,Idrotermica Ferraro S.r.l.,02847390586\n",
        encoding="utf-8",
    )
    result = run_cli(["customers", "import", str(bad)], db)
    assert result.returncode != 0
    assert "line 2" in result.stderr and "line 3" in result.stderr and "line 4" not in result.stderr
    assert "nothing imported" in result.stderr
    result = run_cli(["customers", "import", str(good)], db)
    assert result.returncode == 0, result.stderr
    assert "2 customers added" in result.stdout
    result = run_cli(["customers", "import", str(tmp_path / "missing.csv")], db)
    assert result.returncode != 0 and result.stderr.count("\n") == 1
