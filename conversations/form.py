"""A small form engine: describe each question once; one generic step asks, validates, re-asks, moves on.

A `Form` is a list of `Field`s. The next question is always the first applicable field whose answer is
missing from the draft, so "go back", "change one answer from the summary" and progress ("Step 3 of 12")
all come from the same rule. Each conversation state is a field key, so PTB's persistence can save it.

The draft lives in `user_data[form.name]`. Every update works on a copy that is written back only when the
step succeeds: if the database or Telegram fails half-way, the conversation is exactly where it was.
Secrets never enter the draft in clear: a secret answer is kept as a keyed digest of this process
(`EphemeralMac`) until it is confirmed, then as its bcrypt hash.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telegram import (
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from conversations import secret_guard
from conversations.context import BotContext
from unogas_bot import rules
from unogas_bot.i18n import texts
from unogas_bot.security.hash_budget import HashBudgetExceeded
from unogas_bot.service.context import Services

log = logging.getLogger(__name__)

END = ConversationHandler.END
SUMMARY = "summary"

Draft = dict[str, Any]
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply | None


def _always(_: Draft) -> bool:
    return True


_ATOMS = frozenset({str, int, float, bool, type(None)})


def copy_draft(value: Any) -> Any:
    """A deep copy of a draft. Drafts are JSON data (the persistence stores them as JSON): dicts, lists and
    immutable scalars, copied here without ``copy.deepcopy``'s memo and dispatch (several times slower,
    once per customer reply); anything else is still handed to ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {k: copy_draft(v) for k, v in value.items()}
    if kind is list:
        return [copy_draft(v) for v in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


@dataclass(frozen=True)
class Choice:
    value: str
    label: str  # catalogue key of the button text


@dataclass(frozen=True)
class Field:
    """One question of a form."""

    key: str
    question: str | Callable[[Draft], str]  # catalogue key, or a function of the draft giving one
    help: str | Callable[[Draft], str]
    parse: Callable[[str, Draft], Any]  # a pure rule: raises rules.Invalid
    label: str | None = None  # catalogue key for the summary; None: not shown, not editable
    applies: Callable[[Draft], bool] = _always
    optional: bool = False  # "salta" / the Skip button stores None
    secret: bool = False  # the customer's message is deleted; the value is never stored in clear
    confirms: str | None = None  # this field repeats the secret field named here
    hash_as: str | None = None  # where a confirmed secret's bcrypt hash goes
    mismatch: str = ""  # catalogue key when the repetition differs
    consume: bool = False  # the value goes to Form.on_value only (login password): nothing stored
    choices: tuple[Choice, ...] = ()
    clears: tuple[str, ...] = ()  # further draft keys to forget when this answer is changed
    placeholder: str = ""  # hint shown in the input field
    share_contact: bool = False  # offer Telegram's "share my number" button

    def question_key(self, draft: Draft) -> str:
        return self.question(draft) if callable(self.question) else self.question

    def help_key(self, draft: Draft) -> str:
        return self.help(draft) if callable(self.help) else self.help


# --- what a step decides ------------------------------------------------------------------------------


@dataclass
class Reply:
    """A message for the customer: a catalogue key with its parameters."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)
    markup: Markup = None


@dataclass
class Ask:
    """Say `notes`, then ask `field` (None: the next missing field)."""

    notes: list[Reply] = field(default_factory=list)
    field: str | None = None


@dataclass
class Finish:
    """Say `notes` and end the conversation, forgetting the draft."""

    notes: list[Reply] = field(default_factory=list)


Outcome = Ask | Finish


class Turn:
    """One update being handled: who, in which language, with which draft, and how to answer."""

    def __init__(self, update: Update, context: BotContext, form: Form, draft: Draft) -> None:
        self.update = update
        self.context = context
        self.form = form
        self.draft = draft
        user = update.effective_user
        self.user_id: int = user.id if user else 0
        self.chat_id: int = update.effective_chat.id if update.effective_chat else self.user_id
        self.lang = context.language_of(update)
        self._reply_keyboard_open = bool(draft.get("_rk"))

    @property
    def services(self) -> Services:
        return self.context.services

    def now(self) -> datetime:
        return self.services.clock()

    def text(self, key: str, **params: Any) -> str:
        return texts.t(self.lang, key, **params)

    async def send(self, reply: Reply) -> Message:
        return await self.send_html(self.text(reply.key, **reply.params), reply.markup)

    async def send_html(self, html: str, markup: Markup = None) -> Message:
        """Send catalogue-built HTML; the only way a form talks to the customer."""
        if markup is None and self._reply_keyboard_open:
            # The previous question showed a reply keyboard: take it away with the next message.
            markup = ReplyKeyboardRemove()
        if markup is not None and not isinstance(markup, InlineKeyboardMarkup):
            self._reply_keyboard_open = isinstance(markup, ReplyKeyboardMarkup)
        self.draft["_rk"] = self._reply_keyboard_open
        return await self.context.bot.send_message(
            self.chat_id, html, parse_mode=ParseMode.HTML, reply_markup=markup
        )


# --- the form ----------------------------------------------------------------------------------------


class Form:
    """A conversation made of fields. Subclasses describe the fields and the hooks."""

    name: str = ""
    fields: Sequence[Field] = ()
    entry_commands: Sequence[str] = ()
    deep_link: str | None = None  # t.me/<bot>?start=<deep_link> opens this form directly
    intro: str | None = None  # catalogue key said when the form starts
    show_progress: bool = True
    has_summary: bool = False

    def __init__(self) -> None:
        self.by_key = {f.key: f for f in self.fields}

    # hooks ------------------------------------------------------------------------------------------
    async def on_start(self, turn: Turn) -> Outcome | None:
        """Called when the form starts, before the first question (e.g. refuse a logged-in user)."""
        return None

    async def on_value(self, turn: Turn, field: Field, value: Any) -> Outcome | None:
        """Called after a valid answer is stored (or, for `consume` fields, instead of storing it)."""
        return None

    async def before_next(self, turn: Turn) -> Outcome | None:
        """Called before choosing the next question: a checkpoint such as the identity check."""
        return None

    async def complete(self, turn: Turn) -> Outcome:
        """All fields are answered and the form has no summary: act (e.g. check the login)."""
        return Finish()

    def summary(self, turn: Turn) -> str:
        """The summary shown before saving (forms with `has_summary`), as catalogue-built HTML."""
        return ""

    async def on_summary(self, turn: Turn, action: str) -> Outcome:
        """A summary button (or its typed label) was chosen."""
        return Finish()

    def summary_markup(self, turn: Turn) -> InlineKeyboardMarkup | None:
        return None

    def summary_action(self, text: str) -> str | None:
        """A typed reply at the summary, mapped to a summary action (e.g. "salva" → "save")."""
        return None

    # the rules of the engine -------------------------------------------------------------------------
    def applicable(self, draft: Draft) -> list[Field]:
        # Most fields always apply: no call for those (this runs several times per reply).
        return [f for f in self.fields if f.applies is _always or f.applies(draft)]

    def is_answered(self, f: Field, draft: Draft) -> bool:
        if f.consume:
            return False
        if f.secret:
            return f.key in draft.get("_mac", {}) or any(
                c.confirms == f.key and c.hash_as in draft for c in self.fields
            )
        return (f.hash_as or f.key) in draft

    def next_field(self, draft: Draft) -> Field | None:
        for f in self.applicable(draft):
            if not self.is_answered(f, draft):
                return f
        return None

    def forget(self, draft: Draft, key: str) -> None:
        """Forget an answer and everything that depends on it."""
        f = self.by_key[key]
        draft.pop(f.key, None)
        draft.get("_mac", {}).pop(f.key, None)
        if f.hash_as:
            draft.pop(f.hash_as, None)
        for other in self.fields:
            if other.confirms == f.key:  # changing a secret drops its confirmation too
                self.forget(draft, other.key)
        if f.confirms:
            draft.get("_mac", {}).pop(f.confirms, None)
        for extra in f.clears:
            if extra in self.by_key:
                self.forget(draft, extra)
            else:
                draft.pop(extra, None)
        history = draft.get("_history", [])
        if key in history:
            history.remove(key)

    def progress(self, draft: Draft, f: Field) -> tuple[int, int]:
        steps = self.applicable(draft)
        return steps.index(f) + 1, len(steps)

    # building the PTB handler -------------------------------------------------------------------------
    def handler(self, persistent: bool = False, others: Collection[str] = ()) -> ConversationHandler:
        """This form's ConversationHandler. `others` names the forms a customer must not be in at the same
        time (see ``FormEngine.start``)."""
        engine = FormEngine(self, others)
        private = filters.ChatType.PRIVATE
        in_state: list[BaseHandler] = [
            CallbackQueryHandler(engine.on_button, pattern=f"^{self.name}\\|"),
            # Only new messages answer a question: editing an old message must not change an answer.
            MessageHandler(
                private & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, engine.on_text
            ),
            MessageHandler(private & filters.UpdateType.MESSAGE & filters.CONTACT, engine.on_contact),
        ]
        with warnings.catch_warnings():
            # PTB warns that callback queries are not tracked per message: intended, the serial in the
            # callback data already tells a button of the current question from an old one.
            warnings.filterwarnings("ignore", message=".*per_message.*", category=PTBUserWarning)
            return self._conversation(engine, in_state, private, persistent)

    def _entry_points(self, engine: FormEngine, private: filters.BaseFilter) -> list[BaseHandler]:
        points: list[BaseHandler] = [CommandHandler(list(self.entry_commands), engine.start, filters=private)]
        if self.deep_link:
            # Only the flow is chosen by the payload: nothing in it is trusted as identity.
            link = filters.Regex(f"^/start {self.deep_link}$")
            points.append(CommandHandler("start", engine.start, filters=private & link))
        return points

    def _conversation(
        self, engine: FormEngine, in_state: list[BaseHandler], private: filters.BaseFilter, persistent: bool
    ) -> ConversationHandler:
        states: dict[object, list[BaseHandler]] = {f.key: in_state for f in self.fields}
        states[SUMMARY] = in_state
        return ConversationHandler(
            entry_points=self._entry_points(engine, private),
            states=states,
            fallbacks=[
                CommandHandler(["annulla", "cancel"], engine.cancel),
                CommandHandler(["aiuto", "help"], engine.help),
                CommandHandler(["indietro", "back"], engine.back),
                MessageHandler(filters.COMMAND, engine.other_command),
                CallbackQueryHandler(engine.stale_button),
                MessageHandler(private & ~filters.UpdateType.EDITED, engine.not_text),
            ],
            allow_reentry=True,
            name=self.name,
            persistent=persistent,
        )


class FormEngine:
    """The generic step behind every form's handlers."""

    def __init__(self, form: Form, others: Collection[str] = ()) -> None:
        self.form = form
        # Each form is its own ConversationHandler, so this form's entry command is not seen by another
        # form in progress when that one comes later in the handler order: `start` looks at the other
        # forms' drafts instead, so a customer is in one form at a time.
        self.others = frozenset(others) - {form.name}

    # entry and fallbacks ----------------------------------------------------------------------------
    async def start(self, update: Update, context: BotContext) -> object:
        turn = Turn(update, context, self.form, {"_history": [], "_n": 0})
        if self._other_form_in_progress(turn):
            await turn.send(Reply("busy_other_flow"))
            return END
        previous = context.user_data.get(self.form.name)
        if previous:
            turn.draft["_rk"] = previous.get("_rk", False)
        outcome = await self.form.on_start(turn)
        if outcome is None:
            outcome = Ask([Reply(self.form.intro)] if self.form.intro else [])
        return await self._conclude(turn, outcome)

    async def cancel(self, update: Update, context: BotContext) -> object:
        turn = Turn(update, context, self.form, context.user_data.get(self.form.name) or {})
        return await self._conclude(turn, Finish([Reply("cancelled")]))

    async def help(self, update: Update, context: BotContext) -> object:
        return await self._step(update, context, self._help)

    async def back(self, update: Update, context: BotContext) -> object:
        return await self._step(update, context, self._back)

    async def other_command(self, update: Update, context: BotContext) -> object:
        return await self._step(update, context, self._other_command)

    async def not_text(self, update: Update, context: BotContext) -> object:
        async def handle(turn: Turn) -> Outcome:
            return self._reask(turn, Reply("text_only"))

        return await self._step(update, context, handle)

    async def stale_button(self, update: Update, context: BotContext) -> object:
        await _answer_quietly(update.callback_query, texts.t(context.language_of(update), "stale_button"))
        return None  # stay where we are

    # answers ------------------------------------------------------------------------------------------
    async def on_text(self, update: Update, context: BotContext) -> object:
        text = update.effective_message.text or ""
        return await self._step(
            update, context, lambda turn: self._answer(turn, text, update.effective_message)
        )

    async def on_contact(self, update: Update, context: BotContext) -> object:
        contact = update.effective_message.contact

        async def handle(turn: Turn) -> Outcome:
            f = self._current(turn)
            if f is None or not f.share_contact:
                return self._reask(turn, Reply("text_only"))
            if contact.user_id != turn.user_id:
                return self._reask(turn, Reply("e_phone.not_own"))
            return await self._answer(turn, contact.phone_number, None)

        return await self._step(update, context, handle)

    async def on_button(self, update: Update, context: BotContext) -> object:
        query = update.callback_query
        parts = (query.data or "").split("|", 2)
        serial, value = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        draft = context.user_data.get(self.form.name) or {}
        if not serial.isdigit() or int(serial) != draft.get("_n"):
            # A button of a question already answered, or forged data: answered, not acted upon.
            return await self.stale_button(update, context)
        await _answer_quietly(query)
        await _drop_keyboard(query)

        async def handle(turn: Turn) -> Outcome:
            if value == "restart":
                return await self._restart(turn)
            if value == "cancel":
                return Finish([Reply("cancelled")])
            if value == "continue":
                return Ask(field=turn.draft.get("_at"))
            if turn.draft.get("_at") == SUMMARY:
                return await self.form.on_summary(turn, value)
            return await self._answer(turn, value, None, pressed=True)

        return await self._step(update, context, handle)

    # the step -----------------------------------------------------------------------------------------
    async def _step(
        self, update: Update, context: BotContext, handle: Callable[[Turn], Awaitable[Outcome]]
    ) -> object:
        stored = context.user_data.get(self.form.name)
        draft = copy_draft(stored) if stored else None
        turn = Turn(update, context, self.form, draft or {})
        if draft is None or self._expired(turn):
            minutes = int(context.services.settings.conversation_timeout.total_seconds() // 60)
            return await self._conclude(turn, Finish([Reply("expired", {"minutes": minutes})]))
        try:
            outcome = await handle(turn)
        except HashBudgetExceeded as exc:
            # Too much bcrypt work by this user: nothing of this step is kept, the same reply works later.
            await turn.send(Reply("hash_wait", {"seconds": exc.retry_after_seconds}))
            return None
        return await self._conclude(turn, outcome)

    def _expired(self, turn: Turn, draft: Draft | None = None) -> bool:
        touched = (turn.draft if draft is None else draft).get("_touched")
        if not touched:
            return False
        idle = turn.now() - datetime.fromisoformat(touched)
        return idle > turn.services.settings.conversation_timeout

    def _other_form_in_progress(self, turn: Turn) -> bool:
        """Another form has a draft that has not expired (an expired one ends at its next update)."""
        user_data = turn.context.user_data
        return any(user_data.get(name) and not self._expired(turn, user_data[name]) for name in self.others)

    def _current(self, turn: Turn) -> Field | None:
        return self.form.by_key.get(turn.draft.get("_at", ""))

    async def _answer(self, turn: Turn, text: str, message: Message | None, pressed: bool = False) -> Outcome:
        form, draft = self.form, turn.draft
        if draft.get("_at") == SUMMARY:
            action = form.summary_action(text)
            if action is None:
                return Ask([Reply("press_save")], field=SUMMARY)
            return await form.on_summary(turn, action)
        f = self._current(turn)
        if f is None:
            return Ask()
        # The message itself, if it may hold a secret, is deleted by conversations/secret_guard.py.
        try:
            value = self._parse(f, text, draft, pressed)
        except rules.Invalid as bad:
            return self._invalid(turn, f, bad)
        if f.confirms:
            first = draft.get("_mac", {}).get(f.confirms)
            if not turn.services.mac.is_current(first):
                # Digested by an earlier process (a restart): it cannot be compared, so ask the pair again.
                form.forget(draft, f.confirms)
                return Ask([Reply("secret_expired")], field=f.confirms)
            if not turn.services.mac.matches(value, first):
                form.forget(draft, f.confirms)
                return Ask([Reply(f.mismatch or "secret_expired")], field=f.confirms)
            turn.services.hash_budget.take(turn.user_id)
            draft[f.hash_as or f.key] = await turn.services.hasher.hash(value)
            draft["_mac"].pop(f.confirms, None)
        elif f.secret and not f.consume:
            draft.setdefault("_mac", {})[f.key] = turn.services.mac.digest(value)
        elif not f.consume:
            draft[f.key] = value
        draft.setdefault("_errors", {}).pop(f.key, None)
        # A consumed answer is never stored, so the field stays unanswered: it is no step to go back to.
        if not f.consume and f.key not in draft.setdefault("_history", []):
            draft["_history"].append(f.key)
        outcome = await form.on_value(turn, f, value)
        return outcome or Ask()

    def _parse(self, f: Field, text: str, draft: Draft, pressed: bool) -> Any:
        if f.choices:
            for choice in f.choices:
                if pressed and text == choice.value:
                    return choice.value
            if pressed:
                raise rules.Invalid("choice.unknown")
        if f.optional and rules.replies.is_skip(text):
            return None
        return f.parse(text, draft)

    def _invalid(self, turn: Turn, f: Field, bad: rules.Invalid) -> Outcome:
        errors = turn.draft.setdefault("_errors", {})
        errors[f.key] = errors.get(f.key, 0) + 1
        notes = [Reply(f"e_{bad.reason}", dict(bad.params))]
        if errors[f.key] >= turn.services.settings.max_invalid_replies:
            errors[f.key] = 0
            notes.append(Reply("too_many_invalid", markup=self._rescue_markup(turn)))
        return Ask(notes, field=f.key)

    def _rescue_markup(self, turn: Turn) -> InlineKeyboardMarkup:
        n = turn.draft.get("_n", 0) + 1  # the serial the re-asked question will carry
        row = [
            InlineKeyboardButton(turn.text("btn_continue"), callback_data=f"{self.form.name}|{n}|continue"),
            InlineKeyboardButton(turn.text("btn_restart"), callback_data=f"{self.form.name}|{n}|restart"),
            InlineKeyboardButton(turn.text("btn_cancel"), callback_data=f"{self.form.name}|{n}|cancel"),
        ]
        return InlineKeyboardMarkup([row])

    def _reask(self, turn: Turn, note: Reply) -> Outcome:
        return Ask([note], field=turn.draft.get("_at"))

    async def _help(self, turn: Turn) -> Outcome:
        f = self._current(turn)
        key = f.help_key(turn.draft) if f else "h_summary"
        return Ask([Reply("help_prefix", {"help": texts.Raw(turn.text(key))})], field=turn.draft.get("_at"))

    async def _back(self, turn: Turn) -> Outcome:
        history: list[str] = turn.draft.get("_history", [])
        while history:
            key = history[-1]
            self.form.forget(turn.draft, key)
            f = self.form.by_key[key]
            if f.applies(turn.draft) and not f.confirms:
                return Ask(field=key)
        return Ask([Reply("already_first")], field=turn.draft.get("_at"))

    async def _restart(self, turn: Turn) -> Outcome:
        keep = {k: turn.draft[k] for k in ("_n", "_touched", "_rk") if k in turn.draft}
        turn.draft.clear()
        turn.draft.update(keep, _history=[])
        return Ask()

    async def _other_command(self, turn: Turn) -> Outcome:
        return self._reask(turn, Reply("busy_other_flow"))

    # finishing a step ---------------------------------------------------------------------------------
    async def _conclude(self, turn: Turn, outcome: Outcome) -> object:
        form, draft, user_data = self.form, turn.draft, turn.context.user_data
        if isinstance(outcome, Ask) and outcome.field is None:
            outcome = await self._next(turn, outcome.notes)
        if isinstance(outcome, Finish):
            for note in outcome.notes:
                await turn.send(note)
            user_data.pop(form.name, None)
            secret_guard.closed(user_data, form.name, turn.now(), ended=True)
            return END
        for note in outcome.notes:
            await turn.send(note)
        key = outcome.field or SUMMARY
        await self._ask(turn, key)
        f = form.by_key.get(key)
        if f is not None and (f.secret or f.confirms):
            secret_guard.asked(user_data, form.name, turn.now())
        else:
            secret_guard.closed(user_data, form.name, turn.now(), ended=False)
        draft["_touched"] = turn.now().isoformat()
        user_data[form.name] = draft
        return draft["_at"]

    async def _next(self, turn: Turn, notes: list[Reply]) -> Outcome:
        checkpoint = await self.form.before_next(turn)
        if checkpoint is not None:
            checkpoint.notes[:0] = notes
            if isinstance(checkpoint, Finish) or checkpoint.field is not None:
                return checkpoint
            notes = checkpoint.notes
        f = self.form.next_field(turn.draft)
        if f is not None:
            return Ask(notes, field=f.key)
        if self.form.has_summary:
            return Ask(notes, field=SUMMARY)
        done = await self.form.complete(turn)
        done.notes[:0] = notes
        return done

    async def _ask(self, turn: Turn, key: str) -> None:
        draft = turn.draft
        draft["_n"] = draft.get("_n", 0) + 1
        draft["_at"] = key
        if key == SUMMARY:
            await turn.send_html(self.form.summary(turn), self.form.summary_markup(turn))
            return
        f = self.form.by_key[key]
        text = turn.text(f.question_key(draft))
        if self.form.show_progress:
            step, total = self.form.progress(draft, f)
            text = turn.text("progress", step=step, total=total) + "\n" + text
        await turn.send_html(text, self._markup(turn, f))

    def _markup(self, turn: Turn, f: Field) -> Markup:
        n = turn.draft["_n"]
        if f.choices:
            buttons = [
                InlineKeyboardButton(turn.text(c.label), callback_data=f"{self.form.name}|{n}|{c.value}")
                for c in f.choices
            ]
            return InlineKeyboardMarkup([buttons])
        # Every free-text question gets a hint in the input field; secrets get a generic one.
        hint = f.placeholder or ("ph_repeat" if f.confirms else "ph_secret" if f.secret else "")
        placeholder = turn.text(hint) if hint else None
        if f.share_contact or f.optional:
            rows = []
            if f.share_contact:
                rows.append([KeyboardButton(turn.text("btn_share_phone"), request_contact=True)])
            if f.optional:
                rows.append([turn.text("btn_skip")])
            return ReplyKeyboardMarkup(
                rows, resize_keyboard=True, one_time_keyboard=True, input_field_placeholder=placeholder
            )
        return ForceReply(input_field_placeholder=placeholder) if placeholder else None


async def _answer_quietly(query: CallbackQuery | None, text: str | None = None) -> None:
    if query is None:
        return
    try:
        await query.answer(text)
    except TelegramError as exc:
        log.info("callback answer failed: %s", type(exc).__name__)


async def _drop_keyboard(query: CallbackQuery) -> None:
    """Remove the buttons of an answered question so they cannot be pressed again."""
    try:
        await query.edit_message_reply_markup(None)
    except TelegramError as exc:
        log.info("could not remove a keyboard: %s", type(exc).__name__)
