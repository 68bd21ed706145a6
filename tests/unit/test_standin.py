"""Tests of the offline Telegram stand-in: a small real Application driven through the Simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from unogas_bot.offline import (
    CallbackAnswered,
    Called,
    CommandsSet,
    Deleted,
    Edited,
    Fault,
    OfflineBotAPI,
    Sent,
    Simulator,
    offline_builder,
    parse_html,
)

Context = ContextTypes.DEFAULT_TYPE
CHOICES = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Conferma", callback_data="confirm"),
            InlineKeyboardButton("Annulla", callback_data="cancel"),
        ]
    ]
)


# --- the small bot under test ----------------------------------------------------------------------------


async def start(update: Update, context: Context) -> None:
    suffix = f" ({' '.join(context.args)})" if context.args else ""
    context.bot_data.setdefault("chat_types", []).append(update.effective_chat.type)
    await update.message.reply_text(
        f"Benvenuto in <b>Unogas</b>{suffix}", parse_mode=ParseMode.HTML, reply_markup=CHOICES
    )


async def choice(update: Update, context: Context) -> None:
    query = update.callback_query
    await query.answer("Fatto")
    try:
        await query.edit_message_text(f"Hai scelto: {query.data}")
    except BadRequest as exc:
        await context.bot.send_message(update.effective_chat.id, f"edit failed: {exc.message}")


async def echo(update: Update, context: Context) -> None:
    running = context.bot_data.setdefault("running", [0, 0])  # [now, max]
    running[0] += 1
    running[1] = max(running)
    try:
        await update.message.reply_text(f"Eco: {update.message.text}")
        try:
            await update.message.delete()
        except BadRequest as exc:
            await update.message.reply_text(f"delete failed: {exc.message}")
    finally:
        running[0] -= 1


async def delete_by_id(update: Update, context: Context) -> None:
    try:
        await context.bot.delete_message(update.effective_chat.id, int(context.args[0]))
    except BadRequest as exc:
        await update.message.reply_text(f"delete failed: {exc.message}")
    else:
        await update.message.reply_text("deleted")


async def ping(update: Update, context: Context) -> None:
    await update.message.reply_text("pong")


async def phone(update: Update, context: Context) -> None:
    keyboard = ReplyKeyboardMarkup([[KeyboardButton("Condividi numero", request_contact=True)]])
    await update.message.reply_text("Mi mandi il numero", reply_markup=keyboard)


async def contact(update: Update, context: Context) -> None:
    owner = "proprio" if update.message.contact.user_id == update.effective_user.id else "altrui"
    await update.message.reply_text(
        f"contatto {owner} {update.message.contact.phone_number}", reply_markup=ReplyKeyboardRemove()
    )


async def media(update: Update, context: Context) -> None:
    message = update.message
    if message.sticker:
        kind = f"sticker {message.sticker.emoji}"
    elif message.photo:
        kind = f"foto {message.photo[-1].width}"
    elif message.document:
        kind = f"documento {message.document.file_name}"
    else:
        kind = f"posizione {message.location.latitude},{message.location.longitude}"
    await message.reply_text(kind)


async def edited(update: Update, context: Context) -> None:
    await context.bot.send_message(update.effective_chat.id, f"Modificato: {update.edited_message.text}")


async def slow(update: Update, context: Context) -> None:
    await asyncio.sleep(0.01)
    await update.message.reply_text("fatto con calma")


async def remember_error(update: object, context: Context) -> None:
    context.bot_data.setdefault("errors", []).append(context.error)


def build_app(api: OfflineBotAPI, *, concurrent: bool = False, post_init: Any = None) -> Application:
    builder = offline_builder(api).concurrent_updates(concurrent)
    if post_init is not None:
        builder = builder.post_init(post_init)
    app = builder.build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("cancella", delete_by_id))
    app.add_handler(CommandHandler("ping", ping))
    app.add_handler(CommandHandler("telefono", phone))
    app.add_handler(CommandHandler("lento", slow, block=False))
    app.add_handler(CallbackQueryHandler(choice))
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.CONTACT, contact))
    app.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE
            & (filters.Sticker.ALL | filters.PHOTO | filters.Document.ALL | filters.LOCATION),
            media,
        )
    )
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE & filters.TEXT, edited))
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, echo))
    app.add_error_handler(remember_error)
    return app


@pytest.fixture
def api() -> OfflineBotAPI:
    return OfflineBotAPI()


@pytest.fixture
def app(api: OfflineBotAPI) -> Application:
    return build_app(api)


@pytest.fixture
async def sim(app: Application, api: OfflineBotAPI) -> AsyncIterator[Simulator]:
    async with Simulator(app, api) as simulator:
        yield simulator


# --- conversation basics -----------------------------------------------------------------------------------


async def test_start_replies_with_inline_keyboard(sim: Simulator, api: OfflineBotAPI) -> None:
    mario = sim.user(42)
    events = await mario.send("/start")

    assert len(events) == 1
    sent = events[0]
    assert isinstance(sent, Sent)
    # message 1 is the user's /start: bot and user share the chat's id counter
    assert (sent.chat_id, sent.message_id, sent.parse_mode) == (42, 2, "HTML")
    assert sent.text == "Benvenuto in <b>Unogas</b>"
    assert mario.texts(events) == ["Benvenuto in Unogas"]
    assert isinstance(sent.reply_markup, dict)  # decoded from PTB's JSON-encoded parameter
    assert mario.buttons(sent) == ["Conferma", "Annulla"]
    assert mario.buttons() == ["Conferma", "Annulla"]
    assert api.texts_to(42) == ["Benvenuto in Unogas"]
    assert api.live_message(42, 2).entities == [{"type": "bold", "offset": 13, "length": 6}]


async def test_start_payload_reaches_context_args(sim: Simulator) -> None:
    mario = sim.user(42)
    await mario.send("/start promo 2024")
    assert mario.last_reply_text() == "Benvenuto in Unogas (promo 2024)"


async def test_press_answers_callback_and_edits(sim: Simulator, api: OfflineBotAPI) -> None:
    mario = sim.user(42)
    await mario.send("/start")
    events = await mario.press("conferma")  # labels match case-insensitively

    assert [type(e) for e in events] == [CallbackAnswered, Edited]
    answered, edit = events
    assert answered.text == "Fatto" and answered.show_alert is False
    assert edit == Edited(42, 2, "Hai scelto: confirm", None)  # no reply_markup: keyboard removed
    assert api.live_message(42, 2).text == "Hai scelto: confirm"
    assert api.unanswered_callback_queries == []
    assert mario.buttons() == []
    with pytest.raises(LookupError, match="Conferma"):
        await mario.press("Conferma")


async def test_press_by_callback_data_and_unknown_button(sim: Simulator) -> None:
    mario = sim.user(42)
    await mario.send("/start")
    with pytest.raises(LookupError) as info:
        await mario.press("Forse")
    assert "'Conferma'" in str(info.value) and "'Annulla'" in str(info.value)

    events = await mario.press("cancel")
    assert mario.texts(events) == ["Hai scelto: cancel"]


async def test_stale_press_gets_not_modified(sim: Simulator) -> None:
    mario = sim.user(42)
    await mario.send("/start")
    await mario.press("Conferma")
    events = await mario.press_in(2, "confirm")  # same text, no keyboard: Telegram refuses the edit

    assert isinstance(events[0], CallbackAnswered)
    assert mario.texts(events)[0].startswith("edit failed: Message is not modified")


async def test_echo_deletes_user_message(sim: Simulator, api: OfflineBotAPI) -> None:
    mario = sim.user(42)
    events = await mario.send("ciao")

    assert events == [Sent(42, 2, "Eco: ciao", None, None), Deleted(42, 1)]
    assert api.is_deleted(42, 1)
    assert api.live_message(42, 1) is None
    assert not api.is_deleted(42, 2)


async def test_delete_unknown_message_is_bad_request(sim: Simulator, api: OfflineBotAPI) -> None:
    mario = sim.user(42)
    events = await mario.send("/cancella 999")

    assert mario.texts(events) == ["delete failed: Message to delete not found"]
    assert not any(isinstance(e, Deleted) for e in events)
    assert api.errors[-1].error_code == 400

    await mario.send("/cancella 1")  # its own earlier /cancella message exists
    assert mario.last_reply_text() == "deleted"
    assert api.is_deleted(42, 1)


async def test_reply_keyboard_and_contacts(sim: Simulator, api: OfflineBotAPI) -> None:
    mario = sim.user(42)
    await mario.send("/telefono")
    assert mario.buttons() == ["Condividi numero"]
    assert mario.reply_keyboard()["keyboard"][0][0]["request_contact"] is True

    events = await mario.share_contact("+393331234567")
    assert mario.texts(events) == ["contatto proprio +393331234567"]
    assert mario.reply_keyboard() is None  # removed by ReplyKeyboardRemove

    events = await mario.share_contact("+393339999999", user_id=77)
    assert mario.texts(events) == ["contatto altrui +393339999999"]


async def test_other_message_kinds(sim: Simulator) -> None:
    mario = sim.user(42)
    assert mario.texts(await mario.send_sticker()) == ["sticker 👍"]
    assert mario.texts(await mario.send_photo()) == ["foto 800"]
    assert mario.texts(await mario.send_document()) == ["documento bolletta.pdf"]
    assert mario.texts(await mario.send_location(45.46, 9.19)) == ["posizione 45.46,9.19"]


async def test_user_edit_becomes_edited_message(sim: Simulator, api: OfflineBotAPI) -> None:
    mario = sim.user(42)
    await mario.send("/ping")
    events = await mario.edit(1, "ping modificato")
    assert mario.texts(events) == ["Modificato: ping modificato"]
    assert api.live_message(42, 1).text == "ping modificato"
    with pytest.raises(LookupError):
        await mario.edit(2, "non è mio")  # message 2 is the bot's "pong"


async def test_non_blocking_handler_effects_are_attributed(sim: Simulator) -> None:
    mario = sim.user(42)
    events = await mario.send("/lento")
    assert mario.texts(events) == ["fatto con calma"]


async def test_group_chat_user(sim: Simulator, app: Application, api: OfflineBotAPI) -> None:
    luigi = sim.user(7, first_name="Luigi", chat_id=-100123, chat_type="group")
    events = await luigi.send("/start@UnogasBot")
    assert [e.chat_id for e in events] == [-100123]
    assert app.bot_data["chat_types"] == ["group"]

    # without admin rights a bot cannot delete other people's messages in a group
    events = await luigi.send("buongiorno")
    assert luigi.texts(events) == ["Eco: buongiorno", "delete failed: Message can't be deleted"]
    api.admin_chats.add(-100123)
    events = await luigi.send("di nuovo")
    assert Deleted(-100123, luigi.last_message_id) in events

    with pytest.raises(ValueError):
        sim.user(8, chat_id=-5)  # a private chat's id must be the user id


# --- Telegram faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.BLOCKED, Forbidden),
        (Fault.RETRY_AFTER, RetryAfter),
        (Fault.NETWORK, NetworkError),
        (Fault.TIMEOUT, TimedOut),
        (Fault.BAD_REQUEST, BadRequest),
    ],
)
async def test_injected_faults_raise_ptb_errors(
    sim: Simulator, app: Application, api: OfflineBotAPI, fault: Fault, expected: type[TelegramError]
) -> None:
    mario = sim.user(42)
    api.fail_next("sendMessage", fault)
    events = await mario.send("/ping")

    assert events == []  # nothing was delivered
    (error,) = app.bot_data["errors"]
    assert type(error) is expected  # exact: BadRequest and TimedOut are NetworkError subclasses
    assert api.pending_faults == 0

    await mario.send("/ping")  # the fault fired once only
    assert mario.last_reply_text() == "pong"


async def test_retry_after_and_any_method_faults(
    sim: Simulator, app: Application, api: OfflineBotAPI
) -> None:
    mario = sim.user(42)
    api.fail_next(None, "retry_after", times=2, retry_after=3)
    await mario.send("/ping")
    await mario.send("/ping")
    await mario.send("/ping")

    first, second = app.bot_data["errors"]
    assert isinstance(first, RetryAfter) and "3" in str(first)
    assert isinstance(second, RetryAfter)
    assert api.texts_to(42) == ["pong"]


async def test_blocked_chat_is_forbidden(sim: Simulator, app: Application, api: OfflineBotAPI) -> None:
    mario = sim.user(42)
    api.blocked_chats.add(42)
    events = await mario.send("/ping")
    assert events == []
    (error,) = app.bot_data["errors"]
    assert isinstance(error, Forbidden) and "blocked by the user" in error.message


async def test_direct_bot_calls_get_telegram_errors(sim: Simulator, app: Application) -> None:
    bot = app.bot
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999, "nessuno ha mai scritto da qui")

    mario = sim.user(42)
    await mario.send("/ping")
    message = await bot.send_message(42, "123")  # string parameters are not JSON-decoded
    assert message.text == "123" and message.chat.id == 42 and message.from_user.username == "UnogasBot"

    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("nuovo", chat_id=42, message_id=999)
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await bot.send_message(42, "a < b", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(42, "  ")
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendPigeon")


async def test_callback_query_can_be_answered_once(sim: Simulator, app: Application) -> None:
    mario = sim.user(42)
    await mario.send("/start")
    events = await mario.press("Annulla")
    answered = next(e for e in events if isinstance(e, CallbackAnswered))
    with pytest.raises(BadRequest, match="Query is too old"):
        await app.bot.answer_callback_query(answered.callback_query_id)


async def test_commands_and_lifecycle_hooks(api: OfflineBotAPI) -> None:
    async def post_init(application: Application) -> None:
        await application.bot.set_my_commands([("start", "Avvia il bot")], language_code="it")

    app = build_app(api, post_init=post_init)
    with pytest.raises(ZeroDivisionError):
        async with Simulator(app, api):
            assert (
                CommandsSet([{"command": "start", "description": "Avvia il bot"}], None, "it") in api.events
            )
            assert [c.command for c in await app.bot.get_my_commands(language_code="it")] == ["start"]
            assert await app.bot.get_my_commands() == ()
            with pytest.raises(BadRequest):
                await app.bot.set_my_commands([("Start", "maiuscole non ammesse")])
            raise ZeroDivisionError
    assert not app.running  # stopped and shut down despite the error
    assert Called("getMe", {}) in api.events


# --- concurrency -----------------------------------------------------------------------------------------


async def test_concurrent_users_get_only_their_replies(api: OfflineBotAPI) -> None:
    app = build_app(api, concurrent=True)
    async with Simulator(app, api) as sim:
        users = [sim.user(1000 + n, first_name=f"Utente{n}") for n in range(50)]

        async def chat(user: Any) -> list[list[Any]]:
            return [await user.send(f"u{user.user_id} m{k}") for k in range(5)]

        results = await asyncio.gather(*(chat(u) for u in users))

    assert app.bot_data["running"][1] > 1  # updates really overlapped
    for user, per_call in zip(users, results, strict=True):
        for k, events in enumerate(per_call):
            user_message_id = 2 * k + 1
            assert events == [
                Sent(user.user_id, user_message_id + 1, f"Eco: u{user.user_id} m{k}", None, None),
                Deleted(user.user_id, user_message_id),
            ]
        assert len(api.messages_to(user.user_id)) == 5


# --- markup parsing ----------------------------------------------------------------------------------------


def test_html_parsing_matches_telegram() -> None:
    assert parse_html("a &lt; b &amp; <i>c</i>") == (
        "a < b & c",
        [{"type": "italic", "offset": 8, "length": 1}],
    )
    # offsets are UTF-16 code units: the emoji counts twice
    assert parse_html("😀 <b>x</b>")[1] == [{"type": "bold", "offset": 3, "length": 1}]
    assert parse_html('<a href="https://unogas.it">sito</a>')[1][0]["url"] == "https://unogas.it"
    for broken in ("<b>x", "x</b>", "<b>x</i>", "<foo>x</foo>", "1 < 2"):
        with pytest.raises(ValueError):
            parse_html(broken)


def test_unknown_method_answers_404(api: OfflineBotAPI) -> None:
    assert api.call("sendPigeon", {}) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    status, answer = api.call("getMe")
    assert status == 200 and answer["result"]["id"] == 1000001
