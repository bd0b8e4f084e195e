"""The command registry and the dispatcher: the only door into handlers.

Each command is declared once, with its words, usage, flags and permission; its docstring is the
help text users see. Buttons and modals are declared the same way by action id or callback id, so
a click routes back through here identically on every platform.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rapidfuzz import process
from sqlalchemy import select

from core.config import Settings
from core.db import Database, UnitOfWork
from core.errors import Ambiguous, FieldError, InvalidInput, UserError
from core.i18n import _, use_language
from core.team import Member, Permission, check, identify, member_for_mention
from core.text import check_command_text
from handlers.parser import Args, Flag, Mention, parse_args, parse_mention, tokenize
from handlers.reply import Button, Invocation, Reply

log = logging.getLogger("mona.dispatch")

RERUN = "cmd.run"


class Jobs(Protocol):
    """How handlers start long jobs and look at the queues, without knowing RQ."""

    def start(self, run_id: int) -> None: ...

    def sizes(self) -> dict[str, int] | None: ...


@dataclass
class Context:
    """What a handler may use: the open transaction, who is acting, settings and the invocation."""

    uow: UnitOfWork
    actor: Member
    settings: Settings
    invocation: Invocation
    jobs: Jobs | None = None
    guard: Any = None  # handlers.moderation.Guard when chat moderation runs in this process
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def defer(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the command's transaction has committed (e.g. start a job on its row)."""
        self.after_commit.append(fn)

    def member(self, who: Mention | str) -> Member:
        mention = who if isinstance(who, Mention) else parse_mention(who)
        if mention is None:
            raise InvalidInput(_("{value} is not a mention; write @name.", value=who))
        return member_for_mention(self.uow, platform=self.invocation.platform,
                                  external_id=mention.external_id, name=mention.name)


CommandFn = Callable[[Context, Args], Reply]


@dataclass(frozen=True)
class CommandSpec:
    path: tuple[str, ...]
    fn: CommandFn
    permission: Permission
    usage: str
    min_args: int
    max_args: int | None
    flags: tuple[Flag, ...]

    @property
    def name(self) -> str:
        return "/" + " ".join(self.path)

    @property
    def full_usage(self) -> str:
        return f"{self.name} {self.usage}".strip()

    @property
    def help(self) -> str:
        return inspect.getdoc(self.fn) or ""

    @property
    def summary(self) -> str:
        return _(self.help.split("\n\n")[0].replace("\n", " "))


@dataclass(frozen=True)
class ActionSpec:
    name: str
    fn: Callable[..., Reply]
    permission: Permission


@dataclass
class Registry:
    commands: dict[tuple[str, ...], CommandSpec] = field(default_factory=dict)
    actions: dict[str, ActionSpec] = field(default_factory=dict)
    submits: dict[str, ActionSpec] = field(default_factory=dict)

    def command(self, words: str, *, permission: Permission, usage: str = "", args: tuple[int, int | None] = (0, 0),
                flags: tuple[Flag, ...] = ()) -> Callable[[CommandFn], CommandFn]:
        def register(fn: CommandFn) -> CommandFn:
            path = tuple(words.split())
            assert path not in self.commands, f"{words} registered twice"
            self.commands[path] = CommandSpec(path, fn, permission, usage, args[0], args[1], flags)
            return fn

        return register

    def action(self, action_id: str, *, permission: Permission) -> Callable[[Callable[..., Reply]], Callable[..., Reply]]:
        def register(fn: Callable[..., Reply]) -> Callable[..., Reply]:
            self.actions[action_id] = ActionSpec(action_id, fn, permission)
            return fn

        return register

    def submit(self, callback_id: str, *, permission: Permission) -> Callable[[Callable[..., Reply]], Callable[..., Reply]]:
        def register(fn: Callable[..., Reply]) -> Callable[..., Reply]:
            self.submits[callback_id] = ActionSpec(callback_id, fn, permission)
            return fn

        return register

    @property
    def groups(self) -> list[str]:
        """Top-level command words: the slash commands a platform must declare."""
        return sorted({p[0] for p in self.commands})

    def in_group(self, group: str) -> list[CommandSpec]:
        return [s for p, s in sorted(self.commands.items()) if p[0] == group]

    def find(self, tokens: list[str]) -> tuple[CommandSpec, list[str]]:
        """The command named by the leading words (longest match), and the words left for its arguments."""
        if not tokens:
            raise InvalidInput(_("Type a command, e.g. /mona help."))
        group = tokens[0].lstrip("/").lower()
        if not any(p[0] == group for p in self.commands):
            close = process.extractOne(group, self.groups, score_cutoff=60)
            hint = " " + _("Did you mean /{command}?", command=close[0]) if close else ""
            raise InvalidInput(_("Unknown command /{command}.", command=group) + hint + " " + _("Type /mona help for the list."))
        words = [group] + [t.lower() for t in tokens[1:3]]
        for n in (3, 2, 1):
            if len(words) >= n and tuple(words[:n]) in self.commands:
                return self.commands[tuple(words[:n])], tokens[n:]
        prefix = tuple(words[:2]) if len(words) > 1 and any(p[:2] == tuple(words[:2]) and len(p) > 2 for p in self.commands) else (group,)
        subs = sorted({" ".join(p[len(prefix):len(prefix) + 1]) for p in self.commands if p[:len(prefix)] == prefix and len(p) > len(prefix)})
        where = " ".join(prefix)
        if len(tokens) == len(prefix):
            raise InvalidInput(
                _("/{group} needs a subcommand: {subs}. Type /mona help {group} for details.", group=where, subs=", ".join(subs))
            )
        typed = tokens[len(prefix)].lower()
        close = process.extractOne(typed, subs, score_cutoff=60)
        hint = " " + _("Did you mean /{group} {sub}?", group=where, sub=close[0]) if close else ""
        raise InvalidInput(
            _("Unknown subcommand /{group} {sub}. Subcommands: {subs}.", group=where, sub=tokens[len(prefix)], subs=", ".join(subs)) + hint
        )


registry = Registry()


def error_reply(message: str) -> Reply:
    return Reply(text=message, ephemeral=True, error=True)


class Dispatcher:
    """``dispatch(invocation) -> Reply``: identify the member, check permission, parse, run the
    handler in one transaction, and turn every failure into a reply fit for the person."""

    def __init__(self, db: Database, settings: Settings, commands: Registry = registry, *,
                 jobs: Jobs | None = None, guard: Any = None) -> None:
        self.db = db
        self.settings = settings
        self.registry = commands
        self.jobs = jobs
        self.guard = guard

    def dispatch(self, inv: Invocation) -> Reply:
        started = time.perf_counter()
        with use_language(self.settings.lang):
            outcome, reply = self._dispatch(inv)
        log.info("%s user=%s %s %s -> %s in %.1f ms", inv.platform, inv.user_id, inv.kind,
                 self._label(inv), outcome, (time.perf_counter() - started) * 1000)
        return reply

    @staticmethod
    def _announce_notifications(uow: UnitOfWork, reply: Reply) -> Reply:
        """Say where the events this command recorded will be announced (they go out after commit,
        through the outbox, whether or not the queue is reachable right now)."""
        from core.notify import NotificationRule
        from core.outbox import recorded_types

        types = recorded_types(uow)
        if not types:
            return reply
        labels = sorted(set(uow.session.scalars(select(NotificationRule.label).where(NotificationRule.event_type.in_(types)))))
        if not labels:
            return reply
        note = _("Notification queued for {where}.", where=", ".join(labels))
        return dataclasses.replace(reply, footer=f"{reply.footer}\n{note}" if reply.footer else note)

    @staticmethod
    def _label(inv: Invocation) -> str:
        if inv.kind == "command":
            words = inv.text.split()[:2]
            return " ".join(w for w in words if not w.startswith(("-", "<", "@", '"')))
        return inv.name

    def _dispatch(self, inv: Invocation) -> tuple[str, Reply]:
        try:
            with self.db.uow() as uow:
                actor, changed = identify(uow, platform=inv.platform, external_id=inv.user_id, name=inv.user_name,
                                          admins=self.settings.admins)
                if changed:
                    uow.commit()  # a first contact is kept even if the command then fails
                ctx = Context(uow, actor, self.settings, inv, self.jobs, self.guard)
                reply = self._route(ctx)
                reply = self._announce_notifications(uow, reply)
                uow.commit()
            for fn in ctx.after_commit:
                fn()
            return "ok", reply
        except FieldError as e:
            return "field_error", Reply(text=e.message, field_errors={e.field: e.message}, error=True)
        except Ambiguous as e:
            return "ambiguous", self._choices(inv, e)
        except UserError as e:
            return type(e).__name__, error_reply(e.message)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("unhandled error ref=%s", ref)
            return f"crash ref={ref}", error_reply(_("Something went wrong on our side (ref {ref}); nothing was saved.", ref=ref))

    def _route(self, ctx: Context) -> Reply:
        inv = ctx.invocation
        if inv.kind == "command" or (inv.kind == "action" and inv.name == RERUN):
            return self.run_command(ctx, inv.text if inv.kind == "command" else inv.value)
        table = self.registry.actions if inv.kind == "action" else self.registry.submits
        spec = table.get(inv.name)
        if spec is None:
            raise InvalidInput(_("That button is no longer supported; run the command again."))
        check(ctx.actor, spec.permission, admins_configured=bool(self.settings.admins),
              platform_roles=ctx.invocation.platform_roles)
        if inv.kind == "action":
            return spec.fn(ctx, inv.value)
        return spec.fn(ctx, inv.values, inv.value)

    def run_command(self, ctx: Context, text: str) -> Reply:
        check_command_text(text)
        tokens = tokenize(text)
        spec, rest = self.registry.find(tokens)
        check(ctx.actor, spec.permission, admins_configured=bool(self.settings.admins),
              platform_roles=ctx.invocation.platform_roles)
        args = parse_args(rest, spec.flags, usage=spec.full_usage)
        n = len(args.positionals)
        if n < spec.min_args:
            raise InvalidInput(_("Something is missing. Usage: {usage}", usage=spec.full_usage))
        if spec.max_args is not None and n > spec.max_args:
            extra = " ".join(args.positionals[spec.max_args:])
            raise InvalidInput(_("Too many arguments ({extra}). Usage: {usage}", extra=extra, usage=spec.full_usage))
        return spec.fn(ctx, args)

    def _choices(self, inv: Invocation, e: Ambiguous) -> Reply:
        buttons: list[Any] = []
        for c in e.candidates[:5]:
            if inv.kind == "command":
                buttons.append(Button(c.label, RERUN, _replace_ref(inv.text, e.ref, f"#{c.id}")))
            else:
                buttons.append(Button(c.label, RERUN, f"/artist show #{c.id}"))
        more = len(e.candidates) - len(buttons)
        footer = _("and {n} more: type more of the name.", n=more) if more > 0 else None
        return Reply(text=e.message, actions=tuple(buttons), footer=footer, ephemeral=True)


def _replace_ref(text: str, ref: str, new: str) -> str:
    for candidate in (f'"{ref}"', f"“{ref}”", ref):
        if candidate in text:
            return text.replace(candidate, new, 1)
    return text
