"""Suggestions while a person types a command's argument (Discord's autocomplete, for instance).

Read-only and quick: one small query at most, no permission check (what is suggested is what any
member may already read with /artist show), and never an error for odd input: a suggestion that
cannot be made is simply not offered.
"""

from __future__ import annotations

from sqlalchemy import select

from core.artists import Artist
from core.db import Database
from core.notify import ROUTABLE
from core.pipelines import STAGES
from core.team import Role
from core.text import fold
from handlers.registry import registry

#: Discord shows at most 25 suggestions.
LIMIT = 25


def artist_names(db: Database, typed: str, *, limit: int = LIMIT) -> list[str]:
    """Names of live (not archived) artists matching what was typed, case- and accent-insensitively:
    names starting with it first, then names containing it; the most recently updated artists
    when nothing is typed yet."""
    key = fold(typed)
    with db.uow() as uow:
        live = Artist.archived_at.is_(None)
        if not key:
            return list(uow.session.scalars(
                select(Artist.name).where(live).order_by(Artist.updated_at.desc(), Artist.id.desc()).limit(limit)))
        names = list(uow.session.scalars(
            select(Artist.name).where(live, Artist.name_key.startswith(key, autoescape=True))
            .order_by(Artist.name_key, Artist.id).limit(limit)))
        if len(names) < limit:
            names += [n for n in uow.session.scalars(
                select(Artist.name)
                .where(live, Artist.name_key.contains(key, autoescape=True),
                       ~Artist.name_key.startswith(key, autoescape=True))
                .order_by(Artist.name_key, Artist.id).limit(limit - len(names)))]
    return _unique(names)


def block_names(db: Database, typed: str, *, limit: int = LIMIT) -> list[str]:
    """The keys of the service blocks whose key or name contains what was typed."""
    from core.marketplace import Block

    with db.uow() as uow:
        rows = uow.session.execute(select(Block.key, Block.name).order_by(Block.id)).all()
    key = fold(typed)
    return [k for k, name in rows if key in fold(k) or key in fold(name)][:limit]


def stage_names(typed: str, *, limit: int = LIMIT) -> list[str]:
    """The stages of both pipelines (and ``next``) containing what was typed."""
    return _matching(["next", *(s for stages in STAGES.values() for s in stages)], typed, limit)


def event_names(typed: str, *, limit: int = LIMIT) -> list[str]:
    """The events a notification rule may route (and ``digest``)."""
    return _matching(sorted(ROUTABLE), typed, limit)


def command_names(typed: str, *, limit: int = LIMIT) -> list[str]:
    """Commands for /mona help, without their slash: ``artist move``."""
    return _matching([" ".join(path) for path in sorted(registry.commands)], typed.lstrip("/"), limit)


def role_names() -> list[str]:
    return [r.value for r in Role]


def _matching(candidates: list[str], typed: str, limit: int) -> list[str]:
    key = fold(typed)
    starting = [c for c in candidates if fold(c).startswith(key)]
    containing = [c for c in candidates if key in fold(c) and c not in starting]
    return (starting + containing)[:limit]


def _unique(names: list[str]) -> list[str]:
    """Two artists may share a name: suggest it once (picking it then offers the candidates)."""
    return list(dict.fromkeys(names))
