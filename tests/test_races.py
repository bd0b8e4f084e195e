"""Races: twenty clients at once on PostgreSQL (issue 15).

Each spec starts twenty threads that run a command through the console adapter (the dispatcher
every chat adapter goes through), released together by a ``threading.Barrier``. Where the race is
decided by who commits first, the first writer is held at the door of one table (a ``LOCK TABLE``
taken by a side transaction, as a slow disk or network would hold it) until all twenty are in
flight, so every run goes through the overlap instead of relying on the scheduler's luck. Waiting
for "all twenty in flight" reads PostgreSQL's own view of who waits on a lock: nothing is timed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select, text, update

from bot.app import Mona, bootstrap
from bot.console import ConsoleBot
from core import artists as crm
from core.app import Caller, Command, Context
from core.artists import Artist, Opportunity
from core.config import Settings
from core.db import Database
from core.errors import InvalidInput
from core.notify import Delivery, Reminder
from core.outbox import OutboxEvent
from core.team import Identity, Member, Permission
from handlers.reply import Reply
from jobs.ticker import reminders_once
from tests.conftest import PG_URL, empty

N = 20
#: Console users allowed to edit (the closers, adders and reminder owners below).
PEOPLE = [(f"P{i:02d}", f"Person {i:02d}") for i in range(N)]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, admins=settings.admins | {f"console:{uid}" for uid, _name in PEOPLE})


@pytest.fixture
def mona(pg_database: Database, settings: Settings) -> Iterator[Mona]:
    """Mona over a pool wide enough for twenty commands at once (the default pool holds fifteen)."""
    empty(pg_database)
    db = Database(PG_URL, pool_size=N + 6, max_overflow=0)
    yield bootstrap(settings, migrate=False, db=db)
    db.engine.dispose()


def people(bot: ConsoleBot) -> list[ConsoleBot]:
    """Twenty team members who have talked to mona before (their first contact is not the race)."""
    found = [bot.as_user(uid, name) for uid, name in PEOPLE]
    for person in found:
        assert not person.run("/artist list").error
    return found


# ---------------------------------------------------------------- plumbing


@contextlib.contextmanager
def held(db: Database, table: str) -> Iterator[None]:
    """Writers to ``table`` wait at its door while the block runs (readers go through)."""
    with db.engine.connect() as conn:
        conn.execute(text(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE'))
        try:
            yield
        finally:
            conn.rollback()


def wait_until_waiting(db: Database, n: int) -> None:
    """Until ``n`` sessions of this database wait on a lock: every client is in flight."""
    deadline = time.monotonic() + 60
    waiting = 0
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            waiting = conn.scalar(text("SELECT count(*) FROM pg_stat_activity "
                                       "WHERE datname = current_database() AND wait_event_type = 'Lock'")) or 0
        if waiting >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"only {waiting} of {n} clients reached the database together")


class Clients:
    """Threads released together by one barrier, each running one piece of work."""

    def __init__(self, work: list[Callable[[], Any]]) -> None:
        self._barrier = threading.Barrier(len(work))
        self._results: list[Any] = [None] * len(work)
        self._threads = [threading.Thread(target=self._run, args=(i, w), name=f"client-{i}") for i, w in enumerate(work)]
        for t in self._threads:
            t.start()

    def _run(self, i: int, work: Callable[[], Any]) -> None:
        self._barrier.wait()
        try:
            self._results[i] = work()
        except BaseException as e:  # handed back to the test by results()
            self._results[i] = e

    def results(self) -> list[Any]:
        for t in self._threads:
            t.join(timeout=120)
            assert not t.is_alive(), f"{t.name} never finished"
        for r in self._results:
            if isinstance(r, BaseException):
                raise r
        return self._results


def at_once(db: Database, work: list[Callable[[], Reply]], *, held_at: str) -> list[Reply]:
    """Run every piece of ``work`` at once; the first writer waits at ``held_at`` until all are in flight."""
    with held(db, held_at):
        clients = Clients(list(work))
        wait_until_waiting(db, len(work))
    return clients.results()


def events(mona: Mona, *types: str) -> list[OutboxEvent]:
    with mona.db.uow() as uow:
        return list(uow.session.scalars(select(OutboxEvent).where(OutboxEvent.type.in_(types)).order_by(OutboxEvent.id)))


def count(mona: Mona, model: Any, *where: Any) -> int:
    with mona.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


# ---------------------------------------------------------------- closing a deal


@pytest.mark.probe("races: closing a deal at once")
def test_twenty_people_closing_the_same_deal_at_once_one_wins_and_the_others_are_told_who(bot, mona):
    bot.run("/artist add Alex")
    offer = bot.run("/artist deal Alex 1500 Summer tour")
    closers = people(bot)

    def close(i: int) -> Callable[[], Reply]:
        if i % 2:
            return lambda: closers[i].click(offer, "Won" if i % 4 == 1 else "Lost")
        return lambda: closers[i].run(f"/artist deal-status 1 {'won' if i % 4 == 0 else 'lost'}")

    replies = at_once(mona.db, [close(i) for i in range(N)], held_at="outbox")

    [won] = [(i, r) for i, r in enumerate(replies) if not r.error]
    winner, [event] = closers[won[0]], events(mona, "deal.won", "deal.lost")
    status = event.type.removeprefix("deal.")
    assert won[1].text == f"Deal #1 (Summer tour, €1,500.00) is {status}."
    assert [r.text for r in replies if r.error] == [f"Deal #1 is already {status}. {winner.user_name} closed it."] * (N - 1)
    with mona.db.uow() as uow:
        deal = uow.session.get(Opportunity, 1)
        closer = uow.session.scalars(select(Member).join(Identity).where(Identity.external_id == winner.user_id)).one()
        assert (deal.status, deal.closed_by_id) == (status, closer.id)


@pytest.mark.probe("races: closing a deal at once")
def test_a_double_click_on_won_records_one_event(bot, mona):
    bot.run("/artist add Alex")
    offer = bot.run("/artist deal Alex 1500 Summer tour")

    replies = at_once(mona.db, [lambda: bot.click(offer, "Won")] * 2, held_at="outbox")

    assert sorted(r.text for r in replies) == ["Deal #1 (Summer tour, €1,500.00) is won.",
                                              "Deal #1 is already won. Lina closed it."]
    assert len(events(mona, "deal.won", "deal.lost")) == 1


# ---------------------------------------------------------------- adding the same name


@pytest.mark.probe("races: adding the same name at once")
def test_twenty_people_adding_the_same_artist_at_once_make_one_and_the_others_are_told_it_exists(bot, mona):
    adders = people(bot)

    replies = at_once(mona.db, [lambda p=p, i=i: p.run("/artist add Alex Blue" if i % 2 else "/artist add alex  BLUE")
                                for i, p in enumerate(adders)], held_at="outbox")

    [added] = [r for r in replies if not r.error]
    with mona.db.uow() as uow:
        [alex] = uow.session.scalars(select(Artist).where(Artist.archived_at.is_(None))).all()
    assert added.text == f"Added {alex.name} to MONA at Prospection."
    assert [r.text for r in replies if r.error] == [f"{alex.name} already exists (#{alex.id}); edit their card instead."] * (N - 1)
    assert len(events(mona, "artist.created")) == 1


@pytest.mark.probe("races: adding the same name at once")
def test_twenty_renames_to_the_same_name_at_once_leave_one_artist_with_it(bot, mona):
    for i in range(N):
        bot.run(f"/artist add Demo {i:02d}")

    replies = at_once(mona.db, [lambda i=i: bot.run(f"/artist edit Demo {i:02d} --name Nova") for i in range(N)],
                      held_at="outbox")

    [renamed] = [i for i, r in enumerate(replies) if not r.error]
    assert replies[renamed].text == "Updated Nova: name."
    nova = renamed + 1  # Demo 00 is #1
    assert [r.text for r in replies if r.error] == [f"Another artist is already called Nova (#{nova})."] * (N - 1)
    assert count(mona, Artist, Artist.name_key == "nova") == 1
    assert len(events(mona, "artist.updated")) == 1


def test_restoring_an_artist_whose_name_was_given_to_another_meanwhile_says_so(bot, mona):
    bot.run("/artist add Nova")
    bot.run("/artist archive Nova")
    bot.run("/artist add nova")

    restored = bot.run("/artist restore #1")

    assert restored.error and restored.text == "Another artist is already called nova (#2)."
    assert count(mona, Artist, Artist.archived_at.is_(None)) == 1


class AddThenFail(Command):
    """Adds an artist, then refuses: nothing of it may be kept."""

    key: ClassVar[str] = "test add-then-fail"
    permission: ClassVar[Permission] = Permission.EDIT_ARTISTS

    def run(self, ctx: Context) -> None:
        crm.add_artist(ctx.uow, ctx.actor, name="Alex")
        raise InvalidInput("changed my mind")


def test_on_sqlite_a_command_that_fails_after_adding_an_artist_keeps_nothing(tmp_path, settings):
    """The insert's savepoint is part of the command's transaction on SQLite too (its driver
    would otherwise make a savepoint opened first a transaction of its own, committed on release)."""
    lite = bootstrap(dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path / 'mona.sqlite3'}"))
    try:
        outcome = lite.app.execute(Caller(platform="console", user_id="local", user_name="Lina"), AddThenFail())
        assert outcome.error is not None and outcome.error.message == "changed my mind"
        assert count(lite, Artist) == 0
        assert events(lite, "artist.created") == []
    finally:
        lite.db.engine.dispose()


# ---------------------------------------------------------------- first contact


@pytest.mark.probe("races: a new member's first requests at once")
def test_a_new_members_first_twenty_requests_at_once_are_all_answered(bot, mona):
    sam = bot.as_user("U7NEW", "Sam")

    replies = at_once(mona.db, [lambda: sam.run("/artist list")] * N, held_at="identities")

    assert [(r.error, r.text) for r in replies] == [(False, "No artist matches.")] * N
    assert count(mona, Identity, Identity.external_id == "U7NEW") == 1
    assert count(mona, Member, Member.display_name == "Sam") == 1


@pytest.mark.probe("races: a new member's first requests at once")
def test_a_new_member_talking_while_others_mention_them_becomes_one_member(bot, mona):
    bot.run("/artist list")  # the console user has talked before
    sam = bot.as_user("U7NEW", "Sam")

    replies = at_once(mona.db, [(lambda: sam.run("/artist list")) if i % 2 else
                                (lambda: bot.run("/artist list --owner <@U7NEW|Sam>")) for i in range(N)],
                      held_at="identities")

    assert [(r.error, r.text) for r in replies] == [(False, "No artist matches.")] * N
    assert count(mona, Identity, Identity.external_id == "U7NEW") == 1
    assert count(mona, Member, Member.display_name == "Sam") == 1


def test_first_contact_at_once_works_on_sqlite_too(tmp_path, settings):
    """The console's own database: the same upsert, in SQLite's dialect."""
    lite = bootstrap(dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path / 'mona.sqlite3'}"))
    try:
        console = ConsoleBot(lite.dispatcher, user_name="Lina")
        console.run("/artist list")
        sam = console.as_user("U7NEW", "Sam")
        clients = Clients([(lambda: sam.run("/artist list")) if i % 2 else
                           (lambda: console.run("/artist list --owner <@U7NEW|Sam>")) for i in range(N)])
        assert [(r.error, r.text) for r in clients.results()] == [(False, "No artist matches.")] * N
        assert count(lite, Identity, Identity.external_id == "U7NEW") == 1
    finally:
        lite.db.engine.dispose()


# ---------------------------------------------------------------- cancelling a reminder


def _due_reminders(mona: Mona, owners: list[ConsoleBot]) -> None:
    for person in owners:
        assert not person.run("/remind me in 1h call Alex").error
    with mona.db.uow() as uow:
        uow.session.execute(update(Reminder).values(due_at=func.now()))
        uow.commit()


def _posted(out: io.StringIO) -> set[str]:
    """Whose reminders went out (the console prints ``[@P03] Reminder from …``)."""
    return {line[2:].split("]")[0] for line in out.getvalue().splitlines() if line.startswith("[@")}


@pytest.mark.probe("races: cancelling a reminder while it is sent")
def test_cancelling_reminders_while_they_are_being_sent_says_they_were_sent(bot, mona, out):
    owners = people(bot)
    _due_reminders(mona, owners)

    with held(mona.db, "deliveries"):
        sender = Clients([lambda: reminders_once(mona.runtime)])  # claims the twenty, then waits at the door
        wait_until_waiting(mona.db, 1)
        cancels = Clients([lambda i=i, p=p: p.run(f"/remind cancel {i + 1}") for i, p in enumerate(owners)])
        wait_until_waiting(mona.db, 1 + N)
    assert sender.results() == [N]
    replies = cancels.results()
    mona.run_pending_jobs()

    assert [r.text for r in replies] == [f"Reminder {i + 1} was already sent; it can no longer be cancelled."
                                         for i in range(N)]
    assert _posted(out) == {p.user_id for p in owners}
    assert count(mona, Reminder, Reminder.status == "sent") == N


@pytest.mark.probe("races: cancelling a reminder while it is sent")
def test_a_reminder_cancelled_as_it_falls_due_is_either_cancelled_and_never_sent_or_said_sent(bot, mona, out):
    owners = people(bot)
    _due_reminders(mona, owners)

    clients = Clients([lambda i=i, p=p: p.run(f"/remind cancel {i + 1}") for i, p in enumerate(owners)]
                      + [lambda: reminders_once(mona.runtime)])
    *replies, _sent = clients.results()
    mona.run_pending_jobs()

    posted = _posted(out)
    for i, (person, reply) in enumerate(zip(owners, replies, strict=True)):
        if reply.text == f"Cancelled reminder {i + 1}.":
            assert person.user_id not in posted, f"reminder {i + 1} was said cancelled but went out"
        else:
            assert reply.text == f"Reminder {i + 1} was already sent; it can no longer be cancelled."
            assert person.user_id in posted
    assert count(mona, Delivery) == len(posted)


# ---------------------------------------------------------------- a live preset asked twice at once (issue 10)


class HeldStudio:
    """A studio (``core.studio.Studio``) whose first scene list waits for ``release``: the run that asks
    it holds its preset's row lock meanwhile, as a slow OBS would. Scenes Intro and BRB."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.hold = False
        self.switched: list[str] = []
        self.scene = "Intro"

    def health(self) -> Any:
        from core.studio import Health

        return Health("connected", "test:4455")

    def status(self) -> Any:
        from core.studio import Status

        return Status(live=False, uptime_s=None, recording=False, scene=self.scene, dropped_frames=0, total_frames=0,
                      cpu_percent=0.0, fps=30.0)

    def scenes(self) -> tuple[list[str], str]:
        if self.hold:
            self.hold = False
            self.entered.set()
            assert self.release.wait(30)
        return ["Intro", "BRB"], self.scene

    def switch_scene(self, scene: str, *, transition: str | None = None, duration_ms: int | None = None) -> None:
        self.switched.append(scene)
        self.scene = scene

    def sources(self, scene: str) -> list[tuple[int, str, bool]]:
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def held_studio(mona: Mona) -> Iterator[HeldStudio]:
    studio = HeldStudio()
    before = mona.app.services.studio
    mona.app.services.studio = studio  # type: ignore[assignment]
    yield studio
    studio.release.set()
    mona.app.services.studio = before


def _first_holds(studio: HeldStudio, bot: ConsoleBot, line: str) -> Clients:
    """``line`` run in a thread until its preset lock is held (it is inside OBS's scene list)."""
    studio.hold = True
    first = Clients([lambda: bot.run(line)])
    assert studio.entered.wait(30)
    return first


def test_a_drop_preset_asked_while_it_runs_is_dropped_at_once_and_the_first_run_goes_through(
        bot: ConsoleBot, mona: Mona, held_studio: HeldStudio) -> None:
    assert not bot.run("/stream preset add BRB --scene BRB --policy drop").error
    first = _first_holds(held_studio, bot, "/stream preset BRB")
    second = bot.run("/stream preset BRB")  # answered while the first still runs: it does not wait
    assert second.error and second.text == "BRB is running already; this one was dropped (its policy is drop)."
    held_studio.release.set()
    [done] = first.results()
    assert not done.error and held_studio.switched == ["BRB"]
    from core.presets import PresetRun

    assert count(mona, PresetRun) == 1


def test_a_queue_preset_asked_while_it_runs_waits_for_it_then_runs(bot: ConsoleBot, mona: Mona,
                                                                   held_studio: HeldStudio) -> None:
    assert not bot.run("/stream preset add BRB --scene BRB --policy queue").error
    first = _first_holds(held_studio, bot, "/stream preset BRB")
    second = Clients([lambda: bot.run("/stream preset BRB")])
    wait_until_waiting(mona.db, 1)  # the second waits on the preset's row lock
    assert held_studio.switched == []
    held_studio.release.set()
    [done], [then] = first.results(), second.results()
    assert not done.error and not then.error
    assert held_studio.switched == ["BRB", "BRB"]
    from core.presets import PresetRun

    assert count(mona, PresetRun) == 2
