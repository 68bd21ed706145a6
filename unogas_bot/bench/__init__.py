"""The benchmark (`unogas-bot bench`): the bot under load, imports, memory; and its synthetic data."""
