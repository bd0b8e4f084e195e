"""/mona: help, who am I, and roles."""

from __future__ import annotations

from core.i18n import _
from core.team import GRANTS, Permission, Role, identities_of, set_role
from handlers.parser import Args
from handlers.registry import CommandSpec, Context, registry
from handlers.reply import Field, Reply, Section


@registry.command("mona help", permission=Permission.READ, args=(0, 3), usage="[COMMAND]")
def help_(ctx: Context, args: Args) -> Reply:
    """List every command, or explain one: /mona help artist move."""
    words = [w.lstrip("/").lower() for w in args.positionals]
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
    roles = ", ".join(sorted(r.value for r in GRANTS[spec.permission]))
    return Reply(title=spec.full_usage, sections=(Section(text=_(spec.help), fields=(Field(_("Who may use it"), roles),)),))


def _listing(specs: list[CommandSpec]) -> str:
    return "\n".join(f"{s.full_usage}\n    {s.summary}" for s in specs)


@registry.command("mona whoami", permission=Permission.READ)
def whoami(ctx: Context, args: Args) -> Reply:
    """Show who mona thinks you are and what your role allows."""
    me = ctx.actor
    allowed = sorted(p.value for p, roles in GRANTS.items() if Role(me.role) in roles)
    ids = ", ".join(f"{i.platform}:{i.external_id}" for i in identities_of(ctx.uow, me))
    return Reply(title=me.display_name, sections=(Section(fields=(
        Field(_("Role"), me.role), Field(_("Identities"), ids), Field(_("Permissions"), ", ".join(allowed)))),))


@registry.command("mona role", permission=Permission.MANAGE_ROLES, args=(2, 2), usage="@member ROLE")
def role(ctx: Context, args: Args) -> Reply:
    """Give a team member a role: admin, manager, member, moderator or viewer."""
    target = ctx.member(args.positionals[0])
    new = set_role(ctx.uow, ctx.actor, target, args.positionals[1])
    return Reply(text=_("{name} is now {role}.", name=target.display_name, role=new.value), ephemeral=False)
