"""The application layer: one door into the core for every way in.

Chat (a typed line, a button, a form), the HTTP API, a workflow step or the assistant all build a
typed ``Command`` and call ``Application.execute(caller, command)``. That one call identifies the
caller, checks the command's declared permission, runs it in one unit of work, commits, runs what
was deferred until after the commit, writes the audit entry of a sensitive command, and answers an
``Outcome``: the command's value, or a ``UserError`` whose ``code`` is one of ``ERROR_CODES``.
Anything unexpected is logged with its traceback and answered as ``Unexpected`` with a ref id.

The core knows no chat platform: what a command returns is up to the layer that declared it
(``handlers/`` returns a platform-neutral ``Reply``), and ``Caller`` says only who acts and where.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from core import outbox
from core.config import Settings
from core.db import Database, UnitOfWork
from core.effects import EffectRunner
from core.errors import UserError
from core.i18n import _, use_language
from core.refs import Mention
from core.studio import Studio
from core.team import Member, Permission, audit, check, identify, member_for_mention

log = logging.getLogger("mona.app")

R = TypeVar("R")

#: How a command reached mona: typed in chat, a button or select, a form, the HTTP API, a workflow.
Via = Literal["command", "action", "submit", "api", "workflow"]


@dataclass(frozen=True)
class Caller:
    """Who acts, and where: a platform identity, the channel and chat community it acted in."""

    platform: str
    user_id: str
    user_name: str
    via: Via = "command"
    channel_id: str | None = None
    #: The chat community it happened in, for moderation: a Discord guild id, a Twitch broadcaster id.
    community: str | None = None
    #: Platform user ids, among the people the command names, who moderate there (moderation
    #: refuses to act on them).
    protected_ids: frozenset[str] = frozenset()
    #: What the platform says this person is there: "broadcaster", "moderator", "vip", "subscriber".
    platform_roles: frozenset[str] = frozenset()
    #: For a workflow's step: the depth of the events it records (its run's depth + 1; 0 for people).
    depth: int = 0


class FlowRunner(Protocol):
    """How commands hand workflow runs to the workers, without knowing RQ."""

    def start(self, run_ids: list[int]) -> None: ...


class LongJobs(Protocol):
    """How commands start long jobs and look at the queues, without knowing RQ."""

    def start(self, run_id: int) -> None: ...

    def sizes(self) -> dict[str, int] | None: ...


class RulesCache(Protocol):
    """The in-memory moderation engines of chat adapters, told when a community's rules change."""

    def invalidate(self, platform: str, community: str) -> None: ...

    def permit(self, platform: str, community: str, user_id: str) -> None: ...


@dataclass
class Services:
    """What commands may use beyond the database, built once by ``bot.app.bootstrap``.

    One object handed to every command, so adding a gateway (OBS, the AI client) adds a field
    here, never a parameter to every command."""

    jobs: LongJobs | None = None
    rules: RulesCache | None = None
    #: Moderation actions on a platform, carried out by a job whatever the command came through.
    effects: EffectRunner | None = None
    #: OBS Studio (``core.studio.Studio``), when one is configured.
    studio: Studio | None = None
    #: Connects to another OBS (``/stream connect``): host, port, password → a supervised studio.
    connect_studio: Callable[[str, int, str], Studio] | None = None
    #: Hands workflow runs to the workers (``jobs.flows``).
    flows: FlowRunner | None = None


@dataclass
class Context:
    """What a running command may use: the open unit of work, the acting member, who called and how."""

    uow: UnitOfWork
    actor: Member
    settings: Settings
    caller: Caller
    services: Services
    after_commit: list[Callable[[], str | None]] = field(default_factory=list)

    def defer(self, fn: Callable[[], str | None]) -> None:
        """Run ``fn`` once the transaction has committed (start a job on a row just written).

        What it returns, if anything, is added to the outcome's notices (e.g. that the queue was
        unreachable); an exception it raises is logged and never undoes what was committed."""
        self.after_commit.append(fn)

    def member(self, who: Mention) -> Member:
        """The team member a mention names, on the caller's platform."""
        return member_for_mention(self.uow, platform=self.caller.platform, external_id=who.external_id, name=who.name)


class Command(BaseModel):
    """A typed request to mona: its fields are the arguments, its docstring the help users read.

    Subclasses set ``permission`` (and ``sensitive`` for those written to the audit log) and
    implement ``run``; ``handlers/`` declares them and says how each is typed in chat."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    #: What the command is declared as: its words (``artist move``) or an action id (``artist.move``).
    key: ClassVar[str] = ""
    permission: ClassVar[Permission] = Permission.READ
    #: Written to the audit log (who, what, with which arguments) when it succeeds.
    sensitive: ClassVar[bool] = False

    def run(self, ctx: Context) -> Any:
        raise NotImplementedError(type(self).__name__)

    def audit_target(self) -> str:
        """What the audit entry names as the command's target (its arguments by default)."""
        return self.model_dump_json(exclude_none=True)[:200]


class Unexpected(UserError):
    """A bug, reported to the person with a ref id that finds its traceback in the log."""

    code = "internal"

    def __init__(self, ref: str) -> None:
        super().__init__(_("Something went wrong on our side (ref {ref}); nothing was saved.", ref=ref))
        self.ref = ref


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What ``execute`` answers: the command's value, or the error that stopped it."""

    value: R | None = None
    error: UserError | None = None
    #: Things the person should know besides the result, e.g. where its events will be announced.
    notices: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


class Application:
    """``execute(caller, command) -> Outcome``: the one place that opens transactions for commands."""

    def __init__(self, db: Database, settings: Settings, services: Services | None = None) -> None:
        self.db = db
        self.settings = settings
        self.services = services or Services()

    def execute(self, caller: Caller, command: Command) -> Outcome[Any]:
        started = time.perf_counter()
        with use_language(self.settings.lang):
            outcome = self._execute(caller, command)
        elapsed = (time.perf_counter() - started) * 1000
        code = outcome.error.code if outcome.error else "ok"
        log.info("%s user=%s %s %s -> %s in %.1f ms", caller.platform, caller.user_id, caller.via, command.key, code, elapsed)
        return outcome

    def _execute(self, caller: Caller, command: Command) -> Outcome[Any]:
        try:
            with self.db.uow() as uow:
                actor, changed = identify(uow, platform=caller.platform, external_id=caller.user_id, name=caller.user_name,
                                          admins=self.settings.admins)
                if changed:
                    uow.commit()  # a first contact is kept even if the command then fails
                check(actor, command.permission, admins_configured=bool(self.settings.admins),
                      platform_roles=caller.platform_roles)
                if caller.depth:
                    uow.session.info[outbox.DEPTH] = caller.depth
                ctx = Context(uow, actor, self.settings, caller, self.services)
                value = command.run(ctx)
                notices = announced(uow)
                if command.sensitive:
                    audit(uow, actor, command.key, command.audit_target(), f"{caller.platform} {caller.via}")
                uow.commit()
        except UserError as e:
            return Outcome(error=e)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("unhandled error ref=%s", ref)
            return Outcome(error=Unexpected(ref))
        for fn in ctx.after_commit:
            try:
                note = fn()
            except Exception:
                log.exception("after-commit step of %s failed", command.key)
                note = _("Saved, but a follow-up step failed; it is in the log.")
            if note:
                notices = (*notices, note)
        return Outcome(value, notices=notices)


def announced(uow: UnitOfWork) -> tuple[str, ...]:
    """Where the events recorded in this transaction will be announced (they go out after commit,
    through the outbox, whether or not the queue is reachable right now)."""
    from core.notify import NotificationRule
    from core.outbox import recorded_types

    types = recorded_types(uow)
    if not types:
        return ()
    labels = sorted(set(uow.session.scalars(select(NotificationRule.label).where(NotificationRule.event_type.in_(types)))))
    if not labels:
        return ()
    return (_("Notification queued for {where}.", where=", ".join(labels)),)
