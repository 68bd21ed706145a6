"""Password recovery: e-mail and customer code, the account's own security question, a new password twice.

The security question is shown only when the e-mail and the customer code belong to the same account.
Any other case (unknown address, a code of another customer, no account) gets one generic answer after the
same work, a dummy bcrypt check included, so the replies do not tell which datum was wrong; such misses are
limited per Telegram user like the registration's identity check.

The answer is checked against its bcrypt hash and only a keyed digest of this process stays in the draft
(as for every secret of the engine); `recovery_failures` wrong answers lock recovery for the account for
`recovery_lock`. The new password follows the registration's rules with the customer's own data and must
differ from the old one. Saving it ends every Telegram session of the account and lifts a login lock: the
owner has just proved who they are, and a guesser does not know the new password.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conversations.audit import audit
from conversations.form import Ask, Field, Finish, Form, Outcome, Reply, Turn
from conversations.login import FAILED as LOGIN_FAILED
from conversations.login import minutes_until
from conversations.registration import personal_data_of
from storage.accounts import AccountNotFound, AccountView
from storage.attempts import account_key, telegram_key
from unogas_bot import validation

NAME = "recovery"
# Attempt kinds: wrong answers per account (cleared by `accounts unlock`), identity misses per user.
WRONG_ANSWER = "recovery"
MISMATCH = "recovery_verify"
MISMATCH_WINDOW = timedelta(hours=1)


def _answer(text: str, draft: dict[str, Any]) -> str:
    value = validation.normalize_answer(text)
    if not value:
        raise validation.Invalid("answer.empty")
    return value


def personal_data(account: AccountView) -> list[str]:
    """What the new password must not contain: the same data the registration forbids."""
    return personal_data_of(
        {
            "customer_code": account.customer_code,
            "tax_code": account.tax_code,
            "first_name": account.first_name,
            "last_name": account.last_name,
            "company_name": account.company_name,
            "email": account.email,
        }
    )


# Changing the address or the code means the identity must be checked again.
IDENTITY_CLEARS = ("account_id",)

FIELDS: tuple[Field, ...] = (
    Field(
        "email",
        "q_rec_email",
        "h_rec_email",
        lambda t, d: validation.email(t),
        clears=IDENTITY_CLEARS,
        placeholder="ph_email",
    ),
    Field(
        "customer_code",
        "q_rec_customer_code",
        "h_rec_customer_code",
        lambda t, d: validation.customer_code(t),
        clears=IDENTITY_CLEARS,
        placeholder="ph_customer_code",
    ),
    # Kept only as the engine's keyed digest, and only once it proved right (a wrong one is forgotten).
    Field("answer", "q_rec_answer", "h_rec_answer", _answer, secret=True),
    Field(
        "password",
        "q_new_password",
        "h_new_password",
        # The rules that need no account; the customer's data and the old password are checked in on_value.
        lambda t, d: validation.password(t),
        secret=True,
    ),
    Field(
        "password_repeat",
        "q_new_password_repeat",
        "h_new_password_repeat",
        lambda t, d: t,
        confirms="password",
        hash_as="password_hash",
        mismatch="password_mismatch",
    ),
)


class RecoveryForm(Form):
    name = NAME
    fields = FIELDS
    entry_commands = ("recupera_password", "recover")
    deep_link = "recupera_password"
    intro = "rec_intro"

    async def on_start(self, turn: Turn) -> Outcome | None:
        blocked = await self._mismatch_blocked(turn)
        return Finish([blocked]) if blocked else None

    async def before_next(self, turn: Turn) -> Outcome | None:
        draft = turn.draft
        if "account_id" in draft or "email" not in draft or "customer_code" not in draft:
            return None
        return await self._identify(turn)

    async def on_value(self, turn: Turn, field: Field, value: Any) -> Outcome | None:
        if field.key == "answer":
            return await self._check_answer(turn, value)
        if field.key == "password":
            return await self._check_new_password(turn, value)
        return None

    async def complete(self, turn: Turn) -> Outcome:
        services, draft = turn.services, turn.draft
        account_id = draft["account_id"]
        try:
            await services.accounts.change_password(
                account_id, draft["password_hash"], telegram_user_id=turn.user_id
            )
        except AccountNotFound:
            return Finish([Reply("rec_gone")])
        await services.attempts.clear(WRONG_ANSWER, account_key(account_id))
        await services.attempts.clear(LOGIN_FAILED, account_key(account_id))
        await services.accounts.set_login_lock(account_id, None)
        return Finish([Reply("rec_done")])

    # steps ------------------------------------------------------------------------------------------
    async def _identify(self, turn: Turn) -> Outcome:
        services, draft = turn.services, turn.draft
        blocked = await self._mismatch_blocked(turn)
        if blocked:
            return Finish([blocked])
        account = await services.accounts.get_by_email(draft["email"])
        # Every identity check costs one bcrypt check, matching or not: the same delay for every answer.
        await services.hasher.verify(draft["customer_code"], None)
        if account is None or account.customer_code != draft["customer_code"]:
            return await self._mismatch(turn, account)
        locked = self._locked(turn, account)
        if locked:
            return Finish([locked])
        draft["account_id"] = account.id
        return Ask([Reply("rec_question", {"question": account.security_question})])

    async def _mismatch(self, turn: Turn, account: AccountView | None) -> Outcome:
        services = turn.services
        key = telegram_key(turn.user_id)
        await services.attempts.record(MISMATCH, key)
        await audit(
            turn, "recovery_identity_failed", account, "wrong customer code" if account else "unknown e-mail"
        )
        limit = services.settings.verify_attempts_per_hour
        left = limit - await services.attempts.count_since(MISMATCH, key, MISMATCH_WINDOW)
        if left <= 0:
            blocked = await self._mismatch_blocked(turn)
            return Finish([blocked or Reply("rec_too_many", {"minutes": 60})])
        # Start again from the e-mail, without saying which datum was wrong.
        self.forget(turn.draft, "email")
        self.forget(turn.draft, "customer_code")
        return Ask([Reply("rec_no_match", {"left": left})])

    async def _check_answer(self, turn: Turn, answer: str) -> Outcome | None:
        services, draft = turn.services, turn.draft
        account = await services.accounts.get(draft["account_id"])
        if account is None:
            return Finish([Reply("rec_gone")])
        locked = self._locked(turn, account)
        if locked:
            return Finish([locked])
        if await services.hasher.verify(answer, account.answer_hash):
            return None
        self.forget(draft, "answer")
        key = account_key(account.id)
        await services.attempts.record(WRONG_ANSWER, key)
        settings = services.settings
        await audit(turn, "recovery_failed", account, "wrong security answer")
        failures = await services.attempts.count_since(WRONG_ANSWER, key, settings.recovery_lock)
        if failures >= settings.recovery_failures:
            until = turn.now() + settings.recovery_lock
            await services.accounts.set_recovery_lock(account.id, until)
            await audit(turn, "recovery_locked", account, f"{failures} wrong security answers")
            return Finish([Reply("rec_locked", {"minutes": minutes_until(until, turn.now())})])
        notes = [
            Reply("rec_wrong_answer", {"left": settings.recovery_failures - failures}),
            Reply("rec_question", {"question": account.security_question}),
        ]
        return Ask(notes, field="answer")

    async def _check_new_password(self, turn: Turn, password: str) -> Outcome | None:
        services, draft = turn.services, turn.draft
        account = await services.accounts.get(draft["account_id"])
        if account is None:
            return Finish([Reply("rec_gone")])
        try:
            validation.password(password, personal_data(account))
        except validation.Invalid as bad:
            self.forget(draft, "password")
            return Ask([Reply(f"e_{bad.reason}", dict(bad.params))], field="password")
        if await services.hasher.verify(password, account.password_hash):
            self.forget(draft, "password")
            return Ask([Reply("rec_same_password")], field="password")
        return None

    # limits -----------------------------------------------------------------------------------------
    def _locked(self, turn: Turn, account: AccountView) -> Reply | None:
        until = account.recovery_locked_until
        if until is None or until <= turn.now():
            return None
        return Reply("rec_locked", {"minutes": minutes_until(until, turn.now())})

    async def _mismatch_blocked(self, turn: Turn) -> Reply | None:
        """The reply for a user with too many identity misses in the last hour, or None."""
        attempts, key = turn.services.attempts, telegram_key(turn.user_id)
        limit = turn.services.settings.verify_attempts_per_hour
        if await attempts.count_since(MISMATCH, key, MISMATCH_WINDOW) < limit:
            return None
        # Free again (for one more try) when the oldest miss leaves the window.
        oldest = await attempts.oldest_in_window(MISMATCH, key, MISMATCH_WINDOW)
        until = (oldest or turn.now()) + MISMATCH_WINDOW
        return Reply("rec_too_many", {"minutes": minutes_until(until, turn.now())})
