"""/mod commands and the ``Guard`` that checks every chat message (Discord and Twitch alike).

The guard holds one ``ModerationEngine`` per community in memory and asks the database only when
a message is flagged (to record the case and count strikes) or, every few seconds, whether the
community's rules changed. Manual commands return the platform actions as ``Reply.effects``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from core.config import Settings
from core.db import Database, utcnow
from core.errors import InvalidInput
from core.i18n import _, use_language
from core.moderation import service as mod
from core.moderation.engine import ChatMessage, ModerationEngine, format_duration, parse_duration
from core.moderation.store import Community, ModerationCase
from core.team import Permission
from handlers.chat import ChatEvent, ModAction, ModLogPost, Outcome
from handlers.parser import Args, Flag, parse_channel, parse_mention
from handlers.registry import Context, registry
from handlers.render import local_datetime
from handlers.reply import Button, Field, Reply, Section

log = logging.getLogger("mona.moderation")
MOD = Permission.MODERATE
REFRESH_S = 2.0
PERMIT_S = 60.0


@dataclass
class _Cached:
    engine: ModerationEngine
    community_id: int
    version: int


class Guard:
    """``handlers.chat.ChatGuard`` over the moderation service."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self._engines: dict[tuple[str, str], _Cached | None] = {}
        self._checked: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def _engine(self, platform: str, community: str, now: float) -> _Cached | None:
        """The community's engine, reloading its rules when their version changed (checked every
        ``REFRESH_S`` seconds); None where moderation is not set up."""
        key = (platform, community)
        with self._lock:
            known = key in self._engines
            cached = self._engines.get(key)
            fresh = now - self._checked.get(key, float("-inf")) < REFRESH_S
        if known and fresh:
            return cached
        with self.db.uow() as uow:
            row = uow.session.execute(select(Community.id, Community.version).where(
                Community.platform == platform, Community.external_id == community)).one_or_none()
            if row is None:
                cached = None
            elif cached is None or cached.version != row.version:
                c = uow.session.get(Community, row.id)
                assert c is not None
                rules = mod.rules_of(c)
                if cached is None:
                    cached = _Cached(ModerationEngine(rules), row.id, row.version)
                else:  # keeps each user's recent history and permits
                    cached.engine.update_rules(rules)
                    cached.version = row.version
        with self._lock:
            self._engines[key] = cached
            self._checked[key] = now
        return cached

    def invalidate(self, platform: str, community: str) -> None:
        """Check the rules again at the next message (after a command changed them)."""
        with self._lock:
            self._checked.pop((platform, community), None)

    def permit(self, platform: str, community: str, user_id: str) -> None:
        self.invalidate(platform, community)
        cached = self._engine(platform, community, time.monotonic())
        if cached is not None:
            cached.engine.permit(user_id, time.monotonic(), seconds=PERMIT_S)

    def on_message(self, event: ChatEvent) -> Outcome:
        now = time.monotonic()
        cached = self._engine(event.platform, event.community, now)
        if cached is None:
            return Outcome()
        violation = cached.engine.evaluate(ChatMessage(
            platform=event.platform, community=event.community, user_id=event.user_id, user_name=event.user_name,
            text=event.text, roles=event.roles, is_moderator=event.is_moderator or event.is_broadcaster,
            mention_count=event.mention_count, emote_spans=event.emote_spans), now)
        if violation is None:
            return Outcome()
        with use_language(self.settings.lang), self.db.uow() as uow:
            c = uow.session.get(Community, cached.community_id)
            assert c is not None
            case, decision, counting = mod.judge(uow, c, violation, user_id=event.user_id, user_name=event.user_name,
                                                 channel_id=event.channel_id, now=utcnow())
            uow.commit()
            return _outcome(c, case, event, counting)


def rule_label(rule: str | None) -> str:
    """The rule in the team's language, for what chatters read (the case keeps the detail)."""
    labels = {"banned_word": _("a banned word"), "pattern": _("a banned expression"), "link": _("a link not allowed"),
              "caps": _("too many capitals"), "repeat": _("a repeated message"), "flood": _("too many messages"),
              "mentions": _("too many mentions")}
    return labels.get(rule or "", rule or "")


def _outcome(c: Community, case: ModerationCase, event: ChatEvent, counting: int) -> Outcome:
    who = f"@{event.user_name}"
    shown = rule_label(case.rule)
    actions = [ModAction("delete", c.external_id, event.user_id, event.channel_id, event.message_id,
                         reason=case.reason, case_id=case.id)]
    if case.action == "warn":
        notice = _("{who}, your message was removed ({reason}). Warning {n}.", who=who, reason=shown, n=counting)
        actions.append(ModAction("warn", c.external_id, event.user_id, event.channel_id, notice=notice, reason=case.reason,
                                 case_id=case.id))
    elif case.action in ("timeout", "ban"):
        notice = (_("{who} is timed out for {duration} ({reason}).", who=who, duration=format_duration(case.duration_s or 0),
                    reason=shown) if case.action == "timeout"
                  else _("{who} is banned ({reason}).", who=who, reason=shown))
        actions.append(ModAction(case.action, c.external_id, event.user_id, event.channel_id, duration_s=case.duration_s,  # type: ignore[arg-type]
                                 reason=case.reason, notice=notice, case_id=case.id))
    return Outcome(tuple(actions), _modlog(c, case))


def _modlog(c: Community, case: ModerationCase) -> tuple[ModLogPost, ...]:
    channel = mod.modlog_channel(c, automatic=case.automatic, rule=case.rule)
    if channel is None:
        return ()
    title = _("Case {id}: {action} {user}", id=case.id, action=case.action, user=case.user_name)
    lines = [case.reason]
    if case.duration_s:
        lines.append(_("Duration: {d}", d=format_duration(case.duration_s)))
    if case.excerpt:
        lines.append(_("Message: {excerpt}", excerpt=case.excerpt))
    lines.append(_("Rule: {rule}", rule=case.rule) if case.rule else _("By a moderator"))
    undo = "mod.undo" if case.action in ("timeout", "ban") else None
    return (ModLogPost(channel, title, "\n".join(lines), undo, str(case.id)),)


# ---------------------------------------------------------------- commands

IN = Flag("in", "word", metavar="PLATFORM:ID", help="the community, when not typed in one (console, Slack)")


def _community(ctx: Context, args: Args | None = None, *, create: bool = True) -> Community:
    where = args.get("in") if args else None
    inv = ctx.invocation
    if where:
        platform, _sep, external = str(where).partition(":")
        if platform not in ("discord", "twitch") or not external:
            raise InvalidInput(_("--in takes discord:SERVER_ID or twitch:CHANNEL_ID, not {value}.", value=where))
        return mod.community(ctx.uow, platform, external, create=create)
    if inv.community and inv.platform in ("discord", "twitch"):
        return mod.community(ctx.uow, inv.platform, inv.community, create=create)
    raise InvalidInput(_("Use /mod in a Discord server or a Twitch chat, or name one with --in discord:SERVER_ID."))


def _changed(ctx: Context, c: Community) -> None:
    guard, platform, external = ctx.guard, c.platform, c.external_id
    if guard is not None:
        ctx.defer(lambda: guard.invalidate(platform, external))


def _target(ctx: Context, token: str) -> tuple[str, str]:
    """(platform user id, name) of the person a moderator named; refuses moderators."""
    mention = parse_mention(token)
    if mention is None:
        raise InvalidInput(_("{value} is not a mention; write @name.", value=token))
    if mention.external_id is None and ctx.invocation.platform != "console":
        raise InvalidInput(_("I do not know @{name} here; mention them so that the platform links their account.",
                             name=mention.name))
    user_id = mention.external_id or mention.name or ""
    if user_id in ctx.invocation.protected_ids:
        raise InvalidInput(_("{who} moderates this community; mona does not act on moderators or the broadcaster.",
                             who=str(mention)))
    return user_id, mention.name or user_id


@registry.command("mod words add", permission=MOD, args=(1, None), usage="WORD …", flags=(IN,))
def words_add(ctx: Context, args: Args) -> Reply:
    """Ban words or phrases (matched whatever the case, accents, look-alike letters or spacing)."""
    c = _community(ctx, args)
    added, already = mod.add_words(ctx.uow, ctx.actor, c, args.positionals)
    _changed(ctx, c)
    text = _("Banned: {words}.", words=", ".join(added)) if added else _("Nothing new.")
    if already:
        text += " " + _("Already banned: {words}.", words=", ".join(already))
    return Reply(text=text)


@registry.command("mod words remove", permission=MOD, args=(1, None), usage="WORD …", flags=(IN,))
def words_remove(ctx: Context, args: Args) -> Reply:
    """Unban words."""
    c = _community(ctx, args)
    removed, missing = mod.remove_words(ctx.uow, ctx.actor, c, args.positionals)
    _changed(ctx, c)
    text = _("Unbanned: {words}.", words=", ".join(removed)) if removed else _("None of those words was banned.")
    if removed and missing:
        text += " " + _("Not banned: {words}.", words=", ".join(missing))
    return Reply(text=text)


@registry.command("mod words list", permission=MOD, flags=(IN,))
def words_list(ctx: Context, args: Args) -> Reply:
    """The banned words and patterns."""
    rules = mod.rules_of(_community(ctx, args))
    words = sorted(rules.words.words)
    patterns = [f"{i}. {p}" for i, p in enumerate(rules.patterns.patterns, 1)]
    return Reply(title=_("Banned words ({n})", n=len(words)), sections=(
        Section(text=", ".join(words[:300]) or _("none")),
        Section(title=_("Patterns ({n})", n=len(patterns)), text="\n".join(patterns) or _("none"))))


@registry.command("mod patterns add", permission=MOD, args=(1, None), usage="REGEX", flags=(IN,))
def patterns_add(ctx: Context, args: Args) -> Reply:
    """Ban a regular expression (checked on folded text: lower case, no accents)."""
    c = _community(ctx, args)
    pattern = mod.add_pattern(ctx.uow, ctx.actor, c, " ".join(args.positionals))
    _changed(ctx, c)
    return Reply(text=_("Banned pattern: {pattern}", pattern=pattern))


@registry.command("mod patterns remove", permission=MOD, args=(1, 1), usage="NUMBER", flags=(IN,))
def patterns_remove(ctx: Context, args: Args) -> Reply:
    """Remove a banned pattern by its number in /mod words list."""
    c = _community(ctx, args)
    gone = mod.remove_pattern(ctx.uow, ctx.actor, c, args.positionals[0])
    _changed(ctx, c)
    return Reply(text=_("Removed pattern: {pattern}", pattern=gone))


@registry.command("mod links", permission=MOD, args=(1, None), usage="block|allow|off [DOMAINS]", flags=(IN,))
def links(ctx: Context, args: Args) -> Reply:
    """Links: block them all, allow only some domains (and their subdomains), or stop checking."""
    c = _community(ctx, args)
    mode, *given = args.positionals
    domains = [d for word in given for d in word.replace(",", " ").split()]
    rules = mod.set_links(ctx.uow, ctx.actor, c, mode.lower(), domains)
    _changed(ctx, c)
    allowed = ", ".join(sorted(rules.links.allowed_domains)) or _("none")
    return Reply(text=_("Links: {policy}. Allowed domains: {allowed}.", policy=rules.links.policy.value, allowed=allowed))


def _count(flag: str, value: Any) -> int:
    text = str(value).lower().rstrip("%")
    if text == "off":
        return 0
    if not text.isdigit():
        raise InvalidInput(_("--{flag} takes a number or off, not {value}.", flag=flag, value=value))
    return int(text)


@registry.command("mod limits", permission=MOD, args=(0, 0),
                  usage="[--caps PCT|off] [--flood N/SECONDS|off] [--repeat N|off] [--mentions N|off]",
                  flags=(IN, Flag("caps", "word"), Flag("flood", "word"), Flag("repeat", "word"), Flag("mentions", "word")))
def limits(ctx: Context, args: Args) -> Reply:
    """Set the limits: capitals (percent), flood (messages per seconds), repeated messages, mentions."""
    c = _community(ctx, args)
    flood = None
    if args.get("flood") is not None:
        raw = str(args.get("flood")).lower()
        if raw == "off":
            flood = (0, 0.0)
        else:
            n, _sep, window = raw.partition("/")
            if not n.isdigit() or not window:
                raise InvalidInput(_("--flood takes MESSAGES/SECONDS like 6/10s, not {value}.", value=raw))
            try:
                flood = (int(n), float(parse_duration(window)))
            except ValueError as e:
                raise InvalidInput(str(e)) from None
    changes = mod.Limits(
        caps_pct=_count("caps", args.get("caps")) if args.get("caps") is not None else None, flood=flood,
        repeat=_count("repeat", args.get("repeat")) if args.get("repeat") is not None else None,
        mentions=_count("mentions", args.get("mentions")) if args.get("mentions") is not None else None)
    rules = mod.set_limits(ctx.uow, ctx.actor, c, changes) if any(v is not None for v in vars(changes).values()) else mod.rules_of(c)
    _changed(ctx, c)

    def state(enabled: bool, text: str) -> str:
        return text if enabled else _("off")

    return Reply(title=_("Limits"), sections=(Section(fields=(
        Field(_("Capitals"), state(rules.caps.enabled, f"> {round(rules.caps.max_ratio * 100)}%")),
        Field(_("Flood"), state(rules.flood.enabled, f"> {rules.flood.max_messages} / {format_duration(rules.flood.window_s)}")),
        Field(_("Repeats"), state(rules.repeat.enabled, f"{rules.repeat.times}× / {format_duration(rules.repeat.window_s)}")),
        Field(_("Mentions"), state(rules.mentions.enabled, f"> {rules.mentions.max_mentions}")),
        Field(_("Stream mode"), _("on") if rules.stream_mode else _("off")))),))


def _manual(ctx: Context, args: Args, action: str) -> Reply:
    c = _community(ctx, args)
    words = list(args.positionals)
    user_id, name = _target(ctx, words.pop(0))
    duration = None
    if action == "timeout":
        if not words:
            raise InvalidInput(_("Say how long, e.g. /mod timeout @name 10m spamming."))
        try:
            duration = parse_duration(words.pop(0))
        except ValueError as e:
            raise InvalidInput(str(e)) from None
        if duration > 14 * 86400:
            raise InvalidInput(_("A timeout lasts at most 14 days; use /mod ban for longer."))
    reason = " ".join(words)
    if action in ("warn", "timeout", "ban") and not reason:
        raise InvalidInput(_("Give a reason after the name: it is shown to the person and kept in the case log."))
    case = mod.manual_case(ctx.uow, ctx.actor, c, action=action, user_id=user_id, user_name=name, duration_s=duration,
                           reason=reason or _("unban"), channel_id=ctx.invocation.channel_id)
    who = f"@{name}"
    notice = {
        "warn": _("{who}, a moderator warns you: {reason}", who=who, reason=reason),
        "timeout": _("{who} is timed out for {duration} ({reason}).", who=who, duration=format_duration(duration or 0), reason=reason),
        "ban": _("{who} is banned ({reason}).", who=who, reason=reason),
    }.get(action)
    effect = ModAction(action, c.external_id, user_id, ctx.invocation.channel_id, duration_s=duration,  # type: ignore[arg-type]
                       reason=case.reason, notice=notice, case_id=case.id)
    text = _("Case {id}: {action} {who}.", id=case.id, action=action, who=who)
    return Reply(text=text, ephemeral=False, effects=(effect, *_modlog(c, case)))


@registry.command("mod warn", permission=MOD, args=(2, None), usage="@user REASON", flags=(IN,))
def warn(ctx: Context, args: Args) -> Reply:
    """Warn someone; warnings count towards automatic timeouts for the strike window."""
    return _manual(ctx, args, "warn")


@registry.command("mod timeout", permission=MOD, args=(3, None), usage="@user DURATION REASON", flags=(IN,))
def timeout(ctx: Context, args: Args) -> Reply:
    """Time someone out (DURATION like 10m, 1h30m, 2d)."""
    return _manual(ctx, args, "timeout")


@registry.command("mod ban", permission=MOD, args=(2, None), usage="@user REASON", flags=(IN,))
def ban(ctx: Context, args: Args) -> Reply:
    """Ban someone."""
    return _manual(ctx, args, "ban")


@registry.command("mod unban", permission=MOD, args=(1, None), usage="@user", flags=(IN,))
def unban(ctx: Context, args: Args) -> Reply:
    """Lift a ban (or a timeout)."""
    return _manual(ctx, args, "unban")


@registry.command("mod permit", permission=MOD, args=(1, 1), usage="@user", flags=(IN,))
def permit(ctx: Context, args: Args) -> Reply:
    """Let someone post one link in the next 60 seconds."""
    c = _community(ctx, args)
    user_id, name = _target(ctx, args.positionals[0])
    guard, platform, external = ctx.guard, c.platform, c.external_id
    if guard is not None:
        ctx.defer(lambda: guard.permit(platform, external, user_id))
    return Reply(text=_("@{name} may post one link in the next 60 seconds.", name=name), ephemeral=False)


@registry.command("mod cases", permission=MOD, args=(0, 1), usage="[@user] [--since 24h]",
                  flags=(IN, Flag("since", "word")))
def cases_cmd(ctx: Context, args: Args) -> Reply:
    """The case log, newest first: everyone's, or one person's, optionally since a time ago."""
    c = _community(ctx, args)
    user_id = None
    if args.positionals:
        mention = parse_mention(args.positionals[0])
        if mention is None:
            raise InvalidInput(_("{value} is not a mention; write @name.", value=args.positionals[0]))
        user_id = mention.external_id or mention.name
    since = None
    if args.get("since"):
        try:
            since = utcnow() - dt.timedelta(seconds=parse_duration(str(args.get("since"))))
        except ValueError as e:
            raise InvalidInput(str(e)) from None
    rows = mod.cases(ctx.uow, c, user_id=user_id, since=since)
    tz = ctx.settings.timezone
    lines = [f"{k.id}. {local_datetime(k.created_at, tz)} · {k.action}"
             + (f" {format_duration(k.duration_s)}" if k.duration_s else "")
             + f" · {k.user_name} · {k.rule or _('moderator')} · {k.reason}" + (" · " + _("undone") if k.undone_at else "")
             for k in rows]
    return Reply(title=_("Cases ({n})", n=len(rows)), text="\n".join(lines) or _("No case."))


@registry.command("mod case", permission=MOD, args=(1, 1), usage="ID [--note TEXT]", flags=(IN, Flag("note")))
def case_cmd(ctx: Context, args: Args) -> Reply:
    """One case in full; --note adds a note or an appeal to it."""
    case = mod.get_case(ctx.uow, args.positionals[0])
    if args.get("note"):
        mod.add_note(ctx.uow, ctx.actor, case, str(args.get("note")))
    tz = ctx.settings.timezone
    fields = [Field(_("Who"), f"{case.user_name} ({case.platform} {case.user_id})"),
              Field(_("Action"), case.action + (f" {format_duration(case.duration_s)}" if case.duration_s else "")),
              Field(_("Rule"), case.rule or _("moderator")), Field(_("Reason"), case.reason),
              Field(_("When"), local_datetime(case.created_at, tz))]
    if case.excerpt:
        fields.append(Field(_("Message"), case.excerpt))
    if case.undone_at:
        fields.append(Field(_("Undone"), local_datetime(case.undone_at, tz)))
    sections = [Section(fields=tuple(fields))]
    if case.notes:
        sections.append(Section(title=_("Notes"), text=case.notes))
    actions = (Button(_("Undo"), "mod.undo", str(case.id), "danger"),) if case.action in ("timeout", "ban") and not case.undone_at else ()
    return Reply(title=_("Case {id}", id=case.id), sections=tuple(sections), actions=actions)


@registry.action("mod.undo", permission=MOD)
def undo_button(ctx: Context, value: str) -> Reply:
    case = mod.get_case(ctx.uow, value)
    kind = mod.undo(ctx.uow, ctx.actor, case)
    c = ctx.uow.session.get(Community, case.community_id)
    assert c is not None
    effect = ModAction(kind, c.external_id, case.user_id, case.channel_id, reason=_("undo of case {id}", id=case.id),  # type: ignore[arg-type]
                       case_id=case.id)
    return Reply(text=_("Case {id} undone by {who}: {user} can talk again.", id=case.id, who=ctx.actor.display_name,
                        user=case.user_name), ephemeral=False, effects=(effect,))


@registry.command("mod stream", permission=MOD, args=(1, 1), usage="on|off", flags=(IN,))
def stream(ctx: Context, args: Args) -> Reply:
    """Stream mode: stricter limits while the stream is live."""
    state = args.positionals[0].lower()
    if state not in ("on", "off"):
        raise InvalidInput(_("Say /mod stream on or /mod stream off."))
    c = _community(ctx, args)
    mod.set_stream(ctx.uow, ctx.actor, c, state == "on")
    _changed(ctx, c)
    return Reply(text=_("Stream mode is on: stricter limits until /mod stream off.") if state == "on"
                 else _("Stream mode is off."), ephemeral=False)


@registry.command("mod modlog", permission=MOD, args=(1, 2), usage="#channel [default|auto|manual|RULE]", flags=(IN,))
def modlog(ctx: Context, args: Args) -> Reply:
    """Where cases are posted: all of them, automatic or manual ones, or one rule's."""
    c = _community(ctx, args)
    ref = parse_channel(args.positionals[0])
    if ref is None:
        raise InvalidInput(_("{value} is not a channel; write #channel.", value=args.positionals[0]))
    kind = args.positionals[1].lower() if len(args.positionals) > 1 else "default"
    mod.set_modlog(ctx.uow, ctx.actor, c, ref.external_id or ref.name or "", kind)
    return Reply(text=_("{kind} cases now go to {channel}.", kind=kind, channel=ref.label))


@registry.command("mod stats", permission=MOD, flags=(IN,))
def stats(ctx: Context, args: Args) -> Reply:
    """Actions per rule and per hour during the last stream (or the last 24 hours)."""
    c = _community(ctx, args)
    s = mod.stats(ctx.uow, c)
    per_rule = "\n".join(f"{rule}: {n}" for rule, n in s.per_rule) or _("none")
    per_hour = "\n".join(f"{hour}: {n}" for hour, n in s.per_hour) or _("none")
    return Reply(title=_("Moderation since {since}: {n} actions", since=local_datetime(s.since, ctx.settings.timezone), n=s.total),
                 sections=(Section(title=_("Per rule"), text=per_rule), Section(title=_("Per hour"), text=per_hour)))
