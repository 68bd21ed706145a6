"""Every form's spec, in the order of `conversations.forms.FORMS`: what each form asks, as data.

Nothing in this package knows Telegram or the use cases (an import-linter contract says so), so whatever
only reads a form's questions (the flow diagrams, the message preview) needs no bot to do it.
"""

from __future__ import annotations

from conversations.spec import FormSpec
from conversations.specs import login, own_data, recovery, registration

SPECS: tuple[FormSpec, ...] = (registration.SPEC, login.SPEC, recovery.SPEC, *own_data.SPECS)
