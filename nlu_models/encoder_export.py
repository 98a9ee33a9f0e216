"""Export a frozen encoder to ONNX (mean-pooled output), fp32 and dynamic int8, cached per encoder.

Every probe model of one encoder carries the same file, so the serving process shares one session
(``nlu_models.encoder_pool``). The export is cached under ``SWITCHBOARD_ENCODER_CACHE`` (default
``var/encoders``) by a hash of the encoder folder, so only the first training run pays for it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from nlu_models.encoder_pool import POOLED_OUTPUT

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENCODER_FP32 = "encoder.onnx"
ENCODER_INT8 = "encoder.int8.onnx"


def encoder_key(encoder_path: str) -> str:
    """Hash of the encoder folder's files (weights, config, tokenizer)."""
    digest = hashlib.sha256()
    root = Path(encoder_path)
    for file in sorted(p for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(str(file.stat().st_size).encode())
        with file.open("rb") as handle:
            digest.update(handle.read(1 << 16))  # head of each file: enough to tell models apart, fast
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """Where exported encoders are kept."""
    configured = os.environ.get("SWITCHBOARD_ENCODER_CACHE")
    return Path(configured) if configured else PROJECT_ROOT / "var" / "encoders"


def export_encoder(encoder_path: str) -> Path:
    """The folder holding ``encoder.onnx``, ``encoder.int8.onnx`` and ``tokenizer.json`` of an encoder.

    Built once per encoder (atomically: staged, then renamed) and reused afterwards.
    """
    folder = cache_root() / encoder_key(encoder_path)
    if (folder / ENCODER_INT8).exists():
        return folder
    staging = folder.with_name(folder.name + f".partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _build(encoder_path, staging)
    try:
        staging.rename(folder)
    except OSError:  # another process finished first: use its export
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _build(encoder_path: str, staging: Path) -> None:
    """Export the encoder into ``staging`` (torch is imported here only: a cached export never loads it)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    from nlu_models.model import mean_pool
    from nlu_models.onnx_export import export_onnx, save_fast_tokenizer

    class PooledEncoder(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return mean_pool(hidden, attention_mask)

    tokenizer = AutoTokenizer.from_pretrained(encoder_path)
    save_fast_tokenizer(tokenizer, staging)
    fp32 = staging / ENCODER_FP32
    export_onnx(PooledEncoder(AutoModel.from_pretrained(encoder_path)), tokenizer, fp32, [POOLED_OUTPUT])
    quantize_dynamic(str(fp32), str(staging / ENCODER_INT8), weight_type=QuantType.QInt8)
