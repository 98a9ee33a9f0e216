"""Benchmark helper run by the Rasa interpreter (.venv-rasa, Python 3.10).

    python rasa_probe.py parse   MODEL.tar.gz  IN.json  OUT.json   # parse texts with a Rasa model
    python rasa_probe.py latency EXPORT_DIR    OUT.json            # ONNX fp32 / int8 latency
    python rasa_probe.py memory  MODEL.tar.gz  OUT.json            # peak RSS with the model loaded
"""

import asyncio
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def latency(export: str, out: str) -> None:
    import onnxruntime

    from nlu_models.onnx_predictor import OnnxIntentSentimentPredictor
    from nlu_models.timing import LATENCY_TEXTS, time_call

    texts = LATENCY_TEXTS
    result = {"onnxruntime": onnxruntime.__version__}
    for name, quantized in (("onnx_fp32", False), ("onnx_int8", True)):
        predictor = OnnxIntentSentimentPredictor(Path(export), quantized=quantized, threads=1)
        result[name] = {
            "single": time_call(lambda: predictor.predict(texts[:1]), 300),
            "batch32": time_call(lambda: predictor.predict(texts), 30),
        }
    Path(out).write_text(json.dumps(result))


async def _parse(model: str, texts):
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    return [await agent.parse_message(text) for text in texts]


def main() -> None:
    mode, target, *rest = sys.argv[1:]
    if mode == "parse":
        texts = json.loads(Path(rest[0]).read_text())
        parses = asyncio.run(_parse(target, texts))
        Path(rest[1]).write_text(json.dumps(parses))
    elif mode == "latency":
        latency(target, rest[0])
    elif mode == "memory":
        asyncio.run(_parse(target, ["where is my order A1234?"]))
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        Path(rest[0]).write_text(json.dumps({"peak_rss_mb": peak_kb / 1024}))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
