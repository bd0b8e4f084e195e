"""The composition root: settings in, a ready ``Mona`` (database, dispatcher) out.

Adapters receive the dispatcher; nothing else in mona creates engines or clients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import handlers  # noqa: F401  (registers every command)
from core.config import Settings
from core.db import Database
from handlers.registry import Dispatcher


@dataclass
class Mona:
    settings: Settings
    db: Database
    dispatcher: Dispatcher


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def bootstrap(settings: Settings, *, migrate: bool = True, db: Database | None = None) -> Mona:
    db = db or Database(settings.database_url)
    if migrate:
        db.upgrade()
    return Mona(settings, db, Dispatcher(db, settings))
