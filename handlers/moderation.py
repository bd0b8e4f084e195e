"""/mod commands: rules, manual actions, the case log, stream mode and the mod-log.

Every /mod command acts on one chat community: the Discord server or Twitch chat it is typed in,
or, from the console or Slack, the one ``--in PLATFORM:ID`` names (``InCommunity``). Manual
actions are carried out on the platform by a job after commit (``core.effects``), wherever the
command was typed, and the reply says whether the platform went along. The ``Guard`` that checks
chat messages lives in ``handlers.guard``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from pydantic import Field as Constraint
from pydantic import PrivateAttr, field_validator
from sqlalchemy import func, or_, select

from core import effects
from core.app import Command, Context
from core.db import utcnow
from core.effects import PLATFORM_NAMES, EffectKind
from core.errors import InvalidInput
from core.i18n import _
from core.moderation import service as mod
from core.moderation.engine import format_duration, parse_duration
from core.moderation.store import Community, ModerationCase
from core.refs import Mention
from core.team import Permission
from handlers.args import ChannelArg, ChatType, RecordId, Seconds, Text, arg, opt
from handlers.guard import UNDO, modlog_posts, rule_label
from handlers.parser import parse_channel, parse_mention, tokenize
from handlers.registry import Lookup, button, missing, registry
from handlers.render import local_datetime
from handlers.reply import Field, Reply, Section

MOD = Permission.MODERATE
#: Where a community lives, and so where ``--in`` may point.
CHAT_PLATFORMS = ("discord", "twitch")


# ---------------------------------------------------------------- chat types of /mod


@dataclass(frozen=True)
class CommunityRef:
    """A chat community named from outside it: ``discord:SERVER_ID`` or ``twitch:CHANNEL_ID``."""

    platform: Literal["discord", "twitch"]
    external_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.external_id}"


def _community_ref(raw: str, label: str) -> CommunityRef:
    platform, _sep, external = raw.strip().partition(":")
    platform = platform.lower()
    if platform not in CHAT_PLATFORMS or not external:
        raise InvalidInput(_("--in takes discord:SERVER_ID or twitch:CHANNEL_ID, not {value}.", value=raw))
    return CommunityRef(cast(Literal["discord", "twitch"], platform), external)


def _person(raw: str, label: str) -> Mention:
    mention = parse_mention(raw)
    if mention is None:
        raise InvalidInput(_("{value} is not a mention; write @name.", value=raw))
    return mention


def _words(raw: str, label: str) -> tuple[str, ...]:
    return tuple(tokenize(raw))


def _domains(raw: str, label: str) -> tuple[str, ...]:
    return tuple(raw.replace(",", " ").split())


def _limit(raw: str, label: str) -> int:
    text = raw.strip().lower().rstrip("%")
    if text == "off":
        return 0
    if not text.isdecimal():
        raise InvalidInput(_("--{flag} takes a number or off, not {value}.", flag=label.lstrip("-"), value=raw))
    return int(text)


def _flood(raw: str, label: str) -> tuple[int, float]:
    text = raw.strip().lower()
    if text == "off":
        return 0, 0.0
    n, _sep, window = text.partition("/")
    try:
        if n.isdecimal() and window:
            return int(n), float(parse_duration(window))
    except ValueError:
        pass
    raise InvalidInput(_("--flood takes MESSAGES/SECONDS like 6/10s, not {value}.", value=raw))


CommunityArg = Annotated[CommunityRef, ChatType(_community_ref, "PLATFORM:ID", "discord:SERVER_ID or twitch:CHANNEL_ID")]
#: Someone in the chat, as the platform mentions them (``<@123>``) or, on the console, ``@name``.
Person = Annotated[Mention, ChatType(_person, "@user", "Someone in the chat", option="user")]
#: Words or phrases: in chat one word each unless quoted (``"free nitro" scam``).
Words = Annotated[tuple[str, ...], Constraint(min_length=1),
                  ChatType(_words, "WORD …", "Words, or phrases in quotes", many_words=True)]
Domains = Annotated[tuple[str, ...], ChatType(_domains, "DOMAINS", "Domains, e.g. youtube.com twitch.tv", many_words=True)]
#: A limit (0 or ``off`` switches the rule off).
Limit = Annotated[int, Constraint(ge=0), ChatType(_limit, "N|off", "A number, or off")]
Percent = Annotated[int, Constraint(ge=0, le=99), ChatType(_limit, "PCT|off", "A percentage, or off")]
#: (messages, seconds); (0, 0) switches the rule off.
Flood = Annotated[tuple[int, float], ChatType(_flood, "N/SECONDS|off", "Messages per time, like 6/10s, or off")]
OnOff = Literal["on", "off"]


def _twitch_channel(raw: str, label: str) -> str:
    text = raw.strip().removeprefix("twitch:")
    if not text.isdecimal():
        raise InvalidInput(_("{label} takes the Twitch channel's numeric id (TWITCH_CHANNEL_ID), not {value}.",
                             label=label, value=raw))
    return text


def _discord_channels(raw: str, label: str) -> tuple[str, ...]:
    found = []
    for token in raw.replace(",", " ").split():
        ref = parse_channel(token)
        if ref is None or ref.external_id is None:
            raise InvalidInput(_("{value} is not a Discord channel; pick them with #, like #chat.", value=token))
        found.append(ref.external_id)
    if not found:
        raise InvalidInput(_("Give the channels to slow down, like #chat."))
    return tuple(dict.fromkeys(found))


TwitchChannel = Annotated[str, ChatType(_twitch_channel, "CHANNEL_ID", "A Twitch channel's numeric id")]
DiscordChannels = Annotated[tuple[str, ...], ChatType(_discord_channels, "#CHANNEL …", "Discord channels, like #chat",
                                                      many_words=True)]


# ---------------------------------------------------------------- the community acted on


class InCommunity(Command):
    """A /mod command: it acts on the community it is typed in, or on the one ``--in`` names."""

    in_: CommunityArg | None = opt("The community, when not typed in one: discord:SERVER_ID or twitch:CHANNEL_ID",
                                   metavar="PLATFORM:ID", platforms=("console", "slack"))
    #: The community it acted on, for the audit entry (``--in`` is not given inside one).
    _acted_on: str = PrivateAttr(default="")

    def named(self, ctx: Context) -> tuple[str, str] | None:
        """(platform, id) of the community meant, or None when none is (console or Slack without --in)."""
        if self.in_ is not None:
            return self.in_.platform, self.in_.external_id
        return _typed_in(ctx)

    def community(self, ctx: Context, *, create: bool = True) -> Community:
        where = self.named(ctx)
        if where is None:
            raise InvalidInput(_("Use /mod in a Discord server or a Twitch chat, or name one with --in discord:SERVER_ID."))
        c = mod.community(ctx.uow, *where, create=create)
        self._acted_on = c.label
        return c

    def audit_target(self) -> str:
        return f"{self._acted_on} {super().audit_target()}".strip()


def _typed_in(ctx: Context) -> tuple[str, str] | None:
    """(platform, id) of the chat community the caller acts in, if any."""
    if ctx.caller.community and ctx.caller.platform in CHAT_PLATFORMS:
        return ctx.caller.platform, ctx.caller.community
    return None


def _changed(ctx: Context, c: Community) -> None:
    """Tell the chat guards to reload the community's rules once this is committed."""
    rules, platform, external = ctx.services.rules, c.platform, c.external_id
    if rules is not None:
        def reload() -> None:
            rules.invalidate(platform, external)
        ctx.defer(reload)


def _target(ctx: Context, who: Mention, c: Community | None = None) -> tuple[str, str]:
    """(platform user id, name) of the person a moderator named; refuses moderators.

    Typed in the community itself, a bare @name is refused outside the console (the platform
    links a real mention). Typed elsewhere (Slack, the console, for ``--in twitch:…``), a mention
    of that other platform's account means nothing there: name them as the community's platform
    knows them, a Twitch @login or a Discord user id."""
    elsewhere = c is not None and c.platform != ctx.caller.platform
    if elsewhere and c is not None:
        if who.external_id is not None and ctx.caller.platform != "console":
            raise InvalidInput(_("That mention is a {here} account; name them as {there} knows them: {how}.",
                                 here=ctx.caller.platform, there=PLATFORM_NAMES.get(c.platform, c.platform),
                                 how=_("their @login") if c.platform == "twitch" else _("their user id, like @123456789012345678")))
        user_id = who.external_id or who.name or ""
        if c.platform == "discord" and not user_id.isdecimal():
            raise InvalidInput(_("Name the Discord member by their user id, like @123456789012345678."))
        return user_id, who.name or user_id
    if who.external_id is None and ctx.caller.platform != "console":
        raise InvalidInput(_("I do not know @{name} here; mention them so that the platform links their account.",
                             name=who.name))
    user_id = who.external_id or who.name or ""
    if user_id in ctx.caller.protected_ids:
        raise InvalidInput(_("{who} moderates this community; mona does not act on moderators or the broadcaster.",
                             who=str(who)))
    return user_id, who.name or user_id


def carry_out(ctx: Context, c: Community, case: ModerationCase, kind: EffectKind, *, notice: str | None = None,
              reason: str | None = None, duration_s: int | None = None) -> None:
    """Have the case's action carried out on the community's platform once committed, whatever
    the command came through; the reply's footer says done, refused or queued, and the notice
    and the mod-log post go out only as far as the platform went along."""
    typed_there = ctx.caller.platform == c.platform
    posts = modlog_posts(c, case)
    modlog = (posts[0].channel_id, posts[0].title, posts[0].text, posts[0].undo_action_id) if posts else None
    effect = effects.request(
        ctx.uow, platform=c.platform, community=c.external_id, kind=kind, user_id=case.user_id, user_name=case.user_name,
        channel_id=ctx.caller.channel_id if typed_there else (c.external_id if c.platform == "twitch" else None),
        duration_s=duration_s if duration_s is not None else case.duration_s,
        reason=reason if reason is not None else mod.case_reason(case), notice=notice,
        case_id=case.id, modlog=modlog)
    ctx.defer(effects.after_commit(ctx.services.effects, effect))


# ---------------------------------------------------------------- rules


class WordList(InCommunity):
    """A command on banned words: each word typed (a quoted phrase is one) counts on its own."""

    @classmethod
    def chat_split(cls, words: list[str], lookup: Lookup) -> dict[str, Any]:
        if not words:
            raise missing(cls)
        return {"words": words}


@registry.command("mod words add", permission=MOD, sensitive=True)
class AddWords(WordList):
    """Ban words or phrases (matched whatever the case, accents, look-alike letters or spacing)."""

    words: Words = arg("The words to ban; put a phrase in quotes", rest=True)

    def run(self, ctx: Context) -> Reply:
        c = self.community(ctx)
        added, already = mod.add_words(ctx.uow, ctx.actor, c, list(self.words))
        _changed(ctx, c)
        text = _("Banned: {words}.", words=", ".join(added)) if added else _("Nothing new.")
        if already:
            text += " " + _("Already banned: {words}.", words=", ".join(already))
        return Reply(text=text)


@registry.command("mod words remove", permission=MOD, sensitive=True)
class RemoveWords(WordList):
    """Unban words."""

    words: Words = arg("The banned words to allow again", rest=True)

    def run(self, ctx: Context) -> Reply:
        c = self.community(ctx)
        removed, not_banned = mod.remove_words(ctx.uow, ctx.actor, c, list(self.words))
        _changed(ctx, c)
        text = _("Unbanned: {words}.", words=", ".join(removed)) if removed else _("None of those words was banned.")
        if removed and not_banned:
            text += " " + _("Not banned: {words}.", words=", ".join(not_banned))
        return Reply(text=text)


@registry.command("mod words list", permission=MOD)
class ListWords(InCommunity):
    """The banned words and patterns."""

    def run(self, ctx: Context) -> Reply:
        rules = mod.rules_of(self.community(ctx))
        words = sorted(rules.words.words)
        patterns = [f"{i}. {p}" for i, p in enumerate(rules.patterns.patterns, 1)]
        return Reply(title=_("Banned words ({n})", n=len(words)), sections=(
            Section(text=", ".join(words[:300]) or _("none")),
            Section(title=_("Patterns ({n})", n=len(patterns)), text="\n".join(patterns) or _("none"))))


@registry.command("mod patterns add", permission=MOD, sensitive=True)
class AddPattern(InCommunity):
    """Ban a regular expression (checked on folded text: lower case, no accents)."""

    pattern: Text = arg("The regular expression to ban, e.g. free\\s*nitro", rest=True, metavar="REGEX")

    def run(self, ctx: Context) -> Reply:
        c = self.community(ctx)
        pattern = mod.add_pattern(ctx.uow, ctx.actor, c, self.pattern)
        _changed(ctx, c)
        return Reply(text=_("Banned pattern: {pattern}", pattern=pattern))


@registry.command("mod patterns remove", permission=MOD, sensitive=True)
class RemovePattern(InCommunity):
    """Remove a banned pattern by its number in /mod words list."""

    number: RecordId = arg("The pattern's number in /mod words list", metavar="NUMBER")

    def run(self, ctx: Context) -> Reply:
        c = self.community(ctx)
        gone = mod.remove_pattern(ctx.uow, ctx.actor, c, self.number)
        _changed(ctx, c)
        return Reply(text=_("Removed pattern: {pattern}", pattern=gone))


@registry.command("mod links", permission=MOD, sensitive=True)
class SetLinks(InCommunity):
    """Links: block them all, allow only some domains (and their subdomains), or stop checking."""

    mode: mod.LinkMode = arg("block every link, allow only some domains, or off to stop checking")
    domains: Domains = arg("With allow: the domains people may link to, e.g. youtube.com", rest=True, default=())

    def run(self, ctx: Context) -> Reply:
        c = self.community(ctx)
        rules = mod.set_links(ctx.uow, ctx.actor, c, self.mode, list(self.domains))
        _changed(ctx, c)
        allowed = ", ".join(sorted(rules.links.allowed_domains)) or _("none")
        return Reply(text=_("Links: {policy}. Allowed domains: {allowed}.", policy=rules.links.policy.value,
                            allowed=allowed))


@registry.command("mod limits", permission=MOD, sensitive=True)
class SetLimits(InCommunity):
    """Set the limits: capitals (percent), flood (messages per seconds), repeated messages, mentions."""

    caps: Percent | None = opt("Most capitals a message may have, in percent, or off")
    flood: Flood | None = opt("Most messages one person may send in a time, like 6/10s, or off")
    repeat: Limit | None = opt("How many copies of one message trip the repeat rule, or off")
    mentions: Limit | None = opt("Most mentions in one message, or off")

    def run(self, ctx: Context) -> Reply:
        c = self.community(ctx)
        changes = mod.Limits(caps_pct=self.caps, flood=self.flood, repeat=self.repeat, mentions=self.mentions)
        if any(v is not None for v in vars(changes).values()):
            rules = mod.set_limits(ctx.uow, ctx.actor, c, changes)
            _changed(ctx, c)
        else:
            rules = mod.rules_of(c)

        def state(enabled: bool, text: str) -> str:
            return text if enabled else _("off")

        return Reply(title=_("Limits"), sections=(Section(fields=(
            Field(_("Capitals"), state(rules.caps.enabled, f"> {round(rules.caps.max_ratio * 100)}%")),
            Field(_("Flood"), state(rules.flood.enabled, f"> {rules.flood.max_messages} / {format_duration(rules.flood.window_s)}")),
            Field(_("Repeats"), state(rules.repeat.enabled, f"{rules.repeat.times}× / {format_duration(rules.repeat.window_s)}")),
            Field(_("Mentions"), state(rules.mentions.enabled, f"> {rules.mentions.max_mentions}")),
            Field(_("Stream mode"), _("on") if rules.stream_mode else _("off")))),))


@registry.command("mod stream", permission=MOD, sensitive=True)
class SetStream(InCommunity):
    """Stream mode: stricter limits while the stream is live."""

    state: OnOff = arg("on while the stream is live, off after it")

    def run(self, ctx: Context) -> Reply:
        c = self.community(ctx)
        mod.set_stream(ctx.uow, ctx.actor, c, self.state == "on")
        _changed(ctx, c)
        return Reply(text=_("Stream mode is on: stricter limits until /mod stream off.") if self.state == "on"
                     else _("Stream mode is off."), ephemeral=False)


@registry.command("mod modlog", permission=MOD, sensitive=True)
class SetModlog(InCommunity):
    """Where cases are posted: all of them, automatic or manual ones, or one rule's; with --twitch, a
    Twitch channel's cases, in a channel of this Discord server."""

    channel: ChannelArg = arg("The channel the cases are posted in")
    kind: mod.ModlogKind = arg("Which cases: default (all), auto, manual, or one rule's, e.g. banned_word",
                               default="default", metavar="default|auto|manual|RULE")
    twitch: TwitchChannel | None = opt("Post this Twitch channel's cases here instead: its broadcaster's user id "
                                       "(TWITCH_CHANNEL_ID)", metavar="CHANNEL_ID")

    def run(self, ctx: Context) -> Reply:
        c = self.community(ctx)
        if self.twitch is None:
            mod.set_modlog(ctx.uow, ctx.actor, c, self.channel.external_id or self.channel.name or "", self.kind)
            return Reply(text=_("{kind} cases now go to {channel}.", kind=self.kind, channel=self.channel.label))
        if c.platform != "discord" or self.channel.external_id is None:
            raise InvalidInput(_("Post a Twitch channel's cases from the Discord server they go to, naming one of "
                                 "its channels: /mod modlog #mod-log --twitch CHANNEL_ID."))
        twitch = mod.community(ctx.uow, "twitch", self.twitch)
        mod.set_modlog(ctx.uow, ctx.actor, twitch, f"discord:{self.channel.external_id}", self.kind)
        mod.link(ctx.uow, twitch, c)
        _changed(ctx, twitch)
        self._acted_on = f"{c.label} {twitch.label}"
        return Reply(text=_("Twitch channel {twitch}: {kind} cases now go to {channel}; emergency mode typed here "
                            "or there covers both.", twitch=self.twitch, kind=self.kind, channel=self.channel.label))


@registry.command("mod emergency", permission=MOD, sensitive=True)
class SetEmergency(InCommunity):
    """For a raid: Twitch chat followers-only and slow, Discord's stream channels in slow mode; the earlier
    settings come back by themselves when it ends."""

    state: OnOff = arg("on (the default) or off", default="on")
    for_: Seconds = opt("How long it lasts, e.g. 30m (the default) or 1h", default=mod.EMERGENCY_DEFAULT_S,
                        metavar="DURATION")
    channels: DiscordChannels | None = opt("The Discord channels to slow down, remembered for next time (else the "
                                           "ones remembered)")

    def run(self, ctx: Context) -> Reply:
        c = self.community(ctx)
        if self.state == "off":
            changes = mod.end_emergency(ctx.uow, c)
            _chat_changes(ctx, changes, _("end of emergency mode"))
            return Reply(text=_("Emergency mode is off: the chat settings are set back as they were."), ephemeral=False)
        now = utcnow()
        emergency = mod.start_emergency(ctx.uow, ctx.actor, c, for_s=self.for_, now=now,
                                        channels=list(self.channels) if self.channels is not None else None)
        ids = _chat_changes(ctx, emergency.changes, _("emergency mode"))
        mod.record_emergency(emergency.origin, ids)
        parts = []
        if any(ch.community.platform == "twitch" for ch in emergency.changes):
            parts.append(_("Twitch chat is followers-only and slow ({s} s)", s=mod.TWITCH_EMERGENCY["slow_mode_wait_time"]))
        slowed = [f"<#{ch.channel_id}>" for ch in emergency.changes if ch.community.platform == "discord"]
        if slowed:
            parts.append(_("slow mode ({s} s) in {channels}", s=mod.DISCORD_SLOW_S, channels=", ".join(slowed)))
        text = _("Emergency mode is on until {until}: {what}. It ends by itself; /mod emergency off ends it now.",
                 until=local_datetime(emergency.until, ctx.settings.timezone), what="; ".join(parts))
        if emergency.no_channels:
            text += " " + _("No Discord channel is slowed down in {server}: give them with --channels #chat.",
                            server=", ".join(g.label for g in emergency.no_channels))
        return Reply(text=text, ephemeral=False)


def _chat_changes(ctx: Context, changes: list[mod.ChatChange], reason: str) -> list[int]:
    """Request each change on its platform once committed; the reply's footer says how each went."""
    ids = []
    for change in changes:
        effect = effects.request(ctx.uow, platform=change.community.platform, community=change.community.external_id,
                                 kind="chat_mode", user_id="", channel_id=change.channel_id, reason=reason,
                                 payload=change.payload)
        ids.append(effect.id)
        ctx.defer(effects.after_commit(ctx.services.effects, effect))
    return ids


# ---------------------------------------------------------------- manual actions


class ManualCase(InCommunity):
    """A moderator acting on someone by hand: recorded as a case, carried out on the platform."""

    def act(self, ctx: Context, action: mod.ManualAction, who: Mention, reason: str, duration_s: int | None = None) -> Reply:
        c = self.community(ctx)
        user_id, name = _target(ctx, who, c)
        case = mod.manual_case(ctx.uow, ctx.actor, c, action=action, user_id=user_id, user_name=name,
                               duration_s=duration_s, reason=reason, channel_id=ctx.caller.channel_id)
        mention = f"@{name}"
        notice = {
            "warn": _("{who}, a moderator warns you: {reason}", who=mention, reason=case.reason),
            "timeout": _("{who} is timed out for {duration} ({reason}).", who=mention,
                         duration=format_duration(duration_s or 0), reason=case.reason),
            "ban": _("{who} is banned ({reason}).", who=mention, reason=case.reason),
        }.get(action)
        carry_out(ctx, c, case, action, notice=notice)
        text = _("Case {id}: {action} {who}.", id=case.id, action=mod.action_label(action), who=mention)
        return Reply(text=text, ephemeral=False)


@registry.command("mod warn", permission=MOD)
class Warn(ManualCase):
    """Warn someone; warnings count towards automatic timeouts for the strike window."""

    target: Person = arg("The person to warn")
    reason: Text = arg("Why: they read it, and it is kept in the case log", rest=True, metavar="REASON")

    def run(self, ctx: Context) -> Reply:
        return self.act(ctx, "warn", self.target, self.reason)


@registry.command("mod timeout", permission=MOD, sensitive=True)
class Timeout(ManualCase):
    """Time someone out (DURATION like 10m, 1h30m, 2d)."""

    target: Person = arg("The person to time out")
    duration: Seconds = arg("How long, e.g. 10m, 1h30m or 2d (at most 14 days)")
    reason: Text = arg("Why: they read it, and it is kept in the case log", rest=True, metavar="REASON")

    @field_validator("duration")
    @classmethod
    def _at_most_14_days(cls, seconds: int) -> int:
        if seconds > mod.MAX_TIMEOUT_S:
            raise InvalidInput(_("A timeout lasts at most 14 days; use /mod ban for longer."))
        return seconds

    def run(self, ctx: Context) -> Reply:
        return self.act(ctx, "timeout", self.target, self.reason, self.duration)


@registry.command("mod ban", permission=MOD, sensitive=True)
class Ban(ManualCase):
    """Ban someone."""

    target: Person = arg("The person to ban")
    reason: Text = arg("Why: they read it, and it is kept in the case log", rest=True, metavar="REASON")

    def run(self, ctx: Context) -> Reply:
        return self.act(ctx, "ban", self.target, self.reason)


@registry.command("mod unban", permission=MOD, sensitive=True)
class Unban(ManualCase):
    """Lift a ban (or a timeout)."""

    target: Person = arg("The person to let back in")
    reason: Text | None = arg("Why, for the case log", rest=True, default=None, metavar="REASON")

    def run(self, ctx: Context) -> Reply:
        return self.act(ctx, "unban", self.target, self.reason or "")


@registry.command("mod permit", permission=MOD)
class Permit(InCommunity):
    """Let someone post one link in the next 60 seconds."""

    target: Person = arg("The person who may post a link")

    def run(self, ctx: Context) -> Reply:
        c = self.community(ctx)
        user_id, name = _target(ctx, self.target)
        rules, platform, external = ctx.services.rules, c.platform, c.external_id
        if rules is not None:
            def permit() -> None:
                rules.permit(platform, external, user_id)
            ctx.defer(permit)
        return Reply(text=_("@{name} may post one link in the next 60 seconds.", name=name), ephemeral=False)



# ---------------------------------------------------------------- the case log


@registry.command("mod cases", permission=MOD)
class ListCases(InCommunity):
    """The case log, newest first: everyone's, or one person's, optionally since a time ago."""

    who: Person | None = arg("Only this person's cases", default=None)
    since: Seconds | None = opt("Only the cases of this last while, e.g. 24h")

    def run(self, ctx: Context) -> Reply:
        c = self.community(ctx)
        since = utcnow() - dt.timedelta(seconds=self.since) if self.since else None
        if self.who is None:
            rows = mod.cases(ctx.uow, c, since=since)
        else:
            found = {k.id: k for user_id in self._user_ids(ctx, c, self.who)
                     for k in mod.cases(ctx.uow, c, user_id=user_id, since=since)}
            rows = sorted(found.values(), key=lambda k: k.id, reverse=True)[:15]
        tz = ctx.settings.timezone
        lines = [f"{k.id}. {local_datetime(k.created_at, tz)} · {_action_text(k)} · {k.user_name} · "
                 f"{rule_label(k.rule) if k.rule else _('moderator')} · {mod.case_reason(k)}"
                 + (" · " + _("undone") if k.undone_at else "") for k in rows]
        return Reply(title=_("Cases ({n})", n=len(rows)), text="\n".join(lines) or _("No case."))

    @staticmethod
    def _user_ids(ctx: Context, c: Community, who: Mention) -> list[str]:
        """The ids the person's cases are recorded under. On Twitch a case decided in the chat
        holds the numeric user id and a case typed elsewhere (``--in twitch:…``) the @login, so
        a person is found by either: by the id the chat's mention carries, and by their login
        (a case's user id) or name (a case's user name, the display name: the login but for
        case), whatever the place the command is typed in."""
        ids = [who.external_id] if who.external_id else []
        if c.platform == "twitch" and who.name:
            key = who.name.removeprefix("@").lower()
            ids += [i for i in ctx.uow.session.scalars(
                select(ModerationCase.user_id).distinct().where(
                    ModerationCase.community_id == c.id,
                    or_(func.lower(ModerationCase.user_id) == key, func.lower(ModerationCase.user_name) == key)))
                if i not in ids]
        elif not ids and who.name:
            ids = [who.name]
        return ids


def _action_text(case: ModerationCase) -> str:
    return mod.action_label(case.action) + (f" {format_duration(case.duration_s)}" if case.duration_s else "")


def _case_in(ctx: Context, case_id: int, where: tuple[str, str] | None) -> ModerationCase:
    """The case; in a community (or with --in) only one of that community's, so that moderating
    one server shows and undoes nothing of another's."""
    c = mod.community(ctx.uow, *where, create=False) if where is not None else None
    return mod.get_case(ctx.uow, case_id, community=c)


@registry.command("mod case", permission=MOD)
class ShowCase(InCommunity):
    """One case in full; --note adds a note or an appeal to it."""

    case_id: RecordId = arg("The case's number, as the case log shows it", metavar="ID")
    note: Text | None = opt("A note or an appeal to add to the case")

    def run(self, ctx: Context) -> Reply:
        case = _case_in(ctx, self.case_id, self.named(ctx))
        if self.note:
            mod.add_note(ctx.uow, ctx.actor, case, self.note)
        tz = ctx.settings.timezone
        fields = [Field(_("Who"), f"{case.user_name} ({case.platform} {case.user_id})"),
                  Field(_("Action"), _action_text(case)),
                  Field(_("Rule"), rule_label(case.rule) if case.rule else _("moderator")),
                  Field(_("Reason"), mod.case_reason(case)),
                  Field(_("When"), local_datetime(case.created_at, tz))]
        if case.excerpt:
            fields.append(Field(_("Message"), case.excerpt))
        if case.undone_at:
            fields.append(Field(_("Undone"), local_datetime(case.undone_at, tz)))
        sections = [Section(fields=tuple(fields))]
        if case.notes:
            sections.append(Section(title=_("Notes"), text=case.notes))
        undoable = case.action in ("timeout", "ban") and not case.undone_at
        actions = (button(UndoCase(case_id=case.id), _("Undo"), "danger"),) if undoable else ()
        return Reply(title=_("Case {id}", id=case.id), sections=tuple(sections), actions=actions)


@registry.command("mod case edit", permission=MOD, sensitive=True)
class EditCase(InCommunity):
    """Change a case afterwards: its reason, or a timeout's length (carried out on the platform while it
    runs); the old values stay in the case's notes."""

    case_id: RecordId = arg("The case's number, as the case log shows it", metavar="ID")
    reason: Text | None = opt("The new reason", metavar="REASON")
    duration: Seconds | None = opt("The timeout's new length from when it began, e.g. 1h")

    def run(self, ctx: Context) -> Reply:
        case = _case_in(ctx, self.case_id, self.named(ctx))
        edited = mod.edit_case(ctx.uow, ctx.actor, case, reason=self.reason, duration_s=self.duration, now=utcnow())
        text = _("Case {id} edited: {what}.", id=case.id, what=", ".join(edited.changed))
        if edited.remaining_s is not None:
            c = ctx.uow.session.get(Community, case.community_id)
            if c is not None and edited.remaining_s > 0:
                carry_out(ctx, c, case, "timeout", duration_s=edited.remaining_s)
                text += " " + _("The timeout now ends in {left}.", left=format_duration(edited.remaining_s))
            elif c is not None:
                carry_out(ctx, c, case, "untimeout")
                text += " " + _("With that length the timeout is over: it is lifted.")
        return Reply(text=text, ephemeral=False)


@registry.action(UNDO, permission=MOD, sensitive=True)
class UndoCase(Command):
    """Lift the timeout or ban of a case (its Undo button, in the mod-log or on the case)."""

    case_id: RecordId = arg("The case to undo")

    def run(self, ctx: Context) -> Reply:
        case = _case_in(ctx, self.case_id, _typed_in(ctx))
        kind = mod.undo(ctx.uow, ctx.actor, case)
        c = ctx.uow.session.get(Community, case.community_id)
        assert c is not None
        effect = effects.request(ctx.uow, platform=c.platform, community=c.external_id, kind=kind, user_id=case.user_id,
                                 user_name=case.user_name, reason=_("undo of case {id}", id=case.id), case_id=case.id)
        ctx.defer(effects.after_commit(ctx.services.effects, effect))
        return Reply(text=_("Case {id} undone by {who}: {user} can talk again.", id=case.id, who=ctx.actor.display_name,
                            user=case.user_name), ephemeral=False, replace_original=ctx.caller.via == "action")


@registry.command("mod stats", permission=MOD)
class Stats(InCommunity):
    """Actions per rule and per hour during the last stream (or the last 24 hours)."""

    def run(self, ctx: Context) -> Reply:
        s = mod.stats(ctx.uow, self.community(ctx))
        per_rule = "\n".join(f"{rule}: {n}" for rule, n in s.per_rule) or _("none")
        per_hour = "\n".join(f"{hour}: {n}" for hour, n in s.per_hour) or _("none")
        return Reply(title=_("Moderation since {since}: {n} actions", since=local_datetime(s.since, ctx.settings.timezone),
                             n=s.total),
                     sections=(Section(title=_("Per rule"), text=per_rule), Section(title=_("Per hour"), text=per_hour)))
