"""Shared fixtures: real PostgreSQL (migrated once per run, emptied before each test) and the
console bot as the driver of every command."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import insert, text

from bot.app import Mona, bootstrap
from bot.console import ConsoleBot
from bot.notify_console import ConsoleNotifier
from core.config import Settings
from core.db import MIGRATIONS_DIR, Database
from core.schema import metadata
from tests.slack_stub import BOT_TOKEN, SIGNING_SECRET, WebApiStub

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


def _migration(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, MIGRATIONS_DIR / "versions" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: What the migrations seed: the 10 marketplace blocks (0004) and the expert weights (0009).
BLOCKS: list[dict[str, Any]] = list(_migration("0004_marketplace").BLOCKS)
DEFAULT_WEIGHTS: dict[str, float] = dict(_migration("0009_scores").DEFAULTS)


def empty(db: Database) -> None:
    """Every table emptied, then what the migrations seed put back: a freshly migrated database."""
    from core import marketplace
    from core.scoring import ScoreModel

    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(insert(marketplace.Block), BLOCKS)
        conn.execute(insert(ScoreModel), [{"version": 1, "weights": DEFAULT_WEIGHTS, "trained": {},
                                           "note": "Expert defaults"}])


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


@pytest.fixture
def web_api() -> Iterator[WebApiStub]:
    """A local stand-in of Slack's Web API, recording what mona sent."""
    with WebApiStub() as stub:
        yield stub


@pytest.fixture
def slack_mona(mona: Mona, web_api: WebApiStub) -> Mona:
    """The test ``mona`` configured for Slack over HTTP, its Web API pointed at the stub."""
    settings = dataclasses.replace(mona.settings, slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                                   slack_api_url=web_api.api_url)
    return dataclasses.replace(mona, settings=settings)


@pytest.fixture
def out(mona: Mona) -> io.StringIO:
    """What the console's channels are told (notifications, job progress and results)."""
    buf = io.StringIO()
    mona.runtime.notifiers["console"] = ConsoleNotifier(buf)
    return buf
