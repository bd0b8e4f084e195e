"""/mona notify, /mona jobs, /mona digest, /mona rebuild-stats and /remind: the operations side."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator

from core import announcements as notifications
from core import digest as digests
from core import notify, reminders
from core.app import Command, Context
from core.db import utcnow
from core.errors import InvalidInput, NotFound, Unavailable
from core.i18n import _, number
from core.notify import OWNER
from core.refs import ChannelRef, Mention
from core.team import Member, Permission, identities_of
from core.when import due_at, leading_time, parse_when
from handlers.args import ChatType, RecordId, Text, arg
from handlers.parser import parse_channel, parse_mention
from handlers.registry import Lookup, button, missing, registry
from handlers.render import local_datetime
from handlers.reply import Field, Reply, Section

log = logging.getLogger("mona.jobs")

NOTIFY = Permission.MANAGE_NOTIFICATIONS
READ = Permission.READ
REMIND = Permission.REMIND
MAINTENANCE = Permission.RUN_MAINTENANCE


# ---------------------------------------------------------------- typed arguments of this module


def _as_typed(raw: str, label: str) -> str:
    return raw


def _routable(value: str) -> str:
    """An event a rule may route, however the command was built (chat, a Discord option, JSON)."""
    return notify.check_event(value)


#: An event type the outbox carries (``core.outbox.EVENT_TYPES``), or ``digest``.
EventName = Annotated[str, AfterValidator(_routable),
                      ChatType(_as_typed, "EVENT", "An event, e.g. artist.stage_changed, or digest", suggest="event")]


def _route_target(raw: str, label: str) -> ChannelRef | str:
    if raw.strip().lower() == OWNER:
        return OWNER
    return _channel(raw)


def _owner_or_channel(value: ChannelRef | str) -> ChannelRef | str:
    return _route_target(value, "") if isinstance(value, str) else value


#: Where a rule sends notifications: a channel, or ``owner`` (the artist's owner, by DM).
RouteTarget = Annotated[ChannelRef | str, AfterValidator(_owner_or_channel),
                        ChatType(_route_target, "#channel|owner", "A channel, or owner for the artist's owner by DM")]

ME = ("me", "moi")


def _reminder_target(raw: str, label: str) -> Mention | ChannelRef | str:
    if raw.strip().lower() in ME:
        return "me"
    return parse_mention(raw) or _channel(raw)


def _me_or_ref(value: Mention | ChannelRef | str) -> Mention | ChannelRef | str:
    if isinstance(value, str):
        return _reminder_target(value, "")
    return value


#: Who or where a reminder goes: ``me``, a team member, or a channel.
ReminderTarget = Annotated[Mention | ChannelRef | str, AfterValidator(_me_or_ref),
                           ChatType(_reminder_target, "@member|#channel|me", "me, a team member or a channel")]


#: When: what a person writes (read in the team's timezone), or a datetime.
When = Annotated[dt.datetime | str, ChatType(_as_typed, "WHEN", "When, e.g. in 2h, tomorrow 9:00 or 2026-12-01 14:30",
                                              many_words=True)]


def _channel(raw: str) -> ChannelRef:
    ref = parse_channel(raw.strip())
    if ref is None:
        raise InvalidInput(_("{value} is not a channel; write #channel.", value=raw))
    return ref


def channel_target(ctx: Context, ref: ChannelRef) -> tuple[str, str]:
    """(target, label) of a channel named on the caller's platform: refused when it is only a name
    outside the console (a platform sends channels as links, with their id)."""
    if ref.external_id:
        return ref.external_id, ref.label
    if ctx.caller.platform != "console":
        raise InvalidInput(_("I do not know the channel {label}; pick it from the suggestions so it becomes a link.", label=ref.label))
    return ref.name or "", ref.label


def _channel_target(ctx: Context, ref: ChannelRef | str) -> tuple[str, str]:
    """``channel_target`` of a channel as typed (``#crm``, ``<#C123|crm>``) or already read."""
    return channel_target(ctx, _channel(ref) if isinstance(ref, str) else ref)


# ---------------------------------------------------------------- notification routing


@registry.command("mona notify add", permission=NOTIFY)
class AddRule(Command):
    """Send an event's notifications to a channel, or to the artist's owner by DM.

    Events: artist.created, artist.stage_changed, interaction.logged, deal.won, … and digest (the daily digest)."""

    event: EventName = arg("The event to route, e.g. artist.stage_changed, or digest for the daily digest")
    target: RouteTarget = arg("The channel to post in, or owner to write to the artist's owner by DM")

    def run(self, ctx: Context) -> Reply:
        if isinstance(self.target, ChannelRef):
            target, label = channel_target(ctx, self.target)
        else:
            target, label = OWNER, _("the artist's owner (DM)")
        rule = notify.add_rule(ctx.uow, ctx.actor, event_type=self.event, platform=ctx.caller.platform, target=target,
                               label=label)
        return Reply(text=_("Rule {id}: {event} now goes to {where}.", id=rule.id, event=rule.event_type, where=label),
                     ephemeral=False)


@registry.command("mona notify list", permission=READ)
class ListRules(Command):
    """List where each event's notifications go."""

    def run(self, ctx: Context) -> Reply:
        rows = notify.rules(ctx.uow)
        if not rows:
            return Reply(text=_("No notification rule yet. Add one: /mona notify add artist.stage_changed #crm"))
        lines = [f"{r.id}. {r.event_type} → {r.label} ({r.platform})" for r in rows]
        return Reply(title=_("Notification rules"), text="\n".join(lines),
                     actions=tuple(button(RemoveRuleButton(rule_id=r.id), _("Remove {id}", id=r.id), "danger")
                                   for r in rows[:5]))


@registry.command("mona notify remove", permission=NOTIFY)
class RemoveRule(Command):
    """Remove a notification rule."""

    rule_id: RecordId = arg("The rule's number, as /mona notify list shows it", metavar="ID")

    def run(self, ctx: Context) -> Reply:
        return Reply(text=_removed(self._remove(ctx)))

    def _remove(self, ctx: Context) -> notify.NotificationRule:
        try:
            return notify.remove_rule(ctx.uow, ctx.actor, self.rule_id)
        except NotFound:
            raise NotFound(_("No notification rule has the id {id}; see /mona notify list.", id=self.rule_id)) from None


@registry.action("notify.remove", permission=NOTIFY)
class RemoveRuleButton(RemoveRule):
    """Remove the rule from the list's buttons."""

    def run(self, ctx: Context) -> Reply:
        return Reply(text=_removed(self._remove(ctx)), replace_original=True)


def _removed(rule: notify.NotificationRule) -> str:
    return _("Removed rule {id} ({event} → {where}).", id=rule.id, event=rule.event_type, where=rule.label)


# ---------------------------------------------------------------- deliveries and long jobs


@registry.command("mona jobs", permission=READ)
class ShowJobs(Command):
    """Deliveries queued, running and failed, the queues, recent long jobs, and the last failures with a retry button."""

    def run(self, ctx: Context) -> Reply:
        counts = notify.counts(ctx.uow)
        jobs = ctx.services.jobs
        sizes = jobs.sizes() if jobs else None
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
            actions += [button(RetryDeliveryButton(delivery_id=d.id), _("Retry {id}", id=d.id), "primary") for d in failures]
        runs = notify.recent_runs(ctx.uow)
        if runs:
            lines = [f"{r.id}. {r.kind} · {r.status} · {number(r.done)}/{number(r.total or 0)}" + (f" · {r.error}" if r.error else "")
                     for r in runs]
            sections.append(Section(title=_("Long jobs"), text="\n".join(lines)))
            actions += [button(RetryJob(run_id=r.id), _("Retry job {id}", id=r.id)) for r in runs if r.status == "failed"]
        return Reply(title=_("Jobs"), sections=tuple(sections), actions=tuple(actions[:10]),
                     replace_original=ctx.caller.via == "action")


@registry.command("mona jobs retry", permission=NOTIFY)
class RetryDelivery(Command):
    """Try a failed delivery again."""

    delivery_id: RecordId = arg("The delivery's number, as /mona jobs shows it", metavar="ID")

    def run(self, ctx: Context) -> Reply:
        d = notify.retry_dead(ctx.uow, ctx.actor, self.delivery_id)
        return Reply(text=_("Delivery {id} is queued again.", id=d.id))


@registry.action("delivery.retry", permission=NOTIFY)
class RetryDeliveryButton(RetryDelivery):
    """Try the failed delivery again from /mona jobs."""


@registry.command("mona rebuild-stats", permission=MAINTENANCE)
class RebuildStats(Command):
    """Recompute the pipeline statistics from the whole stage history (a long job; progress is shown here)."""

    def run(self, ctx: Context) -> Reply:
        run = notify.create_run(ctx.uow, ctx.actor, kind="rebuild_stats", platform=ctx.caller.platform,
                                channel_id=ctx.caller.channel_id)
        start_after_commit(ctx, run.id)
        return Reply(text=_("Job {id} is queued; its progress will show in this channel.", id=run.id), ephemeral=False)


@registry.action("jobrun.retry", permission=MAINTENANCE)
class RetryJob(Command):
    """Run a failed long job again."""

    run_id: RecordId = arg("The job's number")

    def run(self, ctx: Context) -> Reply:
        run = notify.retry_run(ctx.uow, self.run_id)
        start_after_commit(ctx, run.id)
        return Reply(text=_("Job {id} is queued again.", id=run.id), ephemeral=False)


def start_after_commit(ctx: Context, run_id: int) -> None:
    """Hand the committed run to the queue. The run is saved as queued whatever the queue does:
    when the queue cannot take it now, the person is told so, and the ticker's sweep
    (``jobs.longjobs.sweep_runs_once``) hands it over once the queue is back."""
    jobs = ctx.services.jobs
    if jobs is None:
        raise Unavailable(_("Jobs are not available in this process."))

    def start() -> str | None:
        try:
            jobs.start(run_id)
        except Exception as e:
            log.warning("job run %s is queued in the database; the queue could not take it now: %s", run_id, e)
            return _("The queue is unreachable right now: job {id} is saved and will start as soon as it is back.",
                     id=run_id)
        return None

    ctx.defer(start)


# ---------------------------------------------------------------- the digest


@registry.command("mona digest", permission=READ)
class PreviewDigest(Command):
    """Show today's digest now (it is also posted daily at MONA_DIGEST_HOUR to the channels routed for "digest")."""

    def run(self, ctx: Context) -> Reply:
        day = utcnow().astimezone(ZoneInfo(ctx.settings.timezone)).date()
        m = notifications.digest(digests.daily(ctx.uow, day, stuck_days=ctx.settings.stuck_days,
                                                         tz=ctx.settings.timezone))
        return Reply(title=m.title, sections=(Section(text=m.text),))


# ---------------------------------------------------------------- reminders


@registry.command("remind", permission=REMIND)
class Remind(Command):
    """Post a reminder later: WHEN is like in 2h, tomorrow 9:00, friday 10:00 or 2026-12-01 14:30 (team's timezone)."""

    target: ReminderTarget = arg("Who or where to remind: me, a team member, or a channel")
    when: When = arg("When, e.g. in 2h, tomorrow 9:00, friday 10:00 or 2026-12-01 14:30 (the team's timezone)", rest=True)
    text: Text = arg("What to remind about", rest=True)

    @classmethod
    def chat_split(cls, words: list[str], lookup: Lookup) -> dict[str, str]:
        """``me tomorrow 9:00 call Alex``: who, then the longest lead that names a time, then the text."""
        if len(words) < 3:
            raise missing(cls)
        rest = words[1:]
        n = leading_time(rest[:-1])
        if n == 0:
            if parse_when(" ".join(rest), tz="UTC", now=utcnow()) is not None:
                raise InvalidInput(_("Say what to remind about after the time, e.g. /remind me in 2h call Alex."))
            raise InvalidInput(_("I cannot read a time at the start of \"{text}\". Try in 2h, tomorrow 9:00 or 2026-12-01 14:30.",
                                 text=" ".join(rest[:4])))
        return {"target": words[0], "when": " ".join(rest[:n]), "text": " ".join(rest[n:])}

    def run(self, ctx: Context) -> Reply:
        target, label = self._where(ctx)
        tz = ctx.settings.timezone
        due = due_at(self.when, tz=tz, now=utcnow())
        r = reminders.schedule(ctx.uow, ctx.actor, platform=ctx.caller.platform, target=target, label=label,
                               due_at=due, text=self.text)
        return Reply(text=_("I will remind {who} on {when} ({tz}): {text}", who=label, when=local_datetime(due, tz), tz=tz,
                            text=r.text),
                     actions=(button(CancelReminderButton(reminder_id=r.id), _("Cancel")),))

    def _where(self, ctx: Context) -> tuple[str, str]:
        if isinstance(self.target, Mention):
            member = ctx.member(self.target)
            return _dm(ctx, member), f"@{member.display_name}"
        if isinstance(self.target, ChannelRef):
            return channel_target(ctx, self.target)
        return _dm(ctx, ctx.actor), _("you")


def _dm(ctx: Context, member: Member) -> str:
    platform = ctx.caller.platform
    ids = [i for i in identities_of(ctx.uow, member) if i.platform == platform]
    if not ids:
        raise InvalidInput(_("{name} has no {platform} account mona knows of.", name=member.display_name, platform=platform))
    return f"user:{ids[0].external_id}"


@registry.command("remind list", permission=REMIND)
class ListReminders(Command):
    """Your reminders still to come."""

    def run(self, ctx: Context) -> Reply:
        rows = reminders.upcoming(ctx.uow, ctx.actor)
        if not rows:
            return Reply(text=_("You have no reminder to come."))
        tz = ctx.settings.timezone
        return Reply(title=_("Your reminders"),
                     text="\n".join(f"{r.id}. {local_datetime(r.due_at, tz)} → {r.label}: {r.text}" for r in rows))


@registry.command("remind cancel", permission=REMIND)
class CancelReminder(Command):
    """Cancel one of your reminders."""

    reminder_id: RecordId = arg("The reminder's number, as /remind list shows it", metavar="ID")

    def run(self, ctx: Context) -> Reply:
        r = reminders.cancel(ctx.uow, ctx.actor, self.reminder_id)
        return Reply(text=_("Cancelled reminder {id}.", id=r.id), replace_original=ctx.caller.via == "action")


@registry.action("remind.cancel", permission=REMIND)
class CancelReminderButton(CancelReminder):
    """Cancel the reminder from its Cancel button."""
