"""Shared fixtures: real PostgreSQL (migrated once per run, emptied before each test) and the
console bot as the driver of every command."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from bot.app import Mona, bootstrap
from bot.console import ConsoleBot
from core.config import Settings
from core.db import Database
from core.schema import metadata

PG_URL = os.environ.get("MONA_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mona_test")
ADMIN = "UADMIN01"


def _ensure_database(url: str) -> None:
    """Create the test database if it is missing (trust auth, as on the dev machines and CI)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    dsn = f"host={u.host or '127.0.0.1'} port={u.port or 5432} user={u.username or 'postgres'} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)).fetchone():
            conn.execute(f'CREATE DATABASE "{u.database}"')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[Database]:
    _ensure_database(PG_URL)
    db = Database(PG_URL)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.upgrade()
    yield db
    db.engine.dispose()


def empty(db: Database) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def settings() -> Settings:
    return Settings(database_url=PG_URL, admins=frozenset({f"slack:{ADMIN}", "DADMIN01"}), lang="en",
                    timezone="Europe/Paris", stuck_days=30, page_size=10)


@pytest.fixture
def mona(pg_database: Database, settings: Settings) -> Mona:
    empty(pg_database)
    return bootstrap(settings, migrate=False, db=pg_database)


@pytest.fixture
def bot(mona: Mona) -> ConsoleBot:
    """The console's local user: an admin."""
    return ConsoleBot(mona.dispatcher, user_name="Lina")
