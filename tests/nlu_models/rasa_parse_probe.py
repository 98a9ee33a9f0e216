"""Run by the Rasa interpreter (.venv-rasa): load a model archive and parse texts given as JSON.

Usage: python rasa_parse_probe.py MODEL.tar.gz OUT.json < texts.json   (stdout is Rasa's log)
"""

import asyncio
import json
import sys

from rasa.core.agent import Agent


async def main() -> None:
    agent = Agent.load(sys.argv[1])
    texts = json.load(sys.stdin)
    parses = [await agent.parse_message(text) for text in texts]
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        json.dump(parses, out)


if __name__ == "__main__":
    asyncio.run(main())
