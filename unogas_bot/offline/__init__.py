"""The offline Bot API stand-in: the tests, the terminal mode and the benchmark use it instead of Telegram."""
