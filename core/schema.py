"""Imports every module that declares tables, so ``Base.metadata`` is complete (Alembic, tests)."""

from core import artists, notify, outbox, team  # noqa: F401
from core.db import Base

metadata = Base.metadata
