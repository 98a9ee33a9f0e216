"""The load benchmark's own arithmetic (the benchmark itself runs with `make bench-load`)."""

from __future__ import annotations

from bench.load import TURN_KINDS, LevelResult


def test_percentiles_throughput_and_error_rate() -> None:
    level = LevelResult(concurrency=10, duration_s=20.0, turns=100, errors=4, conversations=25,
                        latencies_ms=[float(v) for v in range(1, 101)])
    row = level.to_json()
    assert (row["p50_ms"], row["p95_ms"], row["p99_ms"]) == (51.0, 95.0, 99.0)
    assert row["throughput_turns_per_s"] == 5.0
    assert row["error_rate"] == round(4 / 104, 4)
    assert LevelResult(5, 10.0).to_json()["p50_ms"] is None


def test_each_kind_of_turn_has_its_own_percentiles() -> None:
    level = LevelResult(concurrency=10, duration_s=20.0, turns=4, latencies_ms=[10.0, 20.0, 30.0, 300.0],
                        by_turn={"greeting": [10.0, 20.0, 30.0], "handoff": [300.0]})
    by_turn = level.to_json()["by_turn"]
    assert by_turn["greeting"] == {"turns": 3, "p50_ms": 20.0, "p95_ms": 30.0}
    assert by_turn["handoff"] == {"turns": 1, "p50_ms": 300.0, "p95_ms": 300.0}
    assert set(TURN_KINDS.values()) >= {"greeting", "help centre", "handoff"}
