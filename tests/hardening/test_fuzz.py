"""Fuzzed conversations: many interleaved users typing anything at every step, through the real bot.

Hypothesis builds scenarios of several users (Italian and English), each with a sequence of actions:
correct answers for the current question (so flows progress and profiles get saved), arbitrary Unicode,
4,096-character texts, valid and invalid commands, media, contacts, edits, stale and forged buttons,
language switches and idle time. One offline bot serves the whole run; every example uses fresh users.

After every action: no error reached the error handlers and nothing was logged at ERROR; every reply is
non-empty, fits Telegram's limit and is made of catalogue texts in the user's language. After every
example: the conversation states PTB keeps agree with the drafts, every button press was answered, and
the accounts are exactly the saves the users were told about. At the end: every account verifies
against the secrets its user confirmed, and no secret is in the database or the logs.

A conversation is one user's sequence of actions. CI runs at least `MIN_CONVERSATIONS`;
`UNOGAS_FUZZ_EXAMPLES=N` runs N examples (6 or 7 conversations each) with a new random seed each run.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from storage.demo import DEMO_CUSTOMERS
from tests.conftest import BACKENDS, FakeClock, make_test_database
from tests.kit.botkit import SAVED_EN, SEED_SENTENCE, Bot, running_bot
from tests.kit.hardkit import (
    CatalogueWitness,
    ErrorSpy,
    Expected,
    Persona,
    check_accounts,
    check_replies,
    drafts_of,
    dump_database,
    find_leaks,
    make_persona,
    make_records,
    open_conversations,
)
from tests.kit.stores import stores
from unogas_bot import rules
from unogas_bot.domain import CustomerRecord
from unogas_bot.i18n import texts
from unogas_bot.offline import Sent, SimUser

MIN_CONVERSATIONS = 2_000
CI_EXAMPLES = 334  # at least 6 users each: at least MIN_CONVERSATIONS, whatever Hypothesis draws
POSTGRES_EXAMPLES = 12  # the same invariants on PostgreSQL, fewer examples (the backend is not the subject)
EXAMPLES = int(os.environ.get("UNOGAS_FUZZ_EXAMPLES") or 0)

REAL_T = texts.t  # the catalogue before the witness wraps it
REC_DONE = {REAL_T(lang, "rec_done") for lang in texts.LANGUAGES}
FORMS = ("registration", "login", "recovery")
SECRET_FIELDS = {
    ("registration", "password"),
    ("registration", "password_repeat"),
    ("registration", "answer"),
    ("registration", "answer_repeat"),
    ("login", "password"),
    ("recovery", "answer"),
    ("recovery", "password"),
    ("recovery", "password_repeat"),
}
COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{1,64})?(?=\s|$)")  # what clients mark as one

# --- the people ------------------------------------------------------------------------------------------

POOL = 2_500  # registry records made for the run; most conversations take a fresh one


# --- what users do ---------------------------------------------------------------------------------------

SPECIAL_TEXTS = (
    " ",
    "   \n\t ",
    "\u200b",
    "\u200d\u200c\u2060\ufeff",
    "\u202eoiram\u202c",
    "\x00",
    "a\x00b",
    "\x07\x1b[31m",
    "e\u0301\u0301\u0301\u0301",
    "Z\u0351\u0352\u0353\u0354\u0355",
    "👨‍👩‍👧‍👦🇮🇹",
    "مرحبا بالعالم",
    "שלום עולם",
    "'; DROP TABLE accounts; --",
    "Robert'); DROP TABLE customers; --",
    "<b>",
    "</i>",
    "&amp;",
    "<a href='x'>y</a>",
    "*_[`",
    "x" * 4096,
    "😀" * 4096,
    "/",
    "@",
    "salta",
    "salva",
    "annulla",
    "persona",
    "azienda",
    "1",
    "UG-100234",
    "RSSMRA75C12H501H",
    "mario.rossi@example.it",
    "mаrio.rossi@example.it",  # Cyrillic "а"
)
COMMANDS = (
    "/registrati", "/register", "/accedi", "/login", "/recupera_password", "/recover", "/annulla",
    "/cancel", "/aiuto", "/help", "/indietro", "/back", "/lingua", "/language", "/profilo", "/profile",
    "/esci", "/logout", "/start", "/start registrati", "/start boh", "/start " + "x" * 64, "/boh",
    "/registrati@UnogasBot", "/registrati@AltroBot", "/aiuto con parole in più", "/START", "/Registrati",
)  # fmt: skip
FORGED = (
    "registration|999|save",
    "registration|{n}|save",
    "registration|{n}|cancel",
    "registration|{n}|restart",
    "registration|{n}|continue",
    "registration|{n}|edit:_at",
    "registration|{n}|edit:verified",
    "registration|{n}|edit:password_repeat",
    "registration|{n}|business",
    "registration|{n}|UG-100234",
    "registration|-1|person",
    "registration||",
    "registration|{n}",
    "login|{n}|x",
    "recovery|{n}|cancel",
    "lang|xx",
    "lang|",
    "lang|en",
    "lang|it",
    "|||",
    "x" * 300,
)
MESSAGE_CHOICES = ("last", "first", "deleted", "missing")

texts_st = st.one_of(
    st.text(min_size=1, max_size=40),
    st.text(st.characters(categories=["Cc", "Cf", "Mn", "Zs", "So", "Lo", "Po"]), min_size=1, max_size=20),
    st.builds(lambda s, n: (s * n)[:4096], st.text(min_size=1, max_size=4), st.sampled_from((64, 300, 4096))),
)
WEIGHTS = {
    "good": 24, "run": 4, "text": 14, "command": 9, "media": 3, "contact": 2, "edit": 2, "press": 5,
    "stale": 2, "forged": 5, "language": 1, "wait": 1, "repeat": 2,
}  # fmt: skip
KINDS = [kind for kind, weight in WEIGHTS.items() for _ in range(weight)]
MEDIA = ("sticker", "photo", "document", "location", "photo_caption")
CONTACTS = ("own", "other", "anonymous")


def decode(gene: int, texts_pool: list[str]) -> tuple[str, Any]:
    """An action from one integer: its kind, then what it needs, from the rest of the bits.

    Hypothesis draws one integer per action (cheap to generate, and shrinking it makes the action
    simpler); typed texts come from the example's own drawn texts and the list of special ones.
    """
    kind, rest = KINDS[gene % len(KINDS)], gene // len(KINDS)
    pool = texts_pool + list(SPECIAL_TEXTS)
    text = pool[rest % len(pool)]
    payload: Any = {
        "good": rest,
        "run": 4 + rest % 13,
        "text": text,
        "command": COMMANDS[rest % len(COMMANDS)],
        "media": MEDIA[rest % len(MEDIA)],
        "contact": CONTACTS[rest % len(CONTACTS)],
        "edit": (rest >> 8, text),
        "press": rest,
        "stale": rest,
        "forged": ((FORGED + tuple(texts_pool))[rest % (len(FORGED) + len(texts_pool))], rest >> 8),
        "language": texts.LANGUAGES[rest % 2],
        "wait": (1, 16)[rest % 2],
        "repeat": None,
    }[kind]
    return kind, payload


@dataclass(frozen=True)
class UserPlan:
    lang: str
    persona: str  # "fresh": an unregistered customer; "demo": a demo customer; "reuse": an earlier one
    pick: int
    genes: list[int]  # one per action (see `decode`)


@dataclass(frozen=True)
class Scenario:
    texts: list[str]
    plans: list[UserPlan]
    order: int  # seeds the interleaving of the users' actions


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """6 or 7 users, each with 1 to 4 actions, some texts to type, and the order in which they act."""
    pool = draw(st.lists(texts_st, max_size=3))
    plans = [
        UserPlan(
            draw(st.sampled_from(texts.LANGUAGES)),
            draw(st.sampled_from(("fresh", "fresh", "fresh", "fresh", "demo", "reuse"))),
            draw(st.integers(0, 1 << 16)),
            draw(st.lists(st.integers(0, (1 << 32) - 1), min_size=1, max_size=4)),
        )
        for _ in range(draw(st.integers(6, 7)))
    ]
    return Scenario(pool, plans, draw(st.integers(0, 1 << 16)))


# --- the world: one bot for the whole run ----------------------------------------------------------------


class ErrorLog(logging.Handler):
    """Keeps every record at ERROR or above, and the text of every record (for the leak scan)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.errors: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        if record.levelno >= logging.ERROR:
            self.errors.append(record)


@dataclass
class Run:
    """One user's conversation as the test follows it."""

    user: SimUser
    lang: str
    persona: Persona
    pick: int
    target: str | None = None  # the account this user logs into or recovers
    last_text: str | None = None
    confirmed: dict[str, str] = field(default_factory=dict)  # "password"/"answer" the bot hashed


@dataclass
class Figures:
    examples: int = 0
    conversations: int = 0
    actions: int = 0
    updates: int = 0
    saves: int = 0
    recoveries: int = 0


class World:
    """One bot for the whole run, the users of the example being played, and the test's own bookkeeping:
    the accounts users were told were saved, and every secret they typed."""

    def __init__(
        self, bot: Bot, clock: FakeClock, witness: CatalogueWitness, records: list[CustomerRecord]
    ) -> None:
        self.bot = bot
        self.app = bot.app
        self.clock = clock
        self.witness = witness
        self.spy = ErrorSpy(bot.app)
        self.records = records
        self.fresh = itertools.count()
        self.user_ids = itertools.count(2_000_000)
        self.accounts: dict[str, Expected] = {}
        self.used: list[Persona] = []
        self.secrets: set[str] = set()
        self.in_clear: set[str] = set()  # typed where nothing is secret: not a leak when stored
        self.figures = Figures()
        self.chats: list[int] = []  # the chats of the example being played
        self.log = ErrorLog()

    # --- one example -------------------------------------------------------------------------------------
    async def play(self, scenario: Scenario) -> None:
        # A failing example must not fail the next one (Hypothesis replays examples while shrinking).
        self.witness.forget()
        self.spy.take()
        self.log.errors.clear()
        self.bot.api.clear_faults()
        self.figures.examples += 1
        runs = [self._run(plan) for plan in scenario.plans]
        self.chats = [r.user.chat_id for r in runs]
        queues = [[decode(gene, scenario.texts) for gene in plan.genes] for plan in scenario.plans]
        order = random.Random(scenario.order)
        while any(queues):
            index = order.choice([i for i, queue in enumerate(queues) if queue])
            kind, payload = queues[index].pop(0)
            await self.act(runs[index], kind, payload)
        self.figures.conversations += len(runs)
        self._check_states(runs)
        assert not self.bot.api.unanswered_callback_queries, "a button press was never answered"
        assert await stores(self.bot.services).accounts.count() == len(self.accounts)

    def _run(self, plan: UserPlan) -> Run:
        if plan.persona == "demo" or (plan.persona == "reuse" and not self.used):
            record = DEMO_CUSTOMERS[plan.pick % len(DEMO_CUSTOMERS)]
            persona = make_persona(plan.pick, record, f"demo.{plan.pick}@example.it")
        elif plan.persona == "reuse":
            persona = self.used[plan.pick % len(self.used)]
        else:
            i = next(self.fresh) % len(self.records)
            persona = make_persona(i, self.records[i])
            self.used.append(persona)
        user = self.bot.sim.user(next(self.user_ids), language_code=plan.lang)
        return Run(user, plan.lang, persona, plan.pick)

    # --- actions -----------------------------------------------------------------------------------------
    async def act(self, run: Run, kind: str, payload: Any) -> None:
        if kind == "run":
            for step in range(payload):
                await self.act(run, "good", run.pick + step)
            return
        self.figures.actions += 1
        form, before = self._draft(run)
        events, typed = await getattr(self, f"_{kind}")(run, payload)
        self.figures.updates += 1
        at = before.get("_at") if before else None
        where = f"user {run.user.user_id} ({run.lang}) at {form}:{at}, {kind} {repr(payload)[:80]}"
        assert not self.spy.errors, f"{where}: error {self.spy.take()!r}"
        assert not self.log.errors, f"{where}: logged {self.log.errors[0].getMessage()}"
        check_replies(events, run.lang, self.witness, where)
        if typed is not None:
            await self._book(run, form, before, typed, events, where)

    async def _send(self, run: Run, text: str) -> tuple[list[object], str | None]:
        run.last_text = text
        events = await run.user.send(text)
        return events, None if COMMAND_RE.match(text) else text

    async def _text(self, run: Run, text: str) -> tuple[list[object], str | None]:
        return await self._send(run, text)

    async def _command(self, run: Run, command: str) -> tuple[list[object], str | None]:
        return await self._send(run, command)

    async def _repeat(self, run: Run, _: None) -> tuple[list[object], str | None]:
        return await self._send(run, run.last_text or "ripeto")

    async def _media(self, run: Run, what: str) -> tuple[list[object], str | None]:
        user = run.user
        if what == "sticker":
            return await user.send_sticker(), None
        if what == "photo":
            return await user.send_photo(), None
        if what == "photo_caption":
            return await user.send_photo(caption=run.persona.code), None
        if what == "document":
            return await user.send_document(), None
        return await user.send_location(45.4642, 9.19), None

    async def _contact(self, run: Run, whose: str) -> tuple[list[object], str | None]:
        if whose == "own":
            return await run.user.share_contact("39" + run.persona.phone.replace(" ", "")), None
        owner = None if whose == "anonymous" else run.user.user_id + 1
        return await run.user.share_contact("+393471112233", user_id=owner), None

    async def _edit(self, run: Run, payload: tuple[int, str]) -> tuple[list[object], str | None]:
        index, text = payload
        chat = run.user.chat_id
        mine = [m for m in self.bot.api.live_messages(chat) if not m.from_bot and m.text is not None]
        if not mine:
            return await self._send(run, text)
        message = mine[index % len(mine)]
        return await run.user.edit(message.message_id, text), None if COMMAND_RE.match(text) else text

    async def _press(self, run: Run, index: int) -> tuple[list[object], str | None]:
        keyboard = run.user.last_keyboard() or {}
        if "inline_keyboard" in keyboard:
            message = next(
                m for m in reversed(self.bot.api.live_messages(run.user.chat_id)) if m.inline_markup
            )
            buttons = [b for row in keyboard["inline_keyboard"] for b in row if "callback_data" in b]
            data = buttons[index % len(buttons)]["callback_data"]
            return await self._press_in(run, message.message_id, data)
        buttons = [b for row in keyboard.get("keyboard", []) for b in row]
        if not buttons:
            return await self._send(run, "ok")
        button = buttons[index % len(buttons)]
        if isinstance(button, dict) and button.get("request_contact"):
            return await self._contact(run, "own")
        return await self._send(run, button if isinstance(button, str) else button["text"])

    async def _stale(self, run: Run, index: int) -> tuple[list[object], str | None]:
        """A button of an earlier message of this chat, or (odd `index`) the data of a button another
        user was shown, pressed on one of this chat's messages."""
        chats = [run.user.chat_id] if index % 2 == 0 else [c for c in self.chats if c != run.user.chat_id]
        pressed = [
            (m.message_id, b["callback_data"])
            for chat in chats
            for m in self.bot.api.messages_to(chat)
            for row in (m.reply_markup or {}).get("inline_keyboard", [])
            for b in row
            if "callback_data" in b
        ]
        if not pressed:
            return await self._forged(run, ("registration|1|person", 0))
        message_id, data = pressed[(index >> 1) % len(pressed)]
        own = [m.message_id for m in self.bot.api.messages_to(run.user.chat_id)] or [1]
        return await self._press_in(run, message_id if index % 2 == 0 else own[-1], data)

    async def _forged(self, run: Run, payload: tuple[str, int]) -> tuple[list[object], str | None]:
        template, pick = payload
        which = MESSAGE_CHOICES[pick % len(MESSAGE_CHOICES)]
        _, draft = self._draft(run)
        data = template.replace("{n}", str((draft or {}).get("_n", 1)))
        chat = run.user.chat_id
        ids = [m.message_id for m in self.bot.api.messages_to(chat)]
        message_id = {
            "last": ids[-1] if ids else 1,
            "first": ids[0] if ids else 1,
            "deleted": run.user.last_message_id or 1,  # a user's message, possibly deleted (a secret)
            "missing": 10**6,
        }[which]
        return await self._press_in(run, message_id, data)

    async def _press_in(self, run: Run, message_id: int, data: str) -> tuple[list[object], str | None]:
        if data in ("lang|it", "lang|en"):
            run.lang = data[5:]  # the language buttons work on any message, even an old one
        if not self.bot.api.knows_chat(run.user.chat_id):
            # A button can only be pressed on a message of a chat Telegram knows (the user started the bot).
            self.bot.api.register_chat(run.user.chat_id, "private", first_name=run.user.first_name)
        events = await run.user.press_in(message_id, data)
        parts = data.split("|", 2)
        return events, parts[2] if len(parts) == 3 else None

    async def _language(self, run: Run, lang: str) -> tuple[list[object], str | None]:
        events, _ = await self._send(run, "/lingua")
        self.figures.updates += 1
        check_replies(events, run.lang, self.witness, "language choice")
        sent = [e for e in events if isinstance(e, Sent)]
        if not sent:
            return events, None
        return await self._press_in(run, sent[-1].message_id, f"lang|{lang}")

    async def _wait(self, run: Run, minutes: int) -> tuple[list[object], str | None]:
        self.clock.advance(minutes=minutes)
        return await self._send(run, "eccomi")

    # --- correct answers ---------------------------------------------------------------------------------
    async def _good(self, run: Run, variant: int) -> tuple[list[object], str | None]:
        form, draft = self._draft(run)
        if form is None or draft is None:
            command = ("/registrati",) * 6 + ("/accedi", "/accedi", "/recupera_password", "/start registrati")
            return await self._send(run, command[variant % len(command)])
        at = draft["_at"]
        if form == "registration":
            return await self._good_registration(run, at, variant)
        target = self._target(run, variant)
        if form == "login":
            value = target.email if at == "email" else target.password
            if at == "password" and variant % 6 == 0:
                value = "Password sbagliata 42"
            return await self._send(run, value)
        value = {
            "email": target.email,
            "customer_code": target.customer_code,
            "answer": target.answer,
            "password": run.persona.new_password,
            "password_repeat": run.persona.new_password,
        }[at]
        return await self._send(run, value)

    def _target(self, run: Run, variant: int) -> Expected:
        """The account a login or recovery aims at: the user's own, another one, or an unknown one."""
        if run.target is None:
            if run.persona.code in self.accounts:
                run.target = run.persona.code
            elif self.accounts and variant % 3:
                codes = sorted(self.accounts)
                run.target = codes[variant % len(codes)]
            else:
                run.target = ""
        if run.target:
            return self.accounts[run.target]
        p = run.persona
        return Expected(p.code, p.email, p.password, p.answer, run.user.user_id)

    async def _good_registration(self, run: Run, at: str, variant: int) -> tuple[list[object], str | None]:
        p, record = run.persona, run.persona.record
        if at in ("kind", "summary", "privacy"):
            key = {"kind": f"btn_{record.kind}", "summary": "btn_save", "privacy": "btn_accept"}[at]
            if variant % 3:
                try:
                    return await self._press_label(run, REAL_T(run.lang, key))
                except LookupError:
                    pass
            words = {
                "kind": {"person": "persona", "business": "azienda"}.get(record.kind),
                "privacy": "continua",
            }
            return await self._send(run, words.get(at) or "salva")
        if at == "phone":
            choice = variant % 4
            if choice == 0:
                return await self._contact(run, "own")
            return await self._send(run, (p.phone, "salta", REAL_T(run.lang, "btn_skip"))[choice - 1])
        value = {
            "customer_code": p.code if variant % 4 else f" {p.code.lower()} ",
            "first_name": record.first_name,
            "last_name": record.last_name,
            "company_name": record.company_name,
            "tax_code": record.tax_code,
            "email": p.email,
            "password": p.password,
            "password_repeat": p.password,
            "question": p.question,
            "answer": p.answer,
            "answer_repeat": p.answer.upper() if variant % 5 == 0 else p.answer,
        }[at]
        return await self._send(run, value or "?")

    async def _press_label(self, run: Run, label: str) -> tuple[list[object], str | None]:
        for message in reversed(self.bot.api.live_messages(run.user.chat_id)):
            for row in (message.inline_markup or {}).get("inline_keyboard", []):
                for button in row:
                    if button.get("text") == label and "callback_data" in button:
                        return await self._press_in(run, message.message_id, button["callback_data"])
        raise LookupError(label)

    # --- bookkeeping -------------------------------------------------------------------------------------
    def _draft(self, run: Run) -> tuple[str | None, dict[str, Any] | None]:
        drafts = drafts_of(self.app, run.user.user_id)
        for form in FORMS:
            if form in drafts:
                return form, dict(drafts[form])
        return None, None

    async def _book(
        self,
        run: Run,
        form: str | None,
        before: dict[str, Any] | None,
        typed: str,
        events: list[object],
        where: str,
    ) -> None:
        at = before.get("_at") if before else None
        if (form, at) in SECRET_FIELDS:
            self.secrets.add(typed)
        else:
            self.in_clear.add(typed)
        _, after = self._draft(run)
        for secret in ("password", "answer"):
            new_hash = (after or {}).get(f"{secret}_hash")
            if form == "registration" and new_hash and new_hash != (before or {}).get(f"{secret}_hash"):
                run.confirmed[secret] = typed
        said = [e.plain_text for e in events if isinstance(e, Sent)]
        if any(SEED_SENTENCE in s or SAVED_EN in s for s in said):
            assert form == "registration" and before and at == "summary", f"{where}: saved from {at}"
            code = before["customer_code"]
            assert code not in self.accounts, f"{where}: {code} saved twice"
            self.accounts[code] = Expected(
                code, before["email"], run.confirmed["password"], run.confirmed["answer"], run.user.user_id
            )
            self.figures.saves += 1
        if any(s in REC_DONE for s in said):
            assert form == "recovery" and before, where
            account = await stores(self.bot.services).accounts.get(before["account_id"])
            assert account is not None, where
            self.accounts[account.customer_code] = replace(
                self.accounts[account.customer_code], password=typed
            )
            self.figures.recoveries += 1

    def _check_states(self, runs: list[Run]) -> None:
        """The state each ConversationHandler keeps is the question the draft is at (or nothing)."""
        states = open_conversations(self.app)
        for run in runs:
            uid = run.user.user_id
            data = self.app.user_data.get(uid, {})
            for form in FORMS:
                state = states[form].get((uid, uid))
                draft = data.get(form)
                assert state == (draft["_at"] if draft else None), f"user {uid} {form}: {state} vs draft"


@asynccontextmanager
async def world(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        db = await stack.enter_async_context(make_test_database(backend, tmp_path))
        clock = FakeClock()
        bot = await stack.enter_async_context(running_bot(db, clock))
        records = make_records(POOL)
        await stores(bot.services).registry.upsert_many(records)
        w = World(bot, clock, CatalogueWitness(monkeypatch), records)
        root, sql = logging.getLogger(), logging.getLogger("sqlalchemy.engine")
        levels = root.level, sql.level
        root.addHandler(w.log)
        root.setLevel(logging.INFO)
        sql.setLevel(logging.WARNING)  # SQL echo is the leak test's business; here it only costs time
        try:
            yield w
        finally:
            root.removeHandler(w.log)
            root.setLevel(levels[0])
            sql.setLevel(levels[1])


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=not EXAMPLES,  # CI replays the same examples; a heavier run explores new ones
        database=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_fuzzed_conversations_keep_every_invariant(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = EXAMPLES or (CI_EXAMPLES if backend == "sqlite" else POSTGRES_EXAMPLES)
    started, cpu = time.perf_counter(), time.process_time()
    with asyncio.Runner() as runner:
        cm = world(backend, tmp_path, monkeypatch)
        w = runner.run(cm.__aenter__())
        try:

            @_settings(examples)
            @given(scenarios())
            def play(scenario: Scenario) -> None:
                runner.run(w.play(scenario))

            play()
            runner.run(_final_checks(w))
        finally:
            runner.run(cm.__aexit__(None, None, None))
    f = w.figures
    print(
        f"\nfuzz[{backend}]: {f.examples} examples, {f.conversations} conversations, {f.actions} actions "
        f"({f.updates} updates), "
        f"{f.saves} profiles saved, {f.recoveries} passwords recovered, "
        f"{time.perf_counter() - started:.1f} s ({time.process_time() - cpu:.1f} s CPU)"
    )
    if backend == "sqlite":  # (the PostgreSQL run is too short to be sure to reach a save)
        assert f.saves > 0, "no conversation reached the end of a registration: the test lost its teeth"
        assert f.conversations >= MIN_CONVERSATIONS or EXAMPLES


async def _final_checks(w: World) -> None:
    await check_accounts(w.bot.services, w.accounts)
    secrets = {s for s in w.secrets if len(s) >= 8 and len(set(s.strip())) >= 5}
    for expected in w.accounts.values():
        secrets |= {expected.password, expected.answer, rules.answer.normalize(expected.answer)}
    # What a user typed where nothing is secret (a password pasted as the question...) is theirs to show.
    secrets -= w.in_clear
    columns: dict[str, list[str]] = {}
    for table, column, value in await dump_database(w.bot.services.db):
        columns.setdefault(f"{table}.{column}", []).append(value)
    assert "customers.tax_code" in columns, "the dump reads the database"
    places = [(column, "\n".join(values)) for column, values in columns.items()]
    leaks = find_leaks([*places, ("the log", "\n".join(w.log.lines))], secrets)
    assert not leaks, "\n".join(leaks[:20])
