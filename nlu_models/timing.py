"""Latency measurement shared by the benchmark (``.venv``) and its Rasa-side probe (``.venv-rasa``)."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict

import numpy as np

#: A batch of 32 bank-support style utterances, the same on both sides of the comparison.
LATENCY_TEXTS = ["where is my card, it has not arrived yet", "I was charged twice for the same purchase"] * 16


def time_call(fn: Callable[[], Any], runs: int, warmup: int = 5) -> Dict[str, float]:
    """p50 and p99 wall time of ``fn`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": float(np.percentile(samples, 50)), "p99_ms": float(np.percentile(samples, 99))}
