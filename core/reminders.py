"""Reminders: a text to post to a member or a channel at a time; kept in the database until due."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.db import UnitOfWork
from core.errors import InvalidInput, NotFound
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
    r = uow.session.get(Reminder, reminder_id)
    if r is None or r.created_by_id != actor.id:
        raise NotFound(_("You have no reminder with the id {id}.", id=reminder_id))
    if r.status != "scheduled":
        raise InvalidInput(_("Reminder {id} is already {status}.", id=r.id, status=r.status))
    r.status = "cancelled"
    return r


def upcoming(uow: UnitOfWork, actor: Member, limit: int = 20) -> list[Reminder]:
    return list(uow.session.scalars(select(Reminder).where(Reminder.created_by_id == actor.id, Reminder.status == "scheduled")
                                    .order_by(Reminder.due_at).limit(limit)))
