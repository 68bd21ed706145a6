"""Secrets in flow scripts: what a recording writes in place of one, and what a replay types for it.

A recording never holds a password or a security answer, right or wrong: every message the bot treats as
secret (typed at a secret question, or deleted by the bot for safety) is written as a mask. The mask says
enough for the replay to type a secret that the bot treats the same way:

    > ••••••••                      the script's password (at a password question) or answer
    > •••••••• (2)                  a second, different valid one of that kind (a new password, say)
    > •••••••• (answer)             the script's answer where a password would be assumed
    > •••••••• (refused)            a wrong one: a wrong password, a wrong answer, a repetition that differs
    > •••••••• (refused: password.common)
                                    one the bot's rule refuses for that reason (too short, common, ...)

The recorder tells these apart with `SecretBook`, which keeps the values typed in the session in memory
only; the replayer types `typed_for(...)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from unogas_bot import rules

MASK = "••••••••"  # what a transcript shows for a password or security answer
PASSWORD, ANSWER = "password", "answer"
REFUSED = "refused"
_MARK = re.compile(
    rf"^{MASK}(?:\s+\((?:(?P<kind>{PASSWORD}|{ANSWER})\s*)?(?P<label>\d+)?\)"
    rf"|\s+\({REFUSED}(?::\s*(?P<reason>[\w.]+))?\))?$"
)
# What a replay types for a refused secret with no reason: wrong for every check the bot makes (it is
# never a password or answer a replay sets), and valid for the rules, so it reaches the check.
WRONG = "Nessuna di queste 0000"


@dataclass(frozen=True)
class Mark:
    """A masked input: a valid secret (`label` 1, 2, ... of `kind`, None: the question's kind) or a refused
    one (`label` None), with the rule's `reason` when a rule refused it."""

    label: int | None = 1
    kind: str | None = None
    reason: str | None = None

    @property
    def refused(self) -> bool:
        return self.label is None

    def text(self) -> str:
        if self.refused:
            return f"{MASK} ({REFUSED}: {self.reason})" if self.reason else f"{MASK} ({REFUSED})"
        parts = [p for p in (self.kind, str(self.label) if self.label != 1 else None) if p]
        return f"{MASK} ({' '.join(parts)})" if parts else MASK


def parse_mark(text: str) -> Mark | None:
    """The mark of a typed line, or None when the line is no mask."""
    match = _MARK.match(text.strip())
    if match is None:
        return None
    if text.strip() != MASK and match.group("label") is None and match.group("kind") is None:
        return Mark(label=None, reason=match.group("reason"))
    label = int(match.group("label")) if match.group("label") else 1
    return Mark(label=label, kind=match.group("kind"))


def kind_of_step(step_key: str | None) -> str:
    """Which secret a question asks for: an answer at an answer question, else a password."""
    return ANSWER if step_key and ANSWER in step_key else PASSWORD


def comparable(kind: str, value: str) -> str:
    """Answers are compared as the bot compares them (case, accents, spaces); passwords exactly."""
    return rules.answer.normalize(value) if kind == ANSWER else value


# A secret shorter than this is masked where it is a whole message, not looked for inside others: a refused
# "x" would otherwise mask every "x" the bot says.
SHORTEST_FOUND_INSIDE = 3


class SecretBook:
    """The secrets typed in a recorded session, numbered by kind in order of first appearance, and every
    other value typed as a secret (a refused one, right or wrong). In memory only: what reaches the file is
    their numbers and masks."""

    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {PASSWORD: [], ANSWER: []}
        self._seen: set[str] = set()  # every secret typed, folded (see `_folded`)
        self._found_inside: set[str] = set()  # those looked for inside other texts too
        self._inside: re.Pattern[str] | None = None  # finds those inside a text; None: to rebuild

    def label(self, kind: str, value: str, *, add: bool) -> int | None:
        """The number of `value` among the `kind` secrets (1-based); a new one gets the next number when
        `add`, else None."""
        known = self._values[kind]
        value = comparable(kind, value)
        if value in known:
            return known.index(value) + 1
        if not add:
            return None
        known.append(value)
        self.remember(value)
        return len(known)

    def find(self, value: str) -> tuple[str, int] | None:
        """(kind, number) of a known secret of either kind, passwords first; a password in another case
        (typed with Caps Lock) is that password."""
        for kind in (PASSWORD, ANSWER):
            label = self.label(kind, value, add=False)
            if label is not None:
                return kind, label
        folded = value.strip().casefold()
        for number, known in enumerate(self._values[PASSWORD], 1):
            if known.strip().casefold() == folded:
                return PASSWORD, number
        return None

    def remember(self, value: str, *, inside: bool = True) -> None:
        """`value` was typed as a secret (valid or refused): mask it wherever it is typed again, and with
        `inside` wherever it shows up inside a text too. A value a rule refused is not looked for inside
        texts: it is public (a common password), in clear anyway (an answer found in the question) or
        too weak to be anyone's secret, and may well be a word the bot says."""
        folded = _folded(value)
        if not folded:
            return
        self._seen.add(folded)
        if inside and folded not in self._found_inside:
            self._found_inside.add(folded)
            self._inside = None

    def knows(self, value: str) -> bool:
        """Is `value` a secret typed in this session (in any case, spaces around it aside)?"""
        return _folded(value) in self._seen or self.find(value) is not None

    def scrub(self, text: str, mask: str = MASK) -> str:
        """`text` with every secret of this session found inside it (whole words, any case) replaced by
        `mask`."""
        if self._inside is None:
            found = sorted(
                (v for v in self._found_inside if len(v) >= SHORTEST_FOUND_INSIDE), key=len, reverse=True
            )
            alternatives = "|".join(r"\s+".join(map(re.escape, v.split())) for v in found) or r"(?!)"
            self._inside = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
        return self._inside.sub(lambda _: mask, text)


def _folded(value: str) -> str:
    """How `SecretBook` compares what it has seen: spaces squeezed, case folded."""
    return " ".join(value.split()).casefold()


def generated(kind: str, label: int, base: dict[str, str]) -> str:
    """The value a replay types for secret `label` of `kind`: `base[kind]` (the script's header or the
    run's generated value) for 1, a different valid one for each further number."""
    if label == 1:
        return base[kind]
    if kind == PASSWORD:
        return f"{base[PASSWORD]} onda {label}"
    return f"{base[ANSWER]} bis {label}"


def refused_example(reason: str, personal: Iterable[str] = (), question: str = "") -> str | None:
    """A secret the bot's rule refuses for `reason` (`personal`: the customer's data, `question`: the
    security question); None for a reason this cannot produce."""
    examples = {
        "password.too_short": "Onda7",
        "password.too_long": "Onda lunga " * 7,
        "password.control_chars": "Onda\x07sul molo 7",
        "password.too_many_bytes": "€" * 30,
        "password.common": "password123",
        "answer.too_short": "x",
        "answer.too_long": "risposta " * 8,
        "answer.control_chars": "Onda\x07blu",
        "answer.too_many_bytes": "€" * 25,
    }
    if reason in examples:
        return examples[reason]
    if reason == "password.personal":
        fragments = [word for item in personal for word in re.findall(r"[^\W\d_]{3,}", item)]
        return f"Molo {fragments[0]} 7788 al faro" if fragments else None
    if reason == "answer.in_question":
        words = re.findall(r"\w{2,}", question)
        return max(words, key=len) if words else None
    return None
