"""``rasa data validate`` on an assistant's project, with each warning explained or reported.

Rasa's validator reads only stories and rules, so responses a form or custom action sends and intents
only buttons or the gateway send always look unused to it. ``bot/skills.yml`` declares those with how
they are used (``unseen_by_rasa_validator``); every other warning is a real problem in the data.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from gateway.assistants.templates import SkillCatalog

#: The warnings whose subject (the quoted name) may be one Rasa's validator cannot see used.
_UNSEEN = (re.compile(r"The utterance '([^']+)' is not used in any story or rule"),
           re.compile(r"The intent '([^']+)' is listed in the domain file, but is not found in the NLU training data"))


@dataclass
class ValidationReport:
    """What Rasa's validator said about a project.

    Attributes:
        errors: Lines Rasa reported as errors (the data cannot train).
        explained: Warnings about names ``skills.yml`` declares, with how each is used.
        unexplained: Every other warning.
    """

    errors: list[str] = field(default_factory=list)
    explained: dict[str, str] = field(default_factory=dict)
    unexplained: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No error and no warning left unexplained."""
        return not self.errors and not self.unexplained


def read_validator_output(output: str, returncode: int, catalog: SkillCatalog) -> ValidationReport:
    """Sort the validator's output into errors, explained and unexplained warnings."""
    report = ValidationReport()
    for line in output.splitlines():
        if "UserWarning: " in line:
            message = line.split("UserWarning: ", 1)[1].strip()
            name = next((m.group(1) for pattern in _UNSEEN if (m := pattern.search(message))), None)
            if name is not None and name in catalog.unseen_by_validator:
                report.explained[name] = catalog.unseen_by_validator[name]
            elif message not in report.unexplained:
                report.unexplained.append(message)
        elif " ERROR " in line or "Error:" in line:
            report.errors.append(line.strip())
    if returncode != 0 and not report.errors:
        report.errors.append(f"rasa data validate exited with {returncode}: {output.strip()[-500:]}")
    return report


def validate_project(domain: Path, data: Path, config: Path, catalog: SkillCatalog | None = None,
                     timeout_s: float = 300.0) -> ValidationReport:
    """Run ``rasa data validate`` on a built project and sort what it says."""
    from gateway.rasa_cli import RASA_BIN, rasa_cli_env
    from gateway.settings import PROJECT_ROOT

    command = [str(RASA_BIN), "data", "validate", "--domain", str(domain), "--data", str(data), "--config", str(config)]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=rasa_cli_env(), capture_output=True, text=True,
                            timeout=timeout_s)
    return read_validator_output(result.stdout + result.stderr, result.returncode, catalog or SkillCatalog.load())
