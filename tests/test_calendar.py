"""The calendar (issue 12): events from chat on PostgreSQL, their recurrences and exceptions, reminders
sent by mona, conflicts, and the .ics export parsed back with the icalendar library."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from dateutil import rrule
from icalendar import Calendar
from sqlalchemy import select

from bot.app import Mona, bootstrap
from bot.console import ConsoleBot
from core import calendar as cal
from core.config import Settings
from core.db import utcnow
from jobs.ticker import calendar_once

NEXT_YEAR = utcnow().year + 1


def events(mona: Mona) -> list[cal.CalendarEvent]:
    with mona.db.uow() as uow:
        found = list(uow.session.scalars(select(cal.CalendarEvent).order_by(cal.CalendarEvent.id)))
        for e in found:
            uow.session.expunge(e)
    return found


def test_an_event_is_added_from_its_title_and_time_and_shown_today_this_week_and_alone(bot: ConsoleBot,
                                                                                         mona: Mona) -> None:
    added = bot.run("/cal add Studio session with Alex in 2 hours --duration 90m --where Studio A")
    assert added.text.startswith("Added #1 Studio session with Alex: "), added.text
    [e] = events(mona)
    assert e.duration_s == 5400 and e.where == "Studio A" and e.rule is None
    assert abs((e.starts_at - utcnow()).total_seconds() - 7200) < 120
    week = bot.run("/cal week").plain_text()
    assert "#1 " in week and "Studio session with Alex · Studio A" in week
    shown = bot.run("/cal show 1").plain_text()
    assert "Duration: 90 min" in shown and "Where: Studio A" in shown and "Who: " in shown


def test_a_weekly_series_keeps_its_wall_clock_time_across_daylight_saving_and_one_occurrence_can_be_cancelled(
        bot: ConsoleBot, mona: Mona) -> None:
    r = bot.run(f"/cal add Team call {NEXT_YEAR}-03-22 10:00 --every week --count 3")
    assert not r.error, r.text
    [e] = events(mona)
    paris = ZoneInfo("Europe/Paris")
    start = dt.datetime(NEXT_YEAR, 3, 1, tzinfo=dt.UTC)
    times = [a.astimezone(paris) for a, _b in cal.occurrences(e, start, start + dt.timedelta(days=60))]
    assert [(t.day, t.hour, t.minute) for t in times] == [(22, 10, 0), (29, 10, 0), (5, 10, 0)]
    assert len({t.utcoffset() for t in times}) == 2  # the clocks changed in between
    cancelled = bot.run(f"/cal cancel 1 --occurrence {NEXT_YEAR}-03-29")
    assert cancelled.text == f"Cancelled the occurrence of {NEXT_YEAR}-03-29 10:00 of #1 Team call; the others stay."
    [e] = events(mona)
    assert e.cancelled_at is None and e.exdates == [f"{NEXT_YEAR}-03-29T10:00:00"]
    left = [a.astimezone(paris).day for a, _b in cal.occurrences(e, start, start + dt.timedelta(days=60))]
    assert left == [22, 5]
    again = bot.run(f"/cal cancel 1 --occurrence {NEXT_YEAR}-03-29")
    assert again.error and again.text == f"The occurrence of {NEXT_YEAR}-03-29 is already cancelled."
    none = bot.run(f"/cal cancel 1 --occurrence {NEXT_YEAR}-03-30")
    assert none.error and none.text == f"#1 has no occurrence on {NEXT_YEAR}-03-30."


@pytest.mark.parametrize(("line", "message"), [
    (f"/cal add Gig {NEXT_YEAR}-02-30 20:00", f"{NEXT_YEAR}-02-30 is not a date that exists."),
    ("/cal add Gig 30/02 20:00", "30/02 is not a date that exists."),
    ("/cal add Gig tomorrow 20:00 --duration 0m", "is not a duration"),
    ("/cal add Gig tomorrow 20:00 --duration 15d", "An event lasts at most 14 days."),
    (f"/cal add Gig tomorrow 20:00 --every week --until {NEXT_YEAR + 6}-01-01", "A recurrence ends within 5 years"),
    ("/cal add Gig tomorrow 20:00 --until 2031-01-01", "--until, --count and --interval go with --every."),
    ("/cal add Gig yesterday 20:00", "is in the past."),
    ("/cal add tomorrow 20:00", "Something is missing. Usage: /cal add TITLE WHEN"),
])
def test_bad_events_are_refused_with_the_reason_and_nothing_is_stored(bot: ConsoleBot, mona: Mona, line: str,
                                                                       message: str) -> None:
    r = bot.run(line)
    assert r.error and message in r.text, r.text
    assert events(mona) == []


def test_a_move_shifts_the_series_and_warns_about_a_conflict(bot: ConsoleBot, mona: Mona) -> None:
    assert not bot.run(f"/cal add Mix review {NEXT_YEAR}-06-10 15:00 --duration 1h").error
    assert not bot.run(f"/cal add Photo shoot {NEXT_YEAR}-06-11 15:00 --duration 2h").error
    moved = bot.run(f"/cal move 2 {NEXT_YEAR}-06-10 15:30")
    assert moved.text == f"Moved #2 Photo shoot to {NEXT_YEAR}-06-10 15:30."
    assert moved.footer is not None and moved.footer.startswith("Conflicts: #1 Mix review")
    clash = bot.run(f"/cal add Call {NEXT_YEAR}-06-10 15:15")
    assert clash.footer is not None and "#1 Mix review" in clash.footer


def test_a_reminder_is_sent_by_mona_to_each_attendee_once_before_each_occurrence(bot: ConsoleBot, mona: Mona,
                                                                                   out: io.StringIO) -> None:
    sam = bot.as_user("USAM", "Sam")
    sam.run("/artist list")  # Sam has talked to mona
    assert not bot.run(f"/cal add Weekly sync {NEXT_YEAR}-01-04 09:00 --every week --count 2 --remind 30m --with @Sam").error
    [e] = events(mona)
    assert e.remind_at is not None
    paris = ZoneInfo("Europe/Paris")
    assert e.remind_at.astimezone(paris).strftime("%Y-%m-%d %H:%M") == f"{NEXT_YEAR}-01-04 08:30"
    assert calendar_once(mona.runtime, now=e.remind_at - dt.timedelta(minutes=1)) == 0
    assert calendar_once(mona.runtime, now=e.remind_at) == 2  # the organiser and Sam
    assert calendar_once(mona.runtime, now=e.remind_at + dt.timedelta(minutes=1)) == 0
    mona.run_pending_jobs()
    told = out.getvalue()
    assert told.count(f"Coming up: Weekly sync, {NEXT_YEAR}-01-04 09:00.") == 2
    [e] = events(mona)
    assert e.remind_at is not None and e.remind_at.astimezone(paris).strftime("%m-%d %H:%M") == "01-11 08:30"


def _exported(bot: ConsoleBot) -> Calendar:
    r = bot.run("/cal export")
    [file] = r.files
    return Calendar.from_ical(file.path.read_bytes())


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/Montreal"])
def test_the_export_parses_back_with_its_timezone_rule_exceptions_and_stable_uids(pg_database, settings: Settings,
                                                                                  zone: str) -> None:
    from tests.conftest import empty

    empty(pg_database)
    mona = bootstrap(dataclasses.replace(settings, timezone=zone), migrate=False, db=pg_database)
    bot = ConsoleBot(mona.dispatcher, user_name="Lina")
    assert not bot.run(f"/cal add Team call {NEXT_YEAR}-03-01 10:00 --every week --count 6 --where Zoom").error
    assert not bot.run(f"/cal cancel 1 --occurrence {NEXT_YEAR}-03-15").error
    assert not bot.run(f"/cal add Showcase {NEXT_YEAR}-04-02 20:30 --duration 3h").error
    first = _exported(bot)
    [tz] = [c for c in first.walk("VTIMEZONE")]
    assert str(tz["TZID"]) == zone
    series, single = first.walk("VEVENT")
    start = series["DTSTART"].dt
    assert str(start.tzinfo) == zone and (start.hour, start.minute) == (10, 0)
    exdate = series["EXDATE"].dts[0].dt
    assert str(exdate.tzinfo) == zone and (exdate.month, exdate.day, exdate.hour) == (3, 15, 10)
    rule = rrule.rrulestr(series["RRULE"].to_ical().decode(), dtstart=start.replace(tzinfo=None))
    local = [d for d in rule if d.replace(tzinfo=ZoneInfo(zone)) != exdate]
    assert [(d.month, d.day, d.hour) for d in local] == [(3, 1, 10), (3, 8, 10), (3, 22, 10), (3, 29, 10), (4, 5, 10)]
    as_utc = {d.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC).hour for d in local}
    assert len(as_utc) == 2  # one UTC hour before the clocks change, another after
    assert (single["DTEND"].dt - single["DTSTART"].dt) == dt.timedelta(hours=3)
    assert str(series["LOCATION"]) == "Zoom"
    second = _exported(bot)
    assert [str(e["UID"]) for e in second.walk("VEVENT")] == [str(e["UID"]) for e in first.walk("VEVENT")]


def test_a_private_feed_link_serves_the_members_events_until_it_is_revoked(bot: ConsoleBot, mona: Mona) -> None:
    import urllib.error
    import urllib.request

    from bot import health
    from tests.slack_stub import WsgiServer

    assert not bot.run(f"/cal add Showcase {NEXT_YEAR}-04-02 20:30").error
    link = bot.run("/cal link").text
    token = link.split("token=", 1)[1].split()[0]

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        return health.answer(mona, environ, start_response)

    with WsgiServer(app) as server:
        with urllib.request.urlopen(f"{server.url}/cal.ics?token={token}", timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/calendar")
            feed = Calendar.from_ical(response.read())
        assert [str(e["SUMMARY"]) for e in feed.walk("VEVENT")] == ["Showcase"]
        assert bot.run("/cal link --revoke").text == "Your calendar link is revoked."
        with pytest.raises(urllib.error.HTTPError) as gone:
            urllib.request.urlopen(f"{server.url}/cal.ics?token={token}", timeout=5)
        assert gone.value.code == 404


def test_the_digest_lists_todays_events_and_the_weeks_planned_streams_and_the_card_the_next_event(
        bot: ConsoleBot, mona: Mona) -> None:
    from core import announcements, digest

    assert not bot.run("/artist add Alex Blue").error
    assert not bot.run(f"/cal add Listening party {NEXT_YEAR}-06-10 18:00 --artist Alex Blue").error
    assert not bot.run(f"/stream plan Alex Blue {NEXT_YEAR}-06-12 20:00 --title Villa live").error
    morning = dt.datetime(NEXT_YEAR, 6, 10, 7, 0, tzinfo=dt.UTC)
    with mona.db.uow() as uow:
        d = digest.daily(uow, morning.date(), stuck_days=30, now=morning, tz="Europe/Paris")
    text = announcements.digest(d).text
    assert "Today: 1 event (18:00 Listening party)" in text
    assert f"Streams this week: 1 ({dt.date(NEXT_YEAR, 6, 12):%a %d} 20:00 Villa live)" in text
    card = bot.run("/artist show Alex Blue").plain_text()
    assert f"Next event\n#1 {NEXT_YEAR}-06-10 18:00 Listening party" in card


def test_on_discord_an_event_is_added_and_the_export_comes_as_an_ics_attachment(mona: Mona, settings: Settings) -> None:
    from tests.discord_gateway_stub import ADMIN_ID, GUILD_ID, LiveDiscord
    from tests.test_discord import embed_of

    discord_mona = bootstrap(dataclasses.replace(settings, admins=settings.admins | {f"discord:{ADMIN_ID}"},
                                                 discord_guild_ids=(int(GUILD_ID),)), migrate=False, db=mona.db)
    with LiveDiscord(discord_mona) as live:
        added = live.command("cal add", {"title": "Villa prep", "when": f"{NEXT_YEAR}-05-04 11:00", "duration": "2h"})
        assert embed_of(added.body["data"])["description"] == f"Added #1 Villa prep: {NEXT_YEAR}-05-04 11:00."
        exported = live.command("cal export", {})
    [(field, filename, content)] = exported.files
    assert (field, filename) == ("files[0]", "mona-calendar.ics")
    [event] = Calendar.from_ical(content).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Villa prep" and event["DTSTART"].dt.hour == 11
