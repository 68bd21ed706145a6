"""The form specs are data (conversations/specs, conversations/spec.py, conversations/draft.py): they, and the
diagrams drawn from them, load without PTB, the forms' hooks or the use cases; and they are the forms' own
specs, in the forms' order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_spec_and_draft_import_no_telegram():
    """The specs, and the diagrams drawn from them, load without PTB, the forms' hooks or the use cases."""
    probe = (
        "import sys, conversations.spec, conversations.draft, conversations.specs, unogas_bot.flows.diagram\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'telegram'"
        " or m in ('conversations.form', 'conversations.forms') or m.startswith('unogas_bot.service')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_specs_are_the_forms_specs_in_the_forms_order():
    from conversations.forms import FORMS
    from conversations.specs import SPECS

    assert [spec.name for spec in SPECS] == [form.name for form in FORMS]
    assert all(spec is form.spec for spec, form in zip(SPECS, FORMS, strict=True))
