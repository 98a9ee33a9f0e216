"""The conversation log: conversations and their messages, in order, per tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from gateway.db.models import aware, Conversation, Message, Sender, new_id, utcnow
from gateway.db.session import single_read_sessions
from gateway.stores.message_statements import BOT_OWNER, MESSAGE_COLUMNS, append_statement, turn_statement


@dataclass(frozen=True)
class StoredMessage:
    """A message as read back from the log."""

    id: int
    conversation_id: str
    seq: int
    sender: Sender
    text: str | None
    payload: dict[str, Any] | None
    client_id: str | None
    in_reply_to: int | None
    created_at: datetime
    nlu: dict[str, Any] | None = None
    model_id: str | None = None

    def to_public(self) -> dict[str, Any]:
        """The JSON shape clients (widget, API) see."""
        return {
            "id": self.id,
            "seq": self.seq,
            "sender": self.sender.value,
            "text": self.text,
            "payload": self.payload,
            "client_id": self.client_id,
            # SQLite hands back naive datetimes; they are UTC, and a browser outside UTC must know it.
            "created_at": aware(self.created_at).isoformat(),
        }


#: The messages table: SQLite's writes go to it as Core statements (the ORM's unit of work and bulk
#: update machinery cost more than SQLite's own work, about 0.17 ms of a 0.8 ms append).
_MESSAGES = Message.__table__


def _from_row(row: Any) -> StoredMessage:
    """A message from a statement's result row (the columns of ``message_statements``)."""
    return StoredMessage(id=row.id, conversation_id=row.conversation_id, seq=row.seq, sender=row.sender, text=row.text,
                         payload=row.payload, client_id=row.client_id, in_reply_to=row.in_reply_to,
                         created_at=row.created_at, nlu=row.nlu, model_id=row.model_id)


def _stored(row: Message) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        sender=row.sender,
        text=row.text,
        payload=row.payload,
        client_id=row.client_id,
        in_reply_to=row.in_reply_to,
        created_at=row.created_at,
        nlu=row.nlu,
        model_id=row.model_id,
    )


@dataclass(frozen=True)
class RecordedTurn:
    """A bot turn as stored: its replies, and who owned the conversation when they were written."""

    replies: list[StoredMessage]
    owner: str


class ConversationNotFoundError(LookupError):
    """The conversation does not exist for this tenant."""


class ConversationStore:
    """Append-only log of conversations, scoped by tenant.

    Every read and write takes the tenant id, so one tenant can never see or write another
    tenant's conversation even with a valid id.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._reads = single_read_sessions(sessions)  # one-statement lookups
        # PostgreSQL appends a message, or stores a bot turn, in one statement (message_statements.py).
        self._one_statement = sessions.kw["bind"].dialect.name == "postgresql"

    def create_conversation(self, tenant_id: str, channel: str) -> str:
        """Start a conversation and return its id."""
        if self._one_statement:  # PostgreSQL: one INSERT in autocommit, not BEGIN, INSERT, COMMIT
            conversation_id, now = new_id(), utcnow()
            with self._reads() as session:
                session.execute(insert(Conversation).values(id=conversation_id, tenant_id=tenant_id, channel=channel,
                                                            created_at=now, updated_at=now))
            return conversation_id
        with self._sessions.begin() as session:
            conversation = Conversation(tenant_id=tenant_id, channel=channel)
            session.add(conversation)
            session.flush()
            return conversation.id

    def find_or_create_external(self, tenant_id: str, channel: str, external_ref: str) -> tuple[str, bool]:
        """The conversation a channel addresses as ``external_ref`` (a Slack thread, say); created if new.

        Returns the conversation id and whether it was created. Safe under concurrent calls: the
        unique (tenant, channel, external_ref) constraint decides who creates it.
        """
        existing = self.find_external(tenant_id, channel, external_ref)
        if existing is not None:
            return existing, False
        try:
            with self._sessions.begin() as session:
                conversation = Conversation(tenant_id=tenant_id, channel=channel, external_ref=external_ref)
                session.add(conversation)
                session.flush()
                return conversation.id, True
        except IntegrityError:
            found = self.find_external(tenant_id, channel, external_ref)
            assert found is not None
            return found, False

    def find_external(self, tenant_id: str, channel: str, external_ref: str) -> str | None:
        """The id of the conversation a channel addresses as ``external_ref``, if any."""
        with self._reads() as session:
            return session.execute(select(Conversation.id).where(
                Conversation.tenant_id == tenant_id, Conversation.channel == channel,
                Conversation.external_ref == external_ref)).scalar_one_or_none()

    def external_ref(self, conversation_id: str) -> tuple[str, str, str | None] | None:
        """``(tenant_id, channel, external_ref)`` of a conversation, or None when it does not exist."""
        with self._reads() as session:
            row = session.execute(select(Conversation.tenant_id, Conversation.channel, Conversation.external_ref)
                                  .where(Conversation.id == conversation_id)).first()
            return None if row is None else (row[0], row[1], row[2])

    def customer(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        """What the host page told us about the customer (shown to agents)."""
        with self._reads() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None or conversation.tenant_id != tenant_id:
                return None
            return conversation.customer

    def set_customer(self, tenant_id: str, conversation_id: str, customer: dict[str, Any]) -> None:
        """Store customer metadata (name, e-mail, plan, …) for the agents' context packet."""
        with self._sessions.begin() as session:
            session.execute(update(Conversation).where(Conversation.id == conversation_id,
                                                       Conversation.tenant_id == tenant_id).values(customer=customer))

    def info(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        """Channel, dates, owner and customer metadata of a conversation."""
        with self._reads() as session:
            c = session.get(Conversation, conversation_id)
            if c is None or c.tenant_id != tenant_id:
                return None
            return {"id": c.id, "channel": c.channel, "created_at": c.created_at.isoformat(),
                    "updated_at": c.updated_at.isoformat(), "owner": c.handoff_state, "customer": c.customer}

    def exists(self, tenant_id: str, conversation_id: str) -> bool:
        """Whether the conversation exists and belongs to the tenant."""
        with self._reads() as session:
            conversation = session.get(Conversation, conversation_id)
            return conversation is not None and conversation.tenant_id == tenant_id

    def append(self, tenant_id: str, conversation_id: str, sender: Sender, text: str | None,
               payload: dict[str, Any] | None = None, client_id: str | None = None,
               in_reply_to: int | None = None, model_id: str | None = None) -> StoredMessage:
        """Append one message at the end of a conversation.

        The sequence number comes from an atomic increment of the conversation's counter, so
        concurrent writers never share a position.

        Raises:
            ConversationNotFoundError: Unknown conversation, or one of another tenant.
            DuplicateClientIdError: A customer message with this client id is already stored.
        """
        return self.append_with_owner(tenant_id, conversation_id, sender, text, payload, client_id, in_reply_to,
                                      model_id)[0]

    def append_with_owner(self, tenant_id: str, conversation_id: str, sender: Sender, text: str | None,
                          payload: dict[str, Any] | None = None, client_id: str | None = None,
                          in_reply_to: int | None = None, model_id: str | None = None) -> tuple[StoredMessage, str]:
        """``append``, and who owned the conversation as the message was stored (``bot`` or a handoff state).

        The owner comes back from the statement that takes the message's position, so a turn needs no
        separate read to learn whether people have the conversation.

        Raises:
            ConversationNotFoundError: Unknown conversation, or one of another tenant.
            DuplicateClientIdError: A customer message with this client id is already stored.
        """
        try:
            if self._one_statement:
                with self._reads() as session:  # autocommit: the statement is its own transaction
                    row = session.execute(*append_statement(tenant_id, conversation_id, sender, text, payload,
                                                            client_id, in_reply_to, model_id, utcnow())).first()
                if row is None:
                    raise ConversationNotFoundError(conversation_id)
                return _from_row(row), row.owner
            with self._sessions.begin() as session:
                now = utcnow()
                seq, channel, owner = self._take_positions(session, tenant_id, conversation_id, 1, now)
                row = session.connection().execute(
                    insert(_MESSAGES).values(conversation_id=conversation_id, tenant_id=tenant_id, channel=channel,
                                             seq=seq, sender=sender, text=text, payload=payload, client_id=client_id,
                                             in_reply_to=in_reply_to, model_id=model_id, created_at=now)
                    .returning(*MESSAGE_COLUMNS)).one()
                return _from_row(row), owner
        except IntegrityError as exc:
            if client_id is not None and self.find_by_client_id(tenant_id, conversation_id, client_id):
                raise DuplicateClientIdError(client_id) from exc
            raise

    @staticmethod
    def _take_positions(session: Session, tenant_id: str, conversation_id: str, count: int,
                        now: datetime) -> tuple[int, str, str]:
        """Advance the conversation's counter by ``count``; returns the last position taken, the channel and
        the owner (``bot`` or the open handoff's state) as of this write.

        One statement checks the tenant and increments atomically (concurrent writers never share a
        position), instead of reading the conversation first.

        Raises:
            ConversationNotFoundError: Unknown conversation, or one of another tenant.
        """
        conversations = Conversation.__table__.c
        values: dict[str, Any] = {"updated_at": now}
        if count:
            values["last_seq"] = conversations.last_seq + count
        row = session.connection().execute(
            update(Conversation.__table__)
            .where(conversations.id == conversation_id, conversations.tenant_id == tenant_id)
            .values(**values).returning(conversations.last_seq, conversations.channel, conversations.handoff_state)
        ).first()
        if row is None:
            raise ConversationNotFoundError(conversation_id)
        return row[0], row[1], row[2] or BOT_OWNER

    def record_turn(self, tenant_id: str, conversation_id: str, customer_id: int, nlu: dict[str, Any],
                    model_id: str | None, replies: list[tuple[Sender, str | None, dict[str, Any] | None]],
                    silence_if_owned: bool = False) -> RecordedTurn:
        """What the bot understood of a customer message and every reply it gave, in one transaction.

        All or nothing: a turn is either finished (annotated, with all its replies) or looks unfinished
        and is run again (see ``replies_to``), never half stored. One commit instead of one per write.

        Args:
            silence_if_owned: When people own the conversation as the turn is written (an agent took it
                while the bot was thinking), store the replies marked ``suppressed: handoff``: logged, never
                shown. The owner is read by the same statement that takes the replies' positions, so no
                takeover can fall between the check and the write.

        Raises:
            ConversationNotFoundError: Unknown conversation, or one of another tenant.
        """
        if self._one_statement:
            with self._reads() as session:  # autocommit: the statement is its own transaction
                rows = session.execute(*turn_statement(tenant_id, conversation_id, customer_id, nlu, model_id, replies,
                                                       silence_if_owned, utcnow())).all()
            if not rows:
                raise ConversationNotFoundError(conversation_id)
            return RecordedTurn([_from_row(row) for row in rows if row.id is not None], rows[0].owner)
        with self._sessions.begin() as session:
            now = utcnow()
            # Taking the replies' positions first also checks the conversation (and takes SQLite's write lock).
            last, channel, owner = self._take_positions(session, tenant_id, conversation_id, len(replies), now)
            connection = session.connection()
            connection.execute(update(_MESSAGES).where(_MESSAGES.c.id == customer_id, _MESSAGES.c.tenant_id == tenant_id)
                               .values(nlu=nlu, model_id=model_id))
            if not replies:
                return RecordedTurn([], owner)
            if silence_if_owned and owner != BOT_OWNER:
                replies = [(sender, text, {**(payload or {}), "suppressed": "handoff"})
                           for sender, text, payload in replies]
            rows = connection.execute(
                insert(_MESSAGES).returning(*MESSAGE_COLUMNS, sort_by_parameter_order=True),
                [{"conversation_id": conversation_id, "tenant_id": tenant_id, "channel": channel,
                  "seq": last - len(replies) + 1 + i, "sender": sender, "text": text, "payload": payload,
                  "in_reply_to": customer_id, "model_id": model_id, "created_at": now, "client_id": None}
                 for i, (sender, text, payload) in enumerate(replies)]).all()
            return RecordedTurn([_from_row(row) for row in rows], owner)

    def last_kb_answer(self, tenant_id: str, conversation_id: str, before_seq: int) -> StoredMessage | None:
        """The latest knowledge-base answer (a bot message with citations) before position ``before_seq``."""
        with self._reads() as session:
            rows = session.execute(
                select(Message).where(Message.tenant_id == tenant_id, Message.conversation_id == conversation_id,
                                      Message.sender == Sender.BOT, Message.seq < before_seq)
                .order_by(Message.seq.desc()).limit(5)).scalars()
            for row in rows:
                kb = ((row.payload or {}).get("custom") or {}).get("kb") or {}
                if kb.get("answerable") and kb.get("citations"):
                    return _stored(row)
            return None

    def recent_customer_messages(self, tenant_id: str, conversation_id: str, limit: int) -> list[StoredMessage]:
        """The last ``limit`` customer messages of a conversation, newest first."""
        with self._reads() as session:
            rows = session.execute(
                select(Message)
                .where(
                    Message.tenant_id == tenant_id,
                    Message.conversation_id == conversation_id,
                    Message.sender == Sender.CUSTOMER,
                )
                .order_by(Message.seq.desc())
                .limit(limit)
            ).scalars()
            return [_stored(row) for row in rows]

    def find_by_client_id(
        self, tenant_id: str, conversation_id: str, client_id: str
    ) -> StoredMessage | None:
        """The customer message a client sent with this id, if stored."""
        with self._reads() as session:
            row = session.execute(
                select(Message).where(
                    Message.tenant_id == tenant_id,
                    Message.conversation_id == conversation_id,
                    Message.client_id == client_id,
                )
            ).scalar_one_or_none()
            return _stored(row) if row else None

    def pending_turns(self, since: datetime, limit: int = 200) -> list[tuple[str, str, StoredMessage]]:
        """Customer messages since ``since`` that are still the last message of their conversation.

        After a gateway restart these are turns it stored but never answered (it died mid-turn).
        """
        later = aliased(Message)
        with self._reads() as session:
            rows = session.execute(
                select(Message).where(Message.sender == Sender.CUSTOMER, Message.created_at >= since,
                                      ~exists().where(later.conversation_id == Message.conversation_id,
                                                      later.seq > Message.seq))
                .order_by(Message.id).limit(limit)).scalars().all()
            return [(row.tenant_id, row.channel, _stored(row)) for row in rows]

    def replies_to(self, tenant_id: str, message_id: int) -> list[StoredMessage]:
        """Bot/system messages stored as answers to one customer message, in order."""
        with self._reads() as session:
            rows = session.execute(
                select(Message)
                .where(Message.tenant_id == tenant_id, Message.in_reply_to == message_id)
                .order_by(Message.seq)
            ).scalars()
            return [_stored(row) for row in rows]

    def history(self, tenant_id: str, conversation_id: str, limit: int = 500,
                include_suppressed: bool = False) -> list[StoredMessage]:
        """The last ``limit`` messages of a conversation, oldest first.

        Bot replies that were kept from the customer (the conversation went to people during the
        turn) are in the log but only returned with ``include_suppressed``.

        Raises:
            ConversationNotFoundError: Unknown conversation, or one of another tenant.
        """
        if not self.exists(tenant_id, conversation_id):
            raise ConversationNotFoundError(conversation_id)
        with self._reads() as session:
            rows = session.execute(
                select(Message)
                .where(Message.tenant_id == tenant_id, Message.conversation_id == conversation_id)
                .order_by(Message.seq.desc())
                .limit(limit)
            ).scalars()
            messages = [_stored(row) for row in reversed(list(rows))]
        if include_suppressed:
            return messages
        return [m for m in messages if not (m.payload or {}).get("suppressed")]


class DuplicateClientIdError(Exception):
    """A customer message with the same client id was already stored."""
