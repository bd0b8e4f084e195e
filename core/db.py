"""Storage plumbing: the declarative base, engines, the unit of work and migrations.

This is the one place that opens transactions. A command runs inside one ``UnitOfWork``: it
commits everything it did, or nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, Integer, MetaData, create_engine, event, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeDecorator

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on PostgreSQL and SQLite alike (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime()}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class whole_days(FunctionElement[int]):  # noqa: N801 - reads like a SQL function
    """Whole days (floored) from the second timestamp to the first, on PostgreSQL and SQLite."""

    type = Integer()
    inherit_cache = True


@compiles(whole_days, "postgresql")
def _days_pg(element: whole_days, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(FLOOR(date_part('epoch', {later} - {earlier}) / 86400) AS INTEGER)"


@compiles(whole_days, "sqlite")
def _days_sqlite(element: whole_days, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def add_to_counter(session: Session, table: Any, keys: dict[str, Any], column: str, amount: int = 1) -> None:
    """``INSERT … ON CONFLICT (keys) DO UPDATE SET column = column + amount`` on PostgreSQL and SQLite."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**keys, **{column: amount})
    session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_={column: table.c[column] + amount}))


@contextlib.contextmanager
def savepoint(session: Session) -> Iterator[SessionTransaction]:
    """A SAVEPOINT inside the current transaction, on PostgreSQL and SQLite alike: what fails in the
    block (a unique index refusing a row another client just wrote) rolls back to here, and the
    transaction goes on. Write the rows inside the block: ``begin_nested`` flushes what is pending
    before the SAVEPOINT, outside it.

    SQLite's Python driver opens a transaction only before a write, so a SAVEPOINT emitted first
    would be a transaction of its own, committed on release whatever the command does next: the
    real transaction is opened first."""
    if session.get_bind().dialect.name == "sqlite":
        conn = session.connection()
        if not getattr(conn.connection.dbapi_connection, "in_transaction", True):
            conn.exec_driver_sql("BEGIN")
    with session.begin_nested() as nested:
        yield nested


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        return engine
    # No pre-ping: it costs a round trip per command. A connection found dead raises a disconnect
    # error, which invalidates the pool, so only that one command fails; recycling bounds idle age.
    kwargs.setdefault("pool_recycle", 1800)
    return create_engine(url, **kwargs)


class UnitOfWork:
    """One transaction. ``with uow: ...; uow.commit()``; leaving without commit rolls back."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._factory = session_factory
        self.session: Session

    def __enter__(self) -> UnitOfWork:
        self.session = self._factory()
        return self

    def __exit__(self, *exc: object) -> None:
        # close() rolls back whatever was not committed and detaches loaded objects intact.
        self.session.info.clear()
        self.session.close()

    def commit(self) -> None:
        self.session.commit()
        self.session.info.clear()

    def rollback(self) -> None:
        self.session.rollback()
        self.session.info.clear()


class Database:
    """An engine and the factory of units of work over it."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self._sessions)

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` with Alembic; the schema is made only this way."""
        from alembic import command

        command.upgrade(alembic_config(self.url), revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


__all__ = ["Base", "Database", "UnitOfWork", "func", "savepoint", "utcnow", "whole_days"]
