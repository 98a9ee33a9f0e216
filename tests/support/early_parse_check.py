"""Run with .venv-rasa: ``early_parse.start_parse`` against Rasa's own ``parse_message`` on a trained model.

    .venv-rasa/bin/python tests/support/early_parse_check.py <model archive>

Prints one JSON object: whether every text parsed alike one at a time and twenty at once, and what
``start_parse`` does for a model whose NLU reads the tracker and for one parsed by an NLU server.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from types import SimpleNamespace

from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage

from connectors import rasa_speedups
from connectors.early_parse import start_parse

TEXTS = ["hello", "where is my order A1234?", "/greet", "do you have a loyalty program?", "qwpoeiru zzz",
         "I want to talk to a person", "thanks, bye", "my parcel C7302 never came and I am furious"]


def _message(text: str, n: int) -> UserMessage:
    return UserMessage(text, sender_id=f"early-parse-{n}", message_id=f"m{n}")


async def main(model: str) -> None:
    rasa_speedups.install()  # the graph runner the Rasa server runs (the channel installs it)
    agent = Agent()
    agent.load_model(model)
    processor = agent.processor
    expected = [await processor.parse_message(_message(text, n)) for n, text in enumerate(TEXTS)]
    one_by_one = [await start_parse(processor, _message(text, n)) for n, text in enumerate(TEXTS)]
    # Twenty at once on the worker threads while the loop parses too: no state is shared by mistake.
    texts = [TEXTS[n % len(TEXTS)] for n in range(20)]
    early = [start_parse(processor, _message(text, n)) for n, text in enumerate(texts)]
    on_loop = [await processor.parse_message(_message(text, n)) for n, text in enumerate(texts)]
    at_once = await asyncio.gather(*early)

    reads_tracker = copy.copy(processor)
    metadata = copy.deepcopy(processor.model_metadata)
    classifier = next(name for name in metadata.predict_schema.nodes if "Classifier" in name)
    metadata.predict_schema.nodes[classifier].needs["tracker"] = "__tracker__"
    reads_tracker.model_metadata = metadata
    vars(reads_tracker).pop("_switchboard_nlu_reads_tracker", None)  # what start_parse found for the real one
    served = SimpleNamespace(http_interpreter=object(), model_metadata=processor.model_metadata)
    print(json.dumps({
        "texts": len(TEXTS),
        "alike_one_by_one": one_by_one == expected,
        "alike_at_once": list(at_once) == on_loop == [expected[n % len(TEXTS)] for n in range(20)],
        "intents": [p["intent"]["name"] for p in one_by_one],
        "when_nlu_reads_tracker": repr(start_parse(reads_tracker, _message("hello", 0))),
        "when_nlu_server_parses": repr(start_parse(served, _message("hello", 0))),
    }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
