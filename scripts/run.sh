#!/usr/bin/env bash
# The bot's main job. With TELEGRAM_BOT_TOKEN set: the bot on Telegram. Without: the same conversations in
# this terminal, loaded with the demo customers.
# Both use the CLI's own default database (unogas.db here, or DATABASE_URL), so `unogas-bot accounts ...`
# afterwards sees the profiles made in the terminal. The demo customers go only into a registry with no
# other customers: made-up records are never mixed into a real one.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
if [ -n "${TELEGRAM_BOT_TOKEN:-}" ]; then
  exec unogas-bot run "$@"
fi
unogas-bot customers demo --skip-if-real
exec unogas-bot console "$@"
