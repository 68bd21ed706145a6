"""The offline Bot API stand-in: the tests, the terminal mode and the benchmark use it instead of Telegram.

Callers import from here; the modules are the stand-in's parts, each importing only those listed before
it: ``markup`` (HTML to text and entities) → ``faults`` (error answers, injected faults) → ``events``
(what the bot did) → ``checks`` (Telegram's parameter rules) → ``server`` (:class:`OfflineBotAPI`) →
``request`` (PTB's request backend, :func:`offline_builder`) → ``sim_user`` (:class:`SimUser`) and
``simulator`` (:class:`Simulator`).
"""

from unogas_bot.offline.checks import MAX_MESSAGE_LENGTH
from unogas_bot.offline.events import (
    ApiError,
    CallbackAnswered,
    Called,
    CommandsSet,
    Deleted,
    Edited,
    Event,
    LiveMessage,
    Sent,
)
from unogas_bot.offline.faults import Fault
from unogas_bot.offline.markup import keyboard_labels, parse_html, parse_text, render_text
from unogas_bot.offline.request import StandInRequest, offline_builder
from unogas_bot.offline.server import OfflineBotAPI
from unogas_bot.offline.sim_user import SimUser
from unogas_bot.offline.simulator import Simulator

__all__ = [
    "MAX_MESSAGE_LENGTH",
    "ApiError",
    "CallbackAnswered",
    "Called",
    "CommandsSet",
    "Deleted",
    "Edited",
    "Event",
    "Fault",
    "LiveMessage",
    "OfflineBotAPI",
    "Sent",
    "SimUser",
    "Simulator",
    "StandInRequest",
    "keyboard_labels",
    "offline_builder",
    "parse_html",
    "parse_text",
    "render_text",
]
