"""A tenant's Rasa project: the platform's skills + the tenant's settings + its language data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.assistants.assistant_settings import AssistantSettings
from gateway.assistants.project_builder import (
    NEW_INTENT_ACTION,
    AssistantProjectBuilder,
    ProjectError,
    ReviewedExample,
    safe_example_text,
)
from gateway.assistants.templates import BOT_DIR, AssistantTemplate, SkillCatalog
from nlu_models.data import load_rasa_nlu

RETAIL = AssistantTemplate.load("retail")
BLANK = AssistantTemplate.load("blank")


def build(tmp_path: Path, template: AssistantTemplate = RETAIL, reviewed: list[ReviewedExample] | None = None,
          language_data: str | None = None, **settings: object):
    values = {"business_name": "Acme Outdoor", **settings}
    return AssistantProjectBuilder().build(tmp_path / "p", "acme", template, AssistantSettings(**values),
                                           language_data or template.language_data(), reviewed)


def responses(project) -> dict:
    return yaml.safe_load(project.domain.read_text())["responses"]


def all_text(project) -> str:
    return "\n".join(p.read_text() for p in [project.domain, *project.data.glob("*.yml")])


def test_the_tenants_names_replace_every_placeholder_and_no_other_business_is_named(tmp_path: Path) -> None:
    project = build(tmp_path, assistant_name="Ada")
    texts = responses(project)
    assert texts["utter_greet"][0]["text"].startswith("Hi! I'm Ada.")
    assert texts["utter_goodbye"][0]["text"] == "Goodbye, and thanks for contacting Acme Outdoor!"
    assert "${" not in all_text(project)
    assert "Northwind" not in all_text(project)


def test_informational_intents_go_to_the_help_centre_and_keep_no_canned_text(tmp_path: Path) -> None:
    project = build(tmp_path)
    catalog = SkillCatalog.load()
    rules = yaml.safe_load((project.data / "rules.yml").read_text())["rules"]
    for intent in catalog.informational_intents:
        actions = {r["steps"][1].get("action") for r in rules if r["steps"][0].get("intent") == intent}
        assert actions == {"action_answer_question"}, intent
    # No shop's policy text is baked into the skills: only the tenant's own texts are added.
    assert not [name for name in responses(project) if name.startswith("utter_answer_") and name != "utter_answer_complaint"]


def test_a_tenant_keeps_its_own_text_and_overrides_a_skills_text(tmp_path: Path) -> None:
    project = build(tmp_path, responses={"utter_answer_shipping_info": "We ship with ${business_name} Post in 2 days.",
                                         "utter_kb_glad": "Great!"})
    texts = responses(project)
    assert texts["utter_answer_shipping_info"] == [{"text": "We ship with Acme Outdoor Post in 2 days."}]
    assert texts["utter_kb_glad"][0]["text"] == "Great!"


def test_blank_has_greeting_help_centre_and_handoff_only(tmp_path: Path) -> None:
    project = build(tmp_path, BLANK)
    domain = yaml.safe_load(project.domain.read_text())
    assert project.skills == []
    assert {"order_status", "return_item", "payment_problem", "complaint"}.isdisjoint(domain["intents"])
    assert {"greet", "human_handoff", "ask_question", "nlu_fallback"} <= set(domain["intents"])
    assert "order_status_form" not in yaml.safe_dump(domain) and "action_order_status" not in domain["actions"]
    assert "utter_payment_problem" not in domain["responses"]
    # The greeting offers no button for an intent the assistant does not have.
    assert [b["payload"] for b in domain["responses"]["utter_greet"][0]["buttons"]] == ["/human_handoff"]
    # Every rule, story and conversation test left mentions only what the project has.
    available = set(domain["intents"]) | set(domain["actions"]) | set(domain["responses"])
    for file in [*project.data.glob("*.yml"), *(project.tests.glob("*.yml") if project.tests else [])]:
        document = yaml.safe_load(file.read_text())
        for entry in document.get("rules", []) + document.get("stories", []):
            for step in entry["steps"]:
                for key in ("intent", "action"):
                    if key in step:
                        assert step[key] in available or step[key].startswith("action_"), (file.name, step)
    assert {e.label for e in load_rasa_nlu(project.data)} <= set(domain["intents"])


def test_a_skill_switched_off_leaves_with_its_intents_rules_and_tests(tmp_path: Path) -> None:
    project = build(tmp_path, skills=["returns", "shipping"])
    domain = yaml.safe_load(project.domain.read_text())
    assert project.skills == ["returns", "shipping"]
    assert "order_status" not in domain["intents"] and "account_help" not in domain["intents"]
    assert "order_status" not in {e.label for e in load_rasa_nlu(project.data)}
    stories = yaml.safe_load((project.tests / "test_stories.yml").read_text())["stories"]
    assert stories and not any("order_status" in yaml.safe_dump(s) for s in stories)
    with pytest.raises(ProjectError, match="unknown skills: teleport"):
        build(tmp_path, skills=["teleport"])


def test_the_tenants_own_intents_and_reviewed_examples_are_answered_from_its_help_centre(tmp_path: Path) -> None:
    own = RETAIL.language_data() + "- intent: opening_hours\n  examples: |\n    - when are you open\n    - opening times\n"
    relabelled = next(e for e in load_rasa_nlu(BOT_DIR / "data") if e.label == "greet")
    reviewed = [ReviewedExample("is the red chair back in stock?", "stock_availability"),
                ReviewedExample("Is the red chair back in stock", "stock_availability"),  # same text, once
                ReviewedExample(relabelled.text.upper(), "bot_challenge"),
                ReviewedExample("where is [my](order_number) parcel\nplease", "order_status")]
    project = build(tmp_path, reviewed=reviewed, language_data=own)
    assert project.new_intents == ["opening_hours", "stock_availability"]
    assert project.reviewed == 3 and project.replaced == 1
    examples = load_rasa_nlu(project.data)
    assert [e.label for e in examples if e.text.lower() == relabelled.text.lower()] == ["bot_challenge"]
    assert ("where is [my] (order_number) parcel please", "order_status") in [(e.text, e.label) for e in examples]
    rules = yaml.safe_load((project.data / "tenant_rules.yml").read_text())["rules"]
    assert {r["steps"][0]["intent"] for r in rules} == {"opening_hours", "stock_availability"}
    assert {r["steps"][1]["action"] for r in rules} == {NEW_INTENT_ACTION}
    # The bot folder itself is never touched.
    assert "stock_availability" not in (BOT_DIR / "domain.yml").read_text()


def test_broken_language_data_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"language data:2: not valid YAML"):
        build(tmp_path, language_data="nlu:\n- intent: greet: x\n  examples: |\n    - hi\n")
    with pytest.raises(ProjectError, match="intent 'empty' has no examples"):
        build(tmp_path, language_data="nlu:\n- intent: empty\n  examples: |\n    \n")


def test_policies_are_rules_and_memoization_unless_the_tenant_asks_for_ted(tmp_path: Path) -> None:
    light = yaml.safe_load(build(tmp_path).config.read_text())["policies"]
    assert [p["name"] for p in light] == ["MemoizationPolicy", "RulePolicy"]
    heavy = yaml.safe_load(build(tmp_path, dialogue_policies="rules+ted").config.read_text())["policies"]
    assert [p["name"] for p in heavy] == ["MemoizationPolicy", "RulePolicy", "TEDPolicy"]
    assert yaml.safe_load(build(tmp_path).config.read_text())["assistant_id"] == "switchboard-acme"


def test_example_text_cannot_inject_entity_markup_or_lines() -> None:
    assert safe_example_text("  a [b](c)\n- d ") == "a [b] (c) - d"
    assert safe_example_text('x [y]{"entity": "z"}') == 'x [y] {"entity": "z"}'
