"""Secrets and personal data: bcrypt hashing off the event loop, the per-user hash budget, log redaction."""
