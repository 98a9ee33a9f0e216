"""Export a trained classifier to one self-describing folder: ONNX fp32 + int8, tokenizer, labels, metadata."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

from nlu_models.encoder_export import ENCODER_FP32
from nlu_models.encoder_pool import file_sha256
from nlu_models.onnx_export import export_onnx, save_fast_tokenizer
from nlu_models.onnx_predictor import (
    FORMAT_VERSION,
    HEADS_FILE,
    LABELS_FILE,
    META_FILE,
    MODEL_FP32,
    MODEL_INT8,
    TOKENIZER_FILE,
    OnnxIntentSentimentPredictor,
)
from nlu_models.probe import save_heads
from nlu_models.probe_classifier import ProbeClassifier
from nlu_models.trainer import TrainedClassifier

#: Int8 is served only when it agrees with fp32 on at least this share of top-1 intents.
MIN_INT8_PARITY = 0.995


def parity(trained: TrainedClassifier | ProbeClassifier, folder: Path, texts: list[str],
           quantized: bool) -> dict[str, float]:
    """Largest absolute difference between training-time (torch or fp32) and served outputs, and top-1 agreement."""
    torch_intent, torch_sentiment = trained.logits(texts)
    predictor = OnnxIntentSentimentPredictor(folder, quantized=quantized)
    onnx_intent, onnx_sentiment = predictor.logits(texts)
    return {
        "max_abs_diff_intent_logits": float(np.abs(torch_intent - onnx_intent).max()),
        "max_abs_diff_sentiment_logits": float(np.abs(torch_sentiment - onnx_sentiment).max()),
        "top1_agreement_intent": float(np.mean(torch_intent.argmax(1) == onnx_intent.argmax(1))),
        "top1_agreement_sentiment": float(np.mean(torch_sentiment.argmax(1) == onnx_sentiment.argmax(1))),
    }


def export_classifier(
    trained: TrainedClassifier,
    folder: Path,
    training_data_hash: str,
    parity_texts: list[str],
    extra_metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the serving folder atomically (built aside, then renamed) and return its metadata.

    ``parity_texts`` decide the served precision: int8 where its top-1 agrees with fp32 on
    ``MIN_INT8_PARITY`` of them. ``nlu_models.train`` passes the validation texts the weights never saw.
    """
    folder, staging = _staging(folder)
    export_onnx(trained.model.to("cpu"), trained.tokenizer, staging / MODEL_FP32, ["intent_logits", "sentiment_logits"])
    quantize_dynamic(str(staging / MODEL_FP32), str(staging / MODEL_INT8), weight_type=QuantType.QInt8)
    save_fast_tokenizer(trained.tokenizer, staging)
    meta = _describe(trained, "finetuned", staging, training_data_hash, extra_metrics)
    texts = parity_texts or ["hello"]
    meta["parity"] = {"fp32": parity(trained, staging, texts, False), "int8": parity(trained, staging, texts, True)}
    meta["parity_texts"] = len(texts)
    meta["served_precision"] = served_precision(meta["parity"])
    (staging / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    _replace(staging, folder)
    return meta


def served_precision(parity_report: dict[str, dict[str, float]]) -> str:
    """``int8`` when it agrees with fp32 on at least ``MIN_INT8_PARITY`` of top-1 intents, else ``fp32``."""
    return "int8" if parity_report["int8"]["top1_agreement_intent"] >= MIN_INT8_PARITY else "fp32"


def _staging(folder: Path) -> tuple[Path, Path]:
    """(the folder, an empty staging folder beside it that ``_replace`` renames into place)."""
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return folder, staging


def _describe(model: TrainedClassifier | ProbeClassifier, kind: str, staging: Path, training_data_hash: str,
              extra_metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Write ``labels.json`` and the first ``meta.json`` (what every kind of export records) into staging."""
    (staging / LABELS_FILE).write_text(json.dumps({"intents": model.intents, "sentiments": model.sentiments}, indent=2))
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "encoder": model.config.resolved_encoder(),
        "max_length": model.config.max_length,
        "intent_temperature": model.intent_temperature,
        "sentiment_temperature": model.sentiment_temperature,
        "oos_threshold": model.oos_threshold,
        "oos_intents": model.oos_intents,
        "oos_score": model.config.oos_score,
        "oos_penalty": model.oos_penalty,
        "middle_weight": getattr(model, "middle_weight", 0.0),
        "training_data_hash": training_data_hash,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training_config": {k: v for k, v in vars(model.config).items() if k != "device"},
        "metrics": {**model.metrics, **(extra_metrics or {})},
    }
    (staging / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    return meta


def _replace(staging: Path, folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)


def export_probe(
    probe: ProbeClassifier,
    folder: Path,
    training_data_hash: str,
    parity_texts: list[str],
    extra_metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a probe model's serving folder: its heads and the shared fp32 encoder file it runs on.

    Always fp32: the encoder is one session per serving process whatever the number of tenants, so
    int8 would save memory once, not per tenant, and it cost accuracy the parity check could not see.
    Over nine held-out draws (``bench/results/nlu_precision.md``) the head on the int8 encoder lost
    0.61 points of top-1 on average, up to 2.70, and fell below the frozen baseline on two, while
    agreeing with fp32 on at least 99.75 % of the training texts on all nine: the head's margins there
    are wide.
    ``parity`` records that the folder serves what training predicted.
    """
    folder, staging = _staging(folder)
    shutil.copy2(probe.encoder_folder / TOKENIZER_FILE, staging / TOKENIZER_FILE)
    shutil.copy2(probe.encoder_folder / ENCODER_FP32, staging / ENCODER_FP32)
    save_heads(staging / HEADS_FILE, {"intent": probe.intent_head, "sentiment": probe.sentiment_head})
    meta = _describe(probe, "probe", staging, training_data_hash, extra_metrics)
    meta.update(encoder_file=ENCODER_FP32, encoder_sha256=file_sha256(staging / ENCODER_FP32))
    (staging / META_FILE).write_text(json.dumps(meta, indent=2, default=str))  # parity() loads the folder
    meta["parity"] = {"fp32": parity(probe, staging, parity_texts or ["hello"], quantized=False)}
    meta["served_precision"] = "fp32"
    (staging / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    _replace(staging, folder)
    return meta
