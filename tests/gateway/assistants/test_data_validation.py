"""Rasa's validator warnings: the known blind spots are explained, anything else is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.assistants.assistant_settings import AssistantSettings
from gateway.assistants.data_validation import read_validator_output, validate_project
from gateway.assistants.project_builder import AssistantProjectBuilder
from gateway.assistants.templates import SkillCatalog, load_assistant_file
from gateway.settings import PROJECT_ROOT

OUTPUT = """\
/x/rasa/shared/utils/io.py:100: UserWarning: The utterance 'utter_default' is not used in any story or rule.
/x/rasa/shared/utils/io.py:100: UserWarning: The intent 'kb_helpful' is listed in the domain file, but is not found in the NLU training data.
/x/rasa/shared/utils/io.py:100: UserWarning: The utterance 'utter_forgotten' is not used in any story or rule.
2026-12-06 05:59:30 INFO     rasa.validator  - Validating intents...
"""


def test_known_blind_spots_are_explained_and_anything_else_is_reported() -> None:
    report = read_validator_output(OUTPUT, 0, SkillCatalog.load())
    assert set(report.explained) == {"utter_default", "kb_helpful"}
    assert "fallback" in report.explained["utter_default"]
    assert report.unexplained == ["The utterance 'utter_forgotten' is not used in any story or rule."]
    assert not report.clean
    assert read_validator_output("", 1, SkillCatalog.load()).errors  # a failed run is never clean


@pytest.mark.integration
def test_the_default_bot_has_no_unexplained_validator_warning(tmp_path: Path) -> None:
    template, raw = load_assistant_file(PROJECT_ROOT / "bot" / "tenants" / "northwind.yml")
    project = AssistantProjectBuilder().build(tmp_path / "northwind", "northwind", template,
                                              AssistantSettings.model_validate(raw), template.language_data())
    report = validate_project(project.domain, project.data, project.config)
    assert report.clean, (report.errors, report.unexplained)
    # Every name skills.yml declares is still one Rasa cannot see used (no stale declaration).
    assert set(report.explained) == set(SkillCatalog.load().unseen_by_validator)
