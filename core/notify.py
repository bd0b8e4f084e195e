"""Notifications: routing rules, deliveries (the outbox's fan-out), reminders and job runs.

A ``Delivery`` is one message to one place, with an idempotency ``key``. Its row in the database is
the truth about it: jobs claim it with a lease, record the posted message's reference when done,
back off on passing failures and give up with a clear reason on permanent ones (the dead-letter
list). Whatever Redis or a worker does, a delivery is posted at most once per key: a retry after
a crash mid-send asks the notifier to look for the message first (``uncertain``), as far back as
an earlier attempt may have posted it (``posted_since``), however many messages came after.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rapidfuzz import process
from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint, and_, func, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UnitOfWork, utcnow
from core.errors import InvalidInput, NotFound
from core.i18n import _
from core.notifier import Action, Message
from core.outbox import EVENT_TYPES
from core.team import Identity, Member, audit

DIGEST = "digest"
OWNER = "owner"
#: What a routing rule may name: every domain event, and the daily digest.
ROUTABLE = frozenset(EVENT_TYPES | {DIGEST})
MAX_ATTEMPTS = 8
#: How far our clock may be ahead of the chat platform's: a look-back starts this much earlier.
CLOCK_SKEW = dt.timedelta(minutes=1)


class NotificationRule(Base):
    __tablename__ = "notification_rules"
    __table_args__ = (UniqueConstraint("event_type", "platform", "target", name="uq_notification_rules_route"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(60), index=True)
    platform: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(100))  # a channel id, or "owner"
    label: Mapped[str] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    platform: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending, in_flight, sent, dead
    attempts: Mapped[int] = mapped_column(default=0)
    uncertain: Mapped[bool] = mapped_column(default=False)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    ref: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(String(1000))
    event_id: Mapped[int | None] = mapped_column(index=True)
    job_run_id: Mapped[int | None] = mapped_column(ForeignKey("job_runs.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    @property
    def message(self) -> Message:
        data = dict(self.payload)
        data["actions"] = tuple(Action(**a) for a in data.get("actions", ()))
        return Message(**data)


class Reminder(Base):
    __tablename__ = "reminders"
    __table_args__ = (Index("ix_reminders_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    platform: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[dt.datetime]
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="scheduled")  # scheduled, sent, cancelled
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JobRun(Base):
    """A long job started from chat: its progress message and its outcome, linked to where it began."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued, running, done, failed
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None] = mapped_column(default=None)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    platform: Mapped[str] = mapped_column(String(20))
    channel_id: Mapped[str | None] = mapped_column(String(100))
    progress_ref: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class DigestRun(Base):
    """One row per day the digest was sent: the primary key makes it once a day, whatever runs."""

    __tablename__ = "digest_runs"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------- routing rules


def check_event(event_type: str) -> str:
    name = event_type.strip().lower()
    if name not in ROUTABLE:
        close = process.extractOne(name, sorted(ROUTABLE), score_cutoff=60)
        hint = " " + _("Did you mean {event}?", event=close[0]) if close else ""
        raise InvalidInput(_("Unknown event {event}. Events: {events}.", event=event_type, events=", ".join(sorted(ROUTABLE))) + hint)
    return name


def add_rule(uow: UnitOfWork, actor: Member, *, event_type: str, platform: str, target: str, label: str) -> NotificationRule:
    name = check_event(event_type)
    exists = uow.session.scalars(select(NotificationRule).where(
        NotificationRule.event_type == name, NotificationRule.platform == platform, NotificationRule.target == target)).first()
    if exists:
        raise InvalidInput(_("{event} already goes to {where} (rule {id}).", event=name, where=exists.label, id=exists.id))
    rule = NotificationRule(event_type=name, platform=platform, target=target, label=label, created_by_id=actor.id)
    uow.session.add(rule)
    uow.session.flush()
    audit(uow, actor, "notify.add", f"rule {rule.id}", f"{name} -> {platform}:{target}")
    return rule


def rules(uow: UnitOfWork) -> list[NotificationRule]:
    return list(uow.session.scalars(select(NotificationRule).order_by(NotificationRule.event_type, NotificationRule.id)))


def remove_rule(uow: UnitOfWork, actor: Member, rule_id: int) -> NotificationRule:
    rule = uow.session.get(NotificationRule, rule_id)
    if rule is None:
        raise NotFound(_("No notification rule has the id {id}.", id=rule_id))
    uow.session.delete(rule)
    audit(uow, actor, "notify.remove", f"rule {rule.id}", f"{rule.event_type} -> {rule.platform}:{rule.target}")
    return rule


def owner_identity(uow: UnitOfWork, member_id: int | None, preferred: tuple[str, ...] = ("slack", "discord")) -> Identity | None:
    if member_id is None:
        return None
    found = {i.platform: i for i in uow.session.scalars(select(Identity).where(Identity.member_id == member_id))}
    return next((found[p] for p in preferred if p in found), None)


# ---------------------------------------------------------------- deliveries


def payload(message: Message) -> dict[str, Any]:
    return asdict(message)


@dataclass(frozen=True)
class NewDelivery:
    key: str
    platform: str
    target: str
    message: Message
    event_id: int | None = None
    job_run_id: int | None = None


def add_deliveries(uow: UnitOfWork, new: Sequence[NewDelivery]) -> list[int]:
    """Insert deliveries in one statement, marked as enqueued now; returns the ids of those that
    were new (a key already present is skipped: the key makes a delivery idempotent)."""
    if not new:
        return []
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite
    now = utcnow()
    rows = [{"key": n.key, "platform": n.platform, "target": n.target, "payload": payload(n.message),
             "event_id": n.event_id, "job_run_id": n.job_run_id, "status": "pending", "attempts": 0,
             "uncertain": False, "next_attempt_at": now, "enqueued_at": now, "created_at": now} for n in new]
    stmt = dialect.insert(Delivery).values(rows).on_conflict_do_nothing(index_elements=["key"]).returning(Delivery.id)
    return sorted(uow.session.scalars(stmt, execution_options={"populate_existing": True}).all())


def claim(uow: UnitOfWork, delivery_id: int, *, lease: dt.timedelta) -> Delivery | None:
    """Take a delivery for one attempt, atomically; None if it is sent, dead, not due, or leased.

    A delivery whose attempts are used up (its workers kept dying mid-send) is marked dead."""
    now = utcnow()
    claimed = uow.session.scalars(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.next_attempt_at <= now,
               or_(Delivery.status == "pending", and_(Delivery.status == "in_flight", Delivery.lease_until < now)))
        .values(status="in_flight", attempts=Delivery.attempts + 1, lease_until=now + lease,
                # A lease that ran out means an attempt may have posted before dying.
                uncertain=or_(Delivery.uncertain, Delivery.status == "in_flight"))
        .returning(Delivery)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if claimed is not None and claimed.attempts > MAX_ATTEMPTS:
        mark_dead(uow, claimed, _("gave up after {n} attempts: {reason}", n=claimed.attempts - 1,
                                  reason=claimed.last_error or _("its worker stopped during each attempt")))
        return None
    return claimed


def posted_since(delivery: Delivery) -> dt.datetime:
    """The earliest moment an attempt of this delivery may have posted it: when its row was
    written (no attempt begins before), less the clock skew. Not the last attempt's start: every
    attempt whose worker died may have posted, the first as much as the last."""
    return delivery.created_at - CLOCK_SKEW


def mark_sent(uow: UnitOfWork, delivery: Delivery, ref: str) -> None:
    delivery.status, delivery.ref, delivery.sent_at, delivery.lease_until = "sent", ref, utcnow(), None
    delivery.last_error = None


def backoff(attempts: int) -> float:
    """Seconds before the next attempt: 2, 4, 8 … capped at 10 minutes."""
    return float(min(600, 2 ** max(1, attempts)))


def mark_retry(uow: UnitOfWork, delivery: Delivery, reason: str, retry_after: float | None, *,
               maybe_sent: bool = False) -> float | None:
    """Schedule another attempt; returns the delay, or None when attempts are used up (dead).
    ``maybe_sent``: the attempt failed in a way that may have followed the post (a network error,
    a 5xx), so the next one looks before posting."""
    delivery.uncertain = delivery.uncertain or maybe_sent
    if delivery.attempts >= MAX_ATTEMPTS:
        mark_dead(uow, delivery, _("gave up after {n} attempts: {reason}", n=delivery.attempts, reason=reason))
        return None
    delay = retry_after if retry_after is not None else backoff(delivery.attempts)
    delivery.status, delivery.lease_until, delivery.enqueued_at = "pending", None, None
    delivery.next_attempt_at = utcnow() + dt.timedelta(seconds=delay)
    delivery.last_error = reason[:1000]
    return delay


def mark_dead(uow: UnitOfWork, delivery: Delivery, reason: str) -> None:
    delivery.status, delivery.lease_until, delivery.last_error = "dead", None, reason[:1000]


def due(uow: UnitOfWork, *, requeue_after: dt.timedelta, limit: int = 500) -> list[int]:
    """Deliveries that need a job now: pending and due, not enqueued recently; or leased by a
    worker that died. Marks them enqueued."""
    now = utcnow()
    ids = list(uow.session.scalars(
        select(Delivery.id)
        .where(or_(
            and_(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                 or_(Delivery.enqueued_at.is_(None), Delivery.enqueued_at < now - requeue_after)),
            and_(Delivery.status == "in_flight", Delivery.lease_until < now),
        ))
        .order_by(Delivery.id)
        .limit(limit)
    ))
    if ids:
        uow.session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(enqueued_at=now)
                            .execution_options(synchronize_session=False))
    return ids


def retry_dead(uow: UnitOfWork, actor: Member, delivery_id: int) -> Delivery:
    d = uow.session.get(Delivery, delivery_id)
    if d is None:
        raise NotFound(_("No delivery has the id {id}.", id=delivery_id))
    if d.status != "dead":
        raise InvalidInput(_("Delivery {id} is {status}, not failed; nothing to retry.", id=d.id, status=d.status))
    d.status, d.attempts, d.next_attempt_at, d.enqueued_at = "pending", 0, utcnow(), None
    audit(uow, actor, "delivery.retry", f"delivery {d.id}", d.last_error or "")
    return d


def counts(uow: UnitOfWork) -> dict[str, int]:
    rows = uow.session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
    return {status: n for status, n in rows}


def last_failures(uow: UnitOfWork, limit: int = 5) -> list[Delivery]:
    return list(uow.session.scalars(
        select(Delivery).where(Delivery.status == "dead").order_by(Delivery.id.desc()).limit(limit)))


# ---------------------------------------------------------------- long job runs


def create_run(uow: UnitOfWork, actor: Member | None, *, kind: str, platform: str, channel_id: str | None,
               args: dict[str, Any] | None = None) -> JobRun:
    """A long job, queued: a worker picks it up once it is committed and handed to the queue (the
    sweep hands over a queued run whose job was lost: ``jobs.longjobs.sweep_runs_once``)."""
    run = JobRun(kind=kind, started_by_id=actor.id if actor else None, platform=platform, channel_id=channel_id, args=args or {})
    uow.session.add(run)
    uow.session.flush()
    return run


def recent_runs(uow: UnitOfWork, limit: int = 5) -> list[JobRun]:
    return list(uow.session.scalars(select(JobRun).order_by(JobRun.id.desc()).limit(limit)))


def retry_run(uow: UnitOfWork, run_id: int) -> JobRun:
    """Queue a failed job again (it is handed to the queue once this is committed, or by the sweep)."""
    run = uow.session.get(JobRun, run_id)
    if run is None or run.status != "failed":
        raise InvalidInput(_("Job {id} has not failed; nothing to retry.", id=run_id))
    run.status, run.error, run.progress_ref, run.finished_at = "queued", None, None, None
    return run


def claim_run(uow: UnitOfWork, run_id: int) -> JobRun | None:
    """Take a queued run for a worker, atomically: None if it is not queued (done, failed, or
    another job of it took it first: the sweep and a retry may both have handed it over)."""
    return uow.session.scalars(
        update(JobRun).where(JobRun.id == run_id, JobRun.status == "queued")
        .values(status="running", error=None)
        .returning(JobRun)
        .execution_options(populate_existing=True)
    ).one_or_none()


def queued_runs(uow: UnitOfWork, *, older_than: dt.timedelta, limit: int = 100) -> list[int]:
    """Runs still queued ``older_than`` after they were created: their job may have been lost
    (the queue was down when they were saved, Redis lost its data)."""
    return list(uow.session.scalars(
        select(JobRun.id).where(JobRun.status == "queued", JobRun.created_at < utcnow() - older_than)
        .order_by(JobRun.id).limit(limit)))
