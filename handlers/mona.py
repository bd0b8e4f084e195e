"""/mona: help, who am I, and roles."""

from __future__ import annotations

import typing
from typing import Annotated, Literal

from pydantic import PrivateAttr

from core import events
from core.app import Command, Context
from core.errors import InvalidInput
from core.i18n import _
from core.team import GRANTS, Permission, Role, identities_of, set_role
from handlers.args import ArgSpec, ChatType, MemberRef, arg
from handlers.registry import CommandSpec, registry
from handlers.reply import Field, Reply, Section

RoleName = Literal["admin", "manager", "member", "moderator", "viewer"]
assert set(typing.get_args(RoleName)) == {r.value for r in Role}, "RoleName must list core.team.Role"


def _role(raw: str, label: str) -> str:
    low = raw.strip().lower()
    if low not in typing.get_args(RoleName):
        raise InvalidInput(_("Unknown role {role}. Roles: {roles}.", role=raw, roles=", ".join(r.value for r in Role)))
    return low


def _words(raw: str, label: str) -> str:
    return raw


CommandName = Annotated[str, ChatType(_words, "COMMAND", "A command, e.g. artist move", suggest="command", many_words=True)]


@registry.command("mona help", permission=Permission.READ)
class Help(Command):
    """List every command, or explain one: /mona help artist move; /mona help events lists the events."""

    command: CommandName | None = arg("The command to explain, e.g. artist move (every command when left out)",
                                      rest=True, default=None)

    def run(self, ctx: Context) -> Reply:
        words = [w.lstrip("/").lower() for w in (self.command or "").split()]
        if words == ["events"]:
            return _events()
        if not words:
            sections = tuple(Section(title=f"/{group}", text=_listing(registry.in_group(group))) for group in registry.groups)
            return Reply(title=_("mona commands"), sections=sections,
                         footer=_("Type /mona help COMMAND for details, e.g. /mona help artist move."))
        spec: CommandSpec | None = registry.commands.get(tuple(words))
        if spec is None and len(words) == 1:
            group = registry.in_group(words[0])
            if group:
                return Reply(title=f"/{words[0]}", text=_listing(group))
        if spec is None:
            spec = registry.find(words)[0]  # raises with the closest command when there is none
        return _explained(spec)


def _events() -> Reply:
    """The event catalogue: what each event means and the fields it carries (what notification
    rules route, and what workflows will test)."""
    groups: dict[str, list[str]] = {}
    for type_ in sorted(events.CATALOGUE):
        doc, fields = events.describe(type_)
        listed = ", ".join(f"{name} ({_(description)})" for name, description in fields)
        groups.setdefault(type_.split(".")[0], []).append(f"{type_}: {_(doc)}\n    {listed}")
    return Reply(title=_("Events"), sections=tuple(Section(title=group, text="\n".join(lines)) for group, lines in groups.items()),
                 footer=_("Route one with /mona notify add EVENT #channel."))


def _listing(specs: list[CommandSpec]) -> str:
    return "\n".join(f"{s.full_usage}\n    {s.summary}" for s in specs)


def _explained(spec: CommandSpec) -> Reply:
    """One command: its usage, its full help, who may use it, and what each argument means."""
    roles = ", ".join(sorted(r.value for r in GRANTS[spec.permission]))
    sections = [Section(text=_(spec.help), fields=(Field(_("Who may use it"), roles),))]
    shown = [a for a in spec.args if a.place != "meta"]
    if shown:
        sections.append(Section(title=_("Arguments"), text="\n".join(_argument(a) for a in shown)))
    return Reply(title=spec.full_usage, sections=tuple(sections))


def _argument(a: ArgSpec) -> str:
    """``--reason TEXT — Why, kept in the stage history``."""
    typed = a.label
    if a.place == "flag" and a.metavar and a.chat.option != "boolean":
        typed += f" {a.metavar}"
    line = f"{typed} — {_(a.description)}"
    if a.choices and a.metavar != "|".join(a.choices):
        line += f" ({', '.join(a.choices)})"
    return line


@registry.command("mona whoami", permission=Permission.READ)
class WhoAmI(Command):
    """Show who mona thinks you are and what your role allows."""

    def run(self, ctx: Context) -> Reply:
        me = ctx.actor
        allowed = sorted(p.value for p, roles in GRANTS.items() if Role(me.role) in roles)
        ids = ", ".join(f"{i.platform}:{i.external_id}" for i in identities_of(ctx.uow, me))
        return Reply(title=me.display_name, sections=(Section(fields=(
            Field(_("Role"), me.role), Field(_("Identities"), ids), Field(_("Permissions"), ", ".join(allowed)))),))


@registry.command("mona role", permission=Permission.MANAGE_ROLES, sensitive=True)
class GiveRole(Command):
    """Give a team member a role: admin, manager, member, moderator or viewer."""

    member: MemberRef = arg("The team member to give a role to")
    role: Annotated[RoleName, ChatType(_role, "ROLE", "A role: admin, manager, member, moderator or viewer")] = arg(
        "The role to give them", metavar="ROLE")

    _change: str = PrivateAttr(default="")

    def run(self, ctx: Context) -> Reply:
        target = ctx.member(self.member)
        before = target.role
        new = set_role(ctx.uow, ctx.actor, target, Role(self.role))
        self._change = f"{target.display_name}: {before} -> {new.value}"
        return Reply(text=_("{name} is now {role}.", name=target.display_name, role=new.value), ephemeral=False)

    def audit_target(self) -> str:
        """Whose role changed, from what to what (the old role is known only while it runs)."""
        return self._change or super().audit_target()
