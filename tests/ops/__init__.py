"""The command line, the runner, the webhook, housekeeping, logging and the benchmark."""
