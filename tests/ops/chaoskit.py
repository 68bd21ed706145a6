"""Customers for the chaos tests: scripted conversations driven over the HTTP stand-in, and what their
transcripts and the database say afterwards.

Each customer types a script one step at a time and waits for the step's reply before the next, as a person
does; a step's reply is known by a marker (a phrase only that reply has) per message, and the audit events
the step causes are known too. The same customers go on from round to round, a few steps each, so every
fault finds all of them in the middle of a conversation; registrations start staggered, so some reach
«Salva» in every round.

Read back, a chat's transcript is the expected markers in order, possibly with a step's reply shown twice (a
repeat: an update handled again after a crash) and possibly with messages that belong to no step (something
went back or went wrong). Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import bcrypt
import httpx
from sqlalchemy import text

from storage.db import Database
from storage.registry import CustomerRegistry
from storage.unit_of_work import UnitOfWork
from unogas_bot.bench import data as bench_data
from unogas_bot.clock import utcnow
from unogas_bot.config import DEFAULT_PRIVACY_VERSION
from unogas_bot.domain import CustomerRecord, NewAccount

PASSWORD = bench_data.PASSWORD
QUESTION = bench_data.QUESTION
ANSWER = bench_data.ANSWER
STEP_WAIT = 60.0  # seconds a step may wait for its reply, faults and takeovers included
PER_ROUND = 3  # steps each customer takes in a round


@dataclass(frozen=True)
class Step:
    action: str  # "send" or "press"
    text: str
    markers: tuple[str, ...]  # one per message the bot answers with, in order
    effects: tuple[str, ...] = ()  # audit events the step causes
    phone: str | None = None  # the phone number it sets


def registration(record: CustomerRecord, email: str) -> list[Step]:
    """The whole registration of a person, as a customer types it."""
    s = Step
    return [
        s("send", "/registrati", ("Iniziamo la registrazione", "Informativa sulla privacy", "«Continua»")),
        s("press", "Continua", ("Passo 1 di 12",)),
        s("send", record.customer_code, ("Passo 2 di 12",)),
        s("press", "Persona", ("Passo 3 di 12",)),
        s("send", record.first_name or "", ("Passo 4 di 12",)),
        s("send", record.last_name or "", ("Passo 5 di 12",)),
        s("send", record.tax_code, ("Passo 6 di 12",)),
        s("send", "salta", ("I dati corrispondono", "Passo 7 di 12")),
        s("send", email, ("Passo 8 di 12",)),
        s("send", PASSWORD, ("Passo 9 di 12",)),
        s("send", PASSWORD, ("Passo 10 di 12",)),
        s("send", QUESTION, ("Passo 11 di 12",)),
        s("send", ANSWER, ("Passo 12 di 12",)),
        s("send", ANSWER, ("riepilogo",)),
        s("press", "Salva", ("correttamente salvate",), ("registered",)),
    ]


def login(email: str) -> list[Step]:
    """Log in, look at the profile, log out."""
    return [
        Step("send", "/accedi", ("Passo 1 di 2",)),
        Step("send", email, ("Passo 2 di 2",)),
        Step("send", PASSWORD, ("Accesso effettuato",), ("login",)),
        Step("send", "/profilo", ("Il suo profilo",)),
        Step("send", "/esci", ("stato chiuso",), ("logout",)),
    ]


def phone_change(email: str, phone: str) -> list[Step]:
    """Log in, change the phone number (the password asked again first), log out."""
    return [
        Step("send", "/accedi", ("Passo 1 di 2",)),
        Step("send", email, ("Passo 2 di 2",)),
        Step("send", PASSWORD, ("Accesso effettuato",), ("login",)),
        Step("send", "/cambia_telefono", ("password attuale",)),
        Step("send", PASSWORD, ("nuovo numero di telefono",)),
        Step("send", phone, ("Fatto: il nuovo numero",), ("phone_changed",), "+39" + phone.replace(" ", "")),
        Step("send", "/esci", ("stato chiuso",), ("logout",)),
    ]


REGISTER, LOGIN, PHONE = "registration", "login", "phone change"


@dataclass
class Customer:
    """One customer: a script, the steps taken before the first round, and what the bot said to them."""

    user_id: int
    kind: str
    steps: list[Step]
    warmup: int
    record: CustomerRecord
    email: str
    done: int = 0  # steps answered
    seen: list[str] = field(default_factory=list)
    lost: str | None = None  # the step that got no reply in time
    steps_at: list[int] = field(default_factory=list)  # `done` at the end of each round

    def effects(self, done: int | None = None) -> Counter[str]:
        return Counter(e for step in self.steps[: self.done if done is None else done] for e in step.effects)

    def phone(self) -> str | None:
        phones = [step.phone for step in self.steps[: self.done] if step.phone]
        return phones[-1] if phones else None


def account_email(record: CustomerRecord) -> str:
    return f"cliente.{record.customer_code.lower()}@example.it"


def cast(
    rounds: int, registering: Sequence[CustomerRecord], accounts: Sequence[CustomerRecord]
) -> list[Customer]:
    """The customers: registrations whose warm-ups are staggered so that `len(registering) / rounds` of
    them press «Salva» in each round (then they log in and out), and, half and half, customers with an
    account who log in and out, or log in and change their phone number, over and over."""
    length = 1 + PER_ROUND * (rounds + 1)  # the longest warm-up, every round and the last step after them
    out: list[Customer] = []
    for i, record in enumerate(registering):
        email = f"nuovo.{i}@example.it"
        steps = registration(record, email)
        while len(steps) < length + 15:
            steps += login(email)
        salva_round = rounds - 1 - i % rounds  # 0-based round in which «Salva» comes
        warmup = 15 - PER_ROUND * (salva_round + 1) + 1
        out.append(Customer(7_000_000 + i, REGISTER, steps, max(1, warmup), record, email))
    for i, record in enumerate(accounts):
        email = account_email(record)
        steps = []
        kind = PHONE if i % 2 else LOGIN
        while len(steps) < length:
            steps += phone_change(email, f"347 {len(steps):03d} {i:04d}") if kind == PHONE else login(email)
        out.append(Customer(7_100_000 + i, kind, steps, 1 + i % 2, record, email))
    return out


async def prepare(
    url: str, registering: Sequence[CustomerRecord], accounts: Sequence[CustomerRecord]
) -> None:
    """The registry for everyone and an account (password PASSWORD) for each of `accounts`."""
    db = Database(url)
    try:
        await db.upgrade()
        await CustomerRegistry(db).upsert_many([*registering, *accounts])
        password = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
        answer = bcrypt.hashpw(ANSWER.lower().encode(), bcrypt.gensalt(4)).decode()
        async with UnitOfWork(db) as uow:
            for i, record in enumerate(accounts):
                new = NewAccount(
                    record.customer_code,
                    account_email(record),
                    password,
                    QUESTION,
                    answer,
                    None,
                    1 + i,
                    DEFAULT_PRIVACY_VERSION,
                    utcnow(),
                )
                await uow.accounts.register(new)
            await uow.commit()
    finally:
        await db.dispose()


# --- driving them over the stand-in ----------------------------------------------------------------------


class Driver:
    """The customers' side of the HTTP stand-in (unogas_bot/offline/http.py), asynchronous."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200))
        self.answered = 0  # steps answered in the current part, all customers together
        self._progress = asyncio.Event()

    async def close(self) -> None:
        await self.client.aclose()

    async def act(self, customer: Customer, step: Step) -> None:
        path = "send" if step.action == "send" else "press"
        body = {"text": step.text} if step.action == "send" else {"button": step.text}
        for _ in range(50):  # a press needs the button's message: it may still be on its way
            answer = await self.client.post(f"{self.root}/standin/users/{customer.user_id}/{path}", json=body)
            if answer.status_code == 200:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the stand-in refused {step.action} {step.text!r}: {answer.text}")

    async def read(self, customer: Customer, wait: float) -> None:
        """Append the bot's newer messages to `customer.seen`, waiting up to `wait` s for one."""
        url = f"{self.root}/standin/users/{customer.user_id}/replies"
        params = {"after": len(customer.seen), "wait": wait}
        answer = await self.client.get(url, params=params, timeout=wait + 30)
        customer.seen += [str(reply["text"]) for reply in answer.json()["replies"]]

    async def step(self, customer: Customer) -> bool:
        """Take the customer's next step and wait for its reply (its last marker, after what was seen)."""
        index = customer.done
        step = customer.steps[index]
        start = len(customer.seen)
        await self.act(customer, step)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STEP_WAIT
        while not any(step.markers[-1] in text for text in customer.seen[start:]):
            left = deadline - loop.time()
            if left <= 0:
                customer.lost = f"step {index + 1} ({step.text!r})"
                return False
            await self.read(customer, min(left, 5.0))
        customer.done = index + 1
        self.answered += 1
        self._progress.set()
        return True

    async def play(self, customers: Sequence[Customer], upto: Callable[[Customer], int], seed: int) -> None:
        """Everyone on to step `upto(customer)`, at once, with short random pauses."""
        self.answered = 0

        async def one(customer: Customer, rng: random.Random) -> None:
            while customer.done < min(upto(customer), len(customer.steps)) and not customer.lost:
                await asyncio.sleep(rng.uniform(0, 0.03))
                if not await self.step(customer):
                    return

        await asyncio.gather(*(one(c, random.Random(seed * 7919 + i)) for i, c in enumerate(customers)))

    async def reached(self, answered: int, part: asyncio.Future[None]) -> None:
        """Return once `answered` steps of the current part are answered (or the part ended)."""
        while self.answered < answered and not part.done():
            self._progress.clear()
            waiter = asyncio.ensure_future(self._progress.wait())
            await asyncio.wait({waiter, part}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    async def catch_up(self, customers: Sequence[Customer]) -> None:
        """Read everything the bot sent since."""
        await asyncio.gather(*(self.read(c, 0) for c in customers))


# --- reading the transcripts and the database ----------------------------------------------------------


@dataclass
class Verdict:
    repeated_steps: list[int]  # steps whose reply came more than once
    unexpected: list[str]  # messages that belong to no step, or came out of order
    complete: bool  # every step taken got its reply, in order


def judge(customer: Customer) -> Verdict:
    """Walk the transcript against the expected markers of the steps taken (see the module docstring)."""
    expected = [
        (i, marker) for i, step in enumerate(customer.steps[: customer.done]) for marker in step.markers
    ]
    position = 0
    repeated: set[int] = set()
    unexpected: list[str] = []
    for shown in customer.seen:
        if position < len(expected) and expected[position][1] in shown:
            position += 1
            continue
        earlier = [i for i, marker in expected[:position] if marker in shown]
        if earlier:
            repeated.add(earlier[-1])
        else:
            unexpected.append(shown[:80])
    return Verdict(sorted(repeated), unexpected, position == len(expected) and not customer.lost)


async def stored(url: str, customers: Sequence[Customer]) -> list[str]:
    """What the database holds against what the customers did, each step once: an account per «Salva»
    with what was typed, one audit event per action, the last phone number set. Each problem is a line
    starting with "applied twice", "lost" or "went back"."""
    problems: list[str] = []
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            for c in customers:
                accounts = list(
                    await conn.execute(
                        text(
                            "SELECT a.id, a.email, a.phone, a.registered_by FROM accounts a "
                            "JOIN customers k ON k.id = a.customer_id WHERE k.customer_code = :code"
                        ),
                        {"code": c.record.customer_code},
                    )
                )
                wanted = c.effects()
                if c.kind == REGISTER and not wanted["registered"]:
                    if accounts:
                        problems.append(f"applied twice: {c.email} has an account before «Salva»")
                    continue
                if len(accounts) != 1:
                    problems.append(
                        f"{'applied twice' if accounts else 'lost'}: {c.email}: {len(accounts)} accounts"
                    )
                    continue
                account_id, email, phone, by = accounts[0]
                sql = "SELECT event, count(*) FROM audit_events WHERE account_id = :a GROUP BY event"
                events = dict(list(await conn.execute(text(sql), {"a": account_id})))
                for event, count in wanted.items():
                    if events.get(event, 0) > count:
                        problems.append(
                            f"applied twice: {c.email} has {events[event]} {event!r}, {count} done"
                        )
                    elif events.get(event, 0) < count:
                        problems.append(f"lost: {c.email} has {events.get(event, 0)} {event!r}, {count} done")
                if c.kind == REGISTER and (email != c.email or by != c.user_id):
                    problems.append(f"went back: the account of {c.email} holds other data")
                if c.kind == PHONE and phone != c.phone():
                    problems.append(f"went back: {c.email} has the phone {phone!r}, not {c.phone()!r}")
    finally:
        await db.dispose()
    return problems


async def scalar(url: str, sql: str) -> Any:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await db.dispose()
