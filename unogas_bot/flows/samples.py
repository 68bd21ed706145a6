"""Catalogue texts as the tools show them outside a conversation: with sample values in their
placeholders (a diagram's labels, the preview page), as plain text, and the fixed part a replay's
output is recognised by (the flow coverage)."""

from __future__ import annotations

import html
import re
from functools import cache

from unogas_bot.i18n import texts

# What the tools put in a text's {placeholders}: the values a demo conversation would show.
SAMPLES: dict[str, object] = {
    "minutes": 15,
    "seconds": 60,
    "left": 2,
    "email": "mario.rossi@example.it",
    "name": "Mario Rossi",
    "phone": "347 •••• 567",
    "question": "Come si chiamava il mio primo gatto?",
    "command": "/registrati",
    "step": 3,
    "total": 12,
    "min": 8,
    "max": 64,
    "length": 5,
    "max_bytes": 72,
    "bytes": 80,
    "url": "https://www.unogas.it/privacy",
    "version": "2026-12",
    "audit_days": 365,
    "label": "E-mail",
}
_TAGS = re.compile(r"<[^>]+>")


def sample_html(lang: str, key: str) -> str:
    """The message `key` in `lang` as Telegram HTML, its placeholders filled with sample values."""
    template = texts.t(lang, key)
    names = texts.placeholders(template)
    if not names:
        return template
    return texts.t(lang, key, **{name: SAMPLES.get(name, "…") for name in names})


def plain(markup: str) -> str:
    """Telegram HTML as the customer reads it."""
    return html.unescape(_TAGS.sub("", markup))


def signature(lang: str, key: str) -> str:
    """The longest fixed stretch of the message (placeholders and markup left out, whitespace squeezed):
    a replay's output holding it said this message."""
    template = plain(texts.t(lang, key))
    parts = re.split(r"\{[^{}]*\}|\n", template)
    best = max(parts, key=lambda part: len(part.strip()), default="")
    return " ".join(best.split())


ANY = "{*}"  # a flow script's "any text"


@cache
def _filled_lines() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Every line of a catalogue text (both languages) that has placeholders, as a regular expression
    matching it filled in, and the line with `{*}` for each placeholder; the most specific first."""
    found = []
    for table in texts.load().values():
        for template in table.values():
            for line in plain(template).split("\n"):
                parts = re.split(r"\{[a-z_]+\}", line)
                if len(parts) < 2 or not "".join(parts).strip():
                    continue
                literal = [re.sub(r"\s+", " ", part) for part in parts]
                literal[0], literal[-1] = literal[0].lstrip(), literal[-1].rstrip()
                regex = "(.+?)".join(r"\s+".join(map(re.escape, part.split(" "))) for part in literal)
                found.append((re.compile(regex), ANY.join(literal), len("".join(parts))))
    found.sort(key=lambda item: -item[2])
    return tuple((regex, pattern) for regex, pattern, _ in found)


def placeholders_as_any(line: str) -> str | None:
    """`line` (what the bot said, one line) with the values of its catalogue text's placeholders as `{*}`,
    or None when it is no line of a text with placeholders. A recording writes the bot's reply to a secret
    typed at the wrong question this way: the reply may quote it (the characters a phone number cannot
    have, a length), and the replay's secret is another one."""
    text = " ".join(line.split())
    for regex, pattern in _filled_lines():
        if regex.fullmatch(text):
            return pattern
    return None
