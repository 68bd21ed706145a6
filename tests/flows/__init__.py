"""Conversations through the real Application on the stand-in: registration, login, recovery."""
