"""Imports every module that declares tables, so ``Base.metadata`` is complete (Alembic, tests)."""

from core import artists, effects, marketplace, metrics, notify, outbox, replays, scoring, team, weights  # noqa: F401
from core.db import Base
from core.moderation import store  # noqa: F401

metadata = Base.metadata
