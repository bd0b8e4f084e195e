"""/cal: the team calendar from chat — add (with attendees, a place, a reminder, a recurrence), today,
week, show, move, cancel (a whole event or one occurrence), export as .ics, and a private feed link.
Times are read like /remind reads them (French and English, the team's timezone): ``core.when``."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core import artists as crm
from core import calendar as cal
from core.app import Command, Context
from core.db import utcnow
from core.errors import InvalidInput
from core.i18n import _, ngettext
from core.refs import Mention
from core.team import Member, Permission
from core.when import parse_when
from handlers.args import ArtistRef, ChatType, Count, RecordId, Seconds, Switch, Text, arg, opt
from handlers.parser import parse_date, parse_mention
from handlers.registry import RERUN, Lookup, missing, registry
from handlers.render import local_datetime
from handlers.reply import Attachment, Button, Field, Reply, Section

READ = Permission.READ
EDIT = Permission.EDIT_ARTISTS
MOST_TIME_WORDS = 6
#: Events listed per day by /cal week (the rest counted).
PER_DAY = 25


def _people(raw: str, label: str) -> tuple[Mention, ...]:
    found = []
    for token in raw.replace(",", " ").split():
        who = parse_mention(token)
        if who is None:
            raise InvalidInput(_("{value} is not a mention; write @name.", value=token))
        found.append(who)
    return tuple(found)


def _date(raw: str, label: str) -> dt.date:
    return parse_date(raw.strip())


People = Annotated[tuple[Mention, ...], ChatType(_people, "@member …", "Team members", many_words=True)]
Day = Annotated[dt.date, ChatType(_date, "DATE", "A date, like 2026-12-31")]
Every = Literal["day", "week", "month", "year"]


_DATE_LIKE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$|^(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?$")


def _real_date(word: str) -> bool:
    m = _DATE_LIKE.match(word)
    if m is None:
        return True
    try:
        if m.group(1):  # 2027-02-30
            dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        else:  # 30/02, 30/02/27 or 30/02/2027 (day first); a leap year when no year is given
            year = int(m.group(6) or 2000)
            dt.date(year + 2000 if year < 100 else year, int(m.group(5)), int(m.group(4)))
    except ValueError:
        return False
    return True


def trailing_time(words: list[str]) -> int:
    """How many of the last words name a time (``Studio session tomorrow 14:00`` → 2), 0 when none.
    A date that does not exist just before it (``2027-02-30 20:00``) is refused, not read as a title."""
    now = dt.datetime.now(dt.UTC)
    found = next((n for n in range(min(len(words), MOST_TIME_WORDS), 0, -1)
                  if parse_when(" ".join(words[-n:]), tz="UTC", now=now) is not None), 0)
    for word in words[max(len(words) - found - 2, 0):]:
        if not _real_date(word):
            raise InvalidInput(_("{word} is not a date that exists.", word=word))
    return found


def _when(ctx: Context, text: str) -> dt.datetime:
    now = utcnow()
    at = parse_when(text, tz=ctx.settings.timezone, now=now)
    if at is None:
        raise InvalidInput(_("{text} is not a date and time I can read; write it like tomorrow 14:00, "
                             "vendredi 10h or 2026-12-31 09:30.", text=text))
    if at < now - dt.timedelta(minutes=1):
        raise InvalidInput(_("{text} is in the past.", text=text))
    return at


def _when_line(e: cal.Occurring, start: dt.datetime, tz: str) -> str:
    end = start + dt.timedelta(seconds=e.duration_s)
    local_end = end.astimezone(ZoneInfo(tz))
    where = f" · {e.where}" if e.where else ""
    again = " ↻" if e.rule else ""
    return f"#{e.id} {local_datetime(start, tz)}–{local_end.strftime('%H:%M')} {e.title}{where}{again}"


def _warnings(ctx: Context, event: cal.CalendarEvent, members: list[int]) -> str | None:
    clashes = cal.conflicts(ctx.uow, event, members, utcnow())
    if not clashes:
        return None
    tz = ctx.settings.timezone
    return _("Conflicts: {list}.", list="; ".join(f"#{o.id} {o.title} ({local_datetime(at, tz)})" for o, at in clashes))


def _show_button(event_id: int) -> Button:
    return Button(_("Show"), RERUN, f"/cal show {event_id}")


@registry.command("cal add", permission=EDIT, sensitive=True)
class CalAdd(Command):
    """Add an event to the calendar: its title then when, e.g. Studio session tomorrow 14:00; attendees,
    a place, a reminder and a recurrence are options."""

    title: Text = arg("What it is, e.g. Studio session", rest=True, metavar="TITLE")
    when: Text = arg("When it starts, e.g. tomorrow 14:00 or vendredi 10h", rest=True, metavar="WHEN")
    duration: Seconds = opt("How long it lasts, e.g. 1h (the default) or 30m", default=3600)
    artist: ArtistRef | None = opt("The artist it is about")
    with_: People | None = opt("Who attends besides you, e.g. @sam @lea", metavar="@member …")
    where: Text | None = opt("Where it happens", metavar="TEXT")
    remind: Seconds | None = opt("Remind the attendees this long before, e.g. 30m")
    every: Every | None = opt("Repeat it every day, week, month or year")
    interval: Count | None = opt("Every how many (2 with --every week: every other week)", metavar="N")
    until: Day | None = opt("The last day it repeats on (a year after the start unless given; at most 5 years)")
    count: Count | None = opt("How many times it happens in all", metavar="N")

    @classmethod
    def chat_split(cls, words: list[str], lookup: Lookup) -> dict[str, str]:
        n = trailing_time(words)
        if n == 0 or n == len(words):
            raise missing(cls)
        return {"title": " ".join(words[:-n]), "when": " ".join(words[-n:])}

    def run(self, ctx: Context) -> Reply:
        now = utcnow()
        start = _when(ctx, self.when)
        artist = crm.find(ctx.uow, self.artist) if self.artist else None
        people: list[Member] = [ctx.member(m) for m in self.with_ or ()]
        repeat = (cal.Repeat(self.every, self.interval or 1, self.until, self.count) if self.every
                  else None)
        if repeat is None and (self.until or self.count or self.interval):
            raise InvalidInput(_("--until, --count and --interval go with --every."))
        event = cal.add(ctx.uow, ctx.actor, title=self.title, start=start, duration=dt.timedelta(seconds=self.duration),
                        tz=ctx.settings.timezone, now=now, artist_id=artist.id if artist else None, where=self.where,
                        attendees=[m.id for m in people],
                        remind=dt.timedelta(seconds=self.remind) if self.remind else None, repeat=repeat)
        tz = ctx.settings.timezone
        text = _("Added #{id} {title}: {when}.", id=event.id, title=event.title, when=local_datetime(start, tz))
        if event.rule:
            text += " " + _("It repeats until {last}.", last=event.ends_local.replace("T", " ")[:16])
        footer = _warnings(ctx, event, [ctx.actor.id, *(m.id for m in people)])
        return Reply(text=text, footer=footer, ephemeral=False, actions=(_show_button(event.id),))


@registry.command("cal today", permission=READ)
class CalToday(Command):
    """Today's events in the team's timezone."""

    def run(self, ctx: Context) -> Reply:
        tz = ZoneInfo(ctx.settings.timezone)
        day = dt.datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        rows = cal.between(ctx.uow, day.astimezone(dt.UTC), (day + dt.timedelta(days=1)).astimezone(dt.UTC))
        if not rows:
            return Reply(text=_("Nothing in the calendar today."))
        return Reply(title=_("Today"), text="\n".join(_when_line(e, a, ctx.settings.timezone) for e, a, _b in rows))


@registry.command("cal week", permission=READ)
class CalWeek(Command):
    """The next seven days, day by day; --mine for yours only, --artist for one artist's."""

    mine: Switch = opt("Only the events you attend", default=False)
    artist: ArtistRef | None = opt("Only this artist's events")

    def run(self, ctx: Context) -> Reply:
        tz = ZoneInfo(ctx.settings.timezone)
        day = dt.datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        artist = crm.find(ctx.uow, self.artist) if self.artist else None
        rows = cal.between(ctx.uow, day.astimezone(dt.UTC), (day + dt.timedelta(days=7)).astimezone(dt.UTC),
                           member_id=ctx.actor.id if self.mine else None, artist_id=artist.id if artist else None)
        if not rows:
            return Reply(text=_("Nothing in the calendar for the next seven days."))
        days: dict[dt.date, list[str]] = {}
        counts: dict[dt.date, int] = {}
        for e, a, _b in rows:
            local_day = a.astimezone(tz).date()
            counts[local_day] = counts.get(local_day, 0) + 1
            if counts[local_day] <= PER_DAY:  # a chat message holds a few dozen lines a day, not hundreds
                days.setdefault(local_day, []).append(_when_line(e, a, ctx.settings.timezone))
        sections = []
        for d, lines in days.items():
            if counts[d] > PER_DAY:
                lines.append(_("and {n} more: /cal week --mine or --artist narrows it", n=counts[d] - PER_DAY))
            sections.append(Section(title=d.strftime("%A %d %B"), text="\n".join(lines)))
        return Reply(title=_("The next seven days"), sections=tuple(sections))


@registry.command("cal show", permission=READ)
class CalShow(Command):
    """One event: when, how long, where, who, the artist, its recurrence and the next occurrences."""

    event: RecordId = arg("The event's number", metavar="ID")

    def run(self, ctx: Context) -> Reply:
        e = cal.get(ctx.uow, self.event)
        tz = ctx.settings.timezone
        people = cal.attendees(ctx.uow, [e.id]).get(e.id, [])
        names = list(ctx.uow.session.scalars(select(Member.display_name).where(Member.id.in_(people))))
        coming = cal.occurrences(e, utcnow(), utcnow() + cal.LOOK_AHEAD)[:5]
        fields = [Field(_("When"), local_datetime(e.starts_at, tz)), Field(_("Duration"), f"{e.duration_s // 60} min")]
        if e.where:
            fields.append(Field(_("Where"), e.where))
        if names:
            fields.append(Field(_("Who"), ", ".join(sorted(names))))
        if e.artist_id:
            artist = ctx.uow.session.get(crm.Artist, e.artist_id)
            if artist is not None:
                fields.append(Field(_("Artist"), artist.name))
        if e.rule:
            fields.append(Field(_("Repeats"), e.rule))
        if e.exdates:
            fields.append(Field(_("Cancelled occurrences"), ", ".join(x.replace("T", " ")[:16] for x in e.exdates)))
        sections = [Section(fields=tuple(fields))]
        if coming:
            sections.append(Section(title=_("Next"), text="\n".join(local_datetime(a, tz) for a, _b in coming)))
        return Reply(title=_("#{id} {title}", id=e.id, title=e.title), sections=tuple(sections))


@registry.command("cal move", permission=EDIT, sensitive=True)
class CalMove(Command):
    """Move an event to another time (a series: from its first occurrence on)."""

    event: RecordId = arg("The event's number", metavar="ID")
    when: Text = arg("When it starts now, e.g. friday 10:00", rest=True, metavar="WHEN")

    def run(self, ctx: Context) -> Reply:
        e = cal.get(ctx.uow, self.event, lock=True)
        start = _when(ctx, self.when)
        cal.move(ctx.uow, e, start, utcnow())
        people = cal.attendees(ctx.uow, [e.id]).get(e.id, [])
        return Reply(text=_("Moved #{id} {title} to {when}.", id=e.id, title=e.title,
                            when=local_datetime(start, ctx.settings.timezone)),
                     footer=_warnings(ctx, e, people), ephemeral=False, actions=(_show_button(e.id),))


@registry.command("cal cancel", permission=EDIT, sensitive=True)
class CalCancel(Command):
    """Cancel an event, or with --occurrence one date of a series (the rest of it stays)."""

    event: RecordId = arg("The event's number", metavar="ID")
    occurrence: Day | None = opt("Only the occurrence of this day, e.g. 2026-12-11")

    def run(self, ctx: Context) -> Reply:
        e = cal.get(ctx.uow, self.event, lock=True)
        local = cal.cancel(ctx.uow, e, occurrence=self.occurrence, now=utcnow())
        if local is None:
            return Reply(text=_("Cancelled #{id} {title}.", id=e.id, title=e.title), ephemeral=False)
        return Reply(text=_("Cancelled the occurrence of {when} of #{id} {title}; the others stay.",
                            when=local.replace("T", " ")[:16], id=e.id, title=e.title), ephemeral=False)


@registry.command("cal export", permission=READ)
class CalExport(Command):
    """The calendar as an .ics file to import into Google, Apple or Outlook calendars (--artist for one
    artist's events); importing it again updates the events instead of duplicating them."""

    artist: ArtistRef | None = opt("Only this artist's events")

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist) if self.artist else None
        q = select(cal.CalendarEvent).where(cal.CalendarEvent.cancelled_at.is_(None))
        if artist is not None:
            q = q.where(cal.CalendarEvent.artist_id == artist.id)
        events = list(ctx.uow.session.scalars(q.order_by(cal.CalendarEvent.id)))
        if not events:
            return Reply(text=_("Nothing to export: the calendar is empty."))
        folder = Path(ctx.settings.data_dir or tempfile.gettempdir()) / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"mona-calendar{'-' + str(artist.id) if artist else ''}.ics"
        path = folder / name
        path.write_bytes(cal.export(events, name=artist.name if artist else "mona"))
        return Reply(text=ngettext("{n} event exported.", "{n} events exported.", len(events)),
                     files=(Attachment(path, name),))


@registry.command("cal link", permission=READ, sensitive=True)
class CalLink(Command):
    """Your private calendar feed to subscribe to (/cal.ics?token=…); --revoke stops the old link."""

    revoke: Switch = opt("Stop the current link (ask again for a new one)", default=False)

    def run(self, ctx: Context) -> Reply:
        if self.revoke:
            done = cal.revoke_feed(ctx.uow, ctx.actor)
            return Reply(text=_("Your calendar link is revoked.") if done else _("You have no calendar link."))
        feed = cal.feed_of(ctx.uow, ctx.actor)
        base = ctx.settings.public_url.rstrip("/")
        return Reply(text=_("Your calendar feed: {url} — keep it private; /cal link --revoke stops it.",
                            url=f"{base}/cal.ics?token={feed.token}"), ephemeral=True)
