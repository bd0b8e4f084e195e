"""Domain events, written to the ``outbox`` table in the same transaction as the change they report.

A relay (see ``jobs/``) later moves committed events to the job queue in id order, so that a
notification decided in a committed transaction is delivered even if Redis or a worker dies in
between, and nothing is announced for a change that was rolled back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UnitOfWork, utcnow

#: Every event type the core emits; routing rules may only name these.
EVENT_TYPES = frozenset(
    {
        "artist.created",
        "artist.updated",
        "artist.stage_changed",
        "artist.archived",
        "artist.restored",
        "interaction.logged",
        "deal.created",
        "deal.won",
        "deal.lost",
        "member.role_changed",
        "request.created",
        "request.assigned",
        "request.accepted",
        "request.in_progress",
        "request.delivered",
        "request.closed",
        "request.declined",
        "request.cancelled",
    }
)


RECORDED = "mona.outbox.recorded"


class OutboxEvent(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "relayed_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    relayed_at: Mapped[dt.datetime | None] = mapped_column(default=None)


def record(uow: UnitOfWork, type_: str, **payload: Any) -> None:
    """Add an event to the current transaction; it exists only if the transaction commits."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    uow.session.add(OutboxEvent(type=type_, payload=payload))
    # Remembered per transaction, so the command's reply can say where it will be announced.
    uow.session.info.setdefault(RECORDED, set()).add(type_)


def recorded_types(uow: UnitOfWork) -> set[str]:
    """The event types recorded in the current transaction so far."""
    return set(uow.session.info.get(RECORDED, ()))
