"""Domain events, written to the ``outbox`` table in the same transaction as the change they report.

A relay (see ``jobs/``) later moves committed events to the job queue in id order, so that a
notification decided in a committed transaction is delivered even if Redis or a worker dies in
between, and nothing is announced for a change that was rolled back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core import events
from core.db import Base, UnitOfWork, utcnow

#: Every event type the core emits (declared, with their fields, in ``core.events``).
EVENT_TYPES = events.EVENT_TYPES


RECORDED = "mona.outbox.recorded"
#: ``Session.info`` key: the workflow depth of what the current transaction does (``Caller.depth``).
DEPTH = "mona.outbox.depth"


class OutboxEvent(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "relayed_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    relayed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: How many workflow runs led to it: 0 for what a person did, N + 1 for what a run of depth N did
    #: (``core.workflows.MAX_DEPTH`` stops chains of workflows triggering each other).
    depth: Mapped[int] = mapped_column(default=0)


def record(uow: UnitOfWork, type_: str, **payload: Any) -> None:
    """Add an event to the current transaction; it exists only if the transaction commits."""
    events.check(type_, payload)
    uow.session.add(OutboxEvent(type=type_, payload=payload, depth=uow.session.info.get(DEPTH, 0)))
    # Remembered per transaction, so the command's reply can say where it will be announced.
    uow.session.info.setdefault(RECORDED, set()).add(type_)


def recorded_types(uow: UnitOfWork) -> set[str]:
    """The event types recorded in the current transaction so far."""
    return set(uow.session.info.get(RECORDED, ()))


@dataclass(frozen=True)
class CommittedEvent:
    """An event as subscribers receive it: it happened, in a committed transaction."""

    id: int
    type: str
    payload: dict[str, Any]
    #: ``OutboxEvent.depth``.
    depth: int = 0


class Subscriber(Protocol):
    """Something that acts on committed events: notifications today; workflow triggers, stream
    mode and score drops next. The relay hands it each event of the types it wants at least once:
    a batch is handed in the relay's own transaction (in a savepoint), and what ``handle`` writes
    commits together with the events being marked relayed, so it is idempotent as long as it acts
    only through the database (enqueue jobs in ``after_commit`` from rows it wrote)."""

    name: str
    #: The event types it wants; ``None`` for every type.
    types: frozenset[str] | None

    def handle(self, uow: UnitOfWork, events: Sequence[CommittedEvent]) -> Callable[[], None] | None:
        """Act on ``events``; may return what to do once they are committed (enqueue jobs)."""
        ...


class SubscriberFailure(Base):
    """An event a subscriber failed on: retried with backoff, while the others went on."""

    __tablename__ = "subscriber_failures"
    __table_args__ = (UniqueConstraint("subscriber", "event_id"), Index("ix_subscriber_failures_due", "next_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber: Mapped[str] = mapped_column(String(60))
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    attempts: Mapped[int] = mapped_column(default=1)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    next_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
