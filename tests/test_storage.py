"""Storage: migrations are the only schema source, lost updates are refused, the card has no N+1."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, inspect

from core import artists as crm
from core.db import Database
from core.errors import ConcurrentChange
from core.schema import metadata
from core.team import Member, identify


def test_migrations_match_the_models_on_postgresql(mona):
    with mona.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_migrations_build_the_whole_schema_on_sqlite(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    db.upgrade()
    assert set(inspect(db.engine).get_table_names()) >= {t.name for t in metadata.sorted_tables}
    assert db.current_revision() is not None
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def _member(mona, ext: str, name: str) -> Member:
    with mona.db.uow() as uow:
        m, _ = identify(uow, platform="slack", external_id=ext, name=name, admins=[ext])
        uow.commit()
        return m


def test_two_people_moving_the_same_artist_at_once_do_not_lose_an_update(bot, mona):
    bot.run("/artist add Alex")
    ana, ben = _member(mona, "UANA", "Ana"), _member(mona, "UBEN", "Ben")
    with mona.db.uow() as first, mona.db.uow() as second:
        a1 = crm.find(first, "Alex")
        a2 = crm.find(second, "Alex")
        crm.move_stage(second, second.session.merge(ben), a2, "Prescription")
        second.commit()
        with pytest.raises(ConcurrentChange, match="Alex was changed by Ben meanwhile; nothing was saved"):
            crm.move_stage(first, first.session.merge(ana), a1, "Check-up")
    with mona.db.uow() as uow:
        a = crm.find(uow, "Alex")
        assert (a.stage, a.version) == ("Prescription", 2)


def test_the_card_takes_the_same_number_of_queries_whatever_the_history(bot, mona):
    bot.run("/artist add Small")
    bot.run("/artist add Big")
    for i in range(3):
        bot.run(f"/artist note Small note {i}")
        bot.run(f"/artist deal Small {i + 1}00 Deal {i}")
    for i in range(40):
        bot.run(f"/artist note Big note {i}")
        bot.run(f"/artist deal Big {i + 1}00 Deal {i}")

    def queries(name: str) -> int:
        seen: list[str] = []
        listener = lambda *a: seen.append(a[2])  # noqa: E731
        event.listen(mona.db.engine, "before_cursor_execute", listener)
        try:
            r = bot.run(f"/artist show {name}")
        finally:
            event.remove(mona.db.engine, "before_cursor_execute", listener)
        assert not r.error
        return len(seen)

    assert queries("Small") == queries("Big")
