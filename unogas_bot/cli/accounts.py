"""`unogas-bot accounts ...`: support tools for registered profiles (list, show, unlock, export, delete,
audit).

Nothing here prints a hash or a secret. Accounts are named by e-mail address or customer code. Every
command that changes an account (unlock, delete) or hands its data out (export) needs the operator's name
(`--operator` or `UNOGAS_OPERATOR`), which its audit events record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from storage.db import Database
from unogas_bot.cli.common import CliError, add_operator_argument, operator_name, with_database
from unogas_bot.clock import utcnow
from unogas_bot.config import Settings
from unogas_bot.domain import AccountView, AuditEntry
from unogas_bot.rules import masks, names
from unogas_bot.service import erasure, export
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import Erased
from unogas_bot.service.support import Support, acting_operator

PAGE_SIZE = 20


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The `accounts` sub-command and its actions."""
    accounts = sub.add_parser(
        "accounts", help="support tools: list, show, unlock, delete a registered profile"
    )
    asub = accounts.add_subparsers(dest="action", required=True)
    lst = asub.add_parser("list", help="registered profiles, newest first, a page at a time")
    lst.add_argument("--page", type=_page_number, default=1, help=f"page number (from 1; {PAGE_SIZE} a page)")
    _add_json_argument(lst)
    show = asub.add_parser("show", help="one profile (no hashes) and its recent audit events")
    show.add_argument("account", metavar="EMAIL_OR_CODE")
    show.add_argument(
        "--reveal", action="store_true", help="show the tax code in full (audited: needs the operator)"
    )
    add_operator_argument(show)
    _add_json_argument(show)
    unlock = asub.add_parser("unlock", help="lift login and recovery locks and forget failed attempts")
    unlock.add_argument("account", metavar="EMAIL_OR_CODE")
    add_operator_argument(unlock)
    exp = asub.add_parser("export", help="everything stored about a profile, as the customer's /i_miei_dati")
    exp.add_argument("account", metavar="EMAIL_OR_CODE")
    exp.add_argument("--text", action="store_true", help="the readable text version instead of JSON")
    add_operator_argument(exp)
    delete = asub.add_parser("delete", help="delete a profile and its sessions (the customer record stays)")
    delete.add_argument("account", metavar="EMAIL_OR_CODE")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_operator_argument(delete)
    audit = asub.add_parser(
        "audit", help="the audit trail of a profile or customer, also of an erased profile (oldest first)"
    )
    whose = audit.add_mutually_exclusive_group(required=True)
    whose.add_argument("account", nargs="?", metavar="EMAIL_OR_CODE")
    whose.add_argument(
        "--account-id",
        type=int,
        metavar="N",
        help="the account id (`accounts show`, `accounts delete` print it): finds an erased profile too",
    )
    _add_json_argument(audit)


def _add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON document on stdout, for scripts (times in ISO 8601, UTC)",
    )


def _page_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("pages count from 1")
    return value


# --- formatting -------------------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _holder(account: AccountView) -> str:
    return names.holder(account.kind, account.first_name, account.last_name, account.company_name)


def _lock(until: datetime | None, now: datetime) -> str:
    return f"until {_when(until)}" if until and until > now else "no"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _locks(account: AccountView, now: datetime) -> list[str]:
    """The locks in force: "login", "recovery"."""
    pairs = (("login", account.login_locked_until), ("recovery", account.recovery_locked_until))
    return [name for name, until in pairs if until and until > now]


def _account_json(account: AccountView, now: datetime, *, reveal: bool = False) -> dict[str, Any]:
    """The profile for scripts: the same fields as the text (never a hash), the tax code masked alike."""
    return {
        "account_id": account.id,
        "customer_code": account.customer_code,
        "kind": account.kind,
        "holder": _holder(account),
        "tax_code": account.tax_code if reveal else masks.tax_code(account.tax_code),
        "email": account.email,
        "phone": account.phone,
        "security_question": account.security_question,
        "registered_at": _iso(account.registered_at),
        "registered_by": account.registered_by,
        "password_changed_at": _iso(account.password_changed_at),
        "login_locked_until": _iso(account.login_locked_until),
        "recovery_locked_until": _iso(account.recovery_locked_until),
        "locked": _locks(account, now),
    }


def _event_json(event: AuditEntry) -> dict[str, Any]:
    return {
        "at": _iso(event.at),
        "event": event.event,
        "account_id": event.account_id,
        "customer_code": event.customer_code,
        "telegram_user_id": event.telegram_user_id,
        "detail": event.detail,
    }


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, ensure_ascii=False, indent=2))


async def _find(repo: Support, name: str) -> AccountView:
    account = await repo.find(name)
    if account is None:
        raise CliError(f"no account with e-mail address or customer code {name!r}")
    return account


def _as_operator(args: argparse.Namespace, command: Callable[[], int]) -> int:
    """Run `command` with every audit event it records naming the operator; without one, nothing runs
    (not even the confirmation question)."""
    with acting_operator(operator_name(args)):
        return command()


# --- commands ---------------------------------------------------------------------------------------


def cmd_accounts_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        repo = Support(db)
        total = await repo.count()
        pages = math.ceil(total / PAGE_SIZE)
        if total == 0 and not args.json:
            print("no accounts registered")
            return 0
        if args.page > max(pages, 1):
            raise CliError(f"page {args.page} does not exist: {total} account(s) on {pages} page(s)")
        now = utcnow()
        accounts = await repo.list_accounts(args.page, PAGE_SIZE)
        if args.json:
            listed = [_account_json(account, now) for account in accounts]
            _print_json({"total": total, "page": args.page, "pages": pages, "accounts": listed})
            return 0
        print(f"accounts {total}, page {args.page} of {pages} (newest first)")
        print(f"  {'registered':<17} {'customer':<12} {'e-mail':<32} {'holder':<28} locked")
        for account in accounts:
            print(
                f"  {account.registered_at:%Y-%m-%d %H:%M} {account.customer_code:<12} {account.email:<32} "
                f"{_holder(account):<28} {','.join(_locks(account, now)) or '-'}"
            )
        return 0

    return with_database(settings, work)


def cmd_accounts_show(settings: Settings, args: argparse.Namespace) -> int:
    """The profile with its tax code masked as the chat masks it: what is on a support screen is seen by
    whoever stands behind it. `--reveal` shows it in full and records who asked ("tax_code_revealed")."""

    async def work(db: Database) -> int:
        repo = Support(db)
        account = await _find(repo, args.account)
        if args.reveal and not await repo.reveal_tax_code(account):
            raise CliError(f"{account.customer_code} was erased meanwhile: nothing to show")
        now = utcnow()
        events = await repo.recent_events(account.id)
        if args.json:
            document = _account_json(account, now, reveal=args.reveal)
            _print_json({**document, "recent_events": [_event_json(event) for event in events]})
            return 0
        kind = account.kind
        rows = [
            ("account id", str(account.id)),
            ("customer code", account.customer_code),
            ("holder", f"{_holder(account)} ({kind})"),
            ("tax code", account.tax_code if args.reveal else masks.tax_code(account.tax_code)),
            ("e-mail", account.email),
            ("phone", account.phone or "-"),
            ("security question", account.security_question),
            ("registered", f"{_when(account.registered_at)} by Telegram user {account.registered_by}"),
            ("password changed", _when(account.password_changed_at)),
            ("login locked", _lock(account.login_locked_until, now)),
            ("recovery locked", _lock(account.recovery_locked_until, now)),
        ]
        for label, value in rows:
            print(f"{label + ':':<19} {value}")
        print(f"recent events ({len(events)}, newest first):")
        for event in events:
            who = f"tg {event.telegram_user_id}" if event.telegram_user_id is not None else "-"
            detail = f"  {event.detail}" if event.detail else ""
            print(f"  {_when(event.at)}  {event.event:<26} {who}{detail}")
        return 0

    if args.reveal:
        return _as_operator(args, lambda: with_database(settings, work))
    return with_database(settings, work)


def cmd_accounts_unlock(settings: Settings, args: argparse.Namespace) -> int:
    """Lift the locks. An account with no lock in force is left alone and nothing is audited: an
    "unlocked" event that unlocked nothing would mislead whoever reads the trail later."""

    async def work(db: Database) -> int:
        repo = Support(db)
        account = await _find(repo, args.account)
        now = utcnow()
        locks = (account.login_locked_until, account.recovery_locked_until)
        if not any(until and until > now for until in locks):
            print(f"{account.customer_code} ({account.email}) is not locked: nothing changed")
            return 0
        if not await repo.unlock(account.id):
            raise CliError(f"{account.customer_code} was erased meanwhile: nothing to unlock")
        print(f"unlocked {account.customer_code} ({account.email}): login and recovery allowed again")
        return 0

    return _as_operator(args, lambda: with_database(settings, work))


def _confirm(prompt: str) -> bool:
    print(prompt, end="", flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() == "yes"


def cmd_accounts_delete(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        repo = Support(db)
        account = await _find(repo, args.account)
        if not args.yes:
            prompt = (
                f"Delete the profile of {account.customer_code} {_holder(account)} ({account.email}) and "
                "log out its Telegram sessions? The customer record stays. Type yes to confirm: "
            )
            if not await asyncio.to_thread(_confirm, prompt):
                raise CliError("not confirmed: nothing deleted")
        # The erasure of the chat's /cancella_profilo (issue 15): the same deletion and pseudonymised audit.
        services = Services.create(settings, db)
        try:
            erased = await erasure.erase_profile(services, account.id, by_support=True)
        finally:
            services.hasher.close()
        if not isinstance(erased, Erased):
            raise CliError(f"account {account.customer_code} was deleted meanwhile")
        # The erasure unlinks the trail from the code and the address: its number is all that finds it now.
        print(
            f"deleted the profile of {account.customer_code} ({account.email}); its audit trail stays, "
            f"pseudonymised, under account id {account.id}: accounts audit --account-id {account.id}"
        )
        return 0

    return _as_operator(args, lambda: with_database(settings, work))


def cmd_accounts_export(settings: Settings, args: argparse.Namespace) -> int:
    """The document the customer's /i_miei_dati sends (issue 15), to stdout; audited as asked by support."""

    async def work(db: Database) -> int:
        account = await _find(Support(db), args.account)
        services = Services.create(settings, db)
        try:
            document = await export.export_profile(services, account.id, None)
        finally:
            services.hasher.close()
        if document is None:
            raise CliError(f"account {account.customer_code} was deleted meanwhile")
        content = (
            export.as_text(document, "Unogas customer area: profile data")
            if args.text
            else export.as_json(document)
        )
        sys.stdout.write(content.decode("utf-8") + "\n")
        return 0

    return _as_operator(args, lambda: with_database(settings, work))


def _print_trail(events: list[AuditEntry]) -> None:
    for event in events:
        number = f"#{event.account_id}" if event.account_id is not None else "-"
        who = f"tg {event.telegram_user_id}" if event.telegram_user_id is not None else "-"
        detail = f"  {event.detail}" if event.detail else ""
        print(f"  {_when(event.at)}  {event.event:<28} {number:<7} {who}{detail}")


_ERASED_NOTE = (
    "an erased profile's events keep neither address, customer code nor Telegram user: "
    "find them with --account-id N (printed by accounts delete)"
)


def cmd_accounts_audit(settings: Settings, args: argparse.Namespace) -> int:
    """The trail of a profile (by address, code or number) or of a customer without a profile. After an
    erasure (service/erasure.py) the trail is pseudonymised: only the profile number finds its events, so
    that is what the header says instead of pretending there is nothing."""

    async def work(db: Database) -> int:
        repo = Support(db)
        if args.account_id is not None:
            account = await repo.get(args.account_id)
            code = account.customer_code if account else None
            events = await repo.audit_trail(account_id=args.account_id, customer_code=code)
            if account is not None:
                header = f"profile {account.id} ({account.customer_code}, {account.email})"
            elif events:
                header = f"profile {args.account_id}, deleted: what is left after its erasure"
            else:
                raise CliError(
                    f"no profile {args.account_id} and no audit events under that number "
                    "(never existed, or older than the audit retention period)"
                )
        elif "@" in args.account:
            account = await repo.get_by_email(args.account)
            if account is None:
                raise CliError(f"no profile with e-mail address {args.account!r}; {_ERASED_NOTE}")
            events = await repo.audit_trail(account_id=account.id, customer_code=account.customer_code)
            header = f"profile {account.id} ({account.customer_code}, {account.email})"
        else:
            account = await repo.get_by_customer_code(args.account)
            if account is not None:
                events = await repo.audit_trail(account_id=account.id, customer_code=account.customer_code)
                header = f"profile {account.id} ({account.customer_code}, {account.email})"
            else:
                customer = await repo.customer(args.account)
                events = await repo.audit_trail(customer_code=args.account)
                if customer is None and not events:
                    raise CliError(f"no customer and no audit events with customer code {args.account!r}")
                shown = customer.customer_code if customer else args.account
                header = f"customer {shown}, no profile now"
                if not args.json:
                    print(f"note: {_ERASED_NOTE}")
        if args.json:
            # No profile (erased, or never one): "profile" is null and the note says where the rest is.
            profile = None if account is None else _account_json(account, utcnow())
            trail = [_event_json(event) for event in events]
            note = {} if account is not None or args.account_id is not None else {"note": _ERASED_NOTE}
            _print_json({"profile": profile, **note, "events": trail})
            return 0
        print(f"audit trail of {header}: {len(events)} event(s), oldest first")
        _print_trail(events)
        return 0

    return with_database(settings, work)


COMMANDS = {
    ("accounts", "list"): cmd_accounts_list,
    ("accounts", "show"): cmd_accounts_show,
    ("accounts", "unlock"): cmd_accounts_unlock,
    ("accounts", "delete"): cmd_accounts_delete,
    ("accounts", "export"): cmd_accounts_export,
    ("accounts", "audit"): cmd_accounts_audit,
}
