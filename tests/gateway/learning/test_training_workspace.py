"""The Rasa project a retraining run trains on: bot data plus reviewed examples, new intents wired in."""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.learning.training_workspace import (
    BOT_DIR,
    NEW_INTENT_ACTION,
    ReviewedExample,
    TrainingWorkspaceBuilder,
    bot_data_hash,
    safe_example_text,
)
from nlu_models.data import load_rasa_nlu


def test_reviewed_examples_join_the_bot_data_and_relabel_identical_texts(tmp_path: Path) -> None:
    bot_examples = load_rasa_nlu(BOT_DIR / "data")
    relabelled = next(e for e in bot_examples if e.label == "greet")
    reviewed = [ReviewedExample("is the red chair back in stock?", "stock_availability"),
                ReviewedExample("Is the red chair back in stock", "stock_availability"),  # same text, once
                ReviewedExample(relabelled.text.upper(), "bot_challenge"),
                ReviewedExample("where is [my](order_number) parcel\nplease", "order_status")]
    workspace = TrainingWorkspaceBuilder().build(tmp_path / "ws", reviewed)

    assert workspace.new_intents == ["stock_availability"]
    assert workspace.reviewed == 3 and workspace.replaced == 1
    examples = load_rasa_nlu(workspace.data)
    assert [e.label for e in examples if e.text.lower() == relabelled.text.lower()] == ["bot_challenge"]
    assert ("where is [my] (order_number) parcel please", "order_status") in [(e.text, e.label) for e in examples]
    assert len(examples) == len(bot_examples) - 1 + 3

    domain = yaml.safe_load(workspace.domain.read_text())
    assert "stock_availability" in domain["intents"]
    assert domain["responses"] == yaml.safe_load((BOT_DIR / "domain.yml").read_text())["responses"]
    rules = yaml.safe_load((workspace.data / "reviewed_rules.yml").read_text())["rules"]
    assert {r["steps"][0]["intent"] for r in rules} == {"stock_availability"}
    assert {r["steps"][1]["action"] for r in rules} == {NEW_INTENT_ACTION}
    assert workspace.bot_data_hash == bot_data_hash()
    # The bot folder itself is never touched.
    assert "stock_availability" not in (BOT_DIR / "domain.yml").read_text()


def test_without_reviewed_examples_the_project_is_the_bot(tmp_path: Path) -> None:
    workspace = TrainingWorkspaceBuilder().build(tmp_path / "ws", [])
    assert workspace.new_intents == [] and workspace.reviewed == 0
    assert workspace.domain.read_bytes() == (BOT_DIR / "domain.yml").read_bytes()
    assert sorted((e.text, e.label) for e in load_rasa_nlu(workspace.data)) == \
        sorted((e.text, e.label) for e in load_rasa_nlu(BOT_DIR / "data"))
    assert not (workspace.data / "reviewed.yml").exists()


def test_rebuilding_empties_the_folder_first(tmp_path: Path) -> None:
    TrainingWorkspaceBuilder().build(tmp_path / "ws", [ReviewedExample("gift registry please", "registry")])
    workspace = TrainingWorkspaceBuilder().build(tmp_path / "ws", [])
    assert not (workspace.data / "reviewed.yml").exists()


def test_example_text_cannot_inject_entity_markup_or_lines() -> None:
    assert safe_example_text("  a [b](c)\n- d ") == "a [b] (c) - d"
    assert safe_example_text('x [y]{"entity": "z"}') == 'x [y] {"entity": "z"}'
