"""Imports every module that declares tables, so ``Base.metadata`` is complete (Alembic, tests)."""

from core import (  # noqa: F401
    artists,
    calendar,
    effects,
    kanban,
    marketplace,
    metrics,
    notify,
    outbox,
    presets,
    replays,
    scoring,
    sessions,
    team,
    weights,
    workflows,
)
from core.db import Base
from core.moderation import store  # noqa: F401

metadata = Base.metadata
