"""Events: declared once in a catalogue, and every committed one handed to each subscriber (at least
once, idempotently), a failing subscriber retried without holding up the others."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import pytest
from sqlalchemy import select, update

from core import outbox
from core.db import UnitOfWork
from core.events import CATALOGUE, describe
from core.notify import Delivery
from core.outbox import CommittedEvent, SubscriberFailure
from jobs.relay import relay_once, retry_failures_once


class Recording:
    """A subscriber that notes what it was handed (in the database, as a real one would act)."""

    def __init__(self, name: str, types: frozenset[str] | None = None, fail: int = 0) -> None:
        self.name, self.types, self.fail = name, types, fail
        self.seen: list[tuple[int, str]] = []

    def handle(self, uow: UnitOfWork, events: Sequence[CommittedEvent]) -> Callable[[], None] | None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the workflow engine is down")
        self.seen += [(e.id, e.type) for e in events]
        return None


def test_every_event_type_is_declared_with_its_fields_and_described():
    assert frozenset(CATALOGUE) == outbox.EVENT_TYPES
    for type_ in CATALOGUE:
        doc, fields = describe(type_)
        assert doc and fields, type_
        assert all(description for _name, description in fields), type_


def test_an_event_the_catalogue_does_not_declare_is_refused(mona):
    with mona.db.uow() as uow:
        with pytest.raises(ValueError, match="unknown event type"):
            outbox.record(uow, "artist.teleported", artist_id=1)
        with pytest.raises(ValueError):
            outbox.record(uow, "artist.archived", artist_id=1, by=1, colour="blue")  # a field it does not declare
        with pytest.raises(ValueError):
            outbox.record(uow, "deal.won", artist_id=1, by=1)  # fields it needs are missing


def test_each_committed_event_reaches_every_subscriber_that_wants_it_once(bot, mona):
    everything = Recording("everything")
    stages = Recording("stages", frozenset({"artist.stage_changed"}))
    mona.runtime.subscribers += [everything, stages]
    bot.run("/artist add Alex")
    bot.run("/artist move Alex next")
    bot.run("/artist add")  # refused: records nothing

    assert relay_once(mona.runtime) == 2
    assert relay_once(mona.runtime) == 0  # nothing handed twice
    assert [t for _id, t in everything.seen] == ["artist.created", "artist.stage_changed"]
    assert [t for _id, t in stages.seen] == ["artist.stage_changed"]


def test_a_failing_subscriber_is_retried_later_while_notifications_go_out(bot, mona):
    flaky = Recording("workflows", fail=1)
    mona.runtime.subscribers.append(flaky)
    bot.run("/mona notify add artist.created #crm")
    bot.run("/artist add Alex")

    relay_once(mona.runtime)
    with mona.db.uow() as uow:
        assert len(uow.session.scalars(select(Delivery)).all()) == 1  # notifications went on
        [failure] = uow.session.scalars(select(SubscriberFailure)).all()
        assert (failure.subscriber, failure.attempts) == ("workflows", 1)
        assert "the workflow engine is down" in failure.last_error
    assert flaky.seen == []
    assert retry_failures_once(mona.runtime) == 0  # not due yet: it backs off

    with mona.db.uow() as uow:
        uow.session.execute(update(SubscriberFailure).values(next_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        uow.commit()
    assert retry_failures_once(mona.runtime) == 1
    assert [t for _id, t in flaky.seen] == ["artist.created"]
    with mona.db.uow() as uow:
        assert uow.session.scalars(select(SubscriberFailure)).all() == []
        assert len(uow.session.scalars(select(Delivery)).all()) == 1  # and nothing was notified twice
