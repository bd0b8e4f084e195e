"""Requests already answered: a platform's retry of one is answered with the first answer.

Slack retries a slash command or a click it thinks was lost (``X-Slack-Retry-Num``), proxies
replay requests, and Socket Mode may deliver one envelope twice. Each adapter names a request by a
key that stays the same across those retries (a hash of the signed body, an envelope id), claims
it before running the command, and stores the answer it gave; a second arrival of the same key
gets that answer (or, while the first is still running, a short wait) instead of a second run.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class HandledRequest(Base):
    __tablename__ = "handled_requests"
    __table_args__ = (Index("ix_handled_requests_at", "created_at"),)

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: The answer as the adapter sent it (e.g. Slack's JSON body); empty while it is being handled.
    answer: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
