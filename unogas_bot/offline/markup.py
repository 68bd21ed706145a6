"""Message markup as Telegram's servers read it: HTML to plain text and entities, keyboards to labels.

Telegram parses HTML server side and refuses malformed markup with "can't parse entities"; doing the same
here makes unescaped user input fail in the tests as it would in production. Only HTML is parsed: the bot
sends HTML or plain text, so a Markdown parse mode is refused (see :func:`parse_text`) rather than parsed
by a second and third parser that nothing exercises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

JSONDict: TypeAlias = dict[str, Any]


class EntityParseError(ValueError):
    """Malformed markup; the message is Telegram's text after "Bad Request: can't parse entities: "."""


class UnsupportedParseMode(ValueError):
    """A parse mode the stand-in does not parse: anything but HTML or none."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets and lengths."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    # Telegram reports parse errors at UTF-8 byte offsets.
    return len(text[:index].encode("utf-8"))


class _TextBuilder:
    """Accumulates plain text while tracking the UTF-16 offset needed for entities."""

    __slots__ = ("offset", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offset = 0

    def add(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.offset += utf16_len(chunk)

    def text(self) -> str:
        return "".join(self.parts)


def _entity(kind: str, start: int, end: int, **extra: Any) -> JSONDict | None:
    if end <= start:  # Telegram silently drops empty entities
        return None
    return {"type": kind, "offset": start, "length": end - start, **extra}


_HTML_TAGS: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAME_RE: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_HTML_ATTR_RE: Final = re.compile(r"\s*([a-zA-Z_-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+)))?")
_HTML_CHARREF_RE: Final = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_HTML_NAMED: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_SPECIAL_RE: Final = re.compile(r"[<&]")


@dataclass(slots=True)
class _OpenTag:
    name: str
    start: int
    attrs: dict[str, str]


def _html_attrs(raw: str, text: str, index: int) -> dict[str, str]:
    attrs: dict[str, str] = {}
    pos = 0
    raw = raw.rstrip()
    while pos < len(raw):
        match = _HTML_ATTR_RE.match(raw, pos)
        if not match or match.end() == pos:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, index)}")
        value = next((g for g in match.groups()[1:] if g is not None), "")
        attrs[match.group(1).lower()] = _decode_html_charrefs(value)
        pos = match.end()
    return attrs


def _decode_html_charrefs(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref in _HTML_NAMED:
            return _HTML_NAMED[ref]
        code = int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:])
        return chr(code) if 0 < code <= 0x10FFFF else match.group(0)

    return _HTML_CHARREF_RE.sub(replace, text)


def _open_html_tag(inner: str, text: str, index: int, start: int) -> _OpenTag:
    """The start tag ``<inner>`` found at ``text[index]``, checked as Telegram checks it; its entity will
    start at the UTF-16 offset ``start`` of the plain text."""
    match = _HTML_NAME_RE.match(inner)
    name = match.group(0).lower() if match else ""
    where = f"at byte offset {_byte_offset(text, index)}"
    if name not in _HTML_TAGS:
        raise EntityParseError(f'Unsupported start tag "{name}" {where}')
    attrs = _html_attrs(inner[len(name) :], text, index)
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError(f'Tag "span" must have class "tg-spoiler" {where}')
    if name == "tg-emoji" and not attrs.get("emoji-id"):
        raise EntityParseError(f'Tag "tg-emoji" must have attribute "emoji-id" {where}')
    return _OpenTag(name, start, attrs)


def parse_html(text: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram-flavoured HTML into (plain text, entities); raise EntityParseError like Telegram."""
    out = _TextBuilder()
    stack: list[_OpenTag] = []
    entities: list[JSONDict | None] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "<":
            end = text.find(">", i)
            if end == -1:
                raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
            inner = text[i + 1 : end]
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, i)}")
                top = stack[-1]
                if name != top.name:
                    raise EntityParseError(
                        f"Unmatched end tag at byte offset {_byte_offset(text, i)}, "
                        f'expected "</{top.name}>", found "</{name}>"'
                    )
                stack.pop()
                entities.append(_close_html_tag(top, out.offset, stack))
            else:
                stack.append(_open_html_tag(inner, text, i, out.offset))
            i = end + 1
        elif char == "&":
            match = _HTML_CHARREF_RE.match(text, i)
            if match:
                out.add(_decode_html_charrefs(match.group(0)))
                i = match.end()
            else:  # a bare "&" is kept literally
                out.add("&")
                i += 1
        else:
            # Plain text up to the next tag or character reference, found by the regex engine rather than
            # a Python loop over every character.
            special = _HTML_SPECIAL_RE.search(text, i)
            j = special.start() if special else n
            out.add(text[i:j])
            i = j
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.text(), sorted((e for e in entities if e), key=lambda e: (e["offset"], -e["length"]))


def _close_html_tag(tag: _OpenTag, end: int, stack: list[_OpenTag]) -> JSONDict | None:
    kind = _HTML_TAGS[tag.name]
    if kind == "code" and stack and stack[-1].name == "pre":
        # <pre><code class="language-x"> is a single pre entity with a language
        language = tag.attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1].attrs["language"] = language.removeprefix("language-")
        return None
    if kind == "text_link":
        href = tag.attrs.get("href")
        return _entity(kind, tag.start, end, url=href) if href else None
    if kind == "pre" and tag.attrs.get("language"):
        return _entity(kind, tag.start, end, language=tag.attrs["language"])
    if kind == "blockquote" and "expandable" in tag.attrs:
        return _entity("expandable_blockquote", tag.start, end)
    if kind == "custom_emoji":
        return _entity(kind, tag.start, end, custom_emoji_id=tag.attrs["emoji-id"])
    return _entity(kind, tag.start, end)


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[JSONDict]]:
    """Parse ``text`` according to ``parse_mode``: None (plain text) or HTML, in any letter case.

    Markdown and MarkdownV2 raise :class:`UnsupportedParseMode` like any unknown mode: the bot never sends
    them, so a message that does is a mistake the tests should see, not something to render.
    """
    mode = (parse_mode or "").lower()
    if not mode:
        return text, []
    if mode == "html":
        return parse_html(text)
    # Worded as Telegram's "Bad Request: unsupported parse_mode", with the reason the stand-in refuses it.
    raise UnsupportedParseMode(f"unsupported parse_mode {parse_mode!r}: the stand-in parses HTML only")


def render_text(text: str, parse_mode: str | None) -> str:
    """What the user sees for ``text`` sent with ``parse_mode``; the raw text if the markup is broken."""
    try:
        return parse_text(text, parse_mode)[0]
    except EntityParseError:
        return text


def keyboard_labels(reply_markup: JSONDict | None) -> list[str]:
    """Button labels of an inline or reply keyboard, row by row; [] for no keyboard."""
    if not reply_markup:
        return []
    rows = reply_markup.get("inline_keyboard") or reply_markup.get("keyboard") or []
    labels: list[str] = []
    for row in rows:
        for button in row:
            labels.append(button if isinstance(button, str) else str(button.get("text", "")))
    return labels
