"""The Rasa process's speedups (run in Rasa's own environment): same answers as Rasa's own code."""

from __future__ import annotations

import json
import os
import subprocess

from gateway.settings import PROJECT_ROOT

RASA_PYTHON = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
CHECK = PROJECT_ROOT / "tests" / "support" / "rasa_speedups_check.py"


def test_event_types_resolve_as_rasa_resolves_them_once_remembered_and_blas_runs_on_one_thread() -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RASA_TELEMETRY_ENABLED": "false"}
    result = subprocess.run([str(RASA_PYTHON), str(CHECK)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["before"]["slot"] == "SlotSet" and report["before"]["no_such_event"].startswith("ValueError")
    # Every answer, errors and defaults included, is Rasa's; remembered answers too.
    assert report["after"] == report["before"] == report["again"]
    assert report["late"] == "LateEvent"  # a class defined after the first lookups is still found
    # numpy's BLAS runs on one thread (it had one per core, spinning after every small product).
    assert report["blas_threads_after"] and set(report["blas_threads_after"]) == {1}
