"""Driving the whole bot offline in tests: the real Application, the stand-in Bot API, a test database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from telegram.ext import BaseRateLimiter

from storage.db import Database
from storage.demo import load_demo
from storage.inbox import InboxStore
from storage.persistence import SqlPersistence
from tests.kit.stores import stores
from unogas_bot.bot.inbox import Inbox
from unogas_bot.bot.wiring import build_application
from unogas_bot.clock import utcnow
from unogas_bot.config import Limits, Settings
from unogas_bot.offline import OfflineBotAPI, Sent, Simulator, SimUser, offline_builder
from unogas_bot.security import sealing
from unogas_bot.security.hashing import EphemeralMac
from unogas_bot.service.context import Services

# Cheap bcrypt in tests: the cost does not change any behaviour under test. The per-user hash budget is
# wide, so flows that hash more than a customer would in a minute of fake time are not cut short; the
# budget's own tests set it as in production.
TEST_SETTINGS = Settings(
    bcrypt_rounds=4, hash_workers=2, limits=Limits(hash_budget_per_user=1000, owner_alert_delay=timedelta(0))
)

# Demo customers (storage/demo.py) used throughout the conversation tests.
MARIO = {"code": "UG-100234", "first": "Mario", "last": "Rossi", "tax": "RSSMRA75C12H501H"}
GIULIA = {"code": "UG-100235", "first": "Giulia", "last": "Bianchi", "tax": "BNCGLI88L64F205B"}
FERRARO = {"code": "UG-200101", "company": "Idrotermica Ferraro S.r.l.", "tax": "02847390586"}

# The seed's own words for a saved profile (registrazione-crm.txt), which the bot says verbatim.
SEED_SENTENCE = "Le informazioni relative al proprio profilo sono state correttamente salvate."
SAVED_EN = "Your profile information has been saved."  # the English confirmation, in English only

PASSWORD = "Lanterna verde 1987"
QUESTION = "Come si chiamava il mio primo gatto?"
ANSWER = "Briciola Bianca"


@dataclass
class Bot:
    """A running offline bot and what a test needs to look at."""

    services: Services
    api: OfflineBotAPI
    sim: Simulator
    app: object
    users: dict[int, SimUser] = field(default_factory=dict)

    def user(self, user_id: int = 1001, language_code: str = "it", **kwargs: object) -> SimUser:
        if user_id not in self.users:
            self.users[user_id] = self.sim.user(user_id, language_code=language_code, **kwargs)
        return self.users[user_id]


@asynccontextmanager
async def running_bot(
    db: Database,
    clock: Callable[[], datetime] = utcnow,
    settings: Settings = TEST_SETTINGS,
    demo: bool = True,
    persistent: bool = True,
    rate_limiter: BaseRateLimiter | None = None,
    inbox: bytes | None = None,
    first_update_id: int = 1,
) -> AsyncIterator[Bot]:
    """The bot as `unogas-bot run` builds it, on the stand-in. With `persistent` (the default, so every
    conversation test also goes through it) conversations are kept in `db` and a second `running_bot` on the
    same database resumes them, as a restarted process would (with new services: a new EphemeralMac).
    With `inbox` (the master secret, 32 bytes, as INBOX_KEY gives it) every update goes through the update
    inbox first, as `run` delivers it (bot/inbox.py), and the forms' digests use the key `run` derives."""
    services = Services.create(settings, db, clock=clock)
    if demo:
        await load_demo(stores(services).registry)
    api = OfflineBotAPI()
    persistence = SqlPersistence(db, clock=clock) if persistent else None
    updates = None
    if inbox is not None:
        services.mac = EphemeralMac.derived(sealing.digest_key(inbox))
        updates = Inbox(InboxStore(db, api.bot_user["id"], clock=clock), sealing.Sealer(inbox))
    app = build_application(
        services,
        builder=offline_builder(api),
        persistence=persistence,
        rate_limiter=rate_limiter,
        inbox=updates,
    )
    try:
        async with Simulator(app, api, first_update_id=first_update_id) as sim:
            if updates is not None:
                sim.admit = updates.take
            yield Bot(services, api, sim, app)
    finally:
        services.hasher.close()


def texts_of(events: list[object]) -> list[str]:
    """What the user read, as plain text, in order."""
    return [e.plain_text for e in events if isinstance(e, Sent)]


def last_text(events: list[object]) -> str:
    sent = texts_of(events)
    assert sent, f"the bot said nothing: {events!r}"
    return sent[-1]


async def answer_all(user: SimUser, *replies: str) -> list[object]:
    """Send several replies in a row; returns the events of the last one."""
    events: list[object] = []
    for reply in replies:
        events = await user.send(reply)
    return events


async def register_person(
    user: SimUser,
    customer: dict[str, str] = MARIO,
    email: str = "mario.rossi@example.it",
    password: str = PASSWORD,
    phone: str | None = "347 123 4567",
    save: bool = True,
) -> list[object]:
    """A complete, valid registration of a person; returns the events of the last step."""
    await user.send("/registrati")
    await user.send("continua")
    await user.send(customer["code"])
    await user.press("Persona")
    await answer_all(user, customer["first"], customer["last"], customer["tax"])
    await user.send(phone or "salta")
    await answer_all(user, email, password, password, QUESTION, ANSWER)
    events = await user.send(ANSWER)
    if save:
        events = await user.press("Salva")
    return events
