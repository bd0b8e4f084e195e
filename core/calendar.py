"""The team calendar: events with attendees, reminders and RFC 5545 recurrences, and their .ics export.

An event keeps its start as the wall-clock time in the team's timezone (``tz``) with its UTC instant;
a recurring one has an RRULE (``FREQ=WEEKLY;UNTIL=…``) expanded by python-dateutil in local time, so a
weekly 10:00 stays at 10:00 across daylight saving time. Cancelling one occurrence adds it to
``exdates`` (an exception, as RFC 5545 has it): the series stays. Every recurrence ends: by ``--until``
or ``--count``, else a year after its start; none runs past ``MOST_YEARS`` years.

Reminders are mona's own (subscribed calendars poll every 12–24 hours): ``remind_at`` is when the next
one is due, and the ticker (``due_reminders``) sends it to the attendees and the organiser, then sets
the next occurrence's. Each is a delivery keyed by event and occurrence, so it goes out once.

``export`` writes an iCalendar file with the icalendar library: every TZID used has its VTIMEZONE,
EXDATEs are written in the zone of DTSTART, and UIDs are stable (``CalendarEvent.uid``), so importing
a later export updates the events instead of duplicating them.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from dateutil import rrule
from sqlalchemy import JSON, ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UnitOfWork, utcnow
from core.errors import InvalidInput, NotFound
from core.i18n import _
from core.team import Member
from core.text import clean

MOST_DURATION = dt.timedelta(days=14)
MOST_YEARS = 5
DEFAULT_SERIES = dt.timedelta(days=365)
#: How far ahead conflicts are looked for, and occurrences listed.
LOOK_AHEAD = dt.timedelta(days=366)
EVERY = {"day": rrule.DAILY, "week": rrule.WEEKLY, "month": rrule.MONTHLY, "year": rrule.YEARLY}
FREQ_NAMES = {rrule.DAILY: "DAILY", rrule.WEEKLY: "WEEKLY", rrule.MONTHLY: "MONTHLY", rrule.YEARLY: "YEARLY"}
FREQ_OF = {name: freq for freq, name in FREQ_NAMES.items()}


class CalendarEvent(Base):
    __tablename__ = "calendar_events"
    __table_args__ = (Index("ix_calendar_events_start", "starts_at"), Index("ix_calendar_events_remind", "remind_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(80), default=lambda: f"{uuid.uuid4()}@mona")
    title: Mapped[str] = mapped_column(String(200))
    #: The first occurrence's start (UTC), and the same as the team's wall clock in ``tz``.
    starts_at: Mapped[dt.datetime]
    local_start: Mapped[str] = mapped_column(String(19))
    tz: Mapped[str] = mapped_column(String(60))
    duration_s: Mapped[int]
    where: Mapped[str | None] = mapped_column(String(200), default=None)
    artist_id: Mapped[int | None] = mapped_column(ForeignKey("artists.id", ondelete="SET NULL"), default=None, index=True)
    #: RFC 5545 RRULE (``FREQ=WEEKLY;INTERVAL=1;UNTIL=20271204T090000``, in local time), or None.
    rule: Mapped[str | None] = mapped_column(String(200), default=None)
    #: The last occurrence's local start (the series' end), for queries.
    ends_local: Mapped[str] = mapped_column(String(19))
    #: Occurrences cancelled, as their local starts (``2026-12-11T10:00:00``).
    exdates: Mapped[list[str]] = mapped_column(JSON, default=list)
    remind_s: Mapped[int | None] = mapped_column(default=None)
    remind_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CalendarAttendee(Base):
    __tablename__ = "calendar_attendees"

    event_id: Mapped[int] = mapped_column(ForeignKey("calendar_events.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True)


class CalendarFeed(Base):
    """A member's subscribable ``/cal.ics?token=…``; deleting the row revokes it."""

    __tablename__ = "calendar_feeds"

    token: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: secrets.token_urlsafe(32))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------- occurrences


def _local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _iso(local: dt.datetime) -> str:
    return local.replace(tzinfo=None, microsecond=0).isoformat()


def series(event: Occurring) -> rrule.rrule | None:
    if not event.rule:
        return None
    return _series(event.rule, event.local_start)


@functools.lru_cache(maxsize=16384)
def _starts_between(rule: str, local_start: str, lo: dt.datetime, hi: dt.datetime) -> tuple[dt.datetime, ...]:
    """A series' local starts in [lo, hi], kept: the same week is listed again and again."""
    return tuple(_series(rule, local_start).between(lo, hi, inc=True))


@functools.lru_cache(maxsize=8192)
def _series(rule: str, local_start: str) -> rrule.rrule:
    """A series' rule, built once per (RRULE, start) and kept: listing a week expands hundreds of them.
    Built from its fields directly: rrulestr's general date parser is slow on UNTIL."""
    parts = rrule_dict(rule)
    return rrule.rrule(FREQ_OF[parts.pop("freq")], dtstart=_local(local_start), **parts)  # type: ignore[arg-type]


def occurrences(event: Occurring, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """(start, end) of each occurrence overlapping [start, end), aware in UTC, cancelled ones left out."""
    if event.cancelled_at is not None:
        return []
    length = dt.timedelta(seconds=event.duration_s)
    if not event.rule:  # one-off: ``starts_at`` is its instant, and it has no exceptions
        begins = event.starts_at
        return [(begins, begins + length)] if begins < end and begins + length > start else []
    zone = ZoneInfo(event.tz)
    rule = series(event)
    if rule is None:
        local_starts = [_local(event.local_start)]
    else:
        lo = (start - length).astimezone(zone).replace(tzinfo=None)
        hi = end.astimezone(zone).replace(tzinfo=None)
        local_starts = list(_starts_between(event.rule or "", event.local_start, lo, hi))
    skip = set(event.exdates or ())
    found = []
    for local in local_starts:
        if _iso(local) in skip:
            continue
        begins = local.replace(tzinfo=zone).astimezone(dt.UTC)
        if begins < end and begins + length > start:
            found.append((begins, begins + length))
    return found


def next_occurrence(event: CalendarEvent, after: dt.datetime) -> dt.datetime | None:
    """The first occurrence starting after ``after`` (UTC), or None."""
    zone = ZoneInfo(event.tz)
    rule = series(event)
    skip = set(event.exdates or ())
    if rule is None:
        begins = _local(event.local_start).replace(tzinfo=zone).astimezone(dt.UTC)
        return begins if begins > after and _iso(_local(event.local_start)) not in skip else None
    local = after.astimezone(zone).replace(tzinfo=None)
    for _step in range(1000):
        nxt = rule.after(local, inc=False)
        if nxt is None:
            return None
        if _iso(nxt) not in skip:
            return nxt.replace(tzinfo=zone).astimezone(dt.UTC)
        local = nxt
    return None


# ---------------------------------------------------------------- adding and changing


@dataclass(frozen=True)
class Repeat:
    every: str  # day, week, month, year
    interval: int = 1
    until: dt.date | None = None
    count: int | None = None


def _rule(start_local: dt.datetime, repeat: Repeat | None) -> tuple[str | None, str]:
    """The RRULE text and the local start of the series' last occurrence."""
    if repeat is None:
        return None, _iso(start_local)
    if repeat.every not in EVERY:
        raise InvalidInput(_("--every takes day, week, month or year, not {value}.", value=repeat.every))
    limit = start_local + dt.timedelta(days=365 * MOST_YEARS + 1)
    if repeat.until is not None:
        until = dt.datetime.combine(repeat.until, dt.time(23, 59, 59))
        if until < start_local:
            raise InvalidInput(_("--until is before the first occurrence."))
        if until > limit:
            raise InvalidInput(_("A recurrence ends within {n} years: --until {date} is later.", n=MOST_YEARS,
                                 date=repeat.until.isoformat()))
    elif repeat.count is None:
        until = start_local + DEFAULT_SERIES
    else:
        until = limit
    freq = EVERY[repeat.every]
    kwargs: dict[str, Any] = {"dtstart": start_local, "interval": max(repeat.interval, 1)}
    if repeat.count is not None:
        if not 1 <= repeat.count <= 1000:
            raise InvalidInput(_("--count is between 1 and 1000."))
        kwargs["count"] = repeat.count
    else:
        kwargs["until"] = until
    series_ = rrule.rrule(freq, **kwargs)  # type: ignore[arg-type]
    last = series_[-1] if repeat.count is not None else series_.before(until, inc=True)
    if last is None or last > limit:
        raise InvalidInput(_("A recurrence ends within {n} years.", n=MOST_YEARS))
    text = f"FREQ={FREQ_NAMES[freq]};INTERVAL={max(repeat.interval, 1)}"
    text += f";COUNT={repeat.count}" if repeat.count is not None else f";UNTIL={until.strftime('%Y%m%dT%H%M%S')}"
    return text, _iso(last)


def _check_duration(duration: dt.timedelta) -> None:
    if duration <= dt.timedelta(0):
        raise InvalidInput(_("An event lasts more than nothing: give --duration like 1h or 30m."))
    if duration > MOST_DURATION:
        raise InvalidInput(_("An event lasts at most 14 days."))


def add(uow: UnitOfWork, actor: Member, *, title: str, start: dt.datetime, duration: dt.timedelta, tz: str,
        now: dt.datetime, artist_id: int | None = None, where: str | None = None, attendees: Sequence[int] = (),
        remind: dt.timedelta | None = None, repeat: Repeat | None = None) -> CalendarEvent:
    title = clean(title, what=_("title"), max_len=200, allow_newlines=False)
    if not title:
        raise InvalidInput(_("Give the event a title, e.g. /cal add Studio session tomorrow 14:00."))
    _check_duration(duration)
    zone = ZoneInfo(tz)
    local = start.astimezone(zone).replace(tzinfo=None, microsecond=0)
    rule, last = _rule(local, repeat)
    event = CalendarEvent(title=title, starts_at=start, local_start=_iso(local), tz=tz,
                          duration_s=int(duration.total_seconds()), where=clean(where, what=_("place"), max_len=200) if where
                          else None, artist_id=artist_id, rule=rule, ends_local=last, exdates=[],
                          remind_s=int(remind.total_seconds()) if remind else None, created_by_id=actor.id)
    uow.session.add(event)
    uow.session.flush()
    for member_id in dict.fromkeys([actor.id, *attendees]):
        uow.session.add(CalendarAttendee(event_id=event.id, member_id=member_id))
    _schedule_reminder(event, now)
    uow.session.flush()
    return event


def _schedule_reminder(event: CalendarEvent, now: dt.datetime) -> None:
    if not event.remind_s:
        event.remind_at = None
        return
    lead = dt.timedelta(seconds=event.remind_s)
    nxt = next_occurrence(event, now + lead - dt.timedelta(seconds=1))
    event.remind_at = nxt - lead if nxt is not None else None


def get(uow: UnitOfWork, event_id: int, *, lock: bool = False) -> CalendarEvent:
    event = uow.session.get(CalendarEvent, event_id, with_for_update=lock)
    if event is None or event.cancelled_at is not None:
        raise NotFound(_("There is no event #{id} in the calendar.", id=event_id))
    return event


def move(uow: UnitOfWork, event: CalendarEvent, start: dt.datetime, now: dt.datetime) -> None:
    """Move the event (a series: its first occurrence, the others following at the same interval)."""
    zone = ZoneInfo(event.tz)
    local = start.astimezone(zone).replace(tzinfo=None, microsecond=0)
    shift = local - _local(event.local_start)
    event.starts_at, event.local_start = start, _iso(local)
    if event.rule:
        parts = dict(p.split("=", 1) for p in event.rule.split(";"))
        if "UNTIL" in parts:
            until = dt.datetime.strptime(parts["UNTIL"], "%Y%m%dT%H%M%S") + shift
            parts["UNTIL"] = until.strftime("%Y%m%dT%H%M%S")
        event.rule = ";".join(f"{k}={v}" for k, v in parts.items())
        event.exdates = [_iso(_local(x) + shift) for x in event.exdates or []]
        rule = series(event)
        assert rule is not None
        last = rule[-1]  # every series ends (COUNT or UNTIL)
        event.ends_local = _iso(last or local)
    else:
        event.ends_local = event.local_start
    event.version += 1
    _schedule_reminder(event, now)


def cancel(uow: UnitOfWork, event: CalendarEvent, *, occurrence: dt.date | None, now: dt.datetime) -> str | None:
    """Cancel the event, or one occurrence of a series (kept as an exception); returns that
    occurrence's local start, or None when the whole event is cancelled."""
    if occurrence is None:
        event.cancelled_at = now
        event.remind_at = None
        event.version += 1
        return None
    if not event.rule:
        raise InvalidInput(_("#{id} does not repeat: /cal cancel {id} cancels it.", id=event.id))
    rule = series(event)
    assert rule is not None
    day_start = dt.datetime.combine(occurrence, dt.time())
    hits = rule.between(day_start, day_start + dt.timedelta(days=1), inc=False) + (
        [day_start] if day_start in rule else [])
    if not hits:
        raise InvalidInput(_("#{id} has no occurrence on {date}.", id=event.id, date=occurrence.isoformat()))
    local = _iso(hits[0])
    if local in (event.exdates or []):
        raise InvalidInput(_("The occurrence of {date} is already cancelled.", date=occurrence.isoformat()))
    event.exdates = [*(event.exdates or []), local]
    event.version += 1
    _schedule_reminder(event, now)
    return local


def attendees(uow: UnitOfWork, event_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for event_id, member_id in uow.session.execute(select(CalendarAttendee.event_id, CalendarAttendee.member_id)
                                                   .where(CalendarAttendee.event_id.in_(event_ids))):
        out.setdefault(event_id, []).append(member_id)
    return out


class Occurring(Protocol):
    """What listing occurrences reads of an event: a ``CalendarEvent``, or a plain row of its columns."""

    id: int
    title: str
    where: str | None
    starts_at: dt.datetime
    local_start: str
    tz: str
    duration_s: int
    rule: str | None
    exdates: list[str]
    cancelled_at: dt.datetime | None


#: The columns a week's listing needs, read as plain rows (no ORM objects: a team's week has a thousand).
_LISTED = (CalendarEvent.id, CalendarEvent.title, CalendarEvent.where, CalendarEvent.starts_at, CalendarEvent.local_start,
           CalendarEvent.tz, CalendarEvent.duration_s, CalendarEvent.rule, CalendarEvent.exdates,
           CalendarEvent.cancelled_at)


def between(uow: UnitOfWork, start: dt.datetime, end: dt.datetime, *, member_id: int | None = None,
            artist_id: int | None = None) -> list[tuple[Occurring, dt.datetime, dt.datetime]]:
    """Every occurrence in [start, end), in order: (the event's row, its start, its end), UTC."""
    q = select(*_LISTED).where(CalendarEvent.cancelled_at.is_(None), CalendarEvent.starts_at < end,
                                    CalendarEvent.ends_local >= _iso((start - MOST_DURATION).replace(tzinfo=None)))
    if member_id is not None:
        q = q.where(CalendarEvent.id.in_(select(CalendarAttendee.event_id).where(CalendarAttendee.member_id == member_id)))
    if artist_id is not None:
        q = q.where(CalendarEvent.artist_id == artist_id)
    rows = cast(list[Occurring], list(uow.session.execute(q)))
    found = [(e, a, b) for e in rows for a, b in occurrences(e, start, end)]
    return sorted(found, key=lambda x: (x[1], x[0].id))


def conflicts(uow: UnitOfWork, event: CalendarEvent, members: list[int], now: dt.datetime,
              *, limit: int = 3) -> list[tuple[CalendarEvent, dt.datetime]]:
    """Other events of these members overlapping one of this event's coming occurrences (a warning)."""
    horizon = now + LOOK_AHEAD
    mine = occurrences(event, min(event.starts_at, now), horizon)[:50]
    if not mine or not members:
        return []
    others = select(CalendarAttendee.event_id).where(CalendarAttendee.member_id.in_(members))
    found: list[tuple[CalendarEvent, dt.datetime]] = []
    for other in uow.session.scalars(select(CalendarEvent).where(CalendarEvent.id.in_(others), CalendarEvent.id != event.id,
                                                                   CalendarEvent.cancelled_at.is_(None))):
        for a, b in mine:
            hit = occurrences(other, a, b)
            if hit:
                found.append((other, hit[0][0]))
                break
        if len(found) >= limit:
            break
    return found


# ---------------------------------------------------------------- reminders


@dataclass(frozen=True)
class DueReminder:
    event: CalendarEvent
    occurrence: dt.datetime
    members: list[int]


def due_reminders(uow: UnitOfWork, now: dt.datetime) -> list[DueReminder]:
    """Claim the reminders due (row locks, skipped when another worker holds them) and set each
    event's next one; the caller turns them into deliveries in the same transaction."""
    rows = list(uow.session.scalars(select(CalendarEvent).where(CalendarEvent.remind_at <= now,
                                                                CalendarEvent.cancelled_at.is_(None))
                                    .with_for_update(skip_locked=True).limit(200)))
    due = []
    people = attendees(uow, [e.id for e in rows])
    for event in rows:
        lead = dt.timedelta(seconds=event.remind_s or 0)
        assert event.remind_at is not None
        occurrence = event.remind_at + lead
        due.append(DueReminder(event, occurrence, people.get(event.id, [])))
        event.remind_at = None
        nxt = next_occurrence(event, occurrence)
        if nxt is not None and event.remind_s:
            event.remind_at = nxt - lead
    return due


# ---------------------------------------------------------------- iCalendar


def export(events: list[CalendarEvent], *, name: str = "mona") -> bytes:
    """An iCalendar file of ``events`` (series with their RRULE and EXDATEs), with the VTIMEZONE of every
    TZID used."""
    from icalendar import Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//MONA x SPARK//mona//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    stamp = utcnow()
    for e in events:
        zone = ZoneInfo(e.tz)
        start = _local(e.local_start).replace(tzinfo=zone)
        item = Event()
        item.add("uid", e.uid)
        item.add("dtstamp", stamp)
        item.add("summary", e.title)
        item.add("dtstart", start)
        item.add("dtend", start + dt.timedelta(seconds=e.duration_s))
        item.add("sequence", e.version - 1)
        if e.where:
            item.add("location", e.where)
        if e.rule:
            item.add("rrule", rrule_dict(e.rule))
            for x in e.exdates or []:
                item.add("exdate", _local(x).replace(tzinfo=zone))
        cal.add_component(item)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def rrule_dict(text: str) -> dict[str, Any]:
    parts = dict(p.split("=", 1) for p in text.split(";"))
    out: dict[str, Any] = {"freq": parts["FREQ"], "interval": int(parts.get("INTERVAL", "1"))}
    if "COUNT" in parts:
        out["count"] = int(parts["COUNT"])
    if "UNTIL" in parts:
        out["until"] = dt.datetime.strptime(parts["UNTIL"], "%Y%m%dT%H%M%S")
    return out


def feed_of(uow: UnitOfWork, member: Member, *, renew: bool = False) -> CalendarFeed:
    """The member's feed token (a new one with ``renew``: the old link stops working)."""
    current = uow.session.scalars(select(CalendarFeed).where(CalendarFeed.member_id == member.id)).first()
    if current is not None and not renew:
        return current
    if current is not None:
        uow.session.delete(current)
        uow.session.flush()
    feed = CalendarFeed(member_id=member.id)
    uow.session.add(feed)
    uow.session.flush()
    return feed


def revoke_feed(uow: UnitOfWork, member: Member) -> bool:
    current = uow.session.scalars(select(CalendarFeed).where(CalendarFeed.member_id == member.id)).first()
    if current is None:
        return False
    uow.session.delete(current)
    return True


def feed_events(uow: UnitOfWork, token: str) -> list[CalendarEvent] | None:
    """The events of the feed's member (theirs as attendee), or None for a token that is not (or no longer) valid."""
    feed = uow.session.get(CalendarFeed, token)
    if feed is None:
        return None
    q = select(CalendarEvent).where(CalendarEvent.cancelled_at.is_(None), CalendarEvent.id.in_(
        select(CalendarAttendee.event_id).where(CalendarAttendee.member_id == feed.member_id)))
    return list(uow.session.scalars(q.order_by(CalendarEvent.id)))
