"""The tests' shared helpers: the bot on the stand-in (botkit), accounts (accountkit), hardening (hardkit),
a TCP proxy that can black-hole a connection (tcpproxy)."""
