"""The engine that runs a form spec (conversations/spec.py) on PTB: one generic step asks, validates,
re-asks, moves on.

Each conversation state is a step key (or "summary"), so PTB's persistence can keep it. Every update
works on a copy of the draft (conversations/draft.py) that is stored back only when the step succeeds: if
the database or Telegram fails half-way, the conversation is exactly where it was. The one place secrets
are handled is `FormEngine._keep`: a secret answer is kept as this process's keyed digest
(`EphemeralMac`), and once its repetition confirms it also as its bcrypt hash, never in clear.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from telegram import (
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import (
    ConversationHandler,
)

from conversations import secret_guard
from conversations.context import BotContext
from conversations.draft import WORDS, Draft
from conversations.form import Form
from conversations.outcomes import Ask, Finish, Markup, Outcome, Reply
from conversations.spec import SUMMARY, Field, Repeat, Secret
from conversations.turn import Turn, read_draft
from unogas_bot import rules
from unogas_bot.i18n import texts
from unogas_bot.security.hash_budget import HashBudgetExceeded

log = logging.getLogger(__name__)

END = ConversationHandler.END


class FormEngine:
    """The generic step behind every form's handlers."""

    def __init__(self, form: Form, others: Collection[str] = ()) -> None:
        self.form = form
        self.spec = form.spec
        # Each form is its own ConversationHandler, so this form's entry command is not seen by another
        # form in progress when that one comes later in the handler order: `start` looks at the other
        # forms' drafts instead, so a customer is in one form at a time.
        self.others = frozenset(others) - {form.name}

    # entry and fallbacks ----------------------------------------------------------------------------
    async def start(self, update: Update, context: BotContext) -> object:
        turn = Turn(update, context, self.form, Draft())
        if self._other_form_in_progress(turn):
            await turn.send(Reply("busy_other_flow"))
            return END
        previous = read_draft(context.user_data.get(self.form.name))
        if previous is not None:
            turn.draft.reply_keyboard = previous.reply_keyboard
        outcome = await self.form.on_start(turn)
        if outcome is None:
            outcome = Ask([Reply(self.spec.intro)] if self.spec.intro else [])
        return await self._conclude(turn, outcome)

    async def cancel(self, update: Update, context: BotContext) -> object:
        draft = read_draft(context.user_data.get(self.form.name)) or Draft()
        return await self._conclude(Turn(update, context, self.form, draft), Finish([Reply("cancelled")]))

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

    async def repeat(self, update: Update, context: BotContext) -> object:
        """Ask the open question again (after /lingua: in the language just chosen)."""
        return await self._step(update, context, lambda turn: _again(turn))

    async def stale_button(self, update: Update, context: BotContext) -> object:
        await _answer_quietly(update.callback_query, texts.t(context.language_of(update), "stale_button"))
        return None  # stay where we are

    # answers ------------------------------------------------------------------------------------------
    async def on_text(self, update: Update, context: BotContext) -> object:
        text = update.effective_message.text or ""
        return await self._step(update, context, lambda turn: self._answer(turn, text))

    async def on_contact(self, update: Update, context: BotContext) -> object:
        contact = update.effective_message.contact

        async def handle(turn: Turn) -> Outcome:
            step = self._current(turn)
            if step is None or not step.share_contact:
                return self._reask(turn, Reply("text_only"))
            if contact.user_id != turn.user_id:
                return self._reask(turn, Reply("e_phone.not_own"))
            return await self._answer(turn, contact.phone_number)

        return await self._step(update, context, handle)

    async def on_button(self, update: Update, context: BotContext) -> object:
        query = update.callback_query
        parts = (query.data or "").split("|", 2)
        serial, value = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        stored = context.user_data.get(self.form.name)
        current = stored.get("_n") if isinstance(stored, Mapping) else None
        if not serial.isdigit() or int(serial) != current:
            # A button of a question already answered, or forged data: answered, not acted upon.
            return await self.stale_button(update, context)
        await _answer_quietly(query)
        await _drop_keyboard(query)

        async def handle(turn: Turn) -> Outcome:
            if value == "restart":
                turn.draft.restart()
                return Ask()
            if value == "cancel":
                return Finish([Reply("cancelled")])
            if value == "continue":
                return Ask(field=turn.draft.at)
            if turn.draft.at == SUMMARY:
                return await self.form.on_summary(turn, value)
            return await self._answer(turn, value, pressed=True)

        return await self._step(update, context, handle)

    # the step -----------------------------------------------------------------------------------------
    async def _step(
        self, update: Update, context: BotContext, handle: Callable[[Turn], Awaitable[Outcome]]
    ) -> object:
        draft = read_draft(context.user_data.get(self.form.name))
        turn = Turn(update, context, self.form, draft or Draft())
        if draft is None or draft.idle_longer_than(
            turn.now(), context.services.settings.limits.conversation_timeout
        ):
            minutes = int(context.services.settings.limits.conversation_timeout.total_seconds() // 60)
            expired = Reply("expired", {"minutes": minutes, "command": self._entry_command(turn)})
            return await self._conclude(turn, Finish([expired]))
        try:
            outcome = await handle(turn)
        except HashBudgetExceeded as exc:
            # Too much bcrypt work by this user: nothing of this step is kept, the same reply works later.
            await turn.send(Reply("hash_wait", {"seconds": exc.retry_after_seconds}))
            return None
        return await self._conclude(turn, outcome)

    def _other_form_in_progress(self, turn: Turn) -> bool:
        """Another form has a readable draft that has not expired (an expired or unreadable one ends at
        its next update)."""
        timeout = turn.services.settings.limits.conversation_timeout
        for name in self.others:
            other = read_draft(turn.context.user_data.get(name))
            if other is not None and not other.idle_longer_than(turn.now(), timeout):
                return True
        return False

    def _current(self, turn: Turn) -> Field | None:
        return self.spec.by_key.get(turn.draft.at or "")

    async def _answer(self, turn: Turn, text: str, pressed: bool = False) -> Outcome:
        draft = turn.draft
        if draft.at == SUMMARY:
            action = self.form.summary_action(text)
            if action is None:
                return Ask([Reply("press_save")], field=SUMMARY)
            return await self.form.on_summary(turn, action)
        step = self._current(turn)
        if step is None:
            return Ask()
        # The message itself, if it may hold a secret, is deleted by conversations/secret_guard.py.
        try:
            value = step.parse(text, draft.answers, pressed)
        except rules.Invalid as bad:
            return self._invalid(turn, step, bad)
        if step.secret:  # a secret the customer typed: the same text elsewhere, soon after, is a slip
            secret_guard.remember(turn.context.user_data, turn.services.mac, text, turn.now())
        refused = await self._keep(turn, step, value)
        if refused is not None:
            return refused
        # A consumed answer is never kept, so the step stays unanswered: it is no step to go back to.
        # A notice is no question to go back to either: /indietro from the first question stays there.
        remembered = step.counted and not (isinstance(step, Secret) and step.consumed)
        draft.answered_step(step.key, remembered=remembered)
        outcome = await self.form.on_value(turn, step, value)
        return outcome or Ask()

    async def _keep(self, turn: Turn, step: Field, value: Any) -> Outcome | None:
        """Keep a valid answer in the draft as its kind of step says: the one place secrets differ."""
        draft, services = turn.draft, turn.services
        match step:
            case Repeat(of=pair):
                first = draft.digests.get(pair.key)
                if not services.mac.is_current(first):
                    # Digested by an earlier process (a restart): not comparable, so the pair is asked again.
                    self.spec.forget(draft, pair.key)
                    return Ask([Reply("secret_expired")], field=pair.key)
                if not services.mac.matches(value, first):
                    self.spec.forget(draft, pair.key)
                    return Ask([Reply(pair.mismatch)], field=pair.key)
                services.hash_budget.take(turn.user_id)
                draft.answers[pair.store_as] = await services.hasher.hash(value)
                # The digest stays while the draft lives: the secret guard refuses the same text typed
                # where no secret is asked (as the security question, at the summary), however late.
            case Secret(consumed=True):
                pass  # the form's on_value has it; the draft never does
            case Secret():
                draft.digests[step.key] = services.mac.digest(value)
                # Its words too: the same secret typed another way where no secret is asked (as the
                # security question, capitalised by a phone) is recognised.
                words = secret_guard.words(value)
                if words and words != value:
                    draft.digests[step.key + WORDS] = services.mac.digest(words)
            case _:
                draft.answers[step.key] = value
        return None

    def _invalid(self, turn: Turn, step: Field, bad: rules.Invalid) -> Outcome:
        notes = [Reply(f"e_{bad.reason}", dict(bad.params))]
        if turn.draft.count_error(step.key, turn.services.settings.limits.max_invalid_replies):
            notes.append(Reply("too_many_invalid", markup=self._rescue_markup(turn)))
        return Ask(notes, field=step.key)

    def _rescue_markup(self, turn: Turn) -> InlineKeyboardMarkup:
        serial = turn.draft.serial + 1  # the serial the re-asked question will carry
        row = [
            InlineKeyboardButton(
                turn.text(f"btn_{action}"), callback_data=self.form.callback_data(turn, action, serial)
            )
            for action in ("continue", "restart", "cancel")
        ]
        return InlineKeyboardMarkup([row])

    def _entry_command(self, turn: Turn) -> str:
        """The command that starts this form again, in the customer's language: the expiry notice says
        how to start again (entry commands are listed Italian first, then English)."""
        commands = self.spec.entry_commands
        return "/" + commands[1 if turn.lang == "en" and len(commands) > 1 else 0]

    def _reask(self, turn: Turn, note: Reply) -> Outcome:
        return Ask([note], field=turn.draft.at)

    async def _help(self, turn: Turn) -> Outcome:
        step = self._current(turn)
        key = self.spec.help_key(step, turn.answers) if step else "h_summary"
        return Ask([Reply("help_prefix", {"help": texts.Raw(turn.text(key))})], field=turn.draft.at)

    async def _back(self, turn: Turn) -> Outcome:
        key = self.spec.back(turn.draft)
        return Ask(field=key) if key else Ask([Reply("already_first")], field=turn.draft.at)

    async def _other_command(self, turn: Turn) -> Outcome:
        return self._reask(turn, Reply("busy_other_flow"))

    # finishing a step ---------------------------------------------------------------------------------
    async def _conclude(self, turn: Turn, outcome: Outcome) -> object:
        user_data, name = turn.context.user_data, self.form.name
        if isinstance(outcome, Ask) and outcome.field is None:
            outcome = await self._next(turn, outcome.notes)
        for note in outcome.notes:
            await turn.send(note)
        if isinstance(outcome, Finish):
            user_data.pop(name, None)
            secret_guard.closed(user_data, name, turn.now(), ended=True)
            return END
        key = outcome.field or SUMMARY
        await self._ask(turn, key)
        step = self.spec.by_key.get(key)
        if step is not None and step.secret:
            secret_guard.asked(user_data, name, turn.now())
        else:
            secret_guard.closed(user_data, name, turn.now(), ended=False)
        turn.draft.touched = turn.now()
        user_data[name] = turn.draft.to_stored()
        return key

    async def _next(self, turn: Turn, notes: list[Reply]) -> Outcome:
        checkpoint = self.spec.due_checkpoint(turn.draft)
        if checkpoint is not None:
            checked = await self.form.on_checkpoint(turn, checkpoint)
            checked.notes[:0] = notes
            if isinstance(checked, Finish) or checked.field is not None:
                return checked
            notes = checked.notes
        step = self.spec.next_step(turn.draft)
        if step is not None:
            return Ask(notes, field=step.key)
        if self.spec.has_summary:
            return Ask(notes, field=SUMMARY)
        done = await self.form.complete(turn)
        done.notes[:0] = notes
        return done

    async def _ask(self, turn: Turn, key: str) -> None:
        draft = turn.draft
        draft.serial += 1
        draft.at = key
        if key == SUMMARY:
            await turn.send_html(self.form.summary(turn), self.form.summary_markup(turn))
            return
        step = self.spec.by_key[key]
        text = turn.text(self.spec.question_key(step, draft.answers))
        if self.spec.show_progress and step.counted:
            number, total = self.spec.progress(draft, step)
            text = turn.text("progress", step=number, total=total) + "\n" + text
        await turn.send_html(text, self._markup(turn, step))

    def _markup(self, turn: Turn, step: Field) -> Markup:
        if step.choices:
            buttons = [
                InlineKeyboardButton(
                    turn.text(f"btn_{value}"), callback_data=self.form.callback_data(turn, value)
                )
                for value in step.choices
            ]
            return InlineKeyboardMarkup([buttons])
        # Every free-text question gets a hint in the input field; secrets get a generic one.
        placeholder = turn.text(step.hint) if step.hint else None
        if step.share_contact or step.optional:
            rows = []
            if step.share_contact:
                rows.append([KeyboardButton(turn.text("btn_share_phone"), request_contact=True)])
            if step.optional:
                rows.append([turn.text("btn_skip")])
            return ReplyKeyboardMarkup(
                rows, resize_keyboard=True, one_time_keyboard=True, input_field_placeholder=placeholder
            )
        return ForceReply(input_field_placeholder=placeholder) if placeholder else None


async def _again(turn: Turn) -> Outcome:
    return Ask(field=turn.draft.at)


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
