"""Repositories, migrations, persistence, imports and the use cases, on SQLite and PostgreSQL."""
