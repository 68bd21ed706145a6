"""Persistence: the customer registry, accounts, sessions, attempts and the audit trail, on SQLAlchemy.

Repositories work on the session of a unit of work (unit_of_work.py) and hand out frozen dataclasses,
never ORM objects; each takes a ``clock`` so tests control time. Only persistence.py (PTB's conversation
state) knows about Telegram.
"""
