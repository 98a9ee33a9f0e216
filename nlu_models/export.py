"""Export a trained classifier to one self-describing folder: ONNX fp32 + int8, tokenizer, labels, metadata."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from nlu_models.onnx_predictor import (
    FORMAT_VERSION,
    LABELS_FILE,
    META_FILE,
    MODEL_FP32,
    MODEL_INT8,
    TOKENIZER_FILE,
    OnnxIntentSentimentPredictor,
)
from nlu_models.trainer import TrainedClassifier

# Opset / IR version that the ONNX Runtime pinned in .venv-rasa (1.23) loads.
OPSET = 17
MAX_IR_VERSION = 9


class _ExportWrapper(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(input_ids, attention_mask)


def _export_onnx(trained: TrainedClassifier, path: Path) -> None:
    model = trained.model.to("cpu").eval()
    sample = trained.tokenizer(["where is my order"], return_tensors="pt", padding=True)
    torch.onnx.export(
        _ExportWrapper(model),
        (sample["input_ids"], sample["attention_mask"]),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["intent_logits", "sentiment_logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "intent_logits": {0: "batch"},
            "sentiment_logits": {0: "batch"},
        },
        opset_version=OPSET,
        dynamo=False,
    )
    proto = onnx.load(str(path))
    if proto.ir_version > MAX_IR_VERSION:
        proto.ir_version = MAX_IR_VERSION
        onnx.save(proto, str(path))


def _save_tokenizer(trained: TrainedClassifier, folder: Path) -> None:
    if not getattr(trained.tokenizer, "is_fast", False):
        raise ValueError("the encoder needs a fast tokenizer (tokenizer.json) to be served without transformers")
    staging = folder / ".tokenizer"
    trained.tokenizer.save_pretrained(str(staging))
    shutil.move(str(staging / TOKENIZER_FILE), str(folder / TOKENIZER_FILE))
    shutil.rmtree(staging)


def parity(trained: TrainedClassifier, folder: Path, texts: list[str], quantized: bool) -> dict[str, float]:
    """Largest absolute difference between torch and ONNX outputs, and top-1 agreement."""
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
    """Write the serving folder atomically (built aside, then renamed) and return its metadata."""
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _export_onnx(trained, staging / MODEL_FP32)
    quantize_dynamic(str(staging / MODEL_FP32), str(staging / MODEL_INT8), weight_type=QuantType.QInt8)
    _save_tokenizer(trained, staging)
    (staging / LABELS_FILE).write_text(json.dumps({"intents": trained.intents, "sentiments": trained.sentiments}, indent=2))
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "encoder": trained.config.resolved_encoder(),
        "max_length": trained.config.max_length,
        "intent_temperature": trained.intent_temperature,
        "sentiment_temperature": trained.sentiment_temperature,
        "oos_threshold": trained.oos_threshold,
        "oos_intents": trained.oos_intents,
        "oos_score": trained.config.oos_score,
        "oos_penalty": trained.oos_penalty,
        "training_data_hash": training_data_hash,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training_config": {k: v for k, v in vars(trained.config).items() if k != "device"},
        "metrics": {**trained.metrics, **(extra_metrics or {})},
    }
    (staging / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    texts = parity_texts or ["hello"]
    meta["parity"] = {"fp32": parity(trained, staging, texts, False), "int8": parity(trained, staging, texts, True)}
    (staging / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return meta
