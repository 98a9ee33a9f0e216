"""Run with .venv-rasa: Rasa's event type lookup and BLAS threads before and after ``rasa_speedups.install``.

Prints one JSON object of what each lookup returned (class names, or the error raised).
"""

from __future__ import annotations

import json

from rasa.shared.core.events import Event, SlotSet, UserUttered

from connectors import rasa_speedups


def lookups() -> dict:
    """What ``Event.resolve_by_type`` answers for known, unknown and late-defined type names."""
    answers = {}
    for name in ("slot", "user", "action", "session_started", "no_such_event"):
        try:
            answers[name] = Event.resolve_by_type(name).__name__
        except ValueError as e:
            answers[name] = f"ValueError: {e}"
    answers["unknown_with_default"] = Event.resolve_by_type("no_such_event", SlotSet).__name__
    answers["topic"] = repr(Event.resolve_by_type("topic"))
    answers["parsed"] = type(Event.from_parameters({"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet"}}})).__name__
    return answers


def blas_threads() -> list[int]:
    """Threads of numpy's BLAS (what the probe heads' products run on)."""
    import numpy  # noqa: F401 - loaded already; named for clarity
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info()
            if pool["user_api"] == "blas" and "numpy" in pool["filepath"]]


def main() -> None:
    before = lookups()
    blas_before = blas_threads()
    rasa_speedups.install()
    rasa_speedups.install()  # idempotent
    after = lookups()
    again = lookups()  # answered from the memory now

    class LateEvent(UserUttered):  # defined after the first lookups: still found
        type_name = "late_event_for_check"

    late = Event.resolve_by_type("late_event_for_check").__name__
    print(json.dumps({"before": before, "after": after, "again": again, "late": late,
                      "blas_threads_before": blas_before, "blas_threads_after": blas_threads()}))


if __name__ == "__main__":
    main()
