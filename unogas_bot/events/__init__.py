"""The bot's link to the company's RabbitMQ (issue 24): the relay that publishes the account-event outbox,
and the consumer of the CRM's customer events. Both run in the leader (bot/runner.py); see docs/events.md."""
