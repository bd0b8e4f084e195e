"""Reminders: a text to post to a member or a channel at a time; kept in the database until due."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from core.db import UnitOfWork
from core.errors import ConcurrentChange, InvalidInput, NotFound
from core.i18n import _
from core.notify import Reminder
from core.team import Member
from core.text import clean


def schedule(uow: UnitOfWork, actor: Member, *, platform: str, target: str, label: str, due_at: dt.datetime,
             text: str) -> Reminder:
    text = clean(text, what=_("reminder"))
    if not text:
        raise InvalidInput(_("Say what to remind about, e.g. call Alex."))
    r = Reminder(created_by_id=actor.id, platform=platform, target=target, label=label, due_at=due_at, text=text)
    uow.session.add(r)
    uow.session.flush()
    return r


def cancel(uow: UnitOfWork, actor: Member, reminder_id: int) -> Reminder:
    """Cancel a reminder still to be sent. A conditional update, as the sender's claim is
    (``jobs.ticker.reminders_once``): of a cancel and a send at the same instant one wins, and a cancel
    that lost says the reminder was sent rather than claiming it was cancelled."""
    r = uow.session.get(Reminder, reminder_id)
    if r is None or r.created_by_id != actor.id:
        raise NotFound(_("You have no reminder with the id {id}.", id=reminder_id))
    if r.status != "scheduled":
        raise _not_cancellable(r)
    cancelled = uow.session.scalars(
        update(Reminder).where(Reminder.id == r.id, Reminder.status == "scheduled").values(status="cancelled")
        .returning(Reminder).execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()
    if cancelled is None:  # the sender claimed it since the read above (PostgreSQL waited for its commit)
        uow.session.refresh(r)
        raise _not_cancellable(r)
    return cancelled


def _not_cancellable(r: Reminder) -> ConcurrentChange:
    if r.status == "sent":
        return ConcurrentChange(_("Reminder {id} was already sent; it can no longer be cancelled.", id=r.id))
    return ConcurrentChange(_("Reminder {id} is already {status}.", id=r.id, status=r.status))


def claim_due(uow: UnitOfWork, *, now: dt.datetime, limit: int = 100) -> list[Reminder]:
    """Mark the reminders that fell due as sent and return them, for the sender to post.

    The same conditional update as ``cancel``: a reminder cancelled meanwhile is not claimed, and
    two senders never claim one reminder. On PostgreSQL, rows a cancel (or another sender) holds
    are skipped this round rather than waited for."""
    q = select(Reminder.id).where(Reminder.status == "scheduled", Reminder.due_at <= now).order_by(Reminder.due_at).limit(limit)
    if uow.session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    ids = list(uow.session.scalars(q))
    if not ids:
        return []
    claimed = uow.session.scalars(
        update(Reminder).where(Reminder.id.in_(ids), Reminder.status == "scheduled").values(status="sent")
        .returning(Reminder).execution_options(synchronize_session=False, populate_existing=True)
    ).all()
    return sorted(claimed, key=lambda r: (r.due_at, r.id))


def upcoming(uow: UnitOfWork, actor: Member, limit: int = 20) -> list[Reminder]:
    return list(uow.session.scalars(select(Reminder).where(Reminder.created_by_id == actor.id, Reminder.status == "scheduled")
                                    .order_by(Reminder.due_at).limit(limit)))
