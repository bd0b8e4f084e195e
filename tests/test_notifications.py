"""Notifications, reminders, the digest and long jobs, in-process (the embedded default) on
PostgreSQL, through the console adapter. The real RQ path is in tests/test_jobs_rq.py."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from core.artists import StageDuration
from core.notifier import Message, PermanentFailure, RetryLater
from core.notify import Delivery, DigestRun, JobRun, NotificationRule, Reminder
from jobs import longjobs, tasks
from jobs.ticker import digest_once


def deliveries(mona) -> list[Delivery]:
    with mona.db.uow() as uow:
        return list(uow.session.scalars(select(Delivery).order_by(Delivery.id)))


def test_routing_an_event_to_a_channel_delivers_it_once(bot, mona, out):
    r = bot.run("/mona notify add artist.stage_changed #crm")
    assert r.text == "Rule 1: artist.stage_changed now goes to #crm."
    bot.run("/artist add Alex")
    moved = bot.run("/artist move Alex Check-up --reason first call")
    assert moved.footer == "Notification queued for #crm."
    mona.run_pending_jobs()
    mona.run_pending_jobs()
    lines = [line for line in out.getvalue().splitlines() if line.startswith("[#crm]")]
    assert lines == ["[#crm] Lina moved Alex from Prospection (MONA) to Check-up (MONA). Reason: first call"]
    [d] = deliveries(mona)
    assert (d.status, d.attempts, d.ref) == ("sent", 1, "console:1")


def test_events_without_a_rule_are_relayed_but_deliver_nothing(bot, mona, out):
    r = bot.run("/artist add Alex")
    assert r.footer is None
    mona.run_pending_jobs()
    assert out.getvalue() == "" and deliveries(mona) == []


def test_routing_rules_are_listed_and_removed(bot, mona):
    bot.run("/mona notify add deal.won #wins")
    bot.run("/mona notify add digest #daily")
    listed = bot.run("/mona notify list")
    assert "1. deal.won → #wins (console)" in listed.text and "2. digest → #daily (console)" in listed.text
    removed = bot.click(listed, "Remove 1")
    assert removed.text.startswith("Removed rule 1")
    assert "No notification rule has the id 9" in bot.run("/mona notify remove 9").text


@pytest.mark.parametrize(("command", "message"), [
    ("/mona notify add artist.moved #crm", "Unknown event artist.moved. Events:"),
    ("/mona notify add artist.stage_changd #crm", "Did you mean artist.stage_changed?"),
    ("/mona notify add artist.created crm", "crm is not a channel; write #channel."),
    ("/mona notify add artist.created", "Something is missing."),
])
def test_bad_routing_rules_are_refused_and_nothing_is_stored(bot, mona, command, message):
    r = bot.run(command)
    assert r.error and message in r.text
    with mona.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(NotificationRule)) == 0


def test_a_duplicate_rule_is_refused(bot):
    bot.run("/mona notify add deal.won #wins")
    assert "deal.won already goes to #wins (rule 1)." in bot.run("/mona notify add deal.won #wins").text


def test_a_viewer_cannot_route_notifications(bot):
    viewer = bot.as_user("U9", "Vic")
    assert "Your role is viewer" in viewer.run("/mona notify add deal.won #wins").text


def test_the_owner_rule_writes_to_the_owner_and_failures_land_in_the_dead_letter_list(bot, mona, out):
    from bot.console import ConsoleBot

    ConsoleBot(mona.dispatcher, user_id="USLACK", user_name="Sam", platform="slack").run("/mona whoami")
    bot.run("/mona notify add artist.created owner")
    bot.run("/artist add Nova")  # owned by Lina, who has no chat identity: nobody to write to
    bot.run("/artist add Alex --owner @Sam")  # owned by Sam, known on Slack
    mona.run_pending_jobs()
    [d] = deliveries(mona)
    assert (d.platform, d.target, d.status) == ("slack", "user:USLACK", "dead")
    assert d.last_error == "no slack connection is configured"
    jobs = bot.run("/mona jobs")
    text = jobs.plain_text()
    assert "Failed: 1" in text and "no slack connection is configured" in text
    again = bot.click(jobs, "Retry 1")
    assert again.text == "Delivery 1 is queued again."
    assert deliveries(mona)[0].status == "pending"


class FlakyNotifier:
    """A notifier at the edge that fails as told, then posts."""

    platform = "console"

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.posted: list[tuple[str, str, bool]] = []

    def send(self, target: str, message: Message, *, key: str, possibly_sent_since: dt.datetime | None = None) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.posted.append((target, key, possibly_sent_since is not None))
        return f"flaky:{len(self.posted)}"

    def update(self, ref: str, message: Message) -> None:
        pass


def _one_delivery(bot, mona) -> int:
    bot.run("/mona notify add artist.created #crm")
    bot.run("/artist add Alex")
    from jobs.relay import relay_once

    relay_once(mona.runtime)
    return deliveries(mona)[0].id


def test_a_rate_limited_delivery_waits_the_time_asked_then_posts_once(bot, mona):
    flaky = FlakyNotifier(RetryLater("ratelimited", retry_after=30))
    mona.runtime.notifiers["console"] = flaky
    delivery_id = _one_delivery(bot, mona)
    assert tasks.deliver(delivery_id) == "retry"
    d = deliveries(mona)[0]
    assert d.status == "pending" and d.last_error == "ratelimited"
    assert 28 <= (d.next_attempt_at - dt.datetime.now(dt.UTC)).total_seconds() <= 31
    assert tasks.deliver(delivery_id) == "skipped"  # not due yet
    with mona.db.uow() as uow:
        uow.session.execute(update(Delivery).values(next_attempt_at=func.now()))
        uow.commit()
    assert tasks.deliver(delivery_id) == "sent"
    assert tasks.deliver(delivery_id) == "skipped"
    assert flaky.posted == [("crm", "event:1:rule:1", False)]


def test_a_permanent_failure_goes_to_the_dead_letter_list_without_retrying(bot, mona):
    mona.runtime.notifiers["console"] = FlakyNotifier(PermanentFailure("channel_not_found: no such channel"))
    delivery_id = _one_delivery(bot, mona)
    assert tasks.deliver(delivery_id) == "dead"
    assert tasks.deliver(delivery_id) == "skipped"
    assert "channel_not_found: no such channel" in bot.run("/mona jobs").plain_text()


def test_passing_failures_back_off_then_give_up(bot, mona):
    mona.runtime.notifiers["console"] = FlakyNotifier(*[RetryLater("HTTP 503")] * 20)
    delivery_id = _one_delivery(bot, mona)
    delays = []
    for _ in range(8):
        with mona.db.uow() as uow:
            uow.session.execute(update(Delivery).values(next_attempt_at=func.now()))
            uow.commit()
        tasks.deliver(delivery_id)
        d = deliveries(mona)[0]
        if d.status == "pending":
            delays.append(round((d.next_attempt_at - dt.datetime.now(dt.UTC)).total_seconds()))
    assert delays[:4] == [2, 4, 8, 16]
    d = deliveries(mona)[0]
    assert d.status == "dead" and d.last_error == "gave up after 8 attempts: HTTP 503"


def test_a_worker_that_died_mid_send_is_replaced_and_the_retry_checks_before_posting(bot, mona):
    flaky = FlakyNotifier()
    mona.runtime.notifiers["console"] = flaky
    _one_delivery(bot, mona)
    with mona.db.uow() as uow:  # a worker claimed it, then died: the lease ran out
        uow.session.execute(update(Delivery).values(status="in_flight", attempts=1,
                                                    lease_until=func.now() - dt.timedelta(seconds=1)))
        uow.commit()
    mona.run_pending_jobs()
    assert flaky.posted == [("crm", "event:1:rule:1", True)]  # possibly sent: look before posting
    assert deliveries(mona)[0].status == "sent"


@pytest.mark.probe("jobs: exactly once on a busy channel")
def test_a_discord_delivery_whose_worker_died_is_found_behind_250_later_messages_and_not_posted_again(mona):
    from bot.notify_discord import discord_notifier, nonce_of
    from core import notify
    from tests.discord_stub import BOT_TOKEN
    from tests.test_notifiers import SnowflakeDiscord

    with SnowflakeDiscord(echo_nonce=True) as api:
        api.nonce_memory_s = 0  # the lost attempt is older than Discord's memory of nonces
        discord = discord_notifier(BOT_TOKEN, api.api_base)
        mona.runtime.notifiers["discord"] = discord
        with mona.db.uow() as uow:
            [delivery_id] = notify.add_deliveries(uow, [notify.NewDelivery(
                "event:1:rule:1", "discord", "1300000000000000001", Message("Alex added to MONA"))])
            uow.commit()
        # A worker claimed it, posted it, and died before it could record it: the lease ran out.
        lost = discord.send("1300000000000000001", Message("Alex added to MONA"), key="event:1:rule:1")
        with mona.db.uow() as uow:
            uow.session.execute(update(Delivery).values(status="in_flight", attempts=1,
                                                        lease_until=func.now() - dt.timedelta(seconds=1)))
            uow.commit()
        for i in range(250):  # the channel is busy meanwhile
            discord.send("1300000000000000001", Message(f"message {i}"), key=f"other:{i}")

        assert tasks.deliver(delivery_id) == "sent"

        d = deliveries(mona)[0]
        assert (d.status, d.attempts, d.ref) == ("sent", 2, lost)
        nonces = [m["nonce"] for m in api.messages("1300000000000000001")]
        assert nonces.count(nonce_of("event:1:rule:1")) == 1 and len(nonces) == 251


def test_reminders_are_kept_until_due_then_posted(bot, mona, out):
    r = bot.run("/remind me in 2h call Alex about the EP")
    assert r.text.startswith("I will remind you on ") and r.text.endswith("(Europe/Paris): call Alex about the EP")
    bot.run("/remind #crm tomorrow 9:00 weekly sync")
    mona.run_pending_jobs()
    assert out.getvalue() == ""
    assert "call Alex about the EP" in bot.run("/remind list").text
    with mona.db.uow() as uow:
        uow.session.execute(update(Reminder).where(Reminder.id == 1).values(due_at=func.now()))
        uow.commit()
    mona.run_pending_jobs()
    assert out.getvalue() == "[@local] Reminder from Lina — call Alex about the EP\n"
    with mona.db.uow() as uow:
        assert [r.status for r in uow.session.scalars(select(Reminder).order_by(Reminder.id))] == ["sent", "scheduled"]


def test_a_reminder_can_be_cancelled(bot, mona):
    r = bot.run("/remind me in 1h stretch")
    assert bot.click(r, "Cancel").text == "Cancelled reminder 1."
    assert "You have no reminder to come." in bot.run("/remind list").text


@pytest.mark.parametrize(("command", "message"), [
    ("/remind me yesterday 9:00 call", "is in the past"),
    ("/remind me whenever you like call", "I cannot read a time at the start of"),
    ("/remind me 2028-06-01 call", "more than a year away"),
    ("/remind @ghost in 2h call", "No team member is called @ghost"),
    ("/remind crm in 2h call", "crm is not a channel"),
])
def test_bad_reminders_are_refused_and_nothing_is_stored(bot, mona, command, message):
    r = bot.run(command)
    assert r.error and message in r.text
    with mona.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Reminder)) == 0


def test_the_digest_goes_out_once_a_day_after_its_hour(bot, mona, out):
    bot.run("/mona notify add digest #daily")
    bot.run("/artist add Alex")
    bot.run("/artist move Alex next")
    bot.run("/artist deal Alex 1500 Tour")
    bot.click(bot.run("/artist deal Alex 500 Merch"), "Won")
    early = dt.datetime(2026, 11, 25, 7, 0, tzinfo=dt.UTC)  # 08:00 in Paris, before 09:00
    assert digest_once(mona.runtime, now=early) is False
    from zoneinfo import ZoneInfo

    paris = dt.datetime.now(ZoneInfo("Europe/Paris"))
    late = max(paris, paris.replace(hour=10, minute=0)).astimezone(dt.UTC)  # today, after 09:00 in Paris
    assert digest_once(mona.runtime, now=late) is True
    assert digest_once(mona.runtime, now=late + dt.timedelta(minutes=30)) is False
    mona.run_pending_jobs()
    text = out.getvalue()
    assert text.count("Daily digest for") == 1
    assert "New artists: 1 (Alex)" in text and "Stage moves: 1" in text and "Deals won: 1 (€500.00)" in text
    with mona.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(DigestRun)) == 1


def test_the_digest_can_be_previewed(bot):
    bot.run("/artist add Alex")
    assert "New artists: 1 (Alex)" in bot.run("/mona digest").plain_text()


def test_a_long_job_shows_progress_then_its_result(bot, mona, out):
    for name in ("A", "B", "C"):
        bot.run(f"/artist add {name}")
        bot.run(f"/artist move {name} next")
    with mona.db.uow() as uow:  # the histogram was lost
        uow.session.execute(StageDuration.__table__.delete())
        uow.commit()
    r = bot.run("/mona rebuild-stats")
    assert r.text == "Job 1 is queued; its progress will show in this channel."
    mona.run_pending_jobs()
    printed = out.getvalue()
    assert "[#console] Job 1: rebuild_stats — 0 / 3…" in printed
    assert "Rebuilt the stage statistics of 3 artists from 3 finished stays." in printed
    with mona.db.uow() as uow:
        assert uow.session.scalar(select(func.sum(StageDuration.stays))) == 3
        assert uow.session.get(JobRun, 1).status == "done"


def test_a_failed_long_job_reports_in_its_thread_with_a_retry_button(bot, mona, out, monkeypatch):
    calls = []

    def broken(uow, progress, run, rt):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return "fine now"

    monkeypatch.setitem(longjobs.KINDS, "rebuild_stats", broken)
    bot.run("/mona rebuild-stats")
    mona.run_pending_jobs()
    printed = out.getvalue()
    assert "Job 1 failed — RuntimeError: disk full" in printed and "[Retry]" in printed
    jobs = bot.run("/mona jobs")
    assert "1. rebuild_stats · failed" in jobs.plain_text()
    again = bot.click(jobs, "Retry job 1")
    assert again.text == "Job 1 is queued again."
    mona.run_pending_jobs()
    assert "fine now" in out.getvalue()


class UnreachableQueue:
    """The job queue as seen when Redis is down: nothing can be handed to it."""

    def start(self, run_id: int) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    def sizes(self) -> dict[str, int] | None:
        return None


QUEUE_DOWN = "The queue is unreachable right now: job 1 is saved and will start as soon as it is back."


def _offline(mona, settings):
    """The same bot, with a queue that refuses every job (Redis down)."""
    from bot.console import ConsoleBot
    from core.app import Application, Services
    from handlers.registry import Dispatcher

    return ConsoleBot(Dispatcher(Application(mona.db, settings, Services(jobs=UnreachableQueue()))), user_name="Lina")


def _a_minute_ago(mona) -> None:
    """Time passes: the run was saved longer ago than the sweep waits for its job."""
    with mona.db.uow() as uow:
        uow.session.execute(update(JobRun).values(created_at=func.now() - dt.timedelta(minutes=1)))
        uow.commit()


@pytest.mark.probe("jobs: an after-commit step that fails says what was saved")
def test_a_long_job_the_queue_refuses_is_saved_queued_and_started_by_the_sweep_once_the_queue_is_back(
        bot, mona, out, settings):
    offline = _offline(mona, settings)
    r = offline.run("/mona rebuild-stats")
    assert not r.error
    assert r.text == "Job 1 is queued; its progress will show in this channel."
    assert r.footer == QUEUE_DOWN
    assert "nothing was saved" not in r.plain_text() and "could not" not in r.plain_text()
    with mona.db.uow() as uow:
        run = uow.session.get(JobRun, 1)
        assert (run.status, run.error) == ("queued", None)
    jobs = offline.run("/mona jobs")
    assert "1. rebuild_stats · queued · 0/0" in jobs.plain_text()
    assert "Queues: Redis unreachable" in jobs.plain_text()
    assert "Retry job 1" not in [a.label for a in jobs.actions]  # nothing to retry: it is on its way

    mona.run_pending_jobs()  # the queue is back, but the run was saved a moment ago: its job may yet come
    assert out.getvalue() == ""
    _a_minute_ago(mona)
    mona.run_pending_jobs()  # the ticker's sweep hands it over
    mona.run_pending_jobs()
    assert out.getvalue().count("Rebuilt the stage statistics of 0 artists") == 1
    with mona.db.uow() as uow:
        assert uow.session.get(JobRun, 1).status == "done"


def test_a_run_handed_over_twice_runs_once(bot, mona, out):
    bot.run("/mona rebuild-stats")  # handed to the queue after commit
    _a_minute_ago(mona)
    longjobs.sweep_runs_once(mona.runtime)  # and by the sweep, as if its job were lost
    mona.runtime.queue.enqueue(longjobs.run_job, 1)
    mona.run_pending_jobs()
    assert out.getvalue().count("Rebuilt the stage statistics of 0 artists") == 1


@pytest.mark.probe("jobs: an after-commit step that fails says what was saved")
def test_a_failed_long_job_retried_while_the_queue_is_down_is_queued_and_started_by_the_sweep(
        bot, mona, out, settings, monkeypatch):
    calls = []

    def broken_once(uow, progress, run, rt):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return "fine now"

    monkeypatch.setitem(longjobs.KINDS, "rebuild_stats", broken_once)
    bot.run("/mona rebuild-stats")
    mona.run_pending_jobs()
    offline = _offline(mona, settings)
    jobs = offline.run("/mona jobs")
    assert "1. rebuild_stats · failed" in jobs.plain_text()
    again = offline.click(jobs, "Retry job 1")
    assert again.text == "Job 1 is queued again." and again.footer == QUEUE_DOWN
    with mona.db.uow() as uow:
        assert uow.session.get(JobRun, 1).status == "queued"
    _a_minute_ago(mona)
    mona.run_pending_jobs()
    assert "fine now" in out.getvalue() and len(calls) == 2
    with mona.db.uow() as uow:
        assert uow.session.get(JobRun, 1).status == "done"


def test_a_job_that_has_not_failed_is_not_retried(bot, mona):
    from handlers.ops import RetryJob
    from handlers.registry import button
    from handlers.reply import Reply

    bot.run("/mona rebuild-stats")
    mona.run_pending_jobs()
    old_card = Reply(actions=(button(RetryJob(run_id=1), "Retry job 1"),))  # shown while it had failed
    r = bot.click(old_card, "Retry job 1")
    assert r.error and r.text == "Job 1 has not failed; nothing to retry."


def test_a_reminder_needs_something_to_remind_about_after_the_time(bot, mona):
    r = bot.run("/remind me in 2h")
    assert r.error and r.text == "Say what to remind about after the time, e.g. /remind me in 2h call Alex."


def test_a_reminder_built_with_a_datetime_is_read_in_the_teams_timezone(bot, mona, settings):
    from core.app import Caller
    from handlers.ops import Remind

    at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    naive_paris = at.astimezone(ZoneInfo("Europe/Paris")).replace(tzinfo=None)
    outcome = mona.app.execute(Caller("console", "local", "Lina", via="api"),
                               Remind(target="#crm", when=naive_paris, text="weekly sync"))
    assert outcome.ok, outcome.error
    with mona.db.uow() as uow:
        [reminder] = uow.session.scalars(select(Reminder))
        assert (reminder.target, reminder.due_at, reminder.text) == ("crm", at, "weekly sync")
    late = mona.app.execute(Caller("console", "local", "Lina", via="api"),
                            Remind(target="me", when=at - dt.timedelta(days=3), text="too late"))
    assert late.error is not None and late.error.code == "invalid" and "is in the past" in late.error.message


def test_rules_built_from_typed_values_are_checked_like_chat_ones(bot, mona):
    from core.app import Caller
    from core.errors import InvalidInput
    from core.refs import ChannelRef
    from handlers.ops import AddRule

    with pytest.raises(InvalidInput, match="Did you mean artist.stage_changed"):
        AddRule(event="artist.stage_changd", target=ChannelRef(None, "crm"))
    with pytest.raises(InvalidInput, match="crm is not a channel"):
        AddRule(event="deal.won", target="crm")
    outcome = mona.app.execute(Caller("console", "local", "Lina"),
                               AddRule(event="DEAL.WON", target="owner"))
    assert outcome.ok and outcome.value.text == "Rule 1: deal.won now goes to the artist's owner (DM)."
