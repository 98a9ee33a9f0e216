"""Torch module → ONNX graph that the pinned serving runtime loads, and the fast tokenizer beside it (torch)."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import torch
from transformers import PreTrainedTokenizerBase

# Opset / IR version that the ONNX Runtime pinned in .venv-rasa (1.23) loads.
OPSET = 17
MAX_IR_VERSION = 9
TOKENIZER_FILE = "tokenizer.json"


def export_onnx(module: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path, output_names: list[str]) -> None:
    """Export ``module(input_ids, attention_mask)`` with dynamic batch and sequence axes.

    Args:
        module: Takes ``(input_ids, attention_mask)``; its outputs are named ``output_names``, batch first.
        tokenizer: Makes the tracing sample.
        path: The ``.onnx`` file to write.
        output_names: One name per output.
    """
    sample = tokenizer(["where is my order"], return_tensors="pt", padding=True)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            **{name: {0: "batch"} for name in output_names}}
    torch.onnx.export(module.eval(), (sample["input_ids"], sample["attention_mask"]), str(path),
                      input_names=["input_ids", "attention_mask"], output_names=output_names, dynamic_axes=axes,
                      opset_version=OPSET, dynamo=False)
    proto = onnx.load(str(path))
    if proto.ir_version > MAX_IR_VERSION:
        proto.ir_version = MAX_IR_VERSION
        onnx.save(proto, str(path))


def save_fast_tokenizer(tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """Write ``tokenizer.json`` into ``folder`` (what ``tokenizers`` loads without transformers).

    Raises:
        ValueError: The tokenizer is not a fast one.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("the encoder needs a fast tokenizer (tokenizer.json) to be served without transformers")
    staging = folder / ".tokenizer"
    tokenizer.save_pretrained(str(staging))
    shutil.move(str(staging / TOKENIZER_FILE), str(folder / TOKENIZER_FILE))
    shutil.rmtree(staging)
