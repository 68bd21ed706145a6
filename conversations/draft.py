"""A form's draft: the customer's answers so far and the engine's own state, typed and versioned.

PTB's persistence keeps `user_data` as JSON (storage/persistence.py), so between updates a draft is a
plain dict under `user_data[form.name]`. Each step reads it into a `Draft` (a copy: the stored dict is
only replaced when the step succeeds) and writes a new dict back at its end.

The stored layout is flat so that a draft written before `_v` existed still reads: the answers under
their field keys, next to the engine's keys, which all start with an underscore (no field key does):

    _v        the layout's version (absent: version 0, the same layout without the marker)
    _at       the question being asked (a step key, or "summary")
    _n        the serial of that question, carried by its buttons (an older button is stale)
    _history  the answered steps in order, for /indietro
    _errors   invalid replies per step, for the rescue buttons
    _touched  when the draft last changed (ISO time): the inactivity timeout, and housekeeping
    _rk       whether the last message showed a reply keyboard (the next one takes it away)
    _mac      first entries of secrets as this process's keyed digests (never a secret in clear); next to
              each, under `<key>~words`, the digest of its words only (`secret_guard.words`), so the
              same secret typed another way (case, punctuation) is still recognised

A dict that does not read as this layout (a later version, a key or a type it does not know) raises
`UnreadableDraft`; the engine treats it as an expired draft: the customer is told and starts again.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

VERSION = 1
WORDS = (
    "~words"  # suffix of a secret's second digest in `_mac`: its words only (conversations/secret_guard.py)
)

Answers = dict[str, Any]


class UnreadableDraft(ValueError):
    """A stored draft this code cannot read: to be treated as expired, never guessed at."""


@dataclass
class Draft:
    """One form's draft while a step works on it."""

    answers: Answers = field(default_factory=dict)  # field keys and what checkpoints established
    at: str | None = None
    serial: int = 0
    history: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    touched: datetime | None = None
    reply_keyboard: bool = False
    digests: dict[str, str] = field(default_factory=dict)

    # --- the engine's small rules ---------------------------------------------------------------------
    def answered_step(self, key: str, *, remembered: bool = True) -> None:
        """`key` got a valid answer: its error count goes, and it becomes a step /indietro can go back
        to (unless nothing of it was `remembered`, e.g. the login password)."""
        self.errors.pop(key, None)
        if remembered and key not in self.history:
            self.history.append(key)

    def drop_digests(self, key: str) -> None:
        """Forget a secret's keyed digests (the secret's and its words')."""
        self.digests.pop(key, None)
        self.digests.pop(key + WORDS, None)

    def count_error(self, key: str, limit: int) -> bool:
        """One more invalid reply to `key`; True when that makes `limit` (the count then starts over)."""
        count = self.errors.get(key, 0) + 1
        self.errors[key] = 0 if count >= limit else count
        return count >= limit

    def restart(self) -> None:
        """Forget every answer, as the "start again" button does; the serial, the time and the keyboard
        flag stay (they describe the chat, not the answers)."""
        self.answers.clear()
        self.history.clear()
        self.errors.clear()
        self.digests.clear()
        self.at = None

    def idle_longer_than(self, now: datetime, timeout: timedelta) -> bool:
        """Whether the customer has left this draft alone for longer than `timeout`."""
        return self.touched is not None and now - self.touched > timeout

    # --- the stored form ------------------------------------------------------------------------------
    def to_stored(self) -> dict[str, Any]:
        """The JSON dict kept in `user_data`; empty engine parts are left out (a draft per customer in
        memory: every key counts)."""
        stored: dict[str, Any] = {"_v": VERSION, "_at": self.at, "_n": self.serial, "_history": self.history}
        if self.errors:
            stored["_errors"] = self.errors
        if self.touched is not None:
            stored["_touched"] = self.touched.isoformat()
        stored["_rk"] = self.reply_keyboard
        if self.digests:
            stored["_mac"] = self.digests
        stored.update(self.answers)
        return stored

    @classmethod
    def from_stored(cls, stored: object) -> Draft:
        """A copy of the stored dict as a `Draft`; `UnreadableDraft` if it is not a layout this reads."""
        if not isinstance(stored, Mapping):
            raise UnreadableDraft("not a mapping")
        answers: Answers = {}
        engine: dict[str, Any] = {}
        for key, value in stored.items():
            if not isinstance(key, str):
                raise UnreadableDraft("a key that is not text")
            if key.startswith("_"):
                engine[key] = value
            else:
                answers[key] = _copy(value)
        version = engine.pop("_v", 0)
        if version not in (0, VERSION):
            raise UnreadableDraft(f"version {version!r}")
        draft = cls(
            answers=answers,
            at=_checked(engine.pop("_at", None), (str, type(None)), "_at"),
            serial=_checked(engine.pop("_n", 0), int, "_n"),
            history=_texts(engine.pop("_history", []), "_history"),
            errors=_mapping(engine.pop("_errors", {}), int, "_errors"),
            touched=_time(engine.pop("_touched", None)),
            reply_keyboard=_checked(engine.pop("_rk", False), bool, "_rk"),
            digests=_mapping(engine.pop("_mac", {}), str, "_mac"),
        )
        if engine:
            raise UnreadableDraft(f"unknown engine keys {sorted(engine)}")
        return draft


def touched_at(value: object) -> datetime | None:
    """When a form last changed this `user_data` value, if it is a readable draft (housekeeping's test
    of "is this a draft, and is it abandoned")."""
    if not isinstance(value, Mapping) or "_touched" not in value:
        return None
    try:
        return _time(value["_touched"])
    except UnreadableDraft:
        return None


# --- reading, checked ------------------------------------------------------------------------------------

_ATOMS = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any) -> Any:
    """A deep copy of JSON data, without `copy.deepcopy`'s memo and dispatch (several times slower, and
    this runs on every customer reply); anything that is not JSON data is still handed to it."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    return copy.deepcopy(value)


def _checked(value: Any, kinds: type | tuple[type, ...], name: str) -> Any:
    # bool is an int in Python: a serial of True is as wrong as one of "3".
    if not isinstance(value, kinds) or (kinds is int and isinstance(value, bool)):
        raise UnreadableDraft(f"{name} is {type(value).__name__}")
    return value


def _texts(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UnreadableDraft(f"{name} is not a list of text")
    return list(value)


def _mapping(value: Any, kind: type, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnreadableDraft(f"{name} is not a mapping")
    return {_checked(k, str, name): _checked(v, kind, name) for k, v in value.items()}


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(_checked(value, str, "_touched"))
    except ValueError:
        raise UnreadableDraft("_touched is not a time") from None
    # Drafts have always been written with an aware time; a naive one is read as UTC, never compared
    # with an aware clock (that would raise).
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
