"""The daily digest's figures: what happened in the last 24 hours, and who is stuck."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from core import calendar, kanban, marketplace
from core.artists import Artist, Opportunity, StageStay
from core.db import UnitOfWork, utcnow
from core.sessions import StreamSession


@dataclass
class Digest:
    day: dt.date
    new_artists: list[str] = field(default_factory=list)
    moves: int = 0
    deals_won: int = 0
    won_value: dict[str, Decimal] = field(default_factory=dict)
    stuck: list[str] = field(default_factory=list)
    stuck_total: int = 0
    overdue: list[str] = field(default_factory=list)
    overdue_total: int = 0
    #: Today's calendar events ("10:00 Team call"), and the streams planned for the next seven days.
    events_today: list[str] = field(default_factory=list)
    streams_week: list[str] = field(default_factory=list)
    #: Open tasks due today, and overdue ones ("#12 Book the studio").
    tasks_due: list[str] = field(default_factory=list)
    tasks_overdue: list[str] = field(default_factory=list)


def daily(uow: UnitOfWork, day: dt.date, *, stuck_days: int, now: dt.datetime | None = None,
          tz: str = "Europe/Paris") -> Digest:
    now = now or utcnow()
    since = now - dt.timedelta(days=1)
    s = uow.session
    d = Digest(day)
    d.new_artists = list(s.scalars(select(Artist.name).where(Artist.created_at >= since).order_by(Artist.id)))
    # A move is a stay that began in the window and is not the artist's first.
    first = select(func.min(StageStay.id)).group_by(StageStay.artist_id).scalar_subquery()
    d.moves = s.scalar(select(func.count()).select_from(StageStay)
                       .where(StageStay.entered_at >= since, StageStay.id.not_in(first))) or 0
    for currency, n, total in s.execute(
        select(Opportunity.currency, func.count(), func.sum(Opportunity.value))
        .where(Opportunity.status == "won", Opportunity.closed_at >= since).group_by(Opportunity.currency)
    ):
        d.deals_won += n
        d.won_value[currency] = Decimal(total)
    stuck = (Artist.archived_at.is_(None), Artist.stage_entered_at < now - dt.timedelta(days=stuck_days))
    d.stuck_total = s.scalar(select(func.count()).select_from(Artist).where(*stuck)) or 0
    d.stuck = list(s.scalars(select(Artist.name).where(*stuck).order_by(Artist.stage_entered_at).limit(5)))
    d.overdue_total, d.overdue = marketplace.overdue(uow, day)
    zone = ZoneInfo(tz)
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    d.events_today = [f"{a.astimezone(zone):%H:%M} {e.title}" for e, a, _b in
                      calendar.between(uow, midnight.astimezone(dt.UTC), (midnight + dt.timedelta(days=1)).astimezone(dt.UTC))]
    week = select(StreamSession).where(StreamSession.started_at.is_(None), StreamSession.planned_start >= now,
                                       StreamSession.planned_start < now + dt.timedelta(days=7))
    d.streams_week = [f"{st.planned_start.astimezone(zone):%a %d %H:%M} {st.title}"
                      for st in s.scalars(week.order_by(StreamSession.planned_start)) if st.planned_start]
    due, late = kanban.due_cards(uow, day)
    d.tasks_due = [f"#{c.id} {c.title}" for c in due]
    d.tasks_overdue = [f"#{c.id} {c.title}" for c in late]
    return d
