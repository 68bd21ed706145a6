"""The support CLI's set-up: `--version`, `console --fresh` and `--language`, one default database for
scripts/run.sh and the CLI (and no demo customers in a real registry)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from storage.db import Database
from storage.demo import DEMO_CUSTOMERS
from storage.registry import CustomerRegistry
from tests.kit.console import CONSOLE_REGISTRATION, run_cli
from unogas_bot.cli import main as cli
from unogas_bot.cli.customers import readable_reason
from unogas_bot.rules.errors import REASONS


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"unogas-bot {importlib.metadata.version('unogas-bot')}\n"


PENDING = "Il contratto è intestato a una persona o a un'azienda?"


def test_console_fresh_forgets_the_saved_state_of_an_earlier_session(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    assert run_cli(["customers", "demo"], db).returncode == 0
    started = run_cli(["console"], db, stdin="/registrati\n1\nUG-100234\n")
    # Piped input that ends in the middle of a form: status 1, and where it stopped (issue 22).
    assert started.returncode == 1 and PENDING in started.stdout
    assert "the input ended in the middle of the registration form, at its question 'kind'" in started.stderr
    other = run_cli(["console", "--user-id", "4242"], db, stdin="/registrati\n1\nUG-100235\n")
    assert PENDING in other.stdout

    resumed = run_cli(["console"], db)
    assert resumed.returncode == 1 and PENDING in resumed.stdout  # without --fresh: where it stopped
    fresh = run_cli(["console", "--fresh"], db)
    assert fresh.returncode == 0, fresh.stderr
    assert PENDING not in fresh.stdout and "Le diamo il benvenuto" in fresh.stdout
    assert PENDING not in run_cli(["console"], db).stdout  # forgotten, not just hidden for one session
    assert PENDING in run_cli(["console", "--user-id", "4242"], db).stdout  # nobody else's state is touched


@pytest.mark.parametrize("language", ["fr", "xx-YY", ""])
def test_console_refuses_an_unknown_language_in_one_line(
    language: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["console", "--language", language]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"unogas-bot: unknown language {language!r}: the bot speaks it, en\n"


def test_console_takes_a_regional_language_code(tmp_path: Path) -> None:
    run = run_cli(["console", "--language", "en-GB", "--fresh"], tmp_path / "en.db")
    assert run.returncode == 0, run.stderr
    assert "/register" in run.stdout or "Welcome" in run.stdout


# --- one default database for scripts/run.sh and the CLI --------------------------------------------

REPO = Path(__file__).resolve().parents[2]
REGISTRATION = CONSOLE_REGISTRATION


def test_run_sh_and_the_cli_share_the_default_database(tmp_path: Path) -> None:
    """README's two commands on a fresh checkout: run.sh (no token) loads the demo customers and opens the
    console; a profile made there is what `unogas-bot accounts list` then shows, with no DATABASE_URL."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("run.sh", "_env.sh"):
        (checkout / "scripts" / name).write_text((REPO / "scripts" / name).read_text())
    (checkout / ".venv").symlink_to(REPO / ".venv")
    (checkout / "pyproject.toml").symlink_to(REPO / "pyproject.toml")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TELEGRAM_BOT_TOKEN")}
    env["BCRYPT_ROUNDS"] = "4"
    env["UNOGAS_VENV_READY"] = "1"  # the shared .venv must not be re-pointed at this throw-away checkout
    run = subprocess.run(
        ["bash", str(checkout / "scripts" / "run.sh")],
        input="\n".join(REGISTRATION) + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "Demo customers" in run.stdout and "UG-100234" in run.stdout
    assert "correttamente salvate" in run.stdout
    assert (checkout / "unogas.db").exists() and not (checkout / "unogas-demo.db").exists()
    listed = subprocess.run(
        [sys.executable, "-m", "unogas_bot", "accounts", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=checkout,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0 and "mario.rossi@example.it" in listed.stdout, listed.stderr


def test_demo_customers_stay_out_of_a_real_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/real.db")
    assert cli.main(["customers", "demo", "--skip-if-real"]) == 0  # empty: loaded
    assert "UG-100234" in capsys.readouterr().out
    assert cli.main(["customers", "demo", "--skip-if-real"]) == 0  # only demo ones: loaded again
    assert "UG-100234" in capsys.readouterr().out

    real = replace(DEMO_CUSTOMERS[0], customer_code="UG-900001")

    async def add_real() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path}/real.db")
        try:
            await CustomerRegistry(db).upsert_many([real])
        finally:
            await db.dispose()

    asyncio.run(add_real())
    assert cli.main(["customers", "demo", "--skip-if-real"]) == 0
    out = capsys.readouterr().out
    assert out == "the registry holds 1 other customer(s): demo customers not loaded\n"


# --- import reasons as sentences --------------------------------------------------------------------

_LABELS = {
    "customer_code": ["customer code"],
    "name": ["first name", "last name"],
    "company": ["company name"],
    "tax_code": ["tax code"],
}


def test_every_reason_the_import_can_give_reads_as_a_sentence() -> None:
    for reason in REASONS:
        datum, why = reason.split(".")
        for label in _LABELS.get(datum, []):
            sentence = readable_reason(f"{label}: {why}")
            assert ":" not in sentence and "_" not in sentence, (reason, sentence)
    assert readable_reason("kind must be person or business") == "kind must be person or business"
    assert readable_reason("tax code: some_new_rule") == "tax code: some_new_rule"  # shown, not hidden


def test_import_reasons_are_sentences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/import.db")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "customer_code,kind,first_name,last_name,company_name,tax_code\n"
        "UG-10,person,Mario,Rossi,,RSSMRA75C12H501X\n"
        "UG-11,person,Mario,Rossi,,02847390586\n"
        "UG-12,business,,,Idrotermica Ferraro S.r.l.,02847390587\n"
        "UG-13,alien,Mario,Rossi,,RSSMRA75C12H501H\n",
        encoding="utf-8",
    )
    assert cli.main(["customers", "import", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "line 2: the check character of the codice fiscale is wrong",
        "line 3: a person needs a codice fiscale, not a partita IVA",
        "line 4: the check digit of the partita IVA is wrong",
        "line 5: kind must be person or business",
        f"unogas-bot: 4 error(s) in {bad}: nothing imported",
    ]


# --- .env -------------------------------------------------------------------------------------------


def test_a_dot_env_file_is_read_under_the_real_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "LOG_LEVEL", "UNOGAS_OPERATOR"):
        monkeypatch.delenv(name, raising=False)  # restored (removed) after the test, whatever .env set
    (tmp_path / ".env").write_text(
        "# the support shell's defaults\n"
        "\n"
        f"export DATABASE_URL='sqlite+aiosqlite:///{tmp_path}/from-env-file.db'\n"
        'UNOGAS_OPERATOR="anna"\n'
        "LOG_LEVEL=ERROR\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LOG_LEVEL", "WARNING")  # the real environment wins
    assert cli.main(["accounts", "list"]) == 0
    assert capsys.readouterr().out == "no accounts registered\n"
    assert (tmp_path / "from-env-file.db").exists()
    assert os.environ["UNOGAS_OPERATOR"] == "anna" and os.environ["LOG_LEVEL"] == "WARNING"


def test_a_dot_env_line_of_another_shape_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite+aiosqlite:///x.db\nthis is not a setting\n")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert cli.main(["accounts", "list"]) == 1
    assert capsys.readouterr().err == "unogas-bot: .env line 2: expected NAME=value\n"
    assert "DATABASE_URL" not in os.environ  # nothing of a bad file is used
