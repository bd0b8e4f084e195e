"""Team members, their chat identities, roles, the permission table and the audit log.

A member is created on first contact from a platform identity and starts as a viewer. Admins are
the identities named in ``MONA_ADMINS``; nobody becomes admin by being first to talk. The console's
local user is an admin: whoever runs the process owns the data file.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core import outbox
from core.db import Base, UnitOfWork, savepoint, utcnow
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.i18n import _
from core.text import fold

CONSOLE = "console"
#: The console's own user: whoever runs the process owns the data file, so is admin.
CONSOLE_USER = "local"


class Role(enum.StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    MEMBER = "member"
    MODERATOR = "moderator"
    VIEWER = "viewer"


class Permission(enum.StrEnum):
    """What a command needs. Each command declares one; ``GRANTS`` says which roles have it."""

    READ = "read"
    EDIT_ARTISTS = "edit_artists"
    MANAGE_ROLES = "manage_roles"
    MANAGE_NOTIFICATIONS = "manage_notifications"
    REMIND = "remind"
    RUN_MAINTENANCE = "run_maintenance"
    MODERATE = "moderate"
    REQUEST_SERVICES = "request_services"
    MANAGE_BLOCKS = "manage_blocks"
    MANAGE_SCORES = "manage_scores"
    RUN_STUDIO = "run_studio"
    MANAGE_WORKFLOWS = "manage_workflows"


GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.READ: frozenset(Role),
    Permission.EDIT_ARTISTS: frozenset({Role.ADMIN, Role.MANAGER, Role.MEMBER}),
    Permission.MANAGE_ROLES: frozenset({Role.ADMIN, Role.MANAGER}),
    Permission.MANAGE_NOTIFICATIONS: frozenset({Role.ADMIN, Role.MANAGER}),
    Permission.REMIND: frozenset({Role.ADMIN, Role.MANAGER, Role.MEMBER, Role.MODERATOR}),
    Permission.RUN_MAINTENANCE: frozenset({Role.ADMIN}),
    Permission.MODERATE: frozenset({Role.ADMIN, Role.MANAGER, Role.MODERATOR}),
    Permission.REQUEST_SERVICES: frozenset({Role.ADMIN, Role.MANAGER, Role.MEMBER}),
    Permission.MANAGE_BLOCKS: frozenset({Role.ADMIN, Role.MANAGER}),
    Permission.MANAGE_SCORES: frozenset({Role.ADMIN, Role.MANAGER}),
    Permission.RUN_STUDIO: frozenset({Role.ADMIN, Role.MANAGER, Role.MODERATOR}),
    Permission.MANAGE_WORKFLOWS: frozenset({Role.ADMIN, Role.MANAGER}),
}


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[str] = mapped_column(String(20), default=Role.VIEWER.value)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class Identity(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_identities_platform_external"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(100))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    member: Mapped[Member] = relationship(lazy="raise")


class AuditEntry(Base):
    """Sensitive actions (role changes, archiving, erasure): who did what to what, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(String(1000), default="")


def is_configured_admin(admins: Iterable[str], platform: str, external_id: str) -> bool:
    """``MONA_ADMINS`` holds ``platform:id`` or bare ids (which then match on any platform)."""
    admins = set(admins)
    return f"{platform}:{external_id}" in admins or external_id in admins


def _member_of(uow: UnitOfWork, platform: str, external_id: str) -> Member | None:
    # The member itself, not the identity: ``Identity.member`` is never loaded lazily.
    return uow.session.scalars(
        select(Member).join(Identity).where(Identity.platform == platform, Identity.external_id == external_id)
    ).one_or_none()


def _first_contact(uow: UnitOfWork, *, platform: str, external_id: str, name: str | None, role: Role) -> tuple[Member, bool]:
    """The member of a platform identity seen for the first time, and whether this call made it.

    An upsert, because the same newcomer's first requests (or a first request and a mention of
    them) arrive together: each makes a member and inserts the identity ``ON CONFLICT DO NOTHING``;
    the one whose identity went in keeps its member, the others undo theirs and take the winner's."""
    session = uow.session
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    with savepoint(session) as nested:
        member = Member(display_name=name or external_id, name_key=fold(name or external_id), role=role.value)
        session.add(member)
        session.flush()
        inserted = session.execute(
            dialect.insert(Identity).values(platform=platform, external_id=external_id, member_id=member.id)
            .on_conflict_do_nothing(index_elements=["platform", "external_id"])
            .returning(Identity.id)
        ).first()
        if inserted is not None:
            return member, True
        nested.rollback()  # another first contact won (PostgreSQL waited for it to commit): undo our member
    winner = _member_of(uow, platform, external_id)
    if winner is None:
        raise RuntimeError(f"identity {platform}:{external_id} was taken but is not visible")
    return winner, False


def identify(uow: UnitOfWork, *, platform: str, external_id: str, name: str,
             admins: Iterable[str]) -> tuple[Member, bool]:
    """The member behind a platform identity, created on first contact; and whether anything about
    them was written (created, renamed, made admin), which the caller should commit on its own."""
    wants_admin = (platform, external_id) == (CONSOLE, CONSOLE_USER) or is_configured_admin(admins, platform, external_id)
    member = _member_of(uow, platform, external_id)
    if member is None:
        member, created = _first_contact(uow, platform=platform, external_id=external_id, name=name,
                                         role=Role.ADMIN if wants_admin else Role.VIEWER)
        if created:
            return member, True
    changed = False
    if name and member.display_name != name and member.display_name == external_id:
        # Created from a mention before we knew their name: learn it on first contact.
        member.display_name, member.name_key = name, fold(name)
        changed = True
    if wants_admin and member.role != Role.ADMIN:
        member.role = Role.ADMIN.value
        changed = True
    return member, changed


def identities_of(uow: UnitOfWork, member: Member) -> list[Identity]:
    return list(uow.session.scalars(select(Identity).where(Identity.member_id == member.id).order_by(Identity.id)))


def member_for_mention(uow: UnitOfWork, *, platform: str, external_id: str | None, name: str | None) -> Member:
    """Resolve ``<@U123>`` (a platform id) or ``@alice`` (a display name) to a member.

    A platform id never seen before becomes a viewer member, as on first contact.
    """
    if external_id:
        member = _member_of(uow, platform, external_id)
        if member is None:
            member, created = _first_contact(uow, platform=platform, external_id=external_id, name=name, role=Role.VIEWER)
            if created:
                return member
        if name and member.display_name == external_id:
            # Mentioned by id alone before; the platform now says their name.
            member.display_name, member.name_key = name, fold(name)
        return member
    key = fold(name or "")
    found = uow.session.scalars(select(Member).where(Member.name_key == key)).all()
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotFound(_("No team member is called @{name}.", name=name))
    raise InvalidInput(_("Several team members are called @{name}; mention them instead.", name=name))


#: Platform roles (Twitch badges, Discord moderators) that may moderate whatever their mona role.
PLATFORM_MODERATORS = frozenset({"broadcaster", "moderator"})


def check(member: Member, permission: Permission, *, admins_configured: bool,
          platform_roles: frozenset[str] = frozenset()) -> None:
    if Role(member.role) in GRANTS[permission]:
        return
    if permission in (Permission.MODERATE, Permission.RUN_STUDIO) and platform_roles & PLATFORM_MODERATORS:
        return
    allowed = ", ".join(sorted(r.value for r in GRANTS[permission]))
    message = _("You need one of these roles for that: {roles}. Your role is {role}.", roles=allowed, role=member.role)
    if not admins_configured:
        message += " " + _("No admin is configured yet: set MONA_ADMINS to the platform user ids of the admins (for example MONA_ADMINS=slack:U012ABCDEF) and restart mona.")
    else:
        message += " " + _("Ask an admin or a manager to give you a role.")
    raise PermissionDenied(message)


def set_role(uow: UnitOfWork, actor: Member, target: Member, role: Role) -> Role:
    if target.id == actor.id:
        raise InvalidInput(_("You cannot change your own role; ask another admin."))
    if actor.role != Role.ADMIN and (role in (Role.ADMIN, Role.MANAGER) or target.role in (Role.ADMIN, Role.MANAGER)):
        raise PermissionDenied(_("Only an admin can give or take the admin and manager roles."))
    old = target.role
    target.role = role.value
    outbox.record(uow, "member.role_changed", member_id=target.id, name=target.display_name, before=old,
                  role=role.value, by=actor.id)
    return role


def audit(uow: UnitOfWork, actor: Member | None, action: str, target: str, detail: str = "") -> None:
    uow.session.add(AuditEntry(actor_id=actor.id if actor else None, action=action, target=target[:200], detail=detail[:1000]))
