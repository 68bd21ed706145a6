#!/usr/bin/env bash
# The bot's main job. With TELEGRAM_BOT_TOKEN set: the bot on Telegram. Without: the same conversations in
# this terminal, on a local SQLite file loaded with the demo customers.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
if [ -n "${TELEGRAM_BOT_TOKEN:-}" ]; then
  exec unogas-bot run "$@"
fi
export DATABASE_URL=${DATABASE_URL:-sqlite+aiosqlite:///unogas-demo.db}
unogas-bot customers demo
exec unogas-bot console "$@"
