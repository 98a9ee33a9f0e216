"""The FAQ benchmark's generated help centre and report."""

from __future__ import annotations

import csv
from pathlib import Path

from bench.kb_faq import write_faq, write_report
from knowledge_base.parsers import parse_bytes


def test_generated_faq_is_one_valid_entry_per_intent(tmp_path: Path) -> None:
    path = write_faq(tmp_path, {"book_flight": ["fly me to rome", "x"], "oil_change": ["when to change oil"]},
                     ["book_flight", "oil_change"])
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [r["question"] for r in rows] == ["fly me to rome", "when to change oil"]
    assert rows[0]["url"].endswith("/book_flight")
    document = parse_bytes("faq.csv", path.read_bytes())
    assert document.kind == "faq" and len(document.sections) == 2


def test_report_lists_modes_and_answer_rates(tmp_path: Path) -> None:
    results = {"commit": "abc", "split": "test",
               "faq": {"entries": 2, "queries": 4, "modes": {"bm25": {"recall@1": 0.5, "mrr@10": 0.6}},
                       "in_domain_answered": 0.9, "off_topic_answered": 0.04, "off_topic_queries": 10},
               "articles": {"in_domain_queries": 5, "off_topic_queries": 6, "in_domain_answered": 0.96,
                            "off_topic_answered": 0.03}}
    write_report(results, tmp_path)
    text = (tmp_path / "kb_faq.md").read_text()
    assert "| bm25 | 50.00 | 0.6000 |" in text and "| 90.0 % | 4.0 % |" in text and "| 96.0 % | 3.0 % |" in text


def test_another_encoders_report_is_written_beside_the_products(tmp_path: Path) -> None:
    results = {"commit": "abc", "split": "test", "encoder": "all-mpnet-base-v2",
               "faq": {"entries": 2, "queries": 4, "modes": {}, "in_domain_answered": 0.9, "off_topic_answered": 0.04,
                       "off_topic_queries": 10},
               "articles": {"in_domain_queries": 5, "off_topic_queries": 6, "in_domain_answered": 0.96,
                            "off_topic_answered": 0.03}}
    write_report(results, tmp_path, "kb_faq_all-mpnet-base-v2")
    assert not (tmp_path / "kb_faq.md").exists()
    assert "encoder all-mpnet-base-v2" in (tmp_path / "kb_faq_all-mpnet-base-v2.md").read_text()


def test_the_frontier_says_what_any_threshold_could_do() -> None:
    import numpy as np

    from bench.kb_faq import frontier

    in_domain = np.linspace(0.3, 0.9, 100)  # the lowest 5 % lie below 0.33
    apart = frontier(in_domain, np.linspace(0.0, 0.2, 100))
    assert apart == {"off_topic_at_95": 0.0, "in_domain_at_5": 1.0}
    overlapping = frontier(in_domain, np.linspace(0.2, 0.8, 100))
    assert overlapping["off_topic_at_95"] > 0.7 and overlapping["in_domain_at_5"] < 0.25
