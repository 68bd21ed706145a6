"""The benchmark's events phase (issue 24) runs at tiny sizes and yields its figures, or says why not."""

from __future__ import annotations

from unogas_bot.bench import benchmark as bench
from unogas_bot.bench.report import EVENTS_TARGETS


def test_the_events_phase_has_its_figures_or_says_why_not() -> None:
    figures = bench.run(bench.Sizes.smoke(), progress=False, phases=("events",))
    if "events_skipped" in figures:
        assert "RabbitMQ" in figures["events_skipped"]
        assert "n/a" in bench.table(figures)
        return
    assert figures["events_backlog"] == bench.Sizes.smoke().events_backlog
    assert figures["events_duplicates_published"] == 0
    for key in ("events_drain_per_s", "events_cpu_ms_per_event", "cpu_per_update_vs_floor_relay"):
        assert figures[key] > 0, key
    assert set(figures["targets"]) == set(EVENTS_TARGETS)
    assert "backlog drained to RabbitMQ" in bench.table(figures)
