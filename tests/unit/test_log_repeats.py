"""Repeated identical warnings and errors: one line per interval, with a count (issue 21, item 6)."""

from __future__ import annotations

import io
import logging

from unogas_bot.security.log_repeats import FoldRepeats


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def logger_with_output(ticks: Ticks) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(FoldRepeats(interval=60, clock=ticks))
    logger = logging.getLogger(f"test.repeats.{id(out)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, out


def test_ten_thousand_identical_errors_are_one_line_then_one_with_the_count() -> None:
    ticks = Ticks()
    log, out = logger_with_output(ticks)
    for i in range(10_000):
        ticks.now = i * 0.003  # 30 s of "Too many open files"
        log.error("cannot accept a connection (%s)", "Too many open files")
    assert out.getvalue().count("\n") == 1
    ticks.now = 61
    log.error("cannot accept a connection (%s)", "Too many open files")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "(9999 more like this in the last 61 s)" in lines[1]


def test_different_records_and_info_lines_are_not_folded() -> None:
    ticks = Ticks()
    log, out = logger_with_output(ticks)
    log.error("failed with %s", "A")
    log.error("failed with %s", "B")
    log.warning("failed with %s", "A")
    for _ in range(3):
        log.info("an update was handled")
    assert out.getvalue().count("\n") == 6
