"""Shared tools of the hardening tests (fuzz, faults, load, leaks, odd input).

* `ErrorSpy` records every error that reached the Application's error handlers.
* `CatalogueWitness` records every text the catalogue produced and in which language, so a test can
  tell whether a reply was made of the user's language's texts (and nothing else).
* `dump_database` reads every row of every table *reflected from the database*, so tables added later
  (conversation persistence, ...) are scanned without changing the tests.
* `secret_variants` spells out the obvious transformations of a secret a leak could take.
* `check_accounts` verifies every stored account is complete, valid and tied to a registry record.
* `open_conversations` lists the conversation states PTB still holds.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import bcrypt
from sqlalchemy import MetaData, select
from telegram.ext import Application, ConversationHandler

from storage.db import Database
from tests.kit.stores import stores
from unogas_bot import rules
from unogas_bot.bench import data as bench_data
from unogas_bot.domain import AccountView, CustomerRecord
from unogas_bot.i18n import texts
from unogas_bot.offline import MAX_MESSAGE_LENGTH, CallbackAnswered, Sent

BCRYPT_RE = re.compile(r"^\$2b\$\d\d\$[./A-Za-z0-9]{53}$")


# --- errors ----------------------------------------------------------------------------------------------


class ErrorSpy:
    """An extra error handler: PTB calls every error handler, so this sees what `on_error` saw."""

    def __init__(self, app: Application) -> None:
        self.errors: list[BaseException] = []
        app.add_error_handler(self._record)

    async def _record(self, update: object, context: Any) -> None:
        self.errors.append(context.error)

    def take(self) -> list[BaseException]:
        errors, self.errors = self.errors, []
        return errors


# --- languages -------------------------------------------------------------------------------------------


class CatalogueWitness:
    """Wraps `texts.t` and remembers, for each text it produced, the languages it was produced in.

    A reply is in language L when it is one such text produced for L, or a progress line and a question
    joined by a newline (the only message the engine builds from two catalogue texts).
    """

    def __init__(self, monkeypatch: Any) -> None:
        self.produced: dict[str, set[str]] = {}
        real = texts.t

        def t(lang: str, key: str, **params: object) -> str:
            out = real(lang, key, **params)
            self.produced.setdefault(out, set()).add(lang)
            return out

        monkeypatch.setattr(texts, "t", t)

    def languages(self, text: str) -> set[str]:
        found = set(self.produced.get(text, ()))
        for match in re.finditer("\n", text):
            head, tail = text[: match.start()], text[match.end() :]
            if head in self.produced and tail in self.produced:
                found |= self.produced[head] & self.produced[tail]
        return found

    def forget(self) -> None:
        self.produced.clear()


def check_replies(events: Iterable[object], lang: str, witness: CatalogueWitness, context: str = "") -> None:
    """Every message is non-empty, fits Telegram's limit and was made of catalogue texts in `lang`;
    so is every text shown when a button is answered."""
    for event in events:
        if isinstance(event, Sent):
            shown = event.plain_text
            assert shown.strip(), f"{context}: an empty message"
            assert len(shown) <= MAX_MESSAGE_LENGTH, f"{context}: a message of {len(shown)} characters"
            langs = witness.languages(event.text)
            assert lang in langs, f"{context}: not a {lang} catalogue text ({sorted(langs)}): {shown[:300]!r}"
        elif isinstance(event, CallbackAnswered) and event.text:
            langs = witness.languages(event.text)
            assert lang in langs, f"{context}: button answer not in {lang}: {event.text!r}"


# --- the database ----------------------------------------------------------------------------------------


async def dump_database(db: Database, metadata: MetaData | None = None) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every non-null value of every table in the database.

    Tables are reflected from the database itself, not taken from our models: into `metadata` when it is
    empty, else those it holds are read (a caller dumping a database many times reflects it once). JSON
    text is also decoded (a JSON encoder may have escaped non-ASCII characters), bytes are decoded as UTF-8.
    """
    out: list[tuple[str, str, str]] = []
    async with db.engine.connect() as conn:
        metadata = MetaData() if metadata is None else metadata
        if not metadata.tables:
            await conn.run_sync(metadata.reflect)
        for table in metadata.sorted_tables:
            for row in (await conn.execute(select(table))).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    for shown in _as_texts(value):
                        out.append((table.name, str(column), shown))
    return out


def _as_texts(value: object) -> list[str]:
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("utf-8", "replace")
    shown = [value if isinstance(value, str) else repr(value)]
    if isinstance(value, str) and value[:1] in '[{"':
        with contextlib.suppress(ValueError):
            shown.append(repr(json.loads(value)))
    elif isinstance(value, dict | list):
        shown.append(json.dumps(value, ensure_ascii=False))
    return shown


def secret_variants(*secrets: str) -> set[str]:
    """A secret and its obvious transformations: case, surrounding spaces, Unicode forms, accents
    removed, and the normalised form an answer is hashed in."""
    variants: set[str] = set()
    for secret in secrets:
        for form in (secret, secret.strip(), rules.answer.normalize(secret)):
            variants |= {form, form.lower(), form.upper(), form.casefold()}
            variants.add(unicodedata.normalize("NFKD", form))
            variants.add(unicodedata.normalize("NFC", form))
            stripped = "".join(
                ch for ch in unicodedata.normalize("NFKD", form) if not unicodedata.combining(ch)
            )
            variants |= {stripped, stripped.lower()}
    return {v for v in variants if v}


def find_leaks(haystacks: Iterable[tuple[str, str]], secrets: Iterable[str]) -> list[str]:
    """Where any of `secrets` occurs: one line per hit, naming the place."""
    wanted = list(secrets)
    hits = []
    for where, text in haystacks:
        for secret in wanted:
            if secret in text:
                hits.append(f"{secret!r} in {where}: …{_around(text, secret)}…")
    return hits


def _around(text: str, secret: str) -> str:
    at = text.find(secret)
    return text[max(0, at - 40) : at + len(secret) + 40]


# --- accounts --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What an account must hold, as the test's own bookkeeping knows it."""

    customer_code: str
    email: str
    password: str
    answer: str
    telegram_user_id: int


async def all_accounts(services: Any) -> list[AccountView]:
    count = await stores(services).accounts.count()
    return await stores(services).accounts.list_accounts(1, page_size=max(count, 1))


async def check_accounts(services: Any, expected: dict[str, Expected] | None = None) -> list[AccountView]:
    """Every account is complete and valid and belongs to a registry record; with `expected` (keyed by
    customer code) the accounts are exactly those, with those data, and the hashes verify the secrets."""
    accounts = await all_accounts(services)
    codes = [a.customer_code for a in accounts]
    emails = [a.email for a in accounts]
    assert len(set(codes)) == len(codes), "two accounts for one customer"
    assert len(set(emails)) == len(emails), "two accounts with one e-mail"
    for a in accounts:
        record = await stores(services).registry.get(a.customer_code)
        assert record is not None, f"{a.customer_code}: no registry record"
        assert (a.kind, a.first_name, a.last_name, a.company_name, a.tax_code) == (
            record.kind,
            record.first_name,
            record.last_name,
            record.company_name,
            record.tax_code,
        )
        assert rules.email.validate(a.email) == a.email, f"{a.customer_code}: stored e-mail {a.email!r}"
        assert rules.answer.validate_question(a.security_question) == a.security_question
        assert a.phone is None or rules.phone.validate(a.phone) == a.phone
        assert BCRYPT_RE.match(a.password_hash) and BCRYPT_RE.match(a.answer_hash)
        assert a.registered_by > 0 and a.registered_at <= a.password_changed_at
    if expected is not None:
        assert sorted(codes) == sorted(expected), "accounts differ from the registrations that were saved"
        for a in accounts:
            want = expected[a.customer_code]
            assert (a.email, a.registered_by) == (want.email.lower(), want.telegram_user_id)
            assert bcrypt.checkpw(want.password.encode(), a.password_hash.encode()), a.customer_code
            answer = rules.answer.normalize(want.answer)
            assert bcrypt.checkpw(answer.encode(), a.answer_hash.encode()), a.customer_code
    return accounts


# --- customers who answer well ---------------------------------------------------------------------------

WORDS = (
    "Girasole", "Lanterna", "Cometa", "Tramonto", "Scogliera", "Nuvola", "Ghiacciaio", "Pianoforte",
    "Libellula", "Arcobaleno", "Vulcano", "Tamburo", "Orizzonte", "Conchiglia", "Quercia", "Farfalla",
)  # fmt: skip
QUESTIONS = (
    "Come si chiamava il mio primo gatto?",
    "In che città sono nati i miei nonni?",
    "Qual è il mio piatto preferito?",
    "What was the name of my first school?",
)
ANSWERS = ("Briciola d'oro", "Pizzoccheri al forno", "Tartaruga blu", "Via dei Mille")


@dataclass(frozen=True)
class Persona:
    """A registry customer and what they answer when they answer well."""

    record: CustomerRecord
    email: str
    password: str
    new_password: str  # for a password recovery
    question: str
    answer: str
    phone: str

    @property
    def code(self) -> str:
        return self.record.customer_code


def _phrase(index: int, salt: int, personal: list[str]) -> str:
    """A valid password of words unrelated to the customer (checked with the bot's own rule)."""
    for step in itertools.count():
        a, b = (index + salt + step) % len(WORDS), (index * 7 + salt * 3 + step + 1) % len(WORDS)
        if a == b:
            continue
        candidate = f"{WORDS[a]} {WORDS[b]} {1000 + (index * 13 + salt) % 9000}"
        try:
            return rules.password.validate(candidate, personal)
        except rules.Invalid:
            continue
    raise AssertionError("unreachable")


def make_records(
    count: int, prefix: str = "UG-9", seed: int = 23, business_share: float = 0.15
) -> list[CustomerRecord]:
    """Registry records for the run (persons and businesses with valid tax codes)."""
    people = bench_data.identities(count, seed=seed, business_share=business_share)
    return [
        CustomerRecord(f"{prefix}{i:06d}", p.kind, p.first_name, p.last_name, p.company_name, p.tax_code)
        for i, p in enumerate(people)
    ]


def make_persona(i: int, record: CustomerRecord, email: str | None = None) -> Persona:
    """What the customer of `record` answers when answering well (passwords checked by the bot's rule)."""
    email = email or f"cliente.{i}@example.it"
    personal = [record.customer_code, record.tax_code, record.first_name, record.last_name]
    personal += [record.company_name, email.partition("@")[0]]
    personal = [p for p in personal if p]
    return Persona(
        record,
        email,
        _phrase(i, 1, personal),
        _phrase(i, 5, personal),
        QUESTIONS[i % len(QUESTIONS)],
        f"{ANSWERS[i % len(ANSWERS)]} {i}",
        f"347 {i % 1000:03d} {i % 10_000:04d}",
    )


# --- conversations ---------------------------------------------------------------------------------------


def open_conversations(app: Application) -> dict[str, dict[tuple[int | str, ...], object]]:
    """The conversation states PTB holds, per ConversationHandler (test-only look at its private dict)."""
    out = {}
    for group in app.handlers.values():
        for handler in group:
            if isinstance(handler, ConversationHandler):
                out[handler.name or "?"] = dict(handler._conversations)
    return out


def drafts_of(app: Application, user_id: int) -> dict[str, Any]:
    """The form drafts a user has in `user_data` (keys of dict values that look like a form draft)."""
    data = app.user_data.get(user_id, {})
    return {k: v for k, v in data.items() if isinstance(v, dict) and "_at" in v}


async def stored_values(db: Database) -> list[str]:
    """Every non-null value of every table, as text (see `dump_database`)."""
    return [value for _table, _column, value in await dump_database(db)]
