"""The ticker: what a worker does besides running jobs, a few times a second.

- relay: committed outbox events handed to their subscribers (``jobs.relay``), and the events a
  subscriber failed on handed to it again when their retry is due;
- sweep: deliveries that are due but have no live job (Redis was down, a worker died
  mid-attempt, a scheduled retry was lost) are enqueued again;
- reminders that fell due, and the daily digest once a day at ``MONA_DIGEST_HOUR``;
- emergency modes that have run their time are ended (the chats' settings set back);
- workflows: cron schedules that fell due, runs whose delay or approval timed out, run history pruned.
Everything it acts on lives in the database, so a restart loses nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import announcements as notifications
from core import artists, calendar, effects, kanban, notify, reminders, weights
from core import digest as digests
from core.db import utcnow
from core.moderation import service as moderation
from core.moderation.store import Community
from core.notify import DIGEST, DigestRun, NotificationRule
from core.team import Member
from jobs.effects import start as start_effect
from jobs.effects import sweep_effects_once
from jobs.flows import flows_once, prune_once
from jobs.longjobs import job_id, run_job, sweep_runs_once
from jobs.queue import QueueUnavailable
from jobs.relay import enqueue_deliveries, relay_once, retry_failures_once
from jobs.runtime import Runtime

log = logging.getLogger("mona.ticker")
#: Workflow run history is pruned this often (and at a worker's first slow tick).
PRUNE_EVERY_S = 3600.0
_pruned_at = float("-inf")
#: How often artists stuck in a stage are looked for (``artist.stuck``).
STUCK_EVERY_S = 600.0
_stuck_at = float("-inf")


def calendar_once(rt: Runtime, *, now: dt.datetime | None = None) -> int:
    """Send the calendar reminders that fell due to each attendee by DM (a delivery keyed by event,
    occurrence and member: once each), and set each event's next reminder."""
    now = now or utcnow()
    with rt.db.uow() as uow:
        new: list[notify.NewDelivery] = []
        for due in calendar.due_reminders(uow, now):
            local = due.occurrence.astimezone(ZoneInfo(due.event.tz)).strftime("%Y-%m-%d %H:%M")
            where = f" · {due.event.where}" if due.event.where else ""
            for member_id in due.members:
                identity = notify.owner_identity(uow, member_id, preferred=("slack", "discord", "console"))
                if identity is None:
                    continue
                new.append(notify.NewDelivery(
                    f"cal:{due.event.id}:{due.occurrence.isoformat()}:{member_id}", identity.platform,
                    f"user:{identity.external_id}",
                    notifications.calendar_reminder(due.event.id, due.event.title, local + where)))
        created = notify.add_deliveries(uow, new)
        uow.commit()
    enqueue_deliveries(rt, created)
    return len(created)


def tasks_once(rt: Runtime, *, now: dt.datetime | None = None) -> int:
    """From the digest hour on, each assignee is told by DM of their tasks due today or overdue, once a day."""
    now = now or utcnow()
    local = now.astimezone(ZoneInfo(rt.settings.timezone))
    if local.hour < rt.settings.digest_hour:
        return 0
    day = local.date()
    with rt.db.uow() as uow:
        new: list[notify.NewDelivery] = []
        for card in kanban.claim_due_reminders(uow, day):
            identity = notify.owner_identity(uow, card.assignee_id, preferred=("slack", "discord", "console"))
            if identity is None or card.due is None:
                continue
            new.append(notify.NewDelivery(f"task:{card.id}:due:{day.isoformat()}", identity.platform,
                                          f"user:{identity.external_id}",
                                          notifications.task_due(card.id, card.title, card.due.isoformat(), card.due < day)))
        created = notify.add_deliveries(uow, new)
        uow.commit()
    enqueue_deliveries(rt, created)
    return len(created)


def stuck_once(rt: Runtime, *, now: dt.datetime | None = None) -> int:
    """Record ``artist.stuck`` for the artists who crossed 7, 14, 30, 60 or 90 days in their stage."""
    with rt.db.uow() as uow:
        told = artists.announce_stuck(uow, now or utcnow())
        uow.commit()
    return told
def sweep_once(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        ids = notify.due(uow, requeue_after=rt.requeue_after)
        uow.commit()
    return enqueue_deliveries(rt, ids)


def reminders_once(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        # Claimed with a conditional update: a reminder cancelled meanwhile is not sent, and a
        # cancel arriving now waits for this commit and is told the reminder was sent.
        due = reminders.claim_due(uow, now=utcnow())
        names = dict(uow.session.execute(select(Member.id, Member.display_name).where(
            Member.id.in_({r.created_by_id for r in due}))).all())
        created = notify.add_deliveries(uow, [
            notify.NewDelivery(f"reminder:{r.id}", r.platform, r.target,
                               notifications.reminder(r.text, names.get(r.created_by_id or 0, "?")))
            for r in due])
        uow.commit()
    return enqueue_deliveries(rt, created)


def digest_once(rt: Runtime, *, now: dt.datetime | None = None) -> bool:
    """Send today's digest once, at or after the digest hour in the team's timezone."""
    now = now or utcnow()
    local = now.astimezone(ZoneInfo(rt.settings.timezone))
    if local.hour < rt.settings.digest_hour:
        return False
    day = local.date()
    with rt.db.uow() as uow:
        if uow.session.get(DigestRun, day) is not None:
            return False
        targets = list(uow.session.scalars(select(NotificationRule).where(NotificationRule.event_type == DIGEST)))
        uow.session.add(DigestRun(day=day, sent_at=now))
        try:
            uow.session.flush()  # the day's row is the lock: a second worker fails here
        except IntegrityError:
            return False
        message = notifications.digest(digests.daily(uow, day, stuck_days=rt.settings.stuck_days, now=now, tz=rt.settings.timezone))
        created = notify.add_deliveries(uow, [
            notify.NewDelivery(f"digest:{day.isoformat()}:rule:{rule.id}", rule.platform, rule.target, message)
            for rule in targets])
        uow.commit()
    enqueue_deliveries(rt, created)
    return True


def refit_once(rt: Runtime, *, now: dt.datetime | None = None) -> int | None:
    """Queue the nightly refit of the Market Fit weights once a day, at or after ``REFIT_HOUR``, when
    there are enough outcomes to refit from; the run's id, or ``None`` (not time, already done today,
    too few outcomes)."""
    now = now or utcnow()
    local = now.astimezone(ZoneInfo(rt.settings.timezone))
    if local.hour < weights.REFIT_HOUR:
        return None
    day = local.date()
    with rt.db.uow() as uow:
        if uow.session.get(weights.ScoreRefit, day) is not None:
            return None
        guard = weights.ScoreRefit(day=day, outcome="queued", at=now)
        uow.session.add(guard)
        try:
            uow.session.flush()  # the day's row is the lock: a second worker fails here
        except IntegrityError:
            return None
        if not weights.enough(weights.counts(weights.outcomes(uow))):
            guard.outcome = "not enough outcomes"
            uow.commit()
            return None
        run = notify.create_run(uow, None, kind="score_retrain", platform="console", channel_id=None)
        uow.commit()
        run_id = run.id
    with contextlib.suppress(QueueUnavailable):  # saved as queued: the sweep hands it over later
        rt.queue.enqueue_many(run_job, [(job_id(run_id), (run_id,))], queue="low")
    return run_id


def emergencies_once(rt: Runtime, *, now: dt.datetime | None = None) -> int:
    """End the emergency modes that have run their time: each chat's settings set back as they were
    (``core.moderation.service.end_emergency``), as effects. Each community row is locked while it is
    ended, so two workers never set things back twice. Returns how many ended."""
    now = now or utcnow()
    with rt.db.uow() as uow:
        due = [c.id for c in moderation.emergencies_due(uow, now)]
    ended = 0
    for community_id in due:
        with rt.db.uow() as uow:
            c = uow.session.scalars(select(Community).where(Community.id == community_id).with_for_update()).one()
            if c not in moderation.emergencies_due(uow, now):
                continue  # another worker ended it meanwhile
            ids = [effects.request(uow, platform=ch.community.platform, community=ch.community.external_id,
                                   kind="chat_mode", user_id="", channel_id=ch.channel_id, reason="end of emergency mode",
                                   payload=ch.payload).id
                   for ch in moderation.end_emergency(uow, c)]
            uow.commit()
        for effect_id in ids:
            start_effect(rt, effect_id)
        log.info("emergency mode of %s ended after its time; %d chat settings set back", community_id, len(ids))
        ended += 1
    return ended


def tick(rt: Runtime, *, slow: bool = True) -> None:
    """One round: relay always; sweep, reminders and digest when ``slow`` (every second or so)."""
    relay_once(rt)
    if slow:
        retry_failures_once(rt)
        sweep_once(rt)
        sweep_effects_once(rt)
        sweep_runs_once(rt)
        reminders_once(rt)
        digest_once(rt)
        refit_once(rt)
        emergencies_once(rt)
        flows_once(rt)
        calendar_once(rt)
        tasks_once(rt)
        global _pruned_at, _stuck_at
        if time.monotonic() - _pruned_at > PRUNE_EVERY_S:
            _pruned_at = time.monotonic()
            prune_once(rt)
        if time.monotonic() - _stuck_at > STUCK_EVERY_S:
            _stuck_at = time.monotonic()
            stuck_once(rt)


class Ticker:
    """Runs ``tick`` on a thread: the relay every ``interval`` seconds, the rest every second."""

    def __init__(self, rt: Runtime, *, interval: float = 0.1) -> None:
        self.rt = rt
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mona-ticker", daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def run_forever(self) -> None:
        """The loop in the calling thread (``mona relay``), until interrupted."""
        with contextlib.suppress(KeyboardInterrupt):
            self._loop()

    def _loop(self) -> None:
        last_slow = 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            slow = started - last_slow >= 1.0
            try:
                tick(self.rt, slow=slow)
            except Exception:
                log.exception("ticker round failed; trying again")
            if slow:
                last_slow = started
            self._stop.wait(self.interval)
