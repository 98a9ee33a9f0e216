"""Serving memory per tenant: probe models (shared encoder + heads) against fine-tuned ones (own graph).

    .venv-rasa/bin/python -m bench.nlu_memory EXPORT [EXPORT ...] [--tenants 8]

Runs in the Rasa interpreter (what serves the models), a fresh process per export folder (probe or
fine-tuned). Each tenant gets its own copy of the folder, as tenants' archives do; the process RSS is
read after every load and after one prediction. The size of the tenant's own files (the heads, with a
probe's nearest-neighbour memory; a fine-tuned model's graph) is reported beside it.
Writes ``bench/results/nlu_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_ROOT / "bench" / "results"


def rss_mb() -> float:
    """Resident set size of this process now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(folder: Path, tenants: int, workdir: Path) -> Dict[str, Any]:
    """RSS after loading ``tenants`` copies of one export, each answering one message."""
    from nlu_models.encoder_pool import EncoderPool
    from nlu_models.onnx_predictor import OnnxIntentSentimentPredictor

    before = rss_mb()
    readings: List[float] = []
    predictors = []
    for i in range(tenants):
        copy = workdir / f"{folder.name}-{i}"
        shutil.copytree(folder, copy)
        predictor = OnnxIntentSentimentPredictor(copy)
        predictor.predict(["where is my order A1234?"])
        predictors.append(predictor)
        readings.append(rss_mb())
    kind = predictors[0].kind
    own = sum(f.stat().st_size for f in folder.iterdir() if f.is_file() and not (kind == "probe" and f.suffix == ".onnx"))
    per_extra = (readings[-1] - readings[0]) / max(1, tenants - 1)
    result = {"kind": kind, "folder": folder.name, "precision": predictors[0].precision, "tenants": tenants,
              "intents": len(predictors[0].intents), "own_files_kb": round(own / 1024, 1),
              "first_tenant_mb": round(readings[0] - before, 1), "each_further_tenant_mb": round(per_extra, 2),
              "encoder_sessions": EncoderPool.loaded(), "rss_mb": [round(r, 1) for r in readings]}
    for predictor in predictors:
        predictor.close()
    return result


def main(argv: List[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.nlu_memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="exported classifier folders (probe or fine-tuned)")
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--one", action="store_true", help="measure only the first folder, print JSON (internal)")
    args = parser.parse_args(argv)
    if args.one:
        import onnxruntime  # noqa: F401  (its import is not a tenant's cost)

        with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
            print(json.dumps(measure(args.folders[0], args.tenants, Path(tmp))))
        return 0
    import subprocess

    rows = []
    for folder in args.folders:  # a fresh process each: freed memory is not handed back
        out = subprocess.run([sys.executable, "-m", "bench.nlu_memory", str(folder), "--one", "--tenants",
                              str(args.tenants)], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "nlu_memory.json").write_text(json.dumps(rows, indent=2))
    lines = ["# Classifier serving memory per tenant", "",
             f"{args.tenants} tenants' copies of one export loaded into one process (ONNX Runtime, the Rasa "
             "interpreter), each answering one message; RSS of the process.", "",
             "| model | export | intents | tenant's own files | served precision | first tenant | each further tenant "
             "| encoder sessions |", "|---|---|---:|---:|---|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['kind']} | {row['folder']} | {row['intents']} | {row['own_files_kb']} KB | {row['precision']} "
                     f"| {row['first_tenant_mb']} MB | {row['each_further_tenant_mb']} MB | {row['encoder_sessions']} |")
    (RESULTS / "nlu_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
