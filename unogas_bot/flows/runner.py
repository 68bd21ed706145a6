"""Replaying flow scripts against the real Application, offline, each on a throwaway database.

Every script gets a fresh SQLite file (copied from a template migrated once per run, with the demo
customers unless the script names a CSV; with `# accounts: demo` a registered, logged-in demo customer),
the Application as `run` builds it on the Bot API stand-in, and the console's session (`session.py`), so a
script sees exactly what `unogas-bot console` shows. Secrets are never in a script: a masked input
(`> ••••••••`) types the script's password at a password question and its answer at a security-answer
question (`# password:` / `# answer:` headers, else values generated for the run, strong enough for the
bot's rules); a marked mask types a second one or a refused one (secrets.py). The bot's clock stands still
at the script's `# now:` (or the default), so a script that shows a date passes on any day.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import io
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conversations.draft import Draft, UnreadableDraft
from conversations.specs.registration import personal_data_of
from storage.account_store import AccountStore
from storage.customer_csv import CsvFormatError, ImportRejected, import_file
from storage.db import Database
from storage.demo import load_demo
from storage.registry import CustomerRegistry
from unogas_bot.bot.wiring import build_application
from unogas_bot.clock import frozen
from unogas_bot.config import Settings
from unogas_bot.flows import fixtures
from unogas_bot.flows.script import (
    Mismatch,
    Script,
    ScriptError,
    describe,
    match_step,
    read,
    render,
    script_now,
)
from unogas_bot.flows.secrets import (
    ANSWER,
    PASSWORD,
    WRONG,
    Mark,
    SecretBook,
    generated,
    kind_of_step,
    parse_mark,
    refused_example,
)
from unogas_bot.flows.session import ANY_TEXT, INDENT, ConsoleSession, awaited_step, expects_secret
from unogas_bot.i18n import texts
from unogas_bot.offline import OfflineBotAPI, Simulator, offline_builder
from unogas_bot.service.context import Services
from unogas_bot.service.recovery import personal_data

SUFFIX = ".flow"  # what `flows test DIR` looks for
DEFAULT_USER = 1001
GROUP_CHAT = -1001234567890


@dataclass(frozen=True)
class Observation:
    """One input of a replay: what was typed, the question waiting before and after ((form, step) or
    None), and what the bot said; the flow coverage maps these onto the diagrams' paths."""

    typed: str
    before: tuple[str, str] | None
    after: tuple[str, str] | None
    said: tuple[str, ...]
    language: str


@dataclass
class Outcome:
    """One script's replay: the bot's lines after each step, and the steps that did not match."""

    script: Script
    actual: list[list[str]]
    mismatches: list[Mismatch]
    seconds: float = 0.0
    observations: list[Observation] = dataclasses.field(default_factory=list)  # for the flow coverage
    typed: SecretBook = dataclasses.field(default_factory=SecretBook)  # the secrets the masks typed

    @property
    def passed(self) -> bool:
        return not self.mismatches


def find_scripts(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The scripts named, and every `*.flow` under a directory named, in a stable order."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            yield from sorted(path.rglob(f"*{SUFFIX}"))
        else:
            yield path


def matches(path: Path, pattern: str) -> bool:
    """`-k PATTERN`: the script's path contains the pattern (case-insensitive), or its path or the end of
    it matches the pattern as a glob (`*lockout.flow`, `it/login_*`)."""
    text = path.as_posix()
    return (
        pattern.casefold() in text.casefold()
        or fnmatch.fnmatch(text, pattern)
        or fnmatch.fnmatch(text, f"*/{pattern.lstrip('/')}")
        or fnmatch.fnmatch(path.name, pattern)
    )


def generated_secrets() -> dict[str, str]:
    """A password and an answer for masked inputs: new for every run, valid under the bot's rules."""
    return {
        "password": f"Faro sul molo {secrets.randbelow(9000) + 1000}",
        "answer": f"Pennarello {secrets.choice(['blu', 'verde', 'rosso'])} {secrets.randbelow(90) + 10}",
    }


class Replayer:
    """Replays scripts; one template database per run (migrations are the slow part of a fresh one)."""

    def __init__(self, settings: Settings) -> None:
        # Throwaway data: cheap bcrypt, and no hash budget in the way of a script that tries a lockout.
        self.settings = dataclasses.replace(
            settings,
            bcrypt_rounds=4,
            limits=dataclasses.replace(settings.limits, hash_budget_per_user=10_000),
        )
        self._dir = tempfile.TemporaryDirectory(prefix="unogas-flows-")
        self._templates: dict[bool, Path] = {}
        self._count = 0
        self.secrets = generated_secrets()

    def close(self) -> None:
        self._dir.cleanup()

    async def database(self, demo: bool) -> tuple[Database, str]:
        """A fresh throwaway database (schema up to date, the demo customers if `demo`) and its URL."""
        template = self._templates.get(demo)
        if template is None:
            template = Path(self._dir.name) / f"template-{int(demo)}.db"
            db = Database(f"sqlite+aiosqlite:///{template}")
            await db.upgrade()
            if demo:
                await load_demo(CustomerRegistry(db))
            await db.dispose()
            self._templates[demo] = template
        self._count += 1
        path = Path(self._dir.name) / f"script-{self._count}.db"
        shutil.copyfile(template, path)
        url = f"sqlite+aiosqlite:///{path}"
        db = Database(url)
        await db.upgrade()
        return db, url

    async def replay(self, script: Script) -> Outcome:
        started = time.perf_counter()
        headers = script.headers
        customers = headers.get("customers", "demo")
        db, url = await self.database(demo=customers == "demo")
        try:
            if customers not in ("demo", "none"):
                await self._import(script, customers, db)
            clock = frozen(script_now(headers, script.path))
            services = Services.create(dataclasses.replace(self.settings, database_url=url), db, clock=clock)
        except BaseException:
            await db.dispose()
            raise
        api = OfflineBotAPI()
        app = build_application(services, builder=offline_builder(api))
        out = io.StringIO()
        actual: list[list[str]] = []
        user_id = int(headers.get("user", DEFAULT_USER))
        replay = _Replay(self, script, app, services, user_id)
        try:
            if headers.get("accounts") == "demo":
                try:
                    await fixtures.demo_account(services, user_id, replay.base[PASSWORD], replay.base[ANSWER])
                except fixtures.FixtureError as exc:
                    raise ScriptError(f"{script.where('accounts')}: {exc}") from None
            async with Simulator(app, api) as sim:
                language = headers.get("language", "it")
                group = headers.get("chat") == "group"
                user = sim.user(
                    user_id,
                    first_name="Cliente",
                    language_code=language,
                    chat_id=GROUP_CHAT if group else None,
                    chat_type="group" if group else "private",
                )
                session = ConsoleSession(
                    user, out, echo=False, language=texts.language_for(language), app=app, masking=False
                )
                observations = []
                for step in script.steps:
                    start = out.tell()
                    if step.input is not None:
                        typed = step.input.text[1:].strip()
                        before = awaited_step(app, user_id)
                        await replay.type(session, typed)
                        said = tuple(out.getvalue()[start:].splitlines())
                        after = awaited_step(app, user_id)
                        observations.append(Observation(typed, before, after, said, language))
                    actual.append(out.getvalue()[start:].splitlines())
        finally:
            await services.close()  # disposes of the database too
        mismatches = [
            m for step, lines in zip(script.steps, actual, strict=True) if (m := match_step(step, lines))
        ]
        return Outcome(script, actual, mismatches, time.perf_counter() - started, observations, replay.typed)

    async def _import(self, script: Script, name: str, db: Database) -> None:
        """The script's `# customers:` CSV into its database; a missing or bad file is a ScriptError
        naming the script's line."""
        where, csv = script.where("customers"), script.path.parent / name
        if not csv.is_file():
            raise ScriptError(f"{where}: customers: no such CSV file {csv} (or use `demo` or `none`)")
        try:
            await import_file(csv, CustomerRegistry(db))
        except ImportRejected as exc:
            raise ScriptError(f"{where}: customers: {csv} cannot be imported: {exc}") from None
        except CsvFormatError as exc:  # pragma: no cover - import_file reports these as ImportRejected
            raise ScriptError(f"{where}: customers: {csv} cannot be imported: {exc}") from None


class _Replay:
    """One script being typed: the values its masks stand for."""

    def __init__(
        self, replayer: Replayer, script: Script, app: Any, services: Services, user_id: int
    ) -> None:
        self.script = script
        self.app = app
        self.services = services
        self.user_id = user_id
        self.base = {kind: script.headers.get(kind) or replayer.secrets[kind] for kind in (PASSWORD, ANSWER)}
        self.typed = SecretBook()  # the valid secrets typed for masks: `--update` never writes them

    async def type(self, session: ConsoleSession, text: str) -> None:
        before = awaited_step(self.app, self.user_id)
        mark = parse_mark(text)
        if mark is not None:
            value = await self._secret(mark, before)
            if value is None:
                reason = mark.reason or "?"
                print(
                    f"{INDENT}(cannot type a secret refused for {reason!r}: no example known)",
                    file=session.out,
                )
                return
            await session.handle_line(value, secret=True)
        elif text.startswith("[") and text.endswith("]"):
            if not await session.press(text[1:-1]):
                shown = ", ".join(f"[{label}]" for label, _ in session.buttons) or "none"
                print(f"{INDENT}(no button {text} to press; buttons: {shown})", file=session.out)
        else:
            await session.handle_line(text, secret=expects_secret(self.app, self.user_id))

    async def _secret(self, mark: Mark, awaited: tuple[str, str] | None) -> str | None:
        kind = mark.kind or kind_of_step(awaited[1] if awaited else None)
        if not mark.refused:
            assert mark.label is not None
            value = generated(kind, mark.label, self.base)
            self.typed.remember(value)
            return value
        if mark.reason is None:
            return WRONG
        answers = self._answers(awaited)
        return refused_example(mark.reason, await self._personal(answers), str(answers.get("question", "")))

    def _answers(self, awaited: tuple[str, str] | None) -> dict[str, Any]:
        if awaited is None:
            return {}
        try:
            return Draft.from_stored(self.app.user_data.get(self.user_id, {}).get(awaited[0])).answers
        except UnreadableDraft:
            return {}

    async def _personal(self, answers: dict[str, Any]) -> list[str]:
        """The customer's own data a password must not contain: the registration's answers, or the
        profile's (recovery, change of password)."""
        if "account_id" in answers:
            account = await AccountStore(self.services.db, clock=self.services.clock).get(
                int(answers["account_id"])
            )
            return personal_data(account) if account is not None else []
        return personal_data_of(answers)


async def run_scripts(paths: Iterable[Path], settings: Settings, *, update: bool = False) -> list[Outcome]:
    """Replay each script; with `update`, rewrite the expected lines of the steps that did not match."""
    scripts = [read(path) for path in paths]  # every script readable before any is replayed
    replayer = Replayer(settings)
    outcomes = []
    try:
        for script in scripts:
            path = script.path
            outcome = await replayer.replay(script)
            if update and not outcome.passed:
                failed = {id(m.step) for m in outcome.mismatches}
                keep = [id(step) not in failed for step in script.steps]
                # What the bot showed of a secret a mask typed (a password typed as the question, in the
                # summary) is written as any text: the script never holds it, and the next run types
                # another generated one.
                actual = [[outcome.typed.scrub(line, ANY_TEXT) for line in lines] for lines in outcome.actual]
                path.write_text(render(script, actual, keep), encoding="utf-8")
            outcomes.append(outcome)
    finally:
        replayer.close()
    return outcomes


def report(outcome: Outcome, *, updated: bool = False) -> str:
    """One line per script, and for a failure a readable diff of every step that did not match."""
    path = outcome.script.path
    if outcome.passed:
        return f"PASS {path} ({len(outcome.script.inputs)} inputs)"
    if updated:
        return f"UPDATED {path} ({len(outcome.mismatches)} step(s) rewritten)"
    details = "\n".join(describe(m, path) for m in outcome.mismatches)
    return f"FAIL {path}\n{details}"
