"""The paths of each form that its spec does not show: what the form's hooks decide at a check.

A spec (conversations/spec.py) says what is asked and in which order; whether a password was right, an
address free or a limit reached is decided by the form's hooks (conversations/*.py) through the use
cases. Those outcomes are listed here once, as data, for the diagrams and the flow coverage: a `Retry`
asks a question again, an `Exit` ends the form. Each names the catalogue key of what the bot says, so a
diagram labels it in either language and the coverage recognises it in a replay. A limit is a `Settings`
attribute: the diagram shows its value ("after 5 failures").

tests/unit/test_flow_diagram.py checks this table against the forms' code: every reply a form ends with
is an exit of that form here.
"""

from __future__ import annotations

from dataclasses import dataclass

START = "start"  # the source of what happens when the form is opened, before its first question
SUMMARY = "summary"


@dataclass(frozen=True)
class Retry:
    """At `source` (a step, or a checkpoint's key), the bot says `reply` and asks `target` again."""

    source: str
    target: str
    reply: str
    limit: str | None = None  # the Settings attribute counting these; its Exit ends the form


@dataclass(frozen=True)
class Exit:
    """At `source` (a step, a checkpoint's key, START or SUMMARY) the bot says `reply` and the form ends;
    `button`: the catalogue key of the button (or typed word) that takes this way."""

    source: str
    reply: str
    limit: str | None = None
    button: str | None = None
    success: bool = False


Path = Retry | Exit

_CURRENT = (
    Exit(START, "own_data_not_logged_in"),
    Retry("current", "current", "current_password_wrong", "login_failures_per_account"),
    Exit("current", "login_wait", "login_failures_per_account"),
)

PATHS: dict[str, tuple[Path, ...]] = {
    "registration": (
        Retry("verified", "customer_code", "mismatch", "verify_attempts_per_hour"),
        Exit("verified", "verify_locked", "verify_attempts_per_hour"),
        Exit("verified", "already_registered"),
        Retry("email", "email", "email_taken", "email_in_use_per_hour"),
        Exit("email", "email_taken_too_often", "email_in_use_per_hour"),
        Exit(SUMMARY, "saved", button="btn_save", success=True),
        Exit(SUMMARY, "cancelled", button="btn_cancel"),
        Retry(SUMMARY, "email", "save_conflict_email"),
        Exit(SUMMARY, "save_conflict_customer"),
        Exit(SUMMARY, "customer_gone"),
    ),
    "login": (
        Exit(START, "login_already"),
        Exit(START, "login_wait", "login_failures_per_user"),
        Retry("password", "password", "login_invalid", "login_failures_per_account"),
        Exit("password", "login_wait", "login_failures_per_account"),
        Exit("password", "login_ok", success=True),
    ),
    "recovery": (
        Exit(START, "rec_too_many", "verify_attempts_per_hour"),
        Retry("account_id", "email", "rec_no_match", "verify_attempts_per_hour"),
        Exit("account_id", "rec_too_many", "verify_attempts_per_hour"),
        Exit("account_id", "rec_locked", "recovery_failures"),
        Retry("answer", "answer", "rec_wrong_answer", "recovery_failures"),
        Exit("answer", "rec_locked", "recovery_failures"),
        Exit("answer", "rec_gone"),
        Exit("password_repeat", "rec_done", success=True),
    ),
    "change_password": (*_CURRENT, Exit("password_repeat", "password_changed", success=True)),
    "change_email": (
        *_CURRENT,
        Retry("email", "email", "email_taken", "email_in_use_per_hour"),
        Exit("email", "change_email_too_often", "email_in_use_per_hour"),
        Exit("email", "email_changed", success=True),
    ),
    "change_phone": (
        *_CURRENT,
        Exit("phone", "phone_changed", success=True),
        Exit("phone", "phone_removed", button="btn_skip", success=True),
    ),
    "change_question": (*_CURRENT, Exit("answer_repeat", "question_changed", success=True)),
    "export": (*_CURRENT, Exit("current", "export_sent", success=True)),
    "erase": (
        *_CURRENT,
        Exit("confirm", "erased", button="btn_erase", success=True),
        Exit("confirm", "cancelled", button="btn_cancel"),
    ),
}

# Every form, from any question: /annulla, and the silence after which the draft is forgotten.
ANY_QUESTION = ("cancelled", "expired")
