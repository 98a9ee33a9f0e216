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


def test_blocks_of_one_level_pool_into_one_result() -> None:
    first = LevelResult(10, 15.0, turns=2, errors=1, conversations=1, latencies_ms=[10.0, 30.0],
                        error_kinds={"trouble": 1}, by_turn={"greeting": [10.0], "thanks": [30.0]})
    second = LevelResult(10, 15.0, turns=1, errors=2, conversations=2, latencies_ms=[20.0],
                         error_kinds={"trouble": 1, "http_503": 1}, by_turn={"greeting": [20.0]})
    first.merge(second)
    row = first.to_json()
    assert (row["duration_s"], row["turns"], row["errors"], row["conversations"]) == (30.0, 3, 3, 3)
    assert row["p50_ms"] == 20.0 and row["throughput_turns_per_s"] == 0.1
    assert row["error_kinds"] == {"trouble": 2, "http_503": 1}
    assert row["by_turn"]["greeting"] == {"turns": 2, "p50_ms": 10.0, "p95_ms": 20.0}
