"""A turn's NLU started before its lock and tracker parses exactly as Rasa's own ``parse_message`` does."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from gateway.settings import PROJECT_ROOT, get_settings

RASA_PYTHON = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
CHECK = PROJECT_ROOT / "tests" / "support" / "early_parse_check.py"


@pytest.mark.slow
def test_early_parses_equal_rasas_alone_and_twenty_at_once_and_are_skipped_where_nlu_reads_the_tracker() -> None:
    model = get_settings().model_path
    if not model.exists():
        pytest.fail(f"no trained model at {model}: run `make train` (make test does)")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RASA_TELEMETRY_ENABLED": "false"}
    result = subprocess.run([str(RASA_PYTHON), str(CHECK), str(model)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["alike_one_by_one"] and report["alike_at_once"]
    assert report["intents"][:2] == ["greet", "order_status"]  # a real model answered, not an empty parse
    # A model whose NLU takes the tracker, or one an NLU server parses, is parsed inside the turn.
    assert report["when_nlu_reads_tracker"] == "None" and report["when_nlu_server_parses"] == "None"
