"""/mona notify, /mona jobs, /mona digest, /mona rebuild-stats and /remind: the operations side."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from core import digest as digests
from core import notify, reminders
from core.db import utcnow
from core.errors import InvalidInput
from core.i18n import _, number
from core.notify import OWNER, JobRun
from core.team import Member, Permission
from core.when import split_when
from handlers import notifications
from handlers.parser import Args, parse_channel, parse_mention
from handlers.registry import Context, registry
from handlers.render import local_datetime
from handlers.reply import Button, Field, Reply, Section

NOTIFY = Permission.MANAGE_NOTIFICATIONS


def _channel_target(ctx: Context, token: str) -> tuple[str, str]:
    """(target, label) of a channel typed on this platform; refused if it is not a channel."""
    ref = parse_channel(token)
    if ref is None:
        raise InvalidInput(_("{value} is not a channel; write #channel.", value=token))
    if ref.external_id:
        return ref.external_id, ref.label
    if ctx.invocation.platform != "console":
        raise InvalidInput(_("I do not know the channel {label}; pick it from the suggestions so it becomes a link.", label=ref.label))
    return ref.name or "", ref.label


@registry.command("mona notify add", permission=NOTIFY, args=(2, 2), usage="EVENT #channel|owner")
def notify_add(ctx: Context, args: Args) -> Reply:
    """Send an event's notifications to a channel, or to the artist's owner by DM.

    Events: artist.created, artist.stage_changed, interaction.logged, deal.won, … and digest (the daily digest)."""
    event, where = args.positionals
    if where.lower() == OWNER:
        target, label = OWNER, _("the artist's owner (DM)")
    else:
        target, label = _channel_target(ctx, where)
    rule = notify.add_rule(ctx.uow, ctx.actor, event_type=event, platform=ctx.invocation.platform, target=target, label=label)
    return Reply(text=_("Rule {id}: {event} now goes to {where}.", id=rule.id, event=rule.event_type, where=label),
                 ephemeral=False)


@registry.command("mona notify list", permission=Permission.READ)
def notify_list(ctx: Context, args: Args) -> Reply:
    """List where each event's notifications go."""
    rows = notify.rules(ctx.uow)
    if not rows:
        return Reply(text=_("No notification rule yet. Add one: /mona notify add artist.stage_changed #crm"))
    lines = [f"{r.id}. {r.event_type} → {r.label} ({r.platform})" for r in rows]
    return Reply(title=_("Notification rules"), text="\n".join(lines),
                 actions=tuple(Button(_("Remove {id}", id=r.id), "notify.remove", str(r.id), "danger") for r in rows[:5]))


@registry.command("mona notify remove", permission=NOTIFY, args=(1, 1), usage="ID")
def notify_remove(ctx: Context, args: Args) -> Reply:
    """Remove a notification rule."""
    rule = notify.remove_rule(ctx.uow, ctx.actor, args.positionals[0])
    return Reply(text=_("Removed rule {id} ({event} → {where}).", id=rule.id, event=rule.event_type, where=rule.label))


@registry.action("notify.remove", permission=NOTIFY)
def notify_remove_button(ctx: Context, value: str) -> Reply:
    rule = notify.remove_rule(ctx.uow, ctx.actor, value)
    return Reply(text=_("Removed rule {id} ({event} → {where}).", id=rule.id, event=rule.event_type, where=rule.label),
                 replace_original=True)


@registry.command("mona jobs", permission=Permission.READ, args=(0, 0))
def jobs(ctx: Context, args: Args) -> Reply:
    """Deliveries queued, running and failed, the queues, recent long jobs, and the last failures with a retry button."""
    counts = notify.counts(ctx.uow)
    sizes = ctx.jobs.sizes() if ctx.jobs else None
    fields = [
        Field(_("Queued"), number(counts.get("pending", 0))),
        Field(_("Running"), number(counts.get("in_flight", 0))),
        Field(_("Failed"), number(counts.get("dead", 0))),
        Field(_("Delivered"), number(counts.get("sent", 0))),
        Field(_("Queues"), ", ".join(f"{k}: {v}" for k, v in sizes.items()) if sizes is not None else _("Redis unreachable")),
    ]
    sections = [Section(fields=tuple(fields))]
    failures = notify.last_failures(ctx.uow)
    actions: list[Any] = []
    if failures:
        tz = ctx.settings.timezone
        lines = [f"{d.id}. {d.platform} {d.target} · {local_datetime(d.created_at, tz)} · {d.last_error}" for d in failures]
        sections.append(Section(title=_("Last failures"), text="\n".join(lines)))
        actions += [Button(_("Retry {id}", id=d.id), "delivery.retry", str(d.id), "primary") for d in failures]
    runs = list(ctx.uow.session.query(JobRun).order_by(JobRun.id.desc()).limit(5))
    if runs:
        lines = [f"{r.id}. {r.kind} · {r.status} · {number(r.done)}/{number(r.total or 0)}" + (f" · {r.error}" if r.error else "")
                 for r in runs]
        sections.append(Section(title=_("Long jobs"), text="\n".join(lines)))
        actions += [Button(_("Retry job {id}", id=r.id), "jobrun.retry", str(r.id)) for r in runs if r.status == "failed"]
    return Reply(title=_("Jobs"), sections=tuple(sections), actions=tuple(actions[:10]),
                 replace_original=ctx.invocation.kind == "action")


@registry.command("mona jobs retry", permission=NOTIFY, args=(1, 1), usage="ID")
def jobs_retry(ctx: Context, args: Args) -> Reply:
    """Try a failed delivery again."""
    return _retry(ctx, args.positionals[0])


@registry.action("delivery.retry", permission=NOTIFY)
def retry_button(ctx: Context, value: str) -> Reply:
    return _retry(ctx, value)


def _retry(ctx: Context, ref: str) -> Reply:
    if not ref.lstrip("#").isdigit():
        raise InvalidInput(_("{ref} is not a delivery id; see /mona jobs.", ref=ref))
    d = notify.retry_dead(ctx.uow, ctx.actor, int(ref.lstrip("#")))
    return Reply(text=_("Delivery {id} is queued again.", id=d.id))


@registry.command("mona digest", permission=Permission.READ, args=(0, 0))
def digest_preview(ctx: Context, args: Args) -> Reply:
    """Show today's digest now (it is also posted daily at MONA_DIGEST_HOUR to the channels routed for "digest")."""
    day = utcnow().astimezone(ZoneInfo(ctx.settings.timezone)).date()
    m = notifications.digest(digests.daily(ctx.uow, day, stuck_days=ctx.settings.stuck_days))
    return Reply(title=m.title, sections=(Section(text=m.text),))


@registry.command("mona rebuild-stats", permission=Permission.RUN_MAINTENANCE, args=(0, 0))
def rebuild_stats(ctx: Context, args: Args) -> Reply:
    """Recompute the pipeline statistics from the whole stage history (a long job; progress is shown here)."""
    from jobs.longjobs import create_run

    if ctx.jobs is None:
        raise InvalidInput(_("Jobs are not available in this process."))
    run = create_run(ctx.uow, ctx.actor, kind="rebuild_stats", platform=ctx.invocation.platform,
                     channel_id=ctx.invocation.channel_id)
    jobs_ = ctx.jobs
    ctx.defer(lambda: jobs_.start(run.id))
    return Reply(text=_("Started job {id}; its progress will show in this channel.", id=run.id), ephemeral=False)


@registry.action("jobrun.retry", permission=Permission.RUN_MAINTENANCE)
def jobrun_retry(ctx: Context, value: str) -> Reply:
    run = ctx.uow.session.get(JobRun, int(value)) if value.isdigit() else None
    if run is None or run.status != "failed":
        raise InvalidInput(_("Job {id} has not failed; nothing to retry.", id=value))
    if ctx.jobs is None:
        raise InvalidInput(_("Jobs are not available in this process."))
    run.status, run.error, run.progress_ref = "queued", None, None
    jobs_ = ctx.jobs
    ctx.defer(lambda: jobs_.start(run.id))
    return Reply(text=_("Job {id} started again.", id=run.id), ephemeral=False)


def _reminder_target(ctx: Context, token: str) -> tuple[str, str]:
    if token.lower() in ("me", "moi"):
        return _dm(ctx, ctx.actor), _("you")
    mention = parse_mention(token)
    if mention is not None:
        member = ctx.member(mention)
        return _dm(ctx, member), f"@{member.display_name}"
    return _channel_target(ctx, token)


def _dm(ctx: Context, member: Member) -> str:
    from core.team import identities_of

    platform = ctx.invocation.platform
    ids = [i for i in identities_of(ctx.uow, member) if i.platform == platform]
    if not ids:
        raise InvalidInput(_("{name} has no {platform} account mona knows of.", name=member.display_name, platform=platform))
    return f"user:{ids[0].external_id}"


@registry.command("remind", permission=Permission.REMIND, args=(3, None), usage="@member|#channel|me WHEN TEXT")
def remind(ctx: Context, args: Args) -> Reply:
    """Post a reminder later: WHEN is like in 2h, tomorrow 9:00, friday 10:00 or 2026-12-01 14:30 (team's timezone)."""
    target, label = _reminder_target(ctx, args.positionals[0])
    now = utcnow()
    due, rest = split_when(args.positionals[1:], tz=ctx.settings.timezone, now=now)
    r = reminders.schedule(ctx.uow, ctx.actor, platform=ctx.invocation.platform, target=target, label=label, due_at=due,
                           text=" ".join(rest))
    when = local_datetime(due, ctx.settings.timezone)
    return Reply(text=_("I will remind {who} on {when} ({tz}): {text}", who=label, when=when, tz=ctx.settings.timezone, text=r.text),
                 actions=(Button(_("Cancel"), "remind.cancel", str(r.id)),))


@registry.command("remind list", permission=Permission.REMIND)
def remind_list(ctx: Context, args: Args) -> Reply:
    """Your reminders still to come."""
    rows = reminders.upcoming(ctx.uow, ctx.actor)
    if not rows:
        return Reply(text=_("You have no reminder to come."))
    tz = ctx.settings.timezone
    return Reply(title=_("Your reminders"), text="\n".join(f"{r.id}. {local_datetime(r.due_at, tz)} → {r.label}: {r.text}" for r in rows))


@registry.command("remind cancel", permission=Permission.REMIND, args=(1, 1), usage="ID")
def remind_cancel(ctx: Context, args: Args) -> Reply:
    """Cancel one of your reminders."""
    ref = args.positionals[0].lstrip("#")
    if not ref.isdigit():
        raise InvalidInput(_("{ref} is not a reminder id; see /remind list.", ref=args.positionals[0]))
    r = reminders.cancel(ctx.uow, ctx.actor, int(ref))
    return Reply(text=_("Cancelled reminder {id}.", id=r.id))


@registry.action("remind.cancel", permission=Permission.REMIND)
def remind_cancel_button(ctx: Context, value: str) -> Reply:
    r = reminders.cancel(ctx.uow, ctx.actor, int(value))
    return Reply(text=_("Cancelled reminder {id}.", id=r.id), replace_original=True)

