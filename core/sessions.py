"""Stream sessions: a stream planned for an artist (with a reminder), the stream OBS really ran attached
to it, and its report afterwards (duration, time in each scene, chat messages per minute, moderation
actions, peak viewers, a PNG chart).

A stream starting in OBS (``stream.started``) attaches to the session planned around that time (from
``EARLY`` before its start to its planned end) that has not started; with none planned it opens an
unplanned one, so every stream has a report. ``stream.stopped`` ends the session under way.

While a session is under way its audience is recorded: every chat message the guard sees counts
toward its minute (``ChatTally``: counted in memory, written as one upsert per minute and platform
every ``FLUSH_S`` seconds into ``stream_chat_minutes``), and the viewer counts Twitch gives, about
once a minute, are kept as ``stream_viewer_samples``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from core import reminders
from core.artists import Artist
from core.db import Base, Database, UnitOfWork, add_to_counter, utcnow
from core.errors import InvalidInput, NotFound
from core.i18n import _
from core.moderation.store import ModerationCase
from core.outbox import OutboxEvent
from core.team import Member
from core.text import clean

EARLY = dt.timedelta(hours=1)
REMIND_BEFORE = dt.timedelta(minutes=30)
MOST = dt.timedelta(hours=24)
#: How long the chat counts wait in memory before they are written, and how long the session
#: under way is taken as known before it is looked up again.
FLUSH_S = 1.0
SESSION_CHECK_S = 5.0

log = logging.getLogger("mona.sessions")


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


class ChatMinute(Base):
    """How many chat messages a platform carried in one minute of a session."""

    __tablename__ = "stream_chat_minutes"

    session_id: Mapped[int] = mapped_column(ForeignKey("stream_sessions.id", ondelete="CASCADE"), primary_key=True)
    #: The minute's start (UTC, seconds at zero).
    minute: Mapped[dt.datetime] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class ViewerSample(Base):
    """How many people watched, as the platform said at ``at``."""

    __tablename__ = "stream_viewer_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("stream_sessions.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime]
    viewers: Mapped[int]
    platform: Mapped[str] = mapped_column(String(20))


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


def under_way(uow: UnitOfWork) -> int | None:
    """The id of the session being streamed, if one is."""
    return uow.session.scalar(select(StreamSession.id).where(StreamSession.started_at.is_not(None),
                                                             StreamSession.ended_at.is_(None)).limit(1))


def record_viewers(uow: UnitOfWork, viewers: int, *, platform: str, at: dt.datetime) -> int | None:
    """Keep a viewer count for the session under way; returns its id (``None``: no session, nothing kept)."""
    session_id = under_way(uow)
    if session_id is not None:
        uow.session.add(ViewerSample(session_id=session_id, at=at, viewers=max(0, viewers), platform=platform))
    return session_id


def _minute(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(second=0, microsecond=0)


class ChatTally:
    """Chat messages counted toward the session under way, per minute and platform.

    ``count`` runs on every chat message: it asks the database which session is under way at most
    every ``SESSION_CHECK_S`` seconds and otherwise only adds to a counter in memory. The counts are
    written ``FLUSH_S`` seconds after the first one waiting (a timer thread that lives only while
    counts wait), one upsert per minute and platform; ``flush`` writes them at once. Counts the
    database refuses (their session deleted) are dropped; counts it could not take (down) wait for
    the next flush. Safe to call from any thread."""

    def __init__(self, db: Database, *, flush_s: float = FLUSH_S, session_check_s: float = SESSION_CHECK_S) -> None:
        self.db = db
        self.flush_s, self.session_check_s = flush_s, session_check_s
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, dt.datetime, str], int] = {}
        self._session: int | None = None
        self._checked = float("-inf")
        self._timer: threading.Timer | None = None

    def count(self, platform: str, at: dt.datetime | None = None) -> None:
        session_id = self._session_under_way()
        if session_id is None:
            return
        key = (session_id, _minute(at or utcnow()), platform)
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + 1
            if self._timer is None:
                self._timer = threading.Timer(self.flush_s, self.flush)
                self._timer.name = "mona: chat counts"
                self._timer.daemon = True
                self._timer.start()

    def _session_under_way(self) -> int | None:
        now = time.monotonic()
        with self._lock:
            if now - self._checked < self.session_check_s:
                return self._session
        try:
            with self.db.uow() as uow:
                session_id = under_way(uow)
        except SQLAlchemyError as e:
            log.warning("could not tell which stream session is under way: %s", type(e).__name__)
            return None
        with self._lock:
            self._session, self._checked = session_id, now
        return session_id

    def forget_session(self) -> None:
        """Look the session under way up again at the next message (one just started or ended)."""
        with self._lock:
            self._checked = float("-inf")

    def flush(self) -> None:
        """Write the counts waiting, now."""
        with self._lock:
            pending, self._pending = self._pending, {}
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        if not pending:
            return
        try:
            with self.db.uow() as uow:
                for (session_id, minute, platform), n in sorted(pending.items()):
                    add_to_counter(uow.session, ChatMinute.__table__,
                                   {"session_id": session_id, "minute": minute, "platform": platform}, "count", n)
                uow.commit()
        except IntegrityError:
            log.info("dropped the chat counts of %d minutes: their stream session is gone", len(pending))
        except SQLAlchemyError as e:
            log.warning("could not write the chat counts (%s); they wait for the next flush", type(e).__name__)
            with self._lock:
                for key, n in pending.items():
                    self._pending[key] = self._pending.get(key, 0) + n


@dataclass(frozen=True)
class Chat:
    """The chat of a stream: messages per minute of it (every minute from its start to its end, the
    silent ones at 0) and how many each platform carried."""

    #: (minute's start, messages), in order.
    minutes: list[tuple[dt.datetime, int]]
    by_platform: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_platform.values())

    def per_minute(self, duration: dt.timedelta) -> float:
        """Messages per minute on average over the stream (a stream shorter than a minute counts as one)."""
        return self.total / max(1.0, duration.total_seconds() / 60)

    @property
    def busiest(self) -> tuple[dt.datetime, int] | None:
        """The minute with the most messages (the first of equals); ``None`` without any."""
        best = max(self.minutes, key=lambda m: m[1], default=None)
        return best if best is not None and best[1] > 0 else None


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
    chat: Chat = field(default_factory=lambda: Chat([], {}))
    #: (when, viewers) as Twitch said them during the stream, in order.
    viewers: list[tuple[dt.datetime, int]] = field(default_factory=list)
    #: Why there is no chart although there is something to draw (matplotlib failed), for the reply.
    chart_problem: str | None = None

    @property
    def peak_viewers(self) -> tuple[dt.datetime, int] | None:
        return max(self.viewers, key=lambda v: v[1], default=None)


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
    chat = _chat(uow, session.id, start, end)
    viewers = [(at, n) for at, n in uow.session.execute(
        select(ViewerSample.at, ViewerSample.viewers).where(ViewerSample.session_id == session.id,
                                                            ViewerSample.at <= end).order_by(ViewerSample.at))]
    chart, problem = None, None
    if charts is not None and (scenes or chat.total or viewers):
        try:
            chart = _chart(session, scenes, chat, viewers, charts)
        except Exception as e:  # a chart that cannot be drawn leaves the report as it is
            log.exception("the chart of stream session %s could not be drawn", session.id)
            problem = type(e).__name__
    return Report(session, artist.name if artist else None, end - start, scenes,
                  sorted((a, int(n)) for a, n in cases), chart, chat, viewers, problem)


def _chat(uow: UnitOfWork, session_id: int, start: dt.datetime, end: dt.datetime) -> Chat:
    counted: dict[dt.datetime, int] = {}
    by_platform: dict[str, int] = {}
    first, last = _minute(start), _minute(end)
    for minute, platform, n in uow.session.execute(
            select(ChatMinute.minute, ChatMinute.platform, ChatMinute.count).where(
                ChatMinute.session_id == session_id, ChatMinute.minute >= first, ChatMinute.minute <= last)):
        counted[minute] = counted.get(minute, 0) + n
        by_platform[platform] = by_platform.get(platform, 0) + n
    if not counted:
        return Chat([], {})
    minutes, at = [], first
    while at <= last:
        minutes.append((at, counted.get(at, 0)))
        at += dt.timedelta(minutes=1)
    return Chat(minutes, dict(sorted(by_platform.items(), key=lambda kv: (-kv[1], kv[0]))))


def _chart(session: StreamSession, scenes: list[tuple[str, float]], chat: Chat,
           viewers: list[tuple[dt.datetime, int]], folder: Path) -> Path:
    """One PNG (matplotlib, no display): time on air per scene, and over the stream's time the chat
    messages per minute (bars) and the viewers (a line), each part when there is something to show."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"stream-session-{session.id}.png"
    timeline = bool(chat.total or viewers)
    heights = ([0.5 + 0.4 * len(scenes)] if scenes else []) + ([2.6] if timeline else [])
    fig, axes = plt.subplots(len(heights), 1, figsize=(6.4, 0.6 + sum(heights)), dpi=100, squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    row = 0
    fig.suptitle(session.title)
    if scenes:
        ax = axes[row][0]
        names = [s for s, _t in scenes][::-1]
        minutes = [t / 60 for _s, t in scenes][::-1]
        ax.barh(names, minutes, color="#6c5ce7")
        ax.set_xlabel(_("minutes on air"))
        row += 1
    if timeline:
        ax = axes[row][0]
        start = session.started_at or utcnow()

        def since(at: dt.datetime) -> float:
            return (at - start).total_seconds() / 60

        if chat.total:
            ax.bar([since(m) + 0.5 for m, _n in chat.minutes], [n for _m, n in chat.minutes], width=0.9,
                   color="#00b894", label=_("chat messages per minute"))
            ax.set_ylabel(_("messages"))
        ax.set_xlabel(_("minutes since the start"))
        if viewers:
            line = ax.twinx() if chat.total else ax
            line.plot([since(at) for at, _n in viewers], [n for _at, n in viewers], color="#e17055", marker="o",
                      markersize=3, label=_("viewers"))
            line.set_ylabel(_("viewers"))
            line.set_ylim(bottom=0)
        ax.yaxis.get_major_locator().set_params(integer=True)
        handles = [h for a in fig.axes[row:] for h in a.get_legend_handles_labels()[0]]
        ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, fontsize="small",
                  frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
