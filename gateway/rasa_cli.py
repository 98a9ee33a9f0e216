"""Where the Rasa command line is and the environment it runs in.

Both the stack runner (which starts Rasa) and the learning loop (which trains and tests with it) need
these; they live here so that neither imports the other.
"""

from __future__ import annotations

import os

from gateway.settings import PROJECT_ROOT

RASA_BIN = PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa"


def rasa_cli_env() -> dict[str, str]:
    """Environment of a Rasa command run from the gateway (train, test): no telemetry, the project importable."""
    return {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(PROJECT_ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "2", "HF_HUB_OFFLINE": "1"}
