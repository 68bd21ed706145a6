"""The benchmark at tiny sizes: it runs end to end and its figures are complete and sane (no timings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.customer_csv import iter_rows, validate_row
from unogas_bot import rules
from unogas_bot.bench import benchmark as bench
from unogas_bot.bench import data as bench_data
from unogas_bot.bench.report import EVENTS_TARGETS, TARGETS
from unogas_bot.cli.main import main

REQUIRED = (
    "floor_updates_per_s",
    "registrations_per_s",
    "bcrypt_ceiling_registrations_per_s",
    "ceiling_ratio",
    "nonhash_p50_ms",
    "nonhash_p95_ms",
    "nonhash_p99_ms",
    "cpu_per_update_vs_floor",
    "bytes_per_conversation",
    "flood_other_p99_ms",
    "import_rows_per_s",
    "import_peak_mem_ratio",
    "identity_check_ratio",
)


def test_generated_customers_pass_the_rules(tmp_path: Path) -> None:
    people = bench_data.identities(300)
    for person in people:
        assert rules.tax_code.validate(person.tax_code, person.kind) == person.tax_code
    assert len({p.tax_code for p in people}) > 250  # distinct people, not one repeated
    path = bench_data.write_csv(tmp_path / "c.csv", 500, pool=40)
    records = [validate_row(fields) for _, fields in iter_rows(path)]  # raises on a bad row
    assert len({record.customer_code for record in records}) == 500


def test_smoke_run_has_every_figure(tmp_path: Path) -> None:
    figures = bench.run(bench.Sizes.smoke(), progress=False)
    sizes = figures["sizes"]
    assert figures["accounts_saved"] == sizes["customers"]  # every simulated customer registered
    assert figures["bcrypt_hashes_per_registration"] == 2
    for key in REQUIRED:
        assert figures[key] > 0, key
    # The events phase's targets too where a broker answered (else its row says why not).
    expected = set(TARGETS) | (set() if "events_skipped" in figures else set(EVENTS_TARGETS))
    assert set(figures["targets"]) == expected
    assert all(isinstance(t["met"], bool) for t in figures["targets"].values())
    assert {"cores", "python", "platform"} <= set(figures["machine"])
    assert figures["imports"][str(sizes["import_large"])]["inserted"] == sizes["import_large"]
    # The flood: every message processed or dropped, its bcrypt work within the user's budget.
    assert figures["flood_processed"] + figures["flood_dropped"] == sizes["flood_messages"]
    assert 1 <= figures["flood_hashes"] <= 6
    assert figures["flood_notices"] == (1 if figures["flood_dropped"] else 0)
    assert "ratio to the ceiling" in bench.table(figures)
    out = tmp_path / "bench.json"
    bench.write_json(figures, out)
    assert json.loads(out.read_text())["ceiling_ratio"] == pytest.approx(figures["ceiling_ratio"])


def test_check_fails_when_a_target_is_missed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = {
        "sizes": {"customers": 1, "drafts": 1, "import_small": 1, "import_large": 1, "bcrypt_rounds": 4},
        "machine": {"cores": 1, "python": "3", "platform": "x"},
        "database": "sqlite",
        "flood_other_p99_ms": 900.0,
        "targets": {"flood_other_p99_ms": {"value": 900.0, "limit": 250.0, "comparison": "<=", "met": False}},
    }
    monkeypatch.setattr(bench, "run", lambda *args, **kwargs: figures)
    assert bench.main(True, None, None, None, out=lambda _: None) == 0
    assert bench.main(True, None, None, None, out=lambda _: None, check=True) == 1
    assert "flood_other_p99_ms" in capsys.readouterr().err
    figures["targets"]["flood_other_p99_ms"]["met"] = True
    assert bench.main(True, None, None, None, out=lambda _: None, check=True) == 0


def test_cli_rejects_a_bad_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--customers", "0"]) == 1
    assert "--customers" in capsys.readouterr().err


def test_cli_check_flag_reaches_the_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []

    def fake_main(*args: object, check: bool = False, **kwargs: object) -> int:
        seen.append(check)
        return 1 if check else 0

    monkeypatch.setattr(bench, "main", fake_main)
    assert main(["bench", "--quick", "--check"]) == 1
    assert main(["bench", "--quick"]) == 0
    assert seen == [True, False]
