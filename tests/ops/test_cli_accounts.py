"""`unogas-bot accounts list|show|unlock|delete|export|audit`, run through `cli.main` on a temporary SQLite
file. The fixture names the operator through UNOGAS_OPERATOR, as a support shell would; the operator tests
remove or override it."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from storage.db import Database
from storage.demo import load_demo
from storage.registry import CustomerRegistry
from tests.kit.stores import AttemptLog, KitAccounts
from unogas_bot.cli import accounts as cli_accounts
from unogas_bot.cli import main as cli
from unogas_bot.domain import NewAccount
from unogas_bot.domain.keys import account_key

MARIO_EMAIL = "mario.rossi@example.it"
GIULIA_EMAIL = "giulia.bianchi@example.it"


class Store:
    """The test database, reachable from synchronous tests (each call runs its own event loop)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, work: Callable[[Database], Awaitable[Any]]) -> Any:
        async def go() -> Any:
            db = Database(self.url)
            try:
                await db.upgrade()
                return await work(db)
            finally:
                await db.dispose()

        return asyncio.run(go())

    def account(self, name: str) -> Any:
        return self.run(lambda db: KitAccounts(db).find(name))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("UNOGAS_OPERATOR", "anna")
    return Store(url)


def _new(code: str, email: str, user: int) -> NewAccount:
    digest = bcrypt.hashpw(b"Sole sul lago 2024", bcrypt.gensalt(4)).decode()
    return NewAccount(
        code, email, digest, "Come si chiamava il mio primo gatto?", digest, "+393471234567", user
    )


@pytest.fixture
def two_accounts(store: Store) -> Store:
    """Mario registered first, Giulia an hour later; Mario has a login lock and failed attempts."""

    async def work(db: Database) -> None:
        await load_demo(CustomerRegistry(db))
        start = datetime.now(UTC) - timedelta(days=1)
        await KitAccounts(db, clock=lambda: start).register(_new("UG-100234", MARIO_EMAIL, 1001))
        later = start + timedelta(hours=1)
        await KitAccounts(db, clock=lambda: later).register(_new("UG-100235", GIULIA_EMAIL, 1002))
        repo = KitAccounts(db)
        mario = await repo.get_by_email(MARIO_EMAIL)
        await repo.set_login_lock(mario.id, datetime.now(UTC) + timedelta(minutes=10))
        await repo.set_recovery_lock(mario.id, datetime.now(UTC) + timedelta(minutes=50))
        await AttemptLog(db).record("login_account", account_key(mario.id))
        await repo.link_session(mario.id, 1001, timedelta(days=30))

    store.run(work)
    return store


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- list -------------------------------------------------------------------------------------------


def test_list_with_no_accounts(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "accounts", "list") == (0, "no accounts registered\n", "")


def test_list_shows_the_newest_first(two_accounts: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "accounts", "list")
    assert code == 0 and err == ""
    assert "accounts 2, page 1 of 1" in out
    assert out.index(GIULIA_EMAIL) < out.index(MARIO_EMAIL)
    mario_line = next(line for line in out.splitlines() if MARIO_EMAIL in line)
    assert "UG-100234" in mario_line and "Mario Rossi" in mario_line and "login,recovery" in mario_line
    assert "$2b$" not in out


def test_list_pages(
    two_accounts: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_accounts, "PAGE_SIZE", 1)
    code, out, _ = run_cli(capsys, "accounts", "list", "--page", "2")
    assert code == 0 and "page 2 of 2" in out and MARIO_EMAIL in out and GIULIA_EMAIL not in out
    code, out, err = run_cli(capsys, "accounts", "list", "--page", "3")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "page 3 does not exist" in err


def test_list_refuses_page_zero(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["accounts", "list", "--page", "0"])
    assert exit_.value.code != 0
    assert "pages count from 1" in capsys.readouterr().err


# --- show -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [MARIO_EMAIL, "Mario.Rossi@Example.it", "UG-100234", "ug-100234"])
def test_show_by_email_or_code(two_accounts: Store, capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, err = run_cli(capsys, "accounts", "show", name)
    assert code == 0 and err == ""
    for expected in ("UG-100234", "Mario Rossi (person)", MARIO_EMAIL, "RSS•••••••••••1H", "+393471234567"):
        assert expected in out
    assert "RSSMRA75C12H501H" not in out  # masked as the chat masks it
    assert "Come si chiamava il mio primo gatto?" in out
    assert "login locked:       until" in out and "recovery locked:    until" in out
    assert "registered" in out.split("recent events")[1]  # the audit trail, with the Telegram user
    assert "tg 1001" in out
    assert "$2b$" not in out and "hash" not in out.lower()


def test_show_reveal_shows_the_tax_code_and_is_audited(
    two_accounts: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mario = two_accounts.account(MARIO_EMAIL)
    monkeypatch.delenv("UNOGAS_OPERATOR")
    code, out, err = run_cli(capsys, "accounts", "show", MARIO_EMAIL, "--reveal")
    assert code == 1 and out == "" and "--operator NAME" in err
    code, out, err = run_cli(capsys, "accounts", "show", MARIO_EMAIL, "--reveal", "--operator", "carla")
    assert code == 0 and err == "" and "tax code:           RSSMRA75C12H501H" in out
    events = two_accounts.run(lambda db: KitAccounts(db).recent_events(mario.id))
    assert (events[0].event, events[0].detail) == ("tax_code_revealed", "operator carla")
    assert "tax_code_revealed" in out.split("recent events")[1]  # the reveal itself is in the trail shown


def test_show_without_reveal_records_nothing(
    two_accounts: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mario = two_accounts.account(MARIO_EMAIL)
    monkeypatch.delenv("UNOGAS_OPERATOR")  # reading needs no operator
    before = two_accounts.run(lambda db: KitAccounts(db).recent_events(mario.id))
    assert run_cli(capsys, "accounts", "show", MARIO_EMAIL)[0] == 0
    assert two_accounts.run(lambda db: KitAccounts(db).recent_events(mario.id)) == before


def test_show_unknown_account(two_accounts: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "accounts", "show", "nessuno@example.it")
    assert code == 1 and out == ""
    assert err == "unogas-bot: no account with e-mail address or customer code 'nessuno@example.it'\n"


# --- unlock -----------------------------------------------------------------------------------------


def test_unlock_clears_locks_and_attempts(two_accounts: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "accounts", "unlock", "UG-100234")
    assert code == 0 and err == "" and "unlocked UG-100234" in out
    mario = two_accounts.account(MARIO_EMAIL)
    assert mario.login_locked_until is None and mario.recovery_locked_until is None
    attempts = two_accounts.run(
        lambda db: AttemptLog(db).count_since("login_account", account_key(mario.id), timedelta(days=1))
    )
    assert attempts == 0
    _, out, _ = run_cli(capsys, "accounts", "show", MARIO_EMAIL)
    assert "unlocked" in out.split("recent events")[1]


def test_unlock_of_an_account_not_locked_says_so_and_records_nothing(
    two_accounts: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    giulia = two_accounts.account(GIULIA_EMAIL)
    before = two_accounts.run(lambda db: KitAccounts(db).recent_events(giulia.id))
    code, out, err = run_cli(capsys, "accounts", "unlock", GIULIA_EMAIL)
    assert (code, out, err) == (0, f"UG-100235 ({GIULIA_EMAIL}) is not locked: nothing changed\n", "")
    assert two_accounts.run(lambda db: KitAccounts(db).recent_events(giulia.id)) == before


def test_an_expired_lock_is_no_lock(two_accounts: Store, capsys: pytest.CaptureFixture[str]) -> None:
    giulia = two_accounts.account(GIULIA_EMAIL)
    past = datetime.now(UTC) - timedelta(minutes=1)
    two_accounts.run(lambda db: KitAccounts(db).set_login_lock(giulia.id, past))
    assert "is not locked" in run_cli(capsys, "accounts", "unlock", "UG-100235")[1]


def test_unlock_unknown_account(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "accounts", "unlock", "UG-999999")
    assert code == 1 and out == "" and "no account" in err and err.count("\n") == 1


# --- delete -----------------------------------------------------------------------------------------


def test_delete_asks_and_a_refusal_deletes_nothing(
    two_accounts: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("no\n"))
    code, out, err = run_cli(capsys, "accounts", "delete", MARIO_EMAIL)
    assert code == 1 and "Type yes to confirm" in out
    assert err == "unogas-bot: not confirmed: nothing deleted\n"
    assert two_accounts.account(MARIO_EMAIL) is not None


def test_delete_with_no_answer_deletes_nothing(
    two_accounts: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # end of input
    assert run_cli(capsys, "accounts", "delete", MARIO_EMAIL)[0] == 1
    assert two_accounts.account(MARIO_EMAIL) is not None


@pytest.mark.parametrize("how", ["typed", "--yes"])
def test_delete_removes_account_and_sessions_but_keeps_the_customer(
    two_accounts: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    mario = two_accounts.account(MARIO_EMAIL)
    if how == "typed":
        monkeypatch.setattr("sys.stdin", io.StringIO("YES\n"))
        code, out, err = run_cli(capsys, "accounts", "delete", "UG-100234")
    else:
        monkeypatch.setattr("sys.stdin", io.StringIO(""))  # must not be read
        code, out, err = run_cli(capsys, "accounts", "delete", "UG-100234", "--yes")
        assert "Type yes" not in out
    assert code == 0 and err == "" and "deleted the profile of UG-100234" in out

    assert two_accounts.account(MARIO_EMAIL) is None
    assert two_accounts.account(GIULIA_EMAIL) is not None
    assert two_accounts.run(lambda db: KitAccounts(db).session_account(1001)) is None
    customer = two_accounts.run(lambda db: CustomerRegistry(db).get("UG-100234"))
    assert customer is not None
    events = two_accounts.run(lambda db: KitAccounts(db).recent_events(mario.id))
    # The chat's erasure: the audit trail stays pseudonymised (no customer code, no Telegram user).
    assert events[0].event == "erased" and events[0].telegram_user_id is None
    # Gone for the support tools too.
    code, _, err = run_cli(capsys, "accounts", "show", "UG-100234")
    assert code == 1 and "no account" in err


def test_delete_unknown_account(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "accounts", "delete", "nessuno@example.it", "--yes")
    assert code == 1 and out == "" and "no account" in err and err.count("\n") == 1


@pytest.mark.parametrize("command", [["db", "upgrade"], ["accounts", "list"], ["customers", "demo"]])
def test_a_database_that_cannot_be_opened_is_one_line_not_a_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'bot.db'}")
    assert cli.main(command) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("unogas-bot: database error:"), err
    assert "unable to open database file" in err


def test_export_prints_the_chats_document_without_hashes(
    two_accounts: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    mario = two_accounts.account(MARIO_EMAIL)
    code, out, err = run_cli(capsys, "accounts", "export", MARIO_EMAIL)
    assert code == 0 and err == ""
    document = json.loads(out)
    assert (
        document["profile"]["email"] == MARIO_EMAIL
        and document["customer_record"]["customer_code"] == "UG-100234"
    )
    assert mario.password_hash not in out and mario.answer_hash not in out
    assert "data_exported" in [e["event"] for e in document["audit_events"]]
    code, text, _ = run_cli(capsys, "accounts", "export", MARIO_EMAIL, "--text")
    assert code == 0 and "email: " + MARIO_EMAIL in text and mario.password_hash not in text


# --- the operator in the audit trail ----------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["unlock", "UG-100234"], ["delete", "UG-100234", "--yes"], ["export", "UG-100234"]],
)
def test_a_command_that_changes_or_hands_out_an_account_needs_an_operator(
    two_accounts: Store,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    monkeypatch.delenv("UNOGAS_OPERATOR")
    mario = two_accounts.account(MARIO_EMAIL)
    before = two_accounts.run(lambda db: KitAccounts(db).recent_events(mario.id))
    code, out, err = run_cli(capsys, "accounts", *command)
    assert code == 1 and out == ""
    assert err.startswith("unogas-bot: this command changes or reveals an account: give --operator NAME")
    assert err.endswith(" or set UNOGAS_OPERATOR\n") and err.count("\n") == 1
    assert two_accounts.run(lambda db: KitAccounts(db).recent_events(mario.id)) == before
    assert two_accounts.account(MARIO_EMAIL).login_locked_until is not None


def test_a_blank_operator_is_no_operator(two_accounts: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "accounts", "unlock", "UG-100234", "--operator", "  ")
    assert code == 1 and "--operator NAME" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("command", "event", "detail"),
    [
        (["unlock", "UG-100234"], "unlocked", "operator Bruno Neri"),
        (["export", "UG-100234"], "data_exported", "by support staff; operator Bruno Neri"),
        (["delete", "UG-100234", "--yes"], "erased", "by support staff; operator Bruno Neri"),
    ],
)
def test_the_audit_event_names_the_operator(
    two_accounts: Store,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    event: str,
    detail: str,
) -> None:
    mario = two_accounts.account(MARIO_EMAIL)
    assert run_cli(capsys, "accounts", *command, "--operator", "Bruno  Neri")[0] == 0  # over UNOGAS_OPERATOR
    events = two_accounts.run(lambda db: KitAccounts(db).recent_events(mario.id))
    assert (events[0].event, events[0].detail) == (event, detail)


def test_the_operator_comes_from_the_environment(
    two_accounts: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    mario = two_accounts.account(MARIO_EMAIL)
    assert run_cli(capsys, "accounts", "unlock", MARIO_EMAIL)[0] == 0
    events = two_accounts.run(lambda db: KitAccounts(db).recent_events(mario.id))
    assert (events[0].event, events[0].detail) == ("unlocked", "operator anna")
    _, out, _ = run_cli(capsys, "accounts", "show", MARIO_EMAIL)
    assert "operator anna" in out.split("recent events")[1]


# --- audit ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [MARIO_EMAIL, "UG-100234", "ug100234"])
def test_audit_shows_the_trail_oldest_first(
    two_accounts: Store, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    mario = two_accounts.account(MARIO_EMAIL)
    run_cli(capsys, "accounts", "unlock", "UG-100234")
    code, out, err = run_cli(capsys, "accounts", "audit", name)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert (
        lines[0] == f"audit trail of profile {mario.id} (UG-100234, {MARIO_EMAIL}): 2 event(s), oldest first"
    )
    assert "registered" in lines[1] and "tg 1001" in lines[1] and "unlocked" in lines[2]
    assert "operator anna" in lines[2]


def test_audit_of_an_erased_profile_shows_what_is_left(
    two_accounts: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    mario = two_accounts.account(MARIO_EMAIL)
    code, out, _ = run_cli(capsys, "accounts", "delete", "UG-100234", "--yes")
    assert f"accounts audit --account-id {mario.id}" in out
    # A failed identity check after the erasure: an event with the code and no profile.
    two_accounts.run(
        lambda db: KitAccounts(db).record_event(
            "registration_identity_failed", customer_code="UG-100234", telegram_user_id=77
        )
    )

    code, out, err = run_cli(capsys, "accounts", "audit", "--account-id", str(mario.id))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"audit trail of profile {mario.id}, deleted: what is left after its erasure:")
    assert lines[0].endswith(": 2 event(s), oldest first")
    assert "registered" in lines[1] and "tg 1001" not in out  # pseudonymised: no Telegram user
    assert "erased" in lines[2] and "by support staff; operator anna" in lines[2]
    assert "registration_identity_failed" not in out

    code, out, err = run_cli(capsys, "accounts", "audit", "UG-100234")
    assert code == 0 and err == ""
    assert out.startswith(
        "note: an erased profile's events keep neither address, customer code nor Telegram user"
    )
    assert "audit trail of customer UG-100234, no profile now: 1 event(s)" in out
    assert "registration_identity_failed" in out and "  erased" not in out

    code, out, err = run_cli(capsys, "accounts", "audit", MARIO_EMAIL)
    assert code == 1 and out == "" and err.count("\n") == 1 and "--account-id N" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--account-id", "999"], "no profile 999 and no audit events under that number"),
        (["UG-999999"], "no customer and no audit events with customer code 'UG-999999'"),
    ],
)
def test_audit_of_nothing_is_one_line(
    two_accounts: Store, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, "accounts", "audit", *argv)
    assert code == 1 and out == "" and err.count("\n") == 1 and message in err


# --- JSON for scripts -------------------------------------------------------------------------------


def test_list_json(two_accounts: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "accounts", "list", "--json")
    assert code == 0 and err == ""
    document = json.loads(out)
    assert (document["total"], document["page"], document["pages"]) == (2, 1, 1)
    assert [a["email"] for a in document["accounts"]] == [GIULIA_EMAIL, MARIO_EMAIL]
    mario = document["accounts"][1]
    assert mario["locked"] == ["login", "recovery"] and mario["tax_code"] == "RSS•••••••••••1H"
    assert "$2b$" not in out and "hash" not in out


def test_list_json_with_no_accounts(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "accounts", "list", "--json")
    assert code == 0 and json.loads(out) == {"total": 0, "page": 1, "pages": 0, "accounts": []}


def test_show_json(two_accounts: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "accounts", "show", "UG-100234", "--json")
    assert code == 0 and err == ""
    document = json.loads(out)
    assert document["email"] == MARIO_EMAIL and document["tax_code"] == "RSS•••••••••••1H"
    assert document["recent_events"][0]["event"] == "registered"
    assert document["recent_events"][0]["telegram_user_id"] == 1001
    assert datetime.fromisoformat(document["registered_at"]).tzinfo is not None
    _, out, _ = run_cli(capsys, "accounts", "show", "UG-100234", "--json", "--reveal")
    assert json.loads(out)["tax_code"] == "RSSMRA75C12H501H"


def test_audit_json_also_of_an_erased_profile(
    two_accounts: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    mario = two_accounts.account(MARIO_EMAIL)
    _, out, _ = run_cli(capsys, "accounts", "audit", MARIO_EMAIL, "--json")
    document = json.loads(out)
    assert document["profile"]["account_id"] == mario.id
    assert [e["event"] for e in document["events"]] == ["registered"]
    run_cli(capsys, "accounts", "delete", MARIO_EMAIL, "--yes")
    code, out, err = run_cli(capsys, "accounts", "audit", "--account-id", str(mario.id), "--json")
    assert code == 0 and err == ""
    document = json.loads(out)
    assert document["profile"] is None
    assert [(e["event"], e["customer_code"], e["telegram_user_id"]) for e in document["events"]] == [
        ("registered", None, None),
        ("erased", None, None),
    ]
    _, out, _ = run_cli(capsys, "accounts", "audit", "UG-100234", "--json")
    assert json.loads(out) == {"profile": None, "note": cli_accounts._ERASED_NOTE, "events": []}
