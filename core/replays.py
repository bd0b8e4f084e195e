"""Requests already answered: a platform's retry of one is answered with the first answer.

Slack retries a slash command or a click it thinks was lost (``X-Slack-Retry-Num``), proxies
replay requests, and Socket Mode may deliver one envelope twice. Each adapter names a request by a
key that stays the same across those retries (a hash of the signed body, of the envelope's
payload), claims it before running the command, and stores the answer it gave; a second arrival
of the same key gets that answer (or, while the first is still running, a short wait) instead of a
second run.

The functions here are plain storage on a unit of work; the caller commits. A claim must be
committed before the command runs (in its own short transaction), so that a second arrival sees it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Index, LargeBinary, String, delete, select, text, update
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UnitOfWork, utcnow

#: How long an answer is kept: far past every platform's retry window (Slack's signatures expire
#: after 5 minutes, its retries come within the hour).
KEEP = dt.timedelta(days=1)


class HandledRequest(Base):
    __tablename__ = "handled_requests"
    __table_args__ = (Index("ix_handled_requests_at", "created_at"),)

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: The answer as the adapter sent it (e.g. Slack's JSON body); empty while it is being handled.
    answer: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class Seen:
    """An earlier arrival of the same request: its ``answer``, or ``None`` while it is running."""

    answer: bytes | None


def _no_flush_wait(uow: UnitOfWork) -> None:
    """These rows only spare a retry a second run: their commit need not wait for the disk (on
    PostgreSQL, ``synchronous_commit`` off for this transaction; a crash loses at most the last
    few milliseconds of them, never other data). Without it each request paid two WAL flushes."""
    if uow.session.get_bind().dialect.name == "postgresql":
        uow.session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def claim(uow: UnitOfWork, key: str) -> Seen | None:
    """``None`` when this arrival is the first (run the request, then ``store`` its answer);
    otherwise what the earlier arrival left. One ``INSERT … ON CONFLICT DO NOTHING``: of arrivals at
    the same moment exactly one inserts (the others wait for its commit, then see its row)."""
    from sqlalchemy.dialects import postgresql, sqlite

    _no_flush_wait(uow)
    dialect = postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite
    table = HandledRequest.__table__
    inserted = uow.session.execute(
        dialect.insert(table).values(key=key, answer=None, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)).first()
    if inserted is not None:
        return None
    return seen(uow, key) or Seen(None)


def seen(uow: UnitOfWork, key: str) -> Seen | None:
    """What is stored for ``key`` (``None``: nothing, e.g. the first arrival gave it up)."""
    row = uow.session.execute(select(HandledRequest.answer).where(HandledRequest.key == key)).first()
    return None if row is None else Seen(row[0])


def store(uow: UnitOfWork, key: str, answer: bytes) -> None:
    """The answer the first arrival gave, for the arrivals after it."""
    _no_flush_wait(uow)
    uow.session.execute(update(HandledRequest).where(HandledRequest.key == key).values(answer=answer))


def release(uow: UnitOfWork, key: str) -> None:
    """Give a claim up without an answer (the request failed before answering): a retry runs it."""
    uow.session.execute(delete(HandledRequest).where(HandledRequest.key == key, HandledRequest.answer.is_(None)))


def forget(uow: UnitOfWork, *, before: dt.datetime | None = None) -> int:
    """Delete what was claimed before ``before`` (default: ``KEEP`` ago); returns how many."""
    cutoff = before if before is not None else utcnow() - KEEP
    result = uow.session.execute(delete(HandledRequest).where(HandledRequest.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
