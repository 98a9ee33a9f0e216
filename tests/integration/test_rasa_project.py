"""The Rasa project itself: data validation and the conversation tests (`rasa test`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gateway.settings import PROJECT_ROOT

RASA = PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa"
MODEL = PROJECT_ROOT / "models" / "northwind.tar.gz"


def run_rasa(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([str(RASA), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_rasa_data_validates() -> None:
    result = run_rasa("data", "validate", "--domain", "bot/domain.yml", "--data", "bot/data", "--config", "bot/config.yml")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_conversation_tests_pass(tmp_path: Path) -> None:
    result = run_rasa(
        "test", "core", "--model", str(MODEL), "--stories", "bot/tests", "--out", str(tmp_path),
        "--fail-on-prediction-errors",
    )
    failed = (tmp_path / "failed_test_stories.yml")
    detail = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, detail + result.stdout[-3000:] + result.stderr[-3000:]
    assert "failed" not in detail.lower() or "None of the test stories failed" in detail
