"""`flows preview`: every message the bot can send, as the customer sees it, on one static HTML page (as
aiogram-dialog's render_preview does), for support staff and translators to review the wording in one
place.

Form by form, in the order a customer meets them: the intro, each question (with its progress line, its
buttons and the hint in the input field), its /aiuto text, every error its rule can give, the repetition
that differs, the summary, then every refusal and every end of the form (flows/paths.py), and the
messages every form shares. Then whatever else the catalogue holds (the welcome, /profilo, the command
menu...), so no text goes unreviewed. Each message is a Telegram chat bubble, Italian and English side
by side, its placeholders filled with sample values; the catalogue key is shown above it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from conversations.spec import Field, FormSpec, Repeat, SecretPair
from unogas_bot.flows.diagram import specs
from unogas_bot.flows.paths import PATHS, Exit
from unogas_bot.flows.samples import SAMPLES, sample_html
from unogas_bot.i18n import texts

# Catalogue keys shown inside other messages (buttons, labels, hints, parts of a message), not as bubbles.
INLINE = ("btn_", "label_", "ph_", "kind_", "cmd_")
PARTS = {"summary_line", "phone_none", "progress", "help_prefix", "export_title"}
# Replies a form says on its way that are no refusal and no end (a checkpoint passed, the question shown).
NOTES = {"registration": ("verified",), "recovery": ("rec_question",)}
# What every form may say at any question.
SHARED = ("too_many_invalid", "text_only", "already_first", "busy_other_flow", "secret_expired", "hash_wait")
SHARED_ENDS = ("cancelled", "expired")
# A rule's module (and function) -> the prefixes of the errors it gives (catalogue keys e_<prefix>.*).
_ERRORS = {
    "names.person_name": ("name",),
    "names.company_name": ("company",),
    "replies.parse_kind": ("kind", "choice"),
    "privacy.acknowledge": ("privacy",),
    "own_data.press_the_button": ("erase",),
    "recovery.security_answer": ("answer.empty",),
    "answer.validate_question": ("question",),
    "spec.as_typed": (),
}
SAMPLE_ANSWERS = {
    "customer_code": "UG-100234",
    "kind": "kind_person",
    "first_name": "Mario",
    "last_name": "Rossi",
    "tax_code": "RSS•••••••••••1H",
    "phone": "phone_none",
    "email": "mario.rossi@example.it",
    "question": "Come si chiamava il mio primo gatto?",
}


@dataclass(frozen=True)
class Message:
    """One bubble: a catalogue key (or a made-up one for a composed message), its HTML per language, its
    inline buttons (rows of catalogue keys or texts), a reply keyboard, the input field's hint."""

    key: str
    what: str
    html: dict[str, str]
    buttons: tuple[tuple[str, ...], ...] = ()
    keyboard: tuple[str, ...] = ()
    hint: str | None = None


def _msg(key: str, what: str, **extra: object) -> Message:
    return Message(key, what, {lang: sample_html(lang, key) for lang in texts.LANGUAGES}, **extra)  # type: ignore[arg-type]


def _errors(step: Field) -> list[str]:
    fn = step.rule
    module = getattr(fn, "__module__", "").rsplit(".", 1)[-1]
    prefixes = _ERRORS.get(f"{module}.{getattr(fn, '__name__', '')}", (module,))
    keys = texts.load()["it"]
    return [
        k
        for k in keys
        if k.startswith("e_") and any(k[2:].startswith(p + ("" if "." in p else ".")) for p in prefixes)
    ]


def form_messages(spec: FormSpec) -> Iterator[Message]:
    """Every message of one form, in the order a customer meets them."""
    if spec.intro:
        yield _msg(spec.intro, "intro")
    if spec.name == "registration":
        yield _msg("privacy_notice", "intro")
    for step in spec.steps:
        yield _question(spec, step)
        help_key = spec.help_key(step, {"kind": "person"})
        helps = {
            lang: texts.t(lang, "help_prefix", help=texts.Raw(texts.t(lang, help_key)))
            for lang in texts.LANGUAGES
        }
        yield Message(help_key, "/aiuto", helps)
        if step.stem is not None and not isinstance(step.stem, str):  # the business wording too
            yield _question(spec, step, {"kind": "business"})
            business = spec.help_key(step, {"kind": "business"})
            helps = {
                lang: texts.t(lang, "help_prefix", help=texts.Raw(texts.t(lang, business)))
                for lang in texts.LANGUAGES
            }
            yield Message(business, "/aiuto", helps)
        for key in _errors(step):
            yield _msg(key, "error")
        if isinstance(step, SecretPair):
            yield _msg(step.mismatch, "the repetition differs")
    for key in NOTES.get(spec.name, ()):
        yield _msg(key, "note")
    if spec.has_summary:
        yield _summary(spec)
        helps = {
            lang: texts.t(lang, "help_prefix", help=texts.Raw(texts.t(lang, "h_summary")))
            for lang in texts.LANGUAGES
        }
        yield Message("h_summary", "/aiuto", helps)
        yield _msg("press_save", "error")
    seen: set[str] = set()
    for path in PATHS.get(spec.name, ()):
        if path.reply not in seen:
            seen.add(path.reply)
            what = "end" if isinstance(path, Exit) else "refused: the question again"
            yield _msg(path.reply, what)


def _question(spec: FormSpec, step: Field, answers: dict[str, str] | None = None) -> Message:
    answers = answers or {}
    key = spec.question_key(step, answers)
    bodies = {}
    for lang in texts.LANGUAGES:
        body = texts.t(lang, key)
        if spec.show_progress and step.counted:
            counted = [s for s in spec.applicable(answers) if s.counted]
            number = counted.index(step) + 1 if step in counted else 1
            body = texts.t(lang, "progress", step=number, total=len(counted)) + "\n" + body
        bodies[lang] = body
    buttons = tuple(f"btn_{value}" for value in step.choices)
    keyboard = tuple(
        k for k, on in (("btn_share_phone", step.share_contact), ("btn_skip", step.optional)) if on
    )
    kind = "secret question" if step.secret else "question"
    if isinstance(step, Repeat):
        kind = "secret question, repeated"
    return Message(
        key, kind, bodies, (buttons,) if buttons else (), keyboard, step.hint if not buttons else None
    )


def _summary(spec: FormSpec) -> Message:
    steps = [s for s in spec.steps if s.in_summary]
    bodies = {}
    for lang in texts.LANGUAGES:
        lines = []
        for step in steps:
            if step.secret or step.key not in SAMPLE_ANSWERS:
                continue
            value = SAMPLE_ANSWERS[step.key]
            shown = texts.t(lang, value) if value.startswith(("kind_", "phone_")) else value
            lines.append(
                texts.t(lang, "summary_line", label=texts.t(lang, spec.label_key(step)), value=shown)
            )
        bodies[lang] = texts.t(lang, "summary", lines=texts.Raw("\n".join(lines)))
    edits = tuple(f"edit:{spec.label_key(s)}" for s in steps)
    rows = (("btn_save", "btn_cancel"), *(edits[i : i + 2] for i in range(0, len(edits), 2)))
    return Message("summary", "summary", bodies, rows)


def shared_messages() -> Iterator[Message]:
    for key in SHARED:
        buttons = (("btn_continue", "btn_restart", "btn_cancel"),) if key == "too_many_invalid" else ()
        yield _msg(key, "any question", buttons=buttons)
    for key in SHARED_ENDS:
        yield _msg(key, "end, from any question")


def other_messages(shown: set[str]) -> Iterator[Message]:
    """The catalogue's other texts, in catalogue order: nothing goes unreviewed."""
    for key in texts.load()["it"]:
        if key in shown or key in PARTS or key.startswith(INLINE) or key.startswith(("q_", "h_", "e_")):
            continue
        yield _msg(key, "outside the forms")


# --- the page ----------------------------------------------------------------------------------------

_CSS = """
body{margin:0;font:15px/1.4 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;
background:#f4f4f5;color:#000}
header{background:#517da2;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;font-size:13px;opacity:.9}nav{padding:8px 24px;font-size:13px}nav a{margin-right:12px}
section{margin:0 24px 32px}h2{font-size:17px;margin:24px 0 8px}
.row{display:grid;grid-template-columns:repeat(var(--cols),minmax(0,1fr));gap:16px;padding:10px 14px;
background:#c8dbb4 linear-gradient(135deg,#d5e4c3,#b9d3a0);border-radius:8px;margin-bottom:10px}
.meta{grid-column:1/-1;font:12px/1.2 ui-monospace,Menlo,Consolas,monospace;color:#33512a}
.lang{font-size:11px;color:#4d6b3f;margin-bottom:2px;text-transform:uppercase}
.bubble{background:#fff;border-radius:12px 12px 12px 4px;padding:7px 11px;max-width:460px;
box-shadow:0 1px 1px rgba(0,0,0,.15);white-space:pre-wrap;word-wrap:break-word}
.bubble a{color:#168acd}.bubble code{background:#f1f1f1;padding:0 3px;border-radius:3px}
.inline{display:flex;gap:4px;margin-top:4px;max-width:482px}.inline span{flex:1;text-align:center;
background:rgba(60,90,50,.45);color:#fff;border-radius:8px;padding:6px 4px;font-size:13px;font-weight:500}
.keyboard{margin-top:6px;max-width:482px;background:#f0f0f0;border-radius:6px;padding:4px;display:flex;gap:4px}
.keyboard span{flex:1;text-align:center;background:#fff;border-radius:5px;padding:6px;font-size:13px;
box-shadow:0 1px 1px rgba(0,0,0,.15)}.hint{margin-top:4px;font-size:12px;color:#4d6b3f;font-style:italic}
"""


def _button(lang: str, key: str) -> str:
    if key.startswith("edit:"):
        return texts.t(lang, "btn_edit", label=texts.t(lang, key[5:]))
    return texts.t(lang, key)


# Telegram's HTML formatting: the only markup a bubble may carry (a catalogue text could hold anything).
_TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "blockquote"}
_TAG = re.compile(r"<(/?)([A-Za-z][\w-]*)([^<>]*)>")
_HREF = re.compile(r"""\s+href\s*=\s*(?:"([^"]*)"|'([^']*)')\s*""")


def telegram_html(markup: str) -> str:
    """`markup` as Telegram shows it: its formatting tags and http(s) links kept (without any other
    attribute), every other tag, and any stray `<` or `>`, shown as text."""
    out, end, links = [], 0, 0
    for match in _TAG.finditer(markup):
        out.append(markup[end : match.start()].replace("<", "&lt;").replace(">", "&gt;"))
        end = match.end()
        closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
        href = _HREF.fullmatch(attrs) if name == "a" and not closing else None
        url = html.unescape(next(g for g in href.groups() if g is not None)) if href else ""
        if name in _TELEGRAM_TAGS:
            out.append(f"<{closing}{name}>")
        elif name == "a" and closing and links:
            links -= 1
            out.append("</a>")
        elif name == "a" and not closing and re.match(r"https?://", url):
            links += 1
            out.append(f'<a href="{html.escape(url)}">')
        else:
            out.append(html.escape(match.group(0)))
    out.append(markup[end:].replace("<", "&lt;").replace(">", "&gt;"))
    return "".join(out)


def _bubble(message: Message, lang: str) -> str:
    text = telegram_html(message.html[lang])
    parts = [f'<div class="lang">{lang}</div><div class="bubble">{text}</div>']
    for row in message.buttons:
        cells = "".join(f"<span>{html.escape(_button(lang, key))}</span>" for key in row)
        parts.append(f'<div class="inline">{cells}</div>')
    if message.keyboard:
        cells = "".join(f"<span>{html.escape(_button(lang, key))}</span>" for key in message.keyboard)
        parts.append(f'<div class="keyboard">{cells}</div>')
    if message.hint:
        parts.append(f'<div class="hint">{html.escape(texts.t(lang, message.hint))}</div>')
    return "<div>" + "".join(parts) + "</div>"


def _rows(messages: Iterable[Message], languages: tuple[str, ...]) -> str:
    out = []
    for m in messages:
        bubbles = "".join(_bubble(m, lang) for lang in languages)
        meta = f'<div class="meta">{html.escape(m.key)} · {html.escape(m.what)}</div>'
        out.append(f'<div class="row" data-key="{html.escape(m.key)}">{meta}{bubbles}</div>')
    return "\n".join(out)


def page(names: Iterable[str] | None = None, languages: tuple[str, ...] = texts.LANGUAGES) -> str:
    """The whole page: the chosen forms (all by default), the shared messages, and (for all forms) the
    rest of the catalogue."""
    known = specs()
    chosen = list(names) if names is not None else list(known)
    sections, shown = [], set()
    for name in chosen:
        messages = list(form_messages(known[name]))
        shown.update(m.key for m in messages)
        commands = " ".join(f"/{c}" for c in known[name].entry_commands)
        title = f"<h2>{name} <small>{commands}</small></h2>"
        sections.append(f'<section id="{name}">{title}{_rows(messages, languages)}</section>')
    shared = list(shared_messages())
    shown.update(m.key for m in shared)
    sections.append(f'<section id="shared"><h2>every form</h2>{_rows(shared, languages)}</section>')
    if names is None:
        rest = list(other_messages(shown))
        sections.append(f'<section id="other"><h2>outside the forms</h2>{_rows(rest, languages)}</section>')
    nav = "".join(
        f'<a href="#{n}">{n}</a>' for n in [*chosen, "shared", *(["other"] if names is None else [])]
    )
    samples = ", ".join(f"{k}={v}" for k, v in list(SAMPLES.items())[:6])
    return (
        '<!doctype html><html lang="it"><head><meta charset="utf-8">'
        f"<title>unogas-bot: every message</title><style>{_CSS}</style></head>"
        f'<body style="--cols:{len(languages)}">'
        "<header><h1>unogas-bot: every message, as the customer sees it</h1>"
        f"<p>{' · '.join(languages)} · placeholders filled with sample values ({html.escape(samples)}, …)</p>"
        f"</header><nav>{nav}</nav>{''.join(sections)}</body></html>\n"
    )
