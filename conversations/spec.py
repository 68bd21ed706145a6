"""Forms as data: what a form asks, in which order, and the pure rules the engine follows to run it.

Nothing here knows Telegram (conversations/engine.py runs a spec on PTB), so every rule below is tested on
its own, in milliseconds (tests/unit/test_form_spec.py).

A form is a sequence of fields. The next question is always the first applicable step whose answer is
missing, so "go back", "change one answer from the summary" and "Passo 3 di 12" need no code of their own:
forgetting an answer is enough. A step is a field, or the repeat step a `SecretPair` adds after itself.

Catalogue keys come from the field key, so a field is one line: `q_<stem>` asks, `h_<stem>` helps,
`ph_<key>` is the hint in the input field, `label_<key>` names it in a summary, where the stem is the
form's `text_prefix` and the key (`q_login_email`) unless the field names another one (`stem`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from conversations.draft import Answers, Draft
from unogas_bot import rules

SUMMARY = "summary"  # the state of a form with a summary once every step is answered

Stem = str | Callable[[Answers], str]


def as_typed(text: str) -> str:
    """The rule of an answer taken as typed (a login password: any stored password may be typed)."""
    return text


@dataclass(frozen=True)
class Field:
    """One question; its answer is kept in the draft as the rule returned it."""

    key: str
    rule: Callable[..., Any]  # a pure rule from unogas_bot.rules: returns the value or raises rules.Invalid
    given: Callable[[Answers], Any] | None = None  # the rule is called as rule(text, given(answers))
    applies: Callable[[Answers], bool] | None = None  # None: always (no call on every reply)
    optional: bool = False  # "salta" / the Skip button stores None
    choices: tuple[str, ...] = ()  # values offered as buttons, labelled by the catalogue's btn_<value>
    clears: tuple[str, ...] = ()  # later steps to forget when this answer is forgotten
    share_contact: bool = False  # offer Telegram's "share my number" button
    stem: Stem | None = None  # catalogue stem of the question and help, when not prefix + key

    secret: ClassVar[bool] = False  # the customer's message is deleted; the value never stored in clear
    in_summary: ClassVar[bool] = True  # has a label_<key> line and an edit button in a summary
    counted: ClassVar[bool] = True  # a question: numbered in "Passo N di M"

    @property
    def confirms(self) -> str | None:
        """The secret this step repeats (only a `SecretPair`'s repeat step repeats one)."""
        return None

    @property
    def hint(self) -> str | None:
        """The catalogue key of the hint shown in the input field (None with buttons: no input field)."""
        return None if self.choices else f"ph_{self.key}"

    def parse(self, text: str, answers: Answers, pressed: bool = False) -> Any:
        """The value of a reply (`pressed`: the value of a button of this question); rules.Invalid if it
        is not one."""
        if self.choices and pressed:
            if text in self.choices:
                return text
            raise rules.Invalid("choice.unknown")
        if self.optional and rules.replies.is_skip(text):
            return None
        return self.rule(text) if self.given is None else self.rule(text, self.given(answers))

    def is_answered(self, draft: Draft) -> bool:
        return self.key in draft.answers

    def drop(self, draft: Draft) -> None:
        """Forget what this step keeps (not what depends on it: `FormSpec.forget` does that)."""
        draft.answers.pop(self.key, None)


@dataclass(frozen=True)
class Notice(Field):
    """A text the customer acknowledges with its button before the questions (the privacy notice): asked
    like a question with `choices`, but no question of the form: not numbered, not in a summary."""

    in_summary: ClassVar[bool] = False
    counted: ClassVar[bool] = False


@dataclass(frozen=True)
class Secret(Field):
    """A question whose answer is a secret (the recovery's security answer): the message is deleted and the
    draft keeps only this process's keyed digest, enough to tell the step is answered and useless to
    anyone else. A `consumed` secret (the login password) leaves not even that: the value goes to the
    form's `on_value` alone, and the step stays unanswered."""

    consumed: bool = False

    secret: ClassVar[bool] = True

    @property
    def hint(self) -> str | None:
        return "ph_secret"

    def is_answered(self, draft: Draft) -> bool:
        return not self.consumed and self.key in draft.digests

    def drop(self, draft: Draft) -> None:
        draft.drop_digests(self.key)


@dataclass(frozen=True)
class SecretPair(Secret):
    """A secret typed twice (a new password, a security answer). The first entry is kept as a keyed
    digest; the repetition (normalised by `normalize`) is compared with it, then bcrypt-hashed into
    `<key>_hash`, the digest dropped. A repetition that differs says `<key>_mismatch` and asks both again.
    The repeat step, `<key>_repeat`, follows the first in the form."""

    normalize: Callable[[str], str] = as_typed

    def __post_init__(self) -> None:
        if self.consumed or self.optional or self.choices:
            raise ValueError(f"{self.key}: a secret pair is typed, twice, and kept")

    @property
    def store_as(self) -> str:
        return f"{self.key}_hash"

    @property
    def mismatch(self) -> str:
        return f"{self.key}_mismatch"

    @cached_property
    def repeat(self) -> Repeat:
        stem = f"{self.stem}_repeat" if isinstance(self.stem, str) else None
        return Repeat(f"{self.key}_repeat", self.normalize, applies=self.applies, stem=stem, of=self)

    def is_answered(self, draft: Draft) -> bool:
        return self.key in draft.digests or self.store_as in draft.answers


@dataclass(frozen=True)
class Repeat(Field):
    """The second step of a `SecretPair`, made by it (never listed in a form's fields)."""

    of: SecretPair = field(kw_only=True)

    secret: ClassVar[bool] = True
    in_summary: ClassVar[bool] = False

    @property
    def confirms(self) -> str | None:
        return self.of.key

    @property
    def hint(self) -> str | None:
        return "ph_repeat"

    def is_answered(self, draft: Draft) -> bool:
        return self.of.store_as in draft.answers

    def drop(self, draft: Draft) -> None:
        # Changing the repetition means typing the pair again: the first entry's digest goes too.
        draft.answers.pop(self.of.store_as, None)
        draft.drop_digests(self.of.key)


@dataclass(frozen=True)
class Checkpoint:
    """A check the form makes once `checks` are answered, before it asks `before` (the registry's identity
    check before the login data). Its result is kept in the answers under `key`; forgetting any of the
    checked answers forgets it, so the check runs again. `clears` are the answers given for the identity
    the check established (the phone, the login data): the form forgets them (`forget_dependants`) when
    the check fails or establishes another identity, so nothing passes to another customer's profile."""

    key: str
    checks: tuple[str, ...]
    before: str
    clears: tuple[str, ...] = ()


@dataclass(frozen=True)
class FormSpec:
    """A form: its fields and checkpoints, how it is opened, and the rules the engine follows."""

    name: str
    fields: tuple[Field, ...]
    entry_commands: tuple[str, ...]
    deep_link: str | None = None  # t.me/<bot>?start=<deep_link> opens this form directly
    intro: str | None = None  # catalogue key said when the form starts
    text_prefix: str = ""  # catalogue stems: q_<text_prefix><key>
    checkpoints: tuple[Checkpoint, ...] = ()
    show_progress: bool = True
    has_summary: bool = False

    def __post_init__(self) -> None:
        _check(self)

    @cached_property
    def steps(self) -> tuple[Field, ...]:
        """What the form asks, in order: the fields, each pair's repeat right after it."""
        return tuple(_steps(self.fields))

    @cached_property
    def by_key(self) -> dict[str, Field]:
        return {step.key: step for step in self.steps}

    @cached_property
    def states(self) -> tuple[str, ...]:
        """Every state a conversation of this form can be in (PTB keeps it, persisted)."""
        return (*self.by_key, SUMMARY)

    @cached_property
    def _dependants(self) -> dict[str, tuple[str, ...]]:
        """Per step, the steps forgotten with it: its `clears`, and a pair's repeat."""
        out: dict[str, tuple[str, ...]] = {}
        for step in self.steps:
            repeat = (step.repeat.key,) if isinstance(step, SecretPair) else ()
            out[step.key] = (*repeat, *step.clears)
        return out

    # --- the engine's rules ---------------------------------------------------------------------------
    def applicable(self, answers: Answers) -> list[Field]:
        # Most steps always apply: no call for those (this runs several times per reply).
        return [s for s in self.steps if s.applies is None or s.applies(answers)]

    def next_step(self, draft: Draft) -> Field | None:
        """The question to ask: the first applicable one not answered (None: all are)."""
        for step in self.applicable(draft.answers):
            if not step.is_answered(draft):
                return step
        return None

    def progress(self, draft: Draft, step: Field) -> tuple[int, int]:
        """("Passo", "di"): where `step` stands among the steps that apply to these answers."""
        steps = [s for s in self.applicable(draft.answers) if s.counted]
        return steps.index(step) + 1, len(steps)

    def due_checkpoint(self, draft: Draft) -> Checkpoint | None:
        """The checkpoint to pass now: not passed, and every applicable step before its `before` answered."""
        for checkpoint in self.checkpoints:
            if checkpoint.key in draft.answers:
                continue
            for step in self.applicable(draft.answers):
                if step.key == checkpoint.before:
                    return checkpoint
                if not step.is_answered(draft):
                    break
        return None

    def forget(self, draft: Draft, *keys: str) -> None:
        """Forget answers and everything that depends on them: steps they clear, a pair's repeat, the
        result of a checkpoint that checked them. /indietro no longer goes back to them."""
        for key in keys:
            step = self.by_key.get(key)
            if step is not None:  # a key that is no step (an older form's) only leaves the history
                step.drop(draft)
                for checkpoint in self.checkpoints:
                    if key in checkpoint.checks:
                        draft.answers.pop(checkpoint.key, None)
                self.forget(draft, *self._dependants[key])
            if key in draft.history:
                draft.history.remove(key)

    def forget_dependants(self, draft: Draft, checkpoint: Checkpoint) -> None:
        """Forget what was answered for the identity `checkpoint` established (its `clears`)."""
        self.forget(draft, *checkpoint.clears)

    def back(self, draft: Draft) -> str | None:
        """/indietro: forget the last answer; the step to ask again, or None when there was none. A repeat
        is no step to go back to: going back from it asks the pair again."""
        while draft.history:
            key = draft.history[-1]
            self.forget(draft, key)
            step = self.by_key.get(key)
            if step is not None and step.confirms is None and self._applies(step, draft.answers):
                return key
        return None

    # --- catalogue keys ---------------------------------------------------------------------------------
    def question_key(self, step: Field, answers: Answers) -> str:
        return "q_" + self._stem(step, answers)

    def help_key(self, step: Field, answers: Answers) -> str:
        return "h_" + self._stem(step, answers)

    @staticmethod
    def label_key(step: Field) -> str:
        return f"label_{step.key}"

    def _stem(self, step: Field, answers: Answers) -> str:
        if step.stem is None:
            return self.text_prefix + step.key
        return step.stem if isinstance(step.stem, str) else step.stem(answers)

    @staticmethod
    def _applies(step: Field, answers: Answers) -> bool:
        return step.applies is None or step.applies(answers)


def _steps(fields: Iterable[Field]) -> Iterable[Field]:
    for f in fields:
        yield f
        if isinstance(f, SecretPair):
            yield f.repeat


def _check(spec: FormSpec) -> None:
    """A spec's mistakes fail when the module is imported, not when a customer reaches them."""
    order = {step.key: i for i, step in enumerate(_steps(spec.fields))}
    if len(order) != len(list(_steps(spec.fields))):
        raise ValueError(f"{spec.name}: two steps share a key")
    for key in order:
        if key.startswith("_") or key == SUMMARY:
            raise ValueError(f"{spec.name}: {key!r} is kept for the engine")
    for f in spec.fields:
        if isinstance(f, Repeat):
            raise ValueError(f"{spec.name}: {f.key} is made by its SecretPair, not listed")
        # Only later steps: forgetting then always ends (no step forgets one before it).
        if any(order.get(k, -1) <= order[f.key] for k in f.clears):
            raise ValueError(f"{spec.name}: {f.key} clears a step that is not after it")
    for cp in spec.checkpoints:
        if cp.key in order or cp.before not in order:
            raise ValueError(f"{spec.name}: checkpoint {cp.key} is a step, or before no step")
        if any(order.get(k, len(order)) >= order[cp.before] for k in cp.checks):
            raise ValueError(f"{spec.name}: checkpoint {cp.key} checks a step not asked before it")
        # Only steps after every checked one: forgetting then always ends, as for a field's `clears`.
        last_checked = max(order.get(k, -1) for k in cp.checks)
        if any(order.get(k, -1) <= last_checked for k in cp.clears):
            raise ValueError(f"{spec.name}: checkpoint {cp.key} clears a step not after what it checks")
