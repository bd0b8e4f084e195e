"""The ticker: what a worker does besides running jobs, a few times a second.

- relay: committed outbox events → deliveries (by the routing rules) → ``deliver`` jobs, in id
  order; on PostgreSQL an advisory lock lets one relay at a time do it, so two workers never
  deliver an event twice nor skip one;
- sweep: deliveries that are due but have no live job (Redis was down, a worker died
  mid-attempt, a scheduled retry was lost) are enqueued again;
- reminders that fell due, and the daily digest once a day at ``MONA_DIGEST_HOUR``.
Everything it acts on lives in the database, so a restart loses nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from core import digest as digests
from core import notify
from core.artists import Artist
from core.db import UnitOfWork, utcnow
from core.notify import DIGEST, OWNER, DigestRun, NotificationRule, Reminder
from core.outbox import OutboxEvent
from core.team import Member
from handlers import notifications
from jobs import tasks
from jobs.queue import QueueUnavailable
from jobs.runtime import Runtime

log = logging.getLogger("mona.ticker")
RELAY_LOCK = 7_201_001  # pg advisory lock key of the relay
#: Deliveries handed to one job: RQ's own cost per job (a few ms) is shared by them, and a
#: delivery still has its own claim, lease and result, so a worker dying mid-batch loses none.
DELIVERIES_PER_JOB = 20
#: The payload key of the places an event is told besides the routing rules (see ``_extra_deliveries``).
EXTRA_TARGETS = "notify"
#: Where a member named by an event is written to, in order of preference.
DM_PLATFORMS = ("slack", "discord", "console")


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _enqueue(rt: Runtime, ids: list[int]) -> int:
    """Enqueue deliver jobs (one job id per delivery, so a sweep adds no duplicate while one is
    waiting); what cannot be enqueued is left for the next sweep."""
    try:
        rt.queue.enqueue_many(tasks.deliver_many, [(f"deliver-{chunk[0]}-{chunk[-1]}", (chunk,))
                                                   for chunk in _chunks(ids, DELIVERIES_PER_JOB)], queue="high")
        return len(ids)
    except QueueUnavailable as e:
        log.warning("queue unavailable (%s); %d deliveries wait for the next sweep", e, len(ids))
        with rt.db.uow() as uow:
            uow.session.execute(update(notify.Delivery).where(notify.Delivery.id.in_(ids)).values(enqueued_at=None))
            uow.commit()
        return 0


def relay_once(rt: Runtime, *, batch: int = 500) -> int:
    """Turn committed outbox events into deliveries; returns how many events were relayed.

    A fixed number of statements per batch of events, whatever its size."""
    with rt.db.uow() as uow:
        s = uow.session
        postgres = s.get_bind().dialect.name == "postgresql"
        if postgres and not s.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RELAY_LOCK}):
            return 0  # another relay is at work
        events = s.execute(select(OutboxEvent.id, OutboxEvent.type, OutboxEvent.payload)
                           .where(OutboxEvent.relayed_at.is_(None)).order_by(OutboxEvent.id).limit(batch)).all()
        if not events:
            return 0
        routes: dict[str, list[NotificationRule]] = defaultdict(list)
        for rule in s.scalars(select(NotificationRule).where(NotificationRule.event_type.in_({e.type for e in events}))):
            routes[rule.event_type].append(rule)
        new: list[notify.NewDelivery] = []
        if routes or any(e.payload.get(EXTRA_TARGETS) for e in events):
            names = dict(s.execute(select(Member.id, Member.display_name).where(
                Member.id.in_({e.payload.get("by") for e in events if e.payload.get("by")}))).all())
            owners = dict(s.execute(select(Artist.id, Artist.owner_id).where(
                Artist.id.in_({e.payload.get("artist_id") for e in events if routes.get(e.type)}))).all())
            for e in events:
                told: set[tuple[str, str]] = set()
                for rule in routes.get(e.type, []):
                    platform, target = rule.platform, rule.target
                    if target == OWNER:
                        identity = notify.owner_identity(uow, owners.get(e.payload.get("artist_id", 0)))
                        if identity is None:
                            continue  # the owner has no chat identity to write to
                        platform, target = identity.platform, f"user:{identity.external_id}"
                    message = notifications.describe(e.type, e.payload, names.get(e.payload.get("by", 0), "?"))
                    new.append(notify.NewDelivery(f"event:{e.id}:rule:{rule.id}", platform, target, message, event_id=e.id))
                    told.add((platform, target))
                new += _extra_deliveries(uow, e.id, e.type, e.payload, names, told)
        created = notify.add_deliveries(uow, new)
        s.execute(update(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events])).values(relayed_at=utcnow()))
        uow.commit()
    _enqueue(rt, created)
    return len(events)


def _extra_deliveries(uow: UnitOfWork, event_id: int, type_: str, payload: dict[str, Any], names: dict[int, str],
                      told: set[tuple[str, str]]) -> list[notify.NewDelivery]:
    """Deliveries to the places an event names itself (``payload["notify"]``: a channel as
    ``{"platform", "target"}``, or a member, written to by DM through their identity), besides the
    routing rules; a place already told by a rule is told once."""
    out: list[notify.NewDelivery] = []
    for spec in payload.get(EXTRA_TARGETS) or []:
        if "member" in spec:
            identity = notify.owner_identity(uow, spec["member"], DM_PLATFORMS)
            if identity is None:
                continue  # nobody to write to
            platform, target = identity.platform, f"user:{identity.external_id}"
        else:
            platform, target = spec["platform"], spec["target"]
        if (platform, target) in told:
            continue
        told.add((platform, target))
        message = notifications.describe(type_, payload, names.get(payload.get("by", 0), "?"))
        out.append(notify.NewDelivery(f"event:{event_id}:to:{platform}:{target}"[:200], platform, target, message,
                                      event_id=event_id))
    return out


def sweep_once(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        ids = notify.due(uow, requeue_after=rt.requeue_after)
        uow.commit()
    return _enqueue(rt, ids)


def reminders_once(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        q = select(Reminder).where(Reminder.status == "scheduled", Reminder.due_at <= utcnow()).order_by(Reminder.due_at).limit(100)
        if uow.session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        due = list(uow.session.scalars(q))
        names = dict(uow.session.execute(select(Member.id, Member.display_name).where(
            Member.id.in_({r.created_by_id for r in due}))).all())
        for r in due:
            r.status = "sent"
        created = notify.add_deliveries(uow, [
            notify.NewDelivery(f"reminder:{r.id}", r.platform, r.target,
                               notifications.reminder(r.text, names.get(r.created_by_id or 0, "?")))
            for r in due])
        uow.commit()
    return _enqueue(rt, created)


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
        message = notifications.digest(digests.daily(uow, day, stuck_days=rt.settings.stuck_days, now=now))
        created = notify.add_deliveries(uow, [
            notify.NewDelivery(f"digest:{day.isoformat()}:rule:{rule.id}", rule.platform, rule.target, message)
            for rule in targets])
        uow.commit()
    _enqueue(rt, created)
    return True


def tick(rt: Runtime, *, slow: bool = True) -> None:
    """One round: relay always; sweep, reminders and digest when ``slow`` (every second or so)."""
    relay_once(rt)
    if slow:
        sweep_once(rt)
        reminders_once(rt)
        digest_once(rt)


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
