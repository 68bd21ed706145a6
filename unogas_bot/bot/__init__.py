"""Running the bot: the Application wiring, the update processor, housekeeping, the runner and webhook."""
