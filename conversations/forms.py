"""Every form the bot runs, in the order their handlers are added: the one list the bot's wiring, the flow
scripts and the diagrams read."""

from __future__ import annotations

from conversations import own_data
from conversations.login import LoginForm
from conversations.recovery import RecoveryForm
from conversations.registration import RegistrationForm

FORMS = (RegistrationForm(), LoginForm(), RecoveryForm(), *own_data.FORMS)
