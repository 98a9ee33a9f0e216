"""The load benchmark's report: tables, targets and chart."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bench.load import LevelResult
from bench.load_report import markdown, svg_chart


def _report(results: dict) -> dict:
    return {"commit": "abc1234", "machine": "2 CPU cores", "date": "2026-12-06", "duration_s": 10.0,
            "think_s": 2.0, "results": results}


def test_errors_are_reported_with_their_kinds() -> None:
    level = LevelResult(concurrency=10, duration_s=10.0, turns=10, errors=3, latencies_ms=[10.0] * 10,
                        error_kinds={"trouble": 2, "http_503": 1})
    assert "| 3 (http_503 1, trouble 2) |" in markdown(_report({"embedded": [level.to_json()]}))


def test_report_has_a_row_per_system_and_level_and_a_valid_chart() -> None:
    rows = {name: [LevelResult(c, 10.0, turns=10, latencies_ms=[100.0 * c, 200.0 * c]).to_json() for c in (10, 50)]
            for name in ("embedded", "rasa-init")}
    text = markdown(_report(rows))
    assert text.count("| embedded | 10 |") == 1 and text.count("| rasa-init | 50 |") == 1 and "load.svg" in text
    chart = ET.fromstring(svg_chart(rows))
    assert len(chart.findall("{http://www.w3.org/2000/svg}polyline")) == 4  # p50 and p95 per system


def test_latency_by_kind_of_turn_is_tabled_for_ten_conversations_only() -> None:
    def level(c: int, ms: float) -> dict:
        return LevelResult(c, 10.0, turns=2, latencies_ms=[ms, ms],
                           by_turn={"greeting": [ms], "handoff": [ms * 3]}).to_json()

    text = markdown(_report({"embedded": [level(10, 20.0), level(50, 40.0)],
                             "production": [level(10, 25.0)]}))
    assert "## Latency by kind of turn at 10 conversations" in text
    assert "| production | handoff | 1 | 75.0 | 75.0 |" in text
    assert "| embedded | greeting | 1 | 20.0 | 20.0 |" in text and "| greeting | 1 | 40.0 |" not in text


def test_saturation_is_also_read_against_rasa_init_of_the_same_run() -> None:
    def rows(embedded: float, rasa: float) -> dict:
        level = lambda tps: {**LevelResult(200, 10.0, turns=10, latencies_ms=[1.0]).to_json(),  # noqa: E731
                             "throughput_turns_per_s": tps}
        return {"embedded": [level(embedded)], "rasa-init": [level(rasa)]}

    slow_machine = markdown(_report(rows(21.7, 15.5)))
    assert "| saturation throughput ≥ 2 × before | 21.7 vs 33.3 turns/s | missed |" in slow_machine
    assert "| 1.40 vs 2 × 0.69 | met |" in slow_machine  # 21.7 / 15.5 against 2 × 16.63 / 24.2
    assert "| 1.20 vs 2 × 0.69 | missed |" in markdown(_report(rows(18.6, 15.5)))


def test_a_paired_level_says_how_it_was_measured() -> None:
    row = {**LevelResult(10, 60.0, turns=2, latencies_ms=[1.0, 2.0]).to_json(), "paired_blocks": 4}
    text = markdown(_report({"embedded": [row], "production": [row]}))
    assert "measured in 4 alternating blocks each (60 s in all per system" in text
    assert "alternating blocks" not in markdown(_report({"embedded": [LevelResult(10, 60.0).to_json()]}))
