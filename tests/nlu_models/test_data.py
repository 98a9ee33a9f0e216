"""Loading labelled examples from Rasa YAML and CSV files."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu_models.data import Example, data_hash, load_csv, load_examples, strip_entity_annotations


def test_entity_annotations_are_removed() -> None:
    assert strip_entity_annotations("where is [A1234](order_number) now") == "where is A1234 now"
    assert strip_entity_annotations('ship to [Berlin]{"entity": "city"}') == "ship to Berlin"


def test_rasa_yaml_and_csv(tmp_path: Path) -> None:
    (tmp_path / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - hello [Bob](name)\n'
        "- regex: order\n  examples: |\n    - \\d+\n"
    )
    assert load_examples(tmp_path / "nlu.yml") == [Example("hi", "greet"), Example("hello Bob", "greet")]
    assert load_examples(tmp_path) == load_examples(tmp_path / "nlu.yml")
    (tmp_path / "b77.csv").write_text('text,category\n"card, lost",lost_card\nwhere is it?,card_arrival\n')
    assert load_csv(tmp_path / "b77.csv") == [Example("card, lost", "lost_card"), Example("where is it?", "card_arrival")]
    (tmp_path / "bad.csv").write_text("sentence,foo\nx,y\n")
    with pytest.raises(ValueError, match="needs 'text'"):
        load_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError):
        load_examples(tmp_path / "data.txt")


def test_data_hash_is_stable_and_sensitive() -> None:
    a = [Example("hi", "greet")]
    assert data_hash(a) == data_hash([Example("hi", "greet")])
    assert data_hash(a) != data_hash([Example("hi", "goodbye")])
