"""Every form the bot runs, in the order their handlers are added: the one list the bot's wiring and the
flow scripts read. What the forms ask, without the bot: conversations/specs (`SPECS`, in this order), which
the diagrams and the message preview read."""

from __future__ import annotations

from conversations import own_data
from conversations.login import LoginForm
from conversations.recovery import RecoveryForm
from conversations.registration import RegistrationForm

FORMS = (RegistrationForm(), LoginForm(), RecoveryForm(), *own_data.FORMS)
