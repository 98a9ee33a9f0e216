"""Export a frozen encoder to ONNX (mean-pooled outputs, fp32), cached per encoder.

Every probe model of one encoder carries the same file, so the serving process shares one session
(``nlu_models.encoder_pool``). The export is cached under ``SWITCHBOARD_ENCODER_CACHE`` (default
``var/encoders``) by a hash of the encoder folder and the export's format, so only the first training
run pays for it. Format 2 adds the middle layer's mean-pooled vectors (``MIDDLE_OUTPUT``) to the last
layer's; models trained on format 1 keep their own copy of the file they were trained on.

No int8 copy: a probe's head on the dynamically quantised encoder lost 0.61 points of held-out top-1
on average over nine draws (up to 2.70; below the frozen baseline on two), and the old check
(agreement with fp32 on the training texts, where the head's margins are wide) passed on all nine
(``bench/results/nlu_precision.md``). Probe models serve this file (``nlu_models.export.export_probe``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from nlu_models.encoder_pool import MIDDLE_OUTPUT, POOLED_OUTPUT

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENCODER_FP32 = "encoder.onnx"
#: Version of what an export holds (2: pooled and middle-layer outputs).
EXPORT_FORMAT = 2


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
    """The folder holding ``encoder.onnx`` and ``tokenizer.json`` of an encoder.

    Built once per encoder (atomically: staged, then renamed) and reused afterwards.
    """
    folder = cache_root() / f"{encoder_key(encoder_path)}-f{EXPORT_FORMAT}"
    if (folder / ENCODER_FP32).exists():  # a folder appears whole (renamed from its staging)
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
    from transformers import AutoModel, AutoTokenizer

    from nlu_models.model import mean_pool
    from nlu_models.onnx_export import export_onnx, save_fast_tokenizer

    class PooledEncoder(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states
            middle = states[(len(states) - 1) // 2]  # states[0] is the embeddings: layer L/2 of L
            return mean_pool(states[-1], attention_mask), mean_pool(middle, attention_mask)

    tokenizer = AutoTokenizer.from_pretrained(encoder_path)
    save_fast_tokenizer(tokenizer, staging)
    fp32 = staging / ENCODER_FP32
    export_onnx(PooledEncoder(AutoModel.from_pretrained(encoder_path)), tokenizer, fp32, [POOLED_OUTPUT, MIDDLE_OUTPUT])
