"""The relay: committed outbox events handed, in id order, to every subscriber that wants them.

On PostgreSQL an advisory lock lets one relay at a time do it, so two workers never hand an event
twice nor skip one. Each subscriber gets a batch in a savepoint of the relay's transaction: what
it writes commits with the events being marked relayed (so it acts once), and a subscriber that
fails does not hold up the others: its events are kept in ``subscriber_failures`` and handed to
it again with backoff (``retry_failures_once``) until it succeeds.

Notifications are the first subscriber (``NotificationSubscriber``): routing rules and the places
an event names itself become deliveries, then ``deliver`` jobs.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, select, text, update

from core import announcements as notifications
from core import notify, sessions
from core.artists import Artist
from core.db import UnitOfWork, utcnow
from core.moderation import service as moderation
from core.moderation.store import Community
from core.notify import OWNER, NotificationRule
from core.outbox import CommittedEvent, OutboxEvent, Subscriber, SubscriberFailure
from core.team import Member
from jobs import tasks
from jobs.queue import QueueUnavailable
from jobs.runtime import Runtime

log = logging.getLogger("mona.relay")
RELAY_LOCK = 7_201_001  # pg advisory lock key of the relay
#: Deliveries handed to one job: RQ's own cost per job (a few ms) is shared by them, and a
#: delivery still has its own claim, lease and result, so a worker dying mid-batch loses none.
DELIVERIES_PER_JOB = 20
#: The payload key of the places an event is told besides the routing rules (see ``_extra_deliveries``).
EXTRA_TARGETS = "notify"
#: Where a member named by an event is written to, in order of preference.
DM_PLATFORMS = ("slack", "discord", "console")
#: Backoff of a subscriber's failed events: 5 s, 10 s, 20 s … up to an hour.
RETRY_BASE_S, RETRY_MAX_S = 5, 3600


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def enqueue_deliveries(rt: Runtime, ids: list[int]) -> int:
    """Enqueue deliver jobs (one job id per delivery, so a sweep adds no duplicate while one is
    waiting); what cannot be enqueued is left for the next sweep."""
    if not ids:
        return 0
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


class NotificationSubscriber:
    """Events → deliveries, by the routing rules and the places an event names itself.

    A fixed number of statements per batch of events, whatever its size; each delivery has an
    idempotency key (``event:ID:rule:ID``), so handing the same event twice delivers it once."""

    name = "notifications"
    types: frozenset[str] | None = None

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def handle(self, uow: UnitOfWork, events: Sequence[CommittedEvent]) -> Callable[[], None] | None:
        s = uow.session
        routes: dict[str, list[NotificationRule]] = defaultdict(list)
        for rule in s.scalars(select(NotificationRule).where(NotificationRule.event_type.in_({e.type for e in events}))):
            routes[rule.event_type].append(rule)
        if not routes and not any(e.payload.get(EXTRA_TARGETS) for e in events):
            return None
        names = dict(s.execute(select(Member.id, Member.display_name).where(
            Member.id.in_({e.payload.get("by") for e in events if e.payload.get("by")}))).all())
        owners = dict(s.execute(select(Artist.id, Artist.owner_id).where(
            Artist.id.in_({e.payload.get("artist_id") for e in events if routes.get(e.type)}))).all())
        new: list[notify.NewDelivery] = []
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
            new += _extra_deliveries(uow, e, names, told)
        created = notify.add_deliveries(uow, new)
        rt = self.rt

        def enqueue() -> None:
            enqueue_deliveries(rt, created)

        return enqueue


class StreamModeSubscriber:
    """A stream going live in OBS switches every community's moderation to stream mode, and its end
    switches it back (the chat guards reload rules whose version changed)."""

    name = "stream_mode"
    types: frozenset[str] | None = frozenset({"stream.started", "stream.stopped"})

    def handle(self, uow: UnitOfWork, events: Sequence[CommittedEvent]) -> Callable[[], None] | None:
        on = events[-1].type == "stream.started"  # the last word wins
        for community in uow.session.scalars(select(Community).order_by(Community.id)):
            if moderation.rules_of(community).stream_mode != on:  # one switched by hand already is left as is
                moderation.set_stream(uow, None, community, on)
        return None


class StreamSessionSubscriber:
    """A stream going live attaches to the session planned around then (or opens one); its end ends it."""

    name = "stream_sessions"
    types: frozenset[str] | None = frozenset({"stream.started", "stream.stopped"})

    def handle(self, uow: UnitOfWork, events: Sequence[CommittedEvent]) -> Callable[[], None] | None:
        for e in events:
            if e.type == "stream.started":
                sessions.started(uow, utcnow())
            else:
                sessions.stopped(uow, utcnow())
        return None


def _extra_deliveries(uow: UnitOfWork, e: CommittedEvent, names: dict[int, str],
                      told: set[tuple[str, str]]) -> list[notify.NewDelivery]:
    """Deliveries to the places an event names itself (``payload["notify"]``: a channel as
    ``{"platform", "target"}``, or a member, written to by DM through their identity), besides the
    routing rules; a place already told by a rule is told once."""
    out: list[notify.NewDelivery] = []
    for spec in e.payload.get(EXTRA_TARGETS) or []:
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
        message = notifications.describe(e.type, e.payload, names.get(e.payload.get("by", 0), "?"))
        out.append(notify.NewDelivery(f"event:{e.id}:to:{platform}:{target}"[:200], platform, target, message,
                                      event_id=e.id))
    return out


def _hand(uow: UnitOfWork, sub: Subscriber, events: Sequence[CommittedEvent], now: dt.datetime,
          after: list[Callable[[], None]]) -> bool:
    """Hand ``events`` to ``sub`` in a savepoint; on failure, keep them for a retry."""
    wanted = [e for e in events if sub.types is None or e.type in sub.types]
    if not wanted:
        return True
    try:
        with uow.session.begin_nested():
            then = sub.handle(uow, wanted)
    except Exception as e:
        log.exception("subscriber %s failed on events %s..%s", sub.name, wanted[0].id, wanted[-1].id)
        _failed(uow, sub.name, [ev.id for ev in wanted], f"{type(e).__name__}: {e}", now)
        return False
    if then is not None:
        after.append(then)
    return True


def _failed(uow: UnitOfWork, name: str, event_ids: list[int], error: str, now: dt.datetime) -> None:
    s = uow.session
    known = {f.event_id: f for f in s.scalars(select(SubscriberFailure).where(
        SubscriberFailure.subscriber == name, SubscriberFailure.event_id.in_(event_ids)))}
    for event_id in event_ids:
        failure = known.get(event_id)
        if failure is None:
            failure = SubscriberFailure(subscriber=name, event_id=event_id, attempts=0)
            s.add(failure)
        failure.attempts += 1
        failure.last_error = error[:500]
        failure.next_at = now + dt.timedelta(seconds=min(RETRY_MAX_S, RETRY_BASE_S * 2 ** (failure.attempts - 1)))


def _committed(rows: Sequence[Any]) -> list[CommittedEvent]:
    return [CommittedEvent(r.id, r.type, r.payload, r.depth) for r in rows]


def relay_once(rt: Runtime, *, batch: int = 500) -> int:
    """Hand committed outbox events to the subscribers; returns how many events were relayed."""
    after: list[Callable[[], None]] = []
    with rt.db.uow() as uow:
        s = uow.session
        postgres = s.get_bind().dialect.name == "postgresql"
        if postgres and not s.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RELAY_LOCK}):
            return 0  # another relay is at work
        events = _committed(s.execute(select(OutboxEvent.id, OutboxEvent.type, OutboxEvent.payload, OutboxEvent.depth)
                                      .where(OutboxEvent.relayed_at.is_(None)).order_by(OutboxEvent.id).limit(batch)).all())
        if not events:
            return 0
        now = utcnow()
        for sub in rt.subscribers:
            _hand(uow, sub, events, now, after)
        s.execute(update(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events])).values(relayed_at=now))
        uow.commit()
    for then in after:
        then()
    return len(events)


def retry_failures_once(rt: Runtime, *, batch: int = 100) -> int:
    """Hand each subscriber the events it failed on whose retry is due; returns how many succeeded."""
    after: list[Callable[[], None]] = []
    done = 0
    by_name = {sub.name: sub for sub in rt.subscribers}
    with rt.db.uow() as uow:
        s = uow.session
        now = utcnow()
        due = s.execute(select(SubscriberFailure.subscriber, OutboxEvent.id, OutboxEvent.type, OutboxEvent.payload,
                                 OutboxEvent.depth)
                        .join(OutboxEvent, OutboxEvent.id == SubscriberFailure.event_id)
                        .where(SubscriberFailure.next_at <= now).order_by(OutboxEvent.id).limit(batch)).all()
        if not due:
            return 0
        pending: dict[str, list[Any]] = defaultdict(list)
        for row in due:
            pending[row.subscriber].append(row)
        for name, rows in pending.items():
            sub = by_name.get(name)
            if sub is None:
                continue  # a subscriber no longer registered: its failures wait for it
            events = _committed(rows)
            if _hand(uow, sub, events, now, after):
                s.execute(delete(SubscriberFailure).where(SubscriberFailure.subscriber == name,
                                                          SubscriberFailure.event_id.in_([e.id for e in events])))
                done += len(events)
        uow.commit()
    for then in after:
        then()
    return done
