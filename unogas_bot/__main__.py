"""`python -m unogas_bot` is the same as the `unogas-bot` command."""

import sys

from unogas_bot.cli.main import main

sys.exit(main())
