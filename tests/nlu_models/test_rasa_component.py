"""The classifier inside real Rasa: train → persist in the archive → load → parse."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gateway.settings import PROJECT_ROOT
from bench.nlu_baselines import RASA, rasa_env, rasa_parse
from tests.nlu_models.conftest import INTENTS, SENTIMENT

pytestmark = [pytest.mark.slow, pytest.mark.integration]

BOT_MODEL = PROJECT_ROOT / "models" / "northwind.tar.gz"
HOSTILE = ["", "x" * 100_000, "😡😡😡", "\x00\x07\x1b[31m", "¿Dónde está mi pedido?", "<img src=x onerror=alert(1)>"]


def test_component_trains_persists_and_loads_in_a_real_rasa_run(tmp_path: Path) -> None:
    nlu = ['version: "3.1"', "nlu:"]
    for intent, texts in INTENTS.items():
        nlu += [f"- intent: {intent}", "  examples: |"] + [f"    - {t}" for t in texts]
    (tmp_path / "nlu.yml").write_text("\n".join(nlu) + "\n")
    (tmp_path / "sentiment.csv").write_text(
        "text,label\n" + "".join(f"{t},{label}\n" for label, texts in SENTIMENT.items() for t in texts))
    (tmp_path / "config.yml").write_text(f"""
recipe: default.v1
language: en
assistant_id: tiny
pipeline:
  - name: WhitespaceTokenizer
  - name: nlu_models.rasa_component.BertIntentSentimentClassifier
    sentiment_data: ["{tmp_path / 'sentiment.csv'}"]
    finetune: always
    epochs: 2
    patience: 2
    batch_size: 8
    ema_decay: 0.9
    intent_scale: 16.0
    soup_size: 2
    soup_rule: greedy
    distill_weight: 0.5
    distill_temperature: 3.0
policies: []
""")
    result = subprocess.run(
        [str(RASA), "train", "nlu", "--config", str(tmp_path / "config.yml"), "--nlu", str(tmp_path / "nlu.yml"),
         "--out", str(tmp_path / "models"), "--fixed-model-name", "tiny"],
        cwd=PROJECT_ROOT, env=rasa_env(), capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    archive = tmp_path / "models" / "tiny.tar.gz"
    listing = subprocess.run(["tar", "tzf", str(archive)], capture_output=True, text=True, check=True).stdout
    assert "classifier/model.int8.onnx" in listing and "classifier/meta.json" in listing
    meta_member = next(m for m in listing.splitlines() if m.endswith("classifier/meta.json"))
    meta = json.loads(subprocess.run(["tar", "xzOf", str(archive), meta_member], capture_output=True, text=True,
                                     check=True).stdout)
    assert meta["training_config"]["ema_decay"] == 0.9  # component settings reach the trainer
    assert meta["training_config"]["intent_scale"] == 16.0
    assert [m["seed"] for m in meta["metrics"]["soup"]] == [13, 14]
    assert meta["training_config"]["soup_rule"] == "greedy"
    assert meta["metrics"]["distilled"]["seed"] == 15 and meta["metrics"]["distilled"]["temperature"] == 3.0

    parses = rasa_parse(archive, ["hello there", "where is my parcel"])
    assert {p["intent"]["name"] for p in parses} <= set(INTENTS) | {"nlu_fallback"}
    for p in parses:
        assert p["sentiment"]["label"] in ("negative", "neutral", "positive")
        assert 0.0 <= p["sentiment"]["score"] <= 1.0
        assert len(p["intent_ranking"]) >= 3


@pytest.fixture(scope="module")
def bot_parses() -> dict[str, dict]:
    if not BOT_MODEL.exists():
        pytest.fail("no trained bot model: run `make train` (make test does)")
    texts = ["where is my order A1234?", "I am so angry, this is the worst service ever",
             "purple monkey dishwasher", "thank you so much, that was great", *HOSTILE]
    return dict(zip(texts, rasa_parse(BOT_MODEL, texts)))


def test_bot_model_understands_intent_and_sentiment(bot_parses: dict[str, dict]) -> None:
    order = bot_parses["where is my order A1234?"]
    assert order["intent"]["name"] == "order_status"
    assert order["entities"][0]["value"] == "A1234"
    assert bot_parses["I am so angry, this is the worst service ever"]["sentiment"]["label"] == "negative"
    assert bot_parses["thank you so much, that was great"]["sentiment"]["label"] == "positive"


def test_out_of_scope_text_lands_in_nlu_fallback(bot_parses: dict[str, dict]) -> None:
    # Out of scope either way: below the threshold (nlu_fallback, the real ranking kept below it) or
    # the bot's own trained out_of_scope intent; never one of the bot's in-scope intents.
    parse_result = bot_parses["purple monkey dishwasher"]
    assert parse_result["intent"]["name"] in ("nlu_fallback", "out_of_scope")
    if parse_result["intent"]["name"] == "nlu_fallback":
        assert parse_result["intent_ranking"][0]["name"] == "nlu_fallback"
        assert len(parse_result["intent_ranking"]) > 1


def test_hostile_input_never_crashes_parsing(bot_parses: dict[str, dict]) -> None:
    for text in HOSTILE:
        assert bot_parses[text]["intent"]["name"], text
        assert "sentiment" in bot_parses[text]
    assert bot_parses[""]["intent"]["name"] == "nlu_fallback"
