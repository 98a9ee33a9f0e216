"""ONNX export: self-describing folder, torch/ONNX parity, robust serving."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nlu_models.onnx_predictor import OnnxIntentSentimentPredictor

pytestmark = pytest.mark.slow

HOSTILE = ["", "   ", "x" * 100_000, "😡😡😡🔥", "\x00\x07\x1b[31mred\x1b[0m\u202e", "¿Dónde está mi pedido?",
           "我的订单在哪里", "<script>alert(1)</script>", "\n\n\t"]


def test_folder_describes_itself(tiny_export) -> None:  # type: ignore[no-untyped-def]
    trained, folder = tiny_export
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format_version"] == 2 and meta["kind"] == "finetuned"
    assert meta["served_precision"] == ("int8" if meta["parity"]["int8"]["top1_agreement_intent"] >= 0.995 else "fp32")
    assert meta["encoder"].endswith("model") and len(meta["training_data_hash"]) == 64
    assert {"metrics", "oos_threshold", "intent_temperature", "parity", "max_length"} <= set(meta)
    assert json.loads((folder / "labels.json").read_text()) == {
        "intents": ["greet", "order_status", "refund"], "sentiments": ["negative", "neutral", "positive"]}
    assert (folder / "model.int8.onnx").stat().st_size < (folder / "model.onnx").stat().st_size / 2


def test_onnx_matches_torch(tiny_export) -> None:  # type: ignore[no-untyped-def]
    trained, folder = tiny_export
    texts = ["where is my order A1234", "hello!", "I want a refund, this is awful", "something unrelated"]
    torch_intent, torch_sentiment = trained.logits(texts)
    fp32 = OnnxIntentSentimentPredictor(folder, quantized=False)
    onnx_intent, onnx_sentiment = fp32.logits(texts)
    assert np.allclose(torch_intent, onnx_intent, atol=1e-3)
    assert np.allclose(torch_sentiment, onnx_sentiment, atol=1e-3)
    int8 = OnnxIntentSentimentPredictor(folder, quantized=True)
    q_intent, _ = int8.logits(texts)
    assert (q_intent.argmax(1) == torch_intent.argmax(1)).mean() >= 0.75
    assert json.loads((folder / "meta.json").read_text())["parity"]["fp32"]["top1_agreement_intent"] == 1.0


def test_hostile_input_never_crashes(tiny_export) -> None:  # type: ignore[no-untyped-def]
    _, folder = tiny_export
    predictions = OnnxIntentSentimentPredictor(folder).predict(HOSTILE)
    assert len(predictions) == len(HOSTILE)
    for prediction in predictions:
        assert abs(sum(c for _, c in prediction.intent_ranking) - 1.0) < 1e-6
        assert prediction.sentiment in ("negative", "neutral", "positive")


def test_unsupported_format_is_refused(tiny_export, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    _, folder = tiny_export
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["format_version"] = 99
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unsupported model format"):
        OnnxIntentSentimentPredictor(copy)


def test_threshold_applies_to_the_score_the_export_names(tiny_export, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    _, folder = tiny_export
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    texts = ["where is my order", "hello"]

    def served(**changes: object) -> list[bool]:
        meta = json.loads((folder / "meta.json").read_text())
        meta.update(changes)
        meta = {k: v for k, v in meta.items() if v is not None}
        (copy / "meta.json").write_text(json.dumps(meta))
        return [p.out_of_scope for p in OnnxIntentSentimentPredictor(copy).predict(texts)]

    assert OnnxIntentSentimentPredictor(folder).oos_score == "probability"  # the trainer's default
    top_logits = OnnxIntentSentimentPredictor(folder).logits(texts)[0].max(axis=1)
    assert top_logits.min() > 1.5  # so a threshold of 1.5 below means different things for the two scores
    assert served(oos_score="max_logit", oos_threshold=float(top_logits.min()) - 0.01) == [False, False]
    assert served(oos_score="max_logit", oos_threshold=float(top_logits.max()) + 0.01) == [True, True]
    # An export without oos_score (format 1 before it existed) compares probabilities, which are <= 1.
    assert served(oos_score=None, oos_threshold=1.5) == [True, True]
    assert served(oos_score=None, oos_threshold=0.0) == [False, False]
