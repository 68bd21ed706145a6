"""The import's progress display (`customers import`): in place on a terminal, a line now and then when
piped."""

from __future__ import annotations

import io

from unogas_bot.cli.customers import ImportProgress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_progress_is_a_line_every_few_seconds() -> None:
    now = [100.0]
    out = io.StringIO()
    progress = ImportProgress(out, clock=lambda: now[0])
    for rows, at in ((5_000, 101.0), (10_000, 103.0), (15_000, 105.5), (20_000, 106.0), (25_000, 111.0)):
        now[0] = at
        progress(rows)
    progress.done()
    assert out.getvalue().splitlines() == [
        "15,000 rows read (2,727 rows/s)",
        "25,000 rows read (2,273 rows/s)",
    ]


def test_terminal_progress_rewrites_one_line() -> None:
    now = [0.0]
    out = Tty()
    progress = ImportProgress(out, clock=lambda: now[0])
    for rows in (5_000, 10_000):
        now[0] += 1.0
        progress(rows)
    progress.done()
    assert out.getvalue() == "\r5,000 rows read (5,000 rows/s)\r10,000 rows read (5,000 rows/s)\n"
