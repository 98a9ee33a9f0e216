"""The load benchmark's own arithmetic and report (the benchmark itself runs with `make bench-load`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bench.load import LevelResult, markdown, svg_chart


def test_percentiles_throughput_and_error_rate() -> None:
    level = LevelResult(concurrency=10, duration_s=20.0, turns=100, errors=4, conversations=25,
                        latencies_ms=[float(v) for v in range(1, 101)])
    row = level.to_json()
    assert (row["p50_ms"], row["p95_ms"], row["p99_ms"]) == (51.0, 95.0, 99.0)
    assert row["throughput_turns_per_s"] == 5.0
    assert row["error_rate"] == round(4 / 104, 4)
    assert LevelResult(5, 10.0).to_json()["p50_ms"] is None


def test_errors_are_reported_with_their_kinds() -> None:
    level = LevelResult(concurrency=10, duration_s=10.0, turns=10, errors=3, latencies_ms=[10.0] * 10,
                        error_kinds={"trouble": 2, "http_503": 1})
    text = markdown({"commit": "abc1234", "machine": "2 CPU cores", "date": "2026-12-06", "duration_s": 10.0,
                     "think_s": 2.0, "results": {"embedded": [level.to_json()]}})
    assert "| 3 (http_503 1, trouble 2) |" in text


def test_report_has_a_row_per_system_and_level_and_a_valid_chart() -> None:
    rows = {name: [LevelResult(c, 10.0, turns=10, latencies_ms=[100.0 * c, 200.0 * c]).to_json() for c in (10, 50)]
            for name in ("embedded", "rasa-init")}
    text = markdown({"commit": "abc1234", "machine": "2 CPU cores", "date": "2026-11-27", "duration_s": 10.0,
                     "think_s": 2.0, "results": rows})
    assert text.count("| embedded |") == 2 and text.count("| rasa-init |") == 2 and "load.svg" in text
    chart = ET.fromstring(svg_chart(rows))
    assert len(chart.findall("{http://www.w3.org/2000/svg}polyline")) == 4  # p50 and p95 per system
