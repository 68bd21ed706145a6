"""What the bot says, in Italian and English."""
