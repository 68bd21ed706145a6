"""The use cases: registration, login and recovery as plain async functions, with no Telegram in them.

Each takes the bot's `Services`, does its work in units of work (storage/unit_of_work.py) and returns a
typed outcome (outcomes.py) that a conversation turns into a reply. The limits live here, next to the
work they guard, so they hold whoever calls: every limited attempt is reserved atomically *before* the
slow check it pays for (limits.py).
"""
