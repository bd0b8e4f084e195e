"""Stream sessions: a stream planned for an artist (with a reminder), the stream OBS really ran attached
to it, and its report afterwards (duration, time in each scene, moderation actions, a PNG chart).

A stream starting in OBS (``stream.started``) attaches to the session planned around that time (from
``EARLY`` before its start to its planned end) that has not started; with none planned it opens an
unplanned one, so every stream has a report. ``stream.stopped`` ends the session under way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from core import reminders
from core.artists import Artist
from core.db import Base, UnitOfWork, utcnow
from core.errors import InvalidInput, NotFound
from core.i18n import _
from core.moderation.store import ModerationCase
from core.outbox import OutboxEvent
from core.team import Member
from core.text import clean

EARLY = dt.timedelta(hours=1)
REMIND_BEFORE = dt.timedelta(minutes=30)
MOST = dt.timedelta(hours=24)


class StreamSession(Base):
    __tablename__ = "stream_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int | None] = mapped_column(ForeignKey("artists.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    planned_start: Mapped[dt.datetime | None] = mapped_column(default=None)
    planned_end: Mapped[dt.datetime | None] = mapped_column(default=None)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminders.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def plan(uow: UnitOfWork, actor: Member, artist: Artist, *, start: dt.datetime, duration: dt.timedelta,
         title: str | None, platform: str, target: str, label: str, now: dt.datetime) -> StreamSession:
    """Plan a session; refuses one in the past, longer than a day, or overlapping another session."""
    if start <= now:
        raise InvalidInput(_("That time is in the past: plan a stream to come."))
    if duration <= dt.timedelta(0) or duration > MOST:
        raise InvalidInput(_("A stream lasts from a minute to 24 hours."))
    end = start + duration
    clash = uow.session.scalar(select(StreamSession).where(
        StreamSession.ended_at.is_(None), StreamSession.planned_start.is_not(None),
        StreamSession.planned_start < end, StreamSession.planned_end > start).limit(1))
    if clash is not None:
        raise InvalidInput(_("It overlaps session #{id} ({title}), planned {start} to {end}.", id=clash.id,
                             title=clash.title, start=_hm(clash.planned_start), end=_hm(clash.planned_end)))
    title = clean(title or "", what=_("title"), max_len=200, allow_newlines=False) or _("Live with {name}",
                                                                                        name=artist.name)
    remind_at = max(now + dt.timedelta(minutes=1), start - REMIND_BEFORE)
    reminder = reminders.schedule(uow, actor, platform=platform, target=target, label=label, due_at=remind_at,
                                  text=_("Stream “{title}” with {name} starts at {start}.", title=title,
                                         name=artist.name, start=_hm(start)))
    session = StreamSession(artist_id=artist.id, title=title, planned_start=start, planned_end=end,
                            reminder_id=reminder.id, created_by_id=actor.id)
    uow.session.add(session)
    uow.session.flush()
    return session


def _hm(at: dt.datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "?"


def upcoming(uow: UnitOfWork, now: dt.datetime, limit: int = 10) -> list[StreamSession]:
    return list(uow.session.scalars(select(StreamSession).where(StreamSession.started_at.is_(None),
                                                                StreamSession.planned_end > now)
                                    .order_by(StreamSession.planned_start).limit(limit)))


def started(uow: UnitOfWork, at: dt.datetime) -> StreamSession:
    """The session a stream starting at ``at`` belongs to: the planned one around then, or a new one."""
    open_ = uow.session.scalar(select(StreamSession).where(StreamSession.started_at.is_not(None),
                                                           StreamSession.ended_at.is_(None)).limit(1))
    if open_ is not None:  # OBS said so twice (a reconnect re-read): the same stream
        return open_
    planned = uow.session.scalar(select(StreamSession).where(
        StreamSession.started_at.is_(None), StreamSession.planned_start <= at + EARLY, StreamSession.planned_end >= at)
        .order_by(StreamSession.planned_start).limit(1))
    session = planned or StreamSession(title=_("Unplanned stream"))
    session.started_at = at
    if planned is None:
        uow.session.add(session)
    uow.session.flush()
    return session


def stopped(uow: UnitOfWork, at: dt.datetime) -> StreamSession | None:
    session = uow.session.scalar(select(StreamSession).where(StreamSession.started_at.is_not(None),
                                                             StreamSession.ended_at.is_(None)).limit(1))
    if session is not None:
        session.ended_at = at
    return session


@dataclass(frozen=True)
class Report:
    session: StreamSession
    artist: str | None
    duration: dt.timedelta
    #: (scene, seconds on air), most first.
    scenes: list[tuple[str, float]]
    #: (action, count)
    moderation: list[tuple[str, int]]
    chart: Path | None


def report(uow: UnitOfWork, session_id: int | None, *, now: dt.datetime, charts: Path | None) -> Report:
    q = select(StreamSession).where(StreamSession.started_at.is_not(None))
    session = (uow.session.get(StreamSession, session_id) if session_id is not None
               else uow.session.scalar(q.order_by(StreamSession.started_at.desc()).limit(1)))
    if session is None or session.started_at is None:
        raise NotFound(_("No stream has run yet.") if session_id is None else
                       _("Session #{id} has not streamed (yet).", id=session_id))
    start, end = session.started_at, session.ended_at or now
    changes = list(uow.session.execute(select(OutboxEvent.created_at, OutboxEvent.payload).where(
        OutboxEvent.type == "stream.scene_changed", OutboxEvent.created_at <= end).order_by(OutboxEvent.id)))
    on_air: dict[str, float] = {}
    current: str | None = None
    since = start
    for at, payload in changes:
        if at <= start:
            current = payload["scene"]  # the scene on air when the stream started
            continue
        if current is not None:
            on_air[current] = on_air.get(current, 0.0) + (at - since).total_seconds()
        current, since = payload["scene"], at
    if current is not None:
        on_air[current] = on_air.get(current, 0.0) + (end - since).total_seconds()
    cases = list(uow.session.execute(select(ModerationCase.action, func.count()).where(
        ModerationCase.created_at >= start, ModerationCase.created_at <= end).group_by(ModerationCase.action)))
    artist = uow.session.get(Artist, session.artist_id) if session.artist_id else None
    scenes = sorted(on_air.items(), key=lambda kv: -kv[1])
    chart = _chart(session, scenes, charts) if charts is not None and scenes else None
    return Report(session, artist.name if artist else None, end - start, scenes,
                  sorted((a, int(n)) for a, n in cases), chart)


def _chart(session: StreamSession, scenes: list[tuple[str, float]], folder: Path) -> Path:
    """Time on air per scene, as a PNG (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"stream-session-{session.id}.png"
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(scenes)), dpi=100)
    names = [s for s, _t in scenes][::-1]
    minutes = [t / 60 for _s, t in scenes][::-1]
    ax.barh(names, minutes, color="#6c5ce7")
    ax.set_xlabel(_("minutes on air"))
    ax.set_title(session.title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
