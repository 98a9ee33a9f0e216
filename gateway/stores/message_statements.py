"""A message write as one SQL statement on PostgreSQL: the conversation's positions and the rows together.

The ORM path (``ConversationStore``) spends four round trips on appending a message (``BEGIN``, take the
position, insert, ``COMMIT``) and five on a bot turn. On PostgreSQL, data-modifying ``WITH`` clauses do
the same work in one statement, which is atomic by itself and runs in autocommit: one round trip. SQLite
has no data-modifying ``WITH`` (and no round trips to save), so it keeps the ORM path.

Each statement is built once, with bound parameters only (a turn's replies travel as one JSON array), so
SQLAlchemy compiles it once and psycopg prepares it on the server.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (Boolean, Integer, and_, bindparam, case, cast, column, func, insert, literal, select, true,
                        update)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import Select

from gateway.db.models import Conversation, Message, Sender

#: ``Conversation.handoff_state`` when no handoff is open.
BOT_OWNER = "bot"
#: The label of the owner (``Conversation.handoff_state`` as of the write) in a statement's rows.
OWNER = "owner"
#: The columns a stored message is read back from (``RETURNING`` lists, the SQLite path's too).
MESSAGE_COLUMNS = (Message.id, Message.conversation_id, Message.seq, Message.sender, Message.text, Message.payload,
                   Message.client_id, Message.in_reply_to, Message.created_at, Message.nlu, Message.model_id)
_M = Message.__table__.c


def _positions() -> Any:
    """``WITH positions``: the conversation's counter advanced by ``:count`` (the tenant checked on the same
    row, which stays locked until the statement ends), its channel and owner."""
    return (update(Conversation)
            .where(Conversation.id == bindparam("p_conversation_id"),
                   Conversation.tenant_id == bindparam("p_tenant_id"))
            .values(last_seq=Conversation.last_seq + bindparam("p_count", type_=Integer), updated_at=bindparam("p_now"))
            .returning(Conversation.last_seq, Conversation.channel, Conversation.handoff_state)
            .cte("positions"))


def _bound(name: str, like: Any) -> Any:
    return bindparam(name, type_=like.type)  # names never equal a column's: in an UPDATE that means SET


@lru_cache(maxsize=1)
def _append() -> Select[Any]:
    positions = _positions()
    stored = (insert(Message)
              .from_select(["conversation_id", "tenant_id", "channel", "seq", "sender", "text", "payload", "client_id",
                            "in_reply_to", "model_id", "created_at"],
                           select(_bound("p_conversation_id", _M.conversation_id), _bound("p_tenant_id", _M.tenant_id),
                                  positions.c.channel, positions.c.last_seq, _bound("p_sender", _M.sender),
                                  _bound("p_text", _M.text), _bound("p_payload", _M.payload),
                                  _bound("p_client_id", _M.client_id), _bound("p_in_reply_to", _M.in_reply_to),
                                  _bound("p_model_id", _M.model_id), _bound("p_now", _M.created_at)))
              .returning(*MESSAGE_COLUMNS)
              .cte("stored"))
    return select(*[stored.c[c.key] for c in MESSAGE_COLUMNS],
                  positions.c.handoff_state.label(OWNER)).select_from(stored.join(positions, true()))


@lru_cache(maxsize=1)
def _turn() -> Select[Any]:
    positions = _positions()
    annotated = (update(Message)
                 .where(Message.id == bindparam("p_customer_id"), Message.tenant_id == bindparam("p_tenant_id"),
                        select(positions.c.last_seq).exists())  # another tenant's conversation: nothing changes
                 .values(nlu=bindparam("p_nlu", type_=_M.nlu.type), model_id=bindparam("p_model_id"))
                 .returning(Message.id)
                 .cte("annotated"))
    given = (func.jsonb_array_elements(bindparam("p_replies", type_=JSONB))
             .table_valued(column("reply", JSONB), with_ordinality="n").render_derived(name="given"))
    reply = given.c.reply
    payload = func.nullif(reply["payload"], cast(literal("null"), JSONB))
    silenced = and_(bindparam("p_silence", type_=Boolean), positions.c.handoff_state != BOT_OWNER)
    marked = case((silenced, func.coalesce(payload, cast(literal("{}"), JSONB)).op("||")(
        cast(literal('{"suppressed": "handoff"}'), JSONB))), else_=payload)
    stored = (insert(Message)
              .from_select(["conversation_id", "tenant_id", "channel", "seq", "sender", "text", "payload",
                            "in_reply_to", "model_id", "created_at"],
                           select(_bound("p_conversation_id", _M.conversation_id), _bound("p_tenant_id", _M.tenant_id),
                                  positions.c.channel,
                                  positions.c.last_seq - bindparam("p_count", type_=Integer) + given.c.n,
                                  reply["sender"].astext, reply["text"].astext, cast(marked, _M.payload.type),
                                  _bound("p_customer_id", _M.in_reply_to), _bound("p_model_id", _M.model_id),
                                  _bound("p_now", _M.created_at))
                           .select_from(positions.join(given, true())))
              .returning(*MESSAGE_COLUMNS)
              .cte("stored"))
    # One row per reply, or one row without a message (a turn without replies); none: unknown conversation.
    return (select(*[stored.c[c.key] for c in MESSAGE_COLUMNS], positions.c.handoff_state.label(OWNER))
            .select_from(positions.outerjoin(stored, true())).add_cte(annotated).order_by(stored.c.seq))


def append_statement(tenant_id: str, conversation_id: str, sender: Sender, text: str | None,
                     payload: dict[str, Any] | None, client_id: str | None, in_reply_to: int | None,
                     model_id: str | None, now: datetime) -> tuple[Select[Any], dict[str, Any]]:
    """One message at the end of its conversation, and its parameters.

    Selects the stored row with the owner; no row: unknown conversation, or one of another tenant.
    """
    return _append(), {"p_tenant_id": tenant_id, "p_conversation_id": conversation_id, "p_count": 1, "p_now": now,
                       "p_sender": sender, "p_text": text, "p_payload": payload, "p_client_id": client_id,
                       "p_in_reply_to": in_reply_to, "p_model_id": model_id}


def turn_statement(tenant_id: str, conversation_id: str, customer_id: int, nlu: dict[str, Any],
                   model_id: str | None, replies: list[tuple[Sender, str | None, dict[str, Any] | None]],
                   silence_if_owned: bool, now: datetime) -> tuple[Select[Any], dict[str, Any]]:
    """A bot turn (the customer message's annotation and every reply, in order), and its parameters.

    Selects one row per stored reply with the owner, or one row with the owner and no message (``id``
    NULL) when there are no replies; no row at all for an unknown conversation, and the annotation then
    changes nothing either. With ``silence_if_owned``, replies written while people own the conversation
    are marked ``suppressed: handoff``, decided on the row that gives their positions.
    """
    given = [{"sender": sender.name, "text": text, "payload": payload}  # the names: what Enum(Sender) stores
             for sender, text, payload in replies]
    return _turn(), {"p_tenant_id": tenant_id, "p_conversation_id": conversation_id, "p_count": len(replies),
                     "p_now": now, "p_customer_id": customer_id, "p_nlu": nlu, "p_model_id": model_id,
                     "p_replies": given, "p_silence": silence_if_owned}
