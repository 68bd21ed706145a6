"""Flow scripts and flow diagrams for support staff (issue 13).

A flow script is a console transcript that is also a test (`script.py` reads and matches it, `runner.py`
replays it against the real Application on a throwaway database); `session.py` is the console's chat
session, shared by `unogas-bot console` and `unogas-bot flows record`; `diagram.py` draws every form from
its spec. Above the bot, below the command line.
"""
