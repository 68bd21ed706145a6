"""A stranger attacks a customer for three simulated hours; the customer still gets through (issue 21).

Through the real Application, on SQLite and PostgreSQL, with a fake clock. Each stranger answers whatever
the bot asks with what it knows (a customer code, an e-mail, or both) and wrong guesses for the rest, at
the rate the issue measured; the real customer tries from their own Telegram account at regular times:

| attack | stranger knows | stranger's rate | the customer tries |
| --- | --- | --- | --- |
| registration | the customer code | 1 Telegram account, 32 msgs/h | every 10 minutes (18 tries) |
| login | the e-mail | 2 Telegram accounts, 65 msgs/h | every 5 minutes (36 tries) |
| recovery | e-mail and customer code | 1 Telegram account, 8 msgs/h | every 10 minutes (18 tries) |

During the login attack the customer's logged-in `/i_miei_dati` works six times, and `/cancella_profilo`
at the end. The figures (`-s` prints them) are the owner's success rate per attack and database.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select

from storage.db import Database
from storage.models import AuditEvent
from tests.conftest import FakeClock
from tests.kit.accountkit import (
    MARIO_EMAIL,
    WRONG_ANSWER,
    WRONG_PASSWORD,
    alerts_settled,
    login,
    registered,
    said,
)
from tests.kit.botkit import ANSWER, GIULIA, MARIO, PASSWORD, Bot, answer_all, running_bot
from tests.kit.stores import stores
from unogas_bot.offline import Sent, SimUser

HOURS = 3
TARGET = 0.99
LOGGED_IN = "Accesso effettuato"
VERIFIED = "indirizzo e-mail"  # the registration's e-mail question: the identity check was passed
ANSWER_ACCEPTED = "Passo 4 di 5"  # recovery: the new password is asked once the answer was right
ALERT = "Avviso di sicurezza"


@dataclass
class Stranger:
    """A Telegram account that answers each question with what it knows, and guesses the rest."""

    user: SimUser
    start: str
    answers: dict[str, str]  # a fragment of the bot's question -> the reply (PRESS: a button)
    last: str = ""
    sent: int = 0

    async def act(self) -> None:
        reply = next((r for fragment, r in self.answers.items() if fragment in self.last), self.start)
        if reply.startswith("PRESS "):
            events = await self.user.press(reply[6:])
        else:
            events = await self.user.send(reply)
        self.sent += 1
        self.last = said(events) or self.last  # a deleted secret gets an answer too


@dataclass
class Tally:
    tries: int = 0
    through: int = 0
    log: list[str] = field(default_factory=list)

    def record(self, ok: bool, what: str) -> None:
        self.tries += 1
        self.through += ok
        if not ok:
            self.log.append(what)

    @property
    def rate(self) -> float:
        return self.through / self.tries


async def attack(
    clock: FakeClock,
    strangers: list[Stranger],
    per_hour: float,
    owner_every: timedelta,
    owner_try: Callable[[int], Awaitable[None]],
) -> None:
    """Three hours: each stranger acts `per_hour` times an hour, evenly; the owner tries every `owner_every`
    (first after half of it), each action at its time on the fake clock."""
    start = clock()
    agenda: list[tuple[float, int, int]] = []  # (seconds from the start, order, who: -1 the owner)
    gap = 3600 / per_hour
    for index in range(len(strangers)):
        for n in range(int(HOURS * per_hour)):
            agenda.append((gap * n + index * gap / len(strangers), len(agenda), index))
    every = owner_every.total_seconds()
    for n in range(int(HOURS * 3600 / every)):
        agenda.append((every / 2 + n * every, len(agenda), -1))
    heapq.heapify(agenda)
    tried = 0
    while agenda:
        at, _, who = heapq.heappop(agenda)
        clock.now = start + timedelta(seconds=at)
        if who >= 0:
            await strangers[who].act()
        else:
            await owner_try(tried)
            tried += 1


def report(name: str, database: Database, tally: Tally, strangers: list[Stranger]) -> None:
    sent = sum(s.sent for s in strangers)
    print(
        f"\n{name} attack on {database.dialect}: the owner got through {tally.through} of {tally.tries} "
        f"({tally.rate:.0%}); {len(strangers)} stranger(s) sent {sent} messages in {HOURS} h"
    )
    assert tally.rate >= TARGET, tally.log[:5]


async def test_a_stranger_with_the_customer_code_cannot_hold_up_the_registration(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock) as bot:
        stranger = Stranger(
            bot.user(6001),
            "/registrati",
            {
                "prema «Continua»": "continua",
                "Qual è il suo codice cliente": MARIO["code"],
                "persona o a un'azienda": "PRESS Persona",
                "Qual è il suo nome": GIULIA["first"],  # a real person's data, not Mario's: a wrong guess
                "E il suo cognome": GIULIA["last"],
                "Qual è il suo codice fiscale": GIULIA["tax"],
                "numero di telefono": "salta",
            },
        )
        owner, tally = bot.user(1001), Tally()

        async def owner_try(n: int) -> None:
            await answer_all(owner, "/registrati", "continua", MARIO["code"])
            await owner.press("Persona")
            events = await answer_all(owner, MARIO["first"], MARIO["last"], MARIO["tax"], "salta")
            tally.record(VERIFIED in said(events), f"try {n}: {said(events)[-120:]}")
            await owner.send("/annulla")

        await attack(clock, [stranger], 32, timedelta(minutes=10), owner_try)
        report("registration", database, tally, [stranger])
        assert tally.tries == 18
        caused = await failures(bot, "registration_identity_failed", stranger)
        print(f"  the stranger's failed identity checks: {caused}")
        assert caused >= 10  # it used up its five of the hour, hour after hour


async def test_two_strangers_with_the_e_mail_cannot_lock_the_owner_out(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock) as bot:
        owner = await registered(bot)
        strangers = [
            Stranger(
                bot.user(6001 + i),
                "/accedi",
                {"indirizzo e-mail del suo": MARIO_EMAIL, "Scriva la password": f"{WRONG_PASSWORD} {i}"},
            )
            for i in range(2)
        ]
        tally, exports = Tally(), Tally()

        async def owner_try(n: int) -> None:
            events = await login(owner)
            tally.record(LOGGED_IN in said(events), f"try {n}: {said(events)[-120:]}")
            if n % 6 == 3:  # logged in, the owner takes a copy of their data during the attack
                events = await answer_all(owner, "/i_miei_dati", PASSWORD)
                exports.record("Ecco tutti i dati" in said(events), f"export {n}: {said(events)[-120:]}")
            if n == 35:  # and at the very end erases the profile
                events = await answer_all(owner, "/cancella_profilo", PASSWORD)
                if "Cancella il profilo" in owner.buttons():
                    events = await owner.press("Cancella il profilo")
                exports.record("cancellato" in said(events), f"erasure: {said(events)[-120:]}")
            else:
                await owner.send("/esci")

        await attack(clock, strangers, 32.5, timedelta(minutes=5), owner_try)
        print(f"  the owner's /i_miei_dati and /cancella_profilo: {exports.through} of {exports.tries}")
        report("login", database, tally, strangers)
        told = await alerts_to(bot, owner.user_id)
        caused = sum([await failures(bot, "login_failed", s) for s in strangers])
        print(f"  the strangers' failed or refused logins: {caused}; alerts to the owner: {len(told)}")
        assert caused >= 20
        assert tally.tries == 36 and exports.tries == 7 and exports.through == 7, exports.log
        assert await stores(bot.services).accounts.get_by_email(MARIO_EMAIL) is None  # erased
        assert len(told) == HOURS  # told once per burst: once an hour of the attack


async def test_a_stranger_with_e_mail_and_customer_code_cannot_block_the_owners_recovery(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock) as bot:
        owner = await registered(bot)
        stranger = Stranger(
            bot.user(6001),
            "/recupera_password",
            {
                "indirizzo e-mail del suo": MARIO_EMAIL,
                "Qual è il suo codice cliente": MARIO["code"],
                "Scriva la risposta": WRONG_ANSWER,
            },
        )
        tally = Tally()

        async def owner_try(n: int) -> None:
            await answer_all(owner, "/recupera_password", MARIO_EMAIL, MARIO["code"])
            events = await owner.send(ANSWER)
            tally.record(ANSWER_ACCEPTED in said(events), f"try {n}: {said(events)[-120:]}")
            await owner.send("/annulla")

        await attack(clock, [stranger], 8, timedelta(minutes=10), owner_try)
        report("recovery", database, tally, [stranger])
        assert tally.tries == 18
        caused = await failures(bot, "recovery_failed", stranger)
        print(f"  the stranger's wrong answers: {caused}")
        assert caused >= 6  # 3 an hour, held between
        assert len(await alerts_to(bot, owner.user_id)) >= 1


async def failures(bot: Bot, event: str, stranger: Stranger) -> int:
    """How many `event`s the stranger caused (audited with its Telegram user id until an erasure)."""
    async with bot.services.db.session() as session:
        query = select(func.count()).where(AuditEvent.event == event)
        if event != "login_failed":  # the login test erases the profile at the end: its trail loses the ids
            query = query.where(AuditEvent.telegram_user_id == stranger.user.user_id)
        return int((await session.execute(query)).scalar_one())


async def alerts_to(bot: Bot, user_id: int) -> list[str]:
    """The security alerts the owner received, once every alert sent in the background is done."""
    await alerts_settled()
    sent = [e.plain_text for e in bot.api.events if isinstance(e, Sent) and e.chat_id == user_id]
    return [text for text in sent if ALERT in text]
