"""A turn's NLU, run in a worker thread while the turn waits for its lock and its tracker.

Imported by the Rasa process (``.venv-rasa``): Rasa and the standard library only.

Rasa parses a message after it has taken the conversation's lock and retrieved its tracker, although
the NLU part of the graph reads neither (its nodes need the message and the domain). In the production
topology both are round trips to other processes (the Redis lock store; the PostgreSQL tracker
store's newest-id check), about 2 ms a turn measured in the running topology, and they waited in line
before the parse (about 9 ms). Started first, in a thread (ONNX Runtime and the waits on the two
sockets release the GIL), the parse takes those waits out of the turn. A model whose NLU does read the
tracker (a custom component that asks for it) is parsed in the turn, as Rasa does.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.shared.core.trackers import DialogueStateTracker

logger = logging.getLogger(__name__)

#: Parses at once per Rasa process (one per core here): more would only queue inside ONNX Runtime.
PARSE_THREADS = 2
#: The graph's placeholder for the tracker (``rasa.engine.constants.PLACEHOLDER_TRACKER``).
_TRACKER_INPUT = "__tracker__"
#: Attribute on a processor: whether its model's NLU reads the tracker (worked out once per model).
_READS_TRACKER = "_switchboard_nlu_reads_tracker"

_pool = ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="switchboard-parse")


def start_parse(processor: Any, message: UserMessage) -> Optional["asyncio.Future[Dict[Text, Any]]"]:
    """Start parsing ``message`` the way ``MessageProcessor.parse_message`` does, in a worker thread.

    Returns:
        The future parse data, or None when this model must parse inside the turn (an NLU server
        answers its parses, or its NLU reads the tracker).
    """
    if processor.http_interpreter is not None or _nlu_reads_tracker(processor):
        return None
    future = asyncio.get_running_loop().run_in_executor(_pool, _parse, processor, message)
    # A turn that turns out to have run already never awaits its parse: its failure is not news.
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    return future


def _parse(processor: Any, message: UserMessage) -> Dict[Text, Any]:
    """``MessageProcessor.parse_message`` without its tracker (the NLU graph does not read it)."""
    parse_data = processor._parse_message_with_graph(message, DialogueStateTracker.from_events(message.sender_id, []))
    processor._update_full_retrieval_intent(parse_data)
    processor._check_for_unseen_features(parse_data)
    return parse_data


def _nlu_reads_tracker(processor: Any) -> bool:
    """Whether any node of the model's NLU graph takes the tracker (remembered on the processor)."""
    known = getattr(processor, _READS_TRACKER, None)
    if known is None:
        try:
            schema = processor.model_metadata.predict_schema.minimal_graph_schema(
                [processor.model_metadata.nlu_target])
            known = any(_TRACKER_INPUT in node.needs.values() for node in schema.nodes.values())
        except Exception:  # noqa: BLE001 - an unexpected model layout parses in the turn, as Rasa does
            logger.warning("could not read the model's NLU graph: parsing inside the turn", exc_info=True)
            known = True
        setattr(processor, _READS_TRACKER, known)
    return bool(known)
