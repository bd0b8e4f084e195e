"""Moderation service: editing a community's rules, the case log, strikes, undo and figures.

Plain functions over a unit of work, like the rest of the core; the guard that checks chat
messages (``handlers.guard.Guard``) calls ``judge`` only for a message the engine flagged.
Changes are audited by the application layer (the ``/mod`` commands that make them are sensitive).

A case is stored language-neutral and rendered in the team's language when it is shown:
``action_label`` for its action, ``case_reason`` for why (an automatic case keeps the facts of the
violation, not an English sentence).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import select

from core import outbox
from core.db import UnitOfWork, utcnow
from core.effects import PlatformEffect
from core.errors import ConcurrentChange, InvalidInput, NotFound
from core.i18n import _
from core.moderation.engine import (
    Decision,
    LinkPolicy,
    Rules,
    Strike,
    Violation,
    compile_pattern,
    decide,
    fold_banned_word,
    is_domain,
)
from core.moderation.folding import fold
from core.moderation.store import Community, ModerationCase, policy_from_json, rules_from_json, rules_to_json
from core.team import Member, audit
from core.text import clean

MAX_WORDS = 5000
MAX_PATTERNS = 200

#: What a moderator does by hand.
ManualAction = Literal["warn", "timeout", "ban", "unban"]
LinkMode = Literal["block", "allow", "off"]
#: Where cases can be routed: every case, automatic or manual ones, or one rule's.
ModlogKind = Literal["default", "auto", "manual", "banned_word", "pattern", "link", "caps", "repeat", "flood", "mentions"]
MODLOG_KINDS: tuple[str, ...] = get_args(ModlogKind)
MAX_TIMEOUT_S = 14 * 86400


def community(uow: UnitOfWork, platform: str, external_id: str, *, create: bool = True) -> Community:
    found = uow.session.scalars(select(Community).where(Community.platform == platform,
                                                       Community.external_id == external_id)).one_or_none()
    if found is None:
        if not create:
            raise NotFound(_("Moderation is not set up in {where}.", where=f"{platform}:{external_id}"))
        found = Community(platform=platform, external_id=external_id, rules=rules_to_json(Rules()), escalation={},
                          modlog={})
        uow.session.add(found)
        uow.session.flush()
    return found


def rules_of(c: Community) -> Rules:
    return rules_from_json(c.rules or {})


def _save(c: Community, rules: Rules) -> None:
    c.rules = rules_to_json(rules)
    c.version += 1
    c.updated_at = utcnow()


def _banned_form(word: str) -> str:
    text = clean(word, what=_("word"), max_len=100, allow_newlines=False)
    try:
        return fold_banned_word(text)
    except ValueError:
        raise InvalidInput(_("{word} has no letter or digit to match.", word=word)) from None


def add_words(uow: UnitOfWork, actor: Member, c: Community, words: list[str]) -> tuple[list[str], list[str]]:
    rules = rules_of(c)
    folded = [_banned_form(w) for w in words]
    if not folded:
        raise InvalidInput(_("Give the words to ban, e.g. spoiler scam."))
    added = sorted(set(folded) - rules.words.words)
    already = sorted(set(folded) & rules.words.words)
    if len(rules.words.words) + len(added) > MAX_WORDS:
        raise InvalidInput(_("A community can ban at most {n} words.", n=MAX_WORDS))
    if added:
        new = dataclasses.replace(rules.words, words=rules.words.words | set(added))
        _save(c, dataclasses.replace(rules, words=new))
    return added, already


def remove_words(uow: UnitOfWork, actor: Member, c: Community, words: list[str]) -> tuple[list[str], list[str]]:
    rules = rules_of(c)
    folded = {fold(w) for w in words}  # a word with nothing to match was never banned
    removed = sorted(folded & rules.words.words)
    missing = sorted(folded - rules.words.words)
    if removed:
        new = dataclasses.replace(rules.words, words=rules.words.words - set(removed))
        _save(c, dataclasses.replace(rules, words=new))
    return removed, missing


def add_pattern(uow: UnitOfWork, actor: Member, c: Community, text: str) -> str:
    text = text.strip()
    try:
        compile_pattern(text)
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    rules = rules_of(c)
    if text in rules.patterns.patterns:
        raise InvalidInput(_("That pattern is already banned."))
    if len(rules.patterns.patterns) >= MAX_PATTERNS:
        raise InvalidInput(_("A community can have at most {n} patterns.", n=MAX_PATTERNS))
    new = dataclasses.replace(rules.patterns, patterns=(*rules.patterns.patterns, text))
    _save(c, dataclasses.replace(rules, patterns=new))
    return text


def remove_pattern(uow: UnitOfWork, actor: Member, c: Community, number: int) -> str:
    """Remove the pattern listed with ``number`` (counting from 1)."""
    rules = rules_of(c)
    patterns = list(rules.patterns.patterns)
    if not patterns:
        raise InvalidInput(_("No pattern is banned."))
    if not 1 <= number <= len(patterns):
        raise InvalidInput(_("There is no pattern {number}; the patterns are numbered 1 to {n}.", number=number,
                             n=len(patterns)))
    gone = patterns.pop(number - 1)
    _save(c, dataclasses.replace(rules, patterns=dataclasses.replace(rules.patterns, patterns=tuple(patterns))))
    return gone


def set_links(uow: UnitOfWork, actor: Member, c: Community, mode: LinkMode, domains: list[str]) -> Rules:
    rules = rules_of(c)
    links = rules.links
    if mode == "off":
        links = dataclasses.replace(links, policy=LinkPolicy.OFF)
    elif mode == "block":
        links = dataclasses.replace(links, policy=LinkPolicy.BLOCK)
    else:
        bad = [d for d in domains if not is_domain(d.lower())]
        if bad:
            raise InvalidInput(_("{value} is not a domain; write it like youtube.com.", value=", ".join(bad)))
        if not domains:
            raise InvalidInput(_("Name the domains to allow, like youtube.com."))
        links = dataclasses.replace(links, policy=LinkPolicy.ALLOW_LIST,
                                    allowed_domains=links.allowed_domains | {d.lower().removeprefix("www.") for d in domains})
    new = dataclasses.replace(rules, links=links)
    _save(c, new)
    return new


@dataclass(frozen=True)
class Limits:
    caps_pct: int | None = None  # 0 switches the rule off
    flood: tuple[int, float] | None = None  # (messages, seconds); (0, 0) off
    repeat: int | None = None
    mentions: int | None = None


def set_limits(uow: UnitOfWork, actor: Member, c: Community, limits: Limits) -> Rules:
    rules = rules_of(c)
    try:
        if limits.caps_pct is not None:
            rules = dataclasses.replace(rules, caps=dataclasses.replace(
                rules.caps, enabled=limits.caps_pct > 0, max_ratio=(limits.caps_pct or 70) / 100))
        if limits.flood is not None:
            n, secs = limits.flood
            rules = dataclasses.replace(rules, flood=dataclasses.replace(
                rules.flood, enabled=n > 0, max_messages=n or rules.flood.max_messages, window_s=secs or rules.flood.window_s))
        if limits.repeat is not None:
            rules = dataclasses.replace(rules, repeat=dataclasses.replace(
                rules.repeat, enabled=limits.repeat > 0, times=limits.repeat or rules.repeat.times))
        if limits.mentions is not None:
            rules = dataclasses.replace(rules, mentions=dataclasses.replace(
                rules.mentions, enabled=limits.mentions > 0, max_mentions=limits.mentions or rules.mentions.max_mentions))
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    _save(c, rules)
    return rules


def set_stream(uow: UnitOfWork, actor: Member | None, c: Community, on: bool) -> None:
    rules = rules_of(c)
    if rules.stream_mode == on:
        raise InvalidInput(_("Stream mode is already {state}.", state=_("on") if on else _("off")))
    if on:
        c.stream_started_at, c.stream_ended_at = utcnow(), None
    else:
        c.stream_ended_at = utcnow()
    _save(c, dataclasses.replace(rules, stream_mode=on))


def set_modlog(uow: UnitOfWork, actor: Member, c: Community, channel: str, kind: ModlogKind) -> None:
    if kind not in MODLOG_KINDS:
        raise InvalidInput(_("Cases can be routed by: {kinds}.", kinds=", ".join(sorted(MODLOG_KINDS))))
    c.modlog = {**(c.modlog or {}), kind: channel}


def modlog_channel(c: Community, *, automatic: bool, rule: str | None) -> str | None:
    routes = c.modlog or {}
    return (routes.get(rule or "") if rule else None) or routes.get("auto" if automatic else "manual") or routes.get("default")


def strikes(uow: UnitOfWork, c: Community, user_id: str) -> list[Strike]:
    """Every counting case on the user's record (old ones stay; the policy decides what counts)."""
    rows = uow.session.execute(select(ModerationCase.created_at, ModerationCase.rule).where(
        ModerationCase.community_id == c.id, ModerationCase.user_id == user_id, ModerationCase.counts.is_(True),
        ModerationCase.undone_at.is_(None))).all()
    return [Strike(at.timestamp(), rule or "") for at, rule in rows]


def judge(uow: UnitOfWork, c: Community, violation: Violation, *, user_id: str, user_name: str,
          channel_id: str | None, now: dt.datetime) -> tuple[ModerationCase, Decision, int]:
    """Decide and record the case for an automatic violation; also returns the strikes that count now."""
    policy = policy_from_json(c.escalation or {})
    prior = strikes(uow, c, user_id)
    decision = decide(violation, prior, policy, now.timestamp())
    counting = sum(1 for s in prior if s.at > now.timestamp() - policy.window_s) + (1 if decision.counts_as_strike else 0)
    case = ModerationCase(community_id=c.id, platform=c.platform, user_id=user_id, user_name=user_name[:200],
                          channel_id=channel_id, excerpt=violation.excerpt[:300], rule=violation.rule,
                          action=decision.action, duration_s=decision.duration_s, reason=_facts_json(violation),
                          automatic=True, counts=decision.counts_as_strike, created_at=now)
    uow.session.add(case)
    uow.session.flush()
    _announce(uow, c, case)
    return case, decision, counting


def _announce(uow: UnitOfWork, c: Community, case: ModerationCase) -> None:
    outbox.record(uow, "case.created", case_id=case.id, platform=c.platform, community=c.external_id,
                  user_name=case.user_name, action=case.action, rule=case.rule, automatic=case.automatic,
                  by=case.moderator_id)


def _facts_json(violation: Violation) -> str:
    facts = {k: v[:200] if isinstance(v, str) else v for k, v in violation.facts.items()}
    return json.dumps(facts, ensure_ascii=False, sort_keys=True)[:500]


def manual_case(uow: UnitOfWork, actor: Member, c: Community, *, action: ManualAction, user_id: str, user_name: str,
                duration_s: int | None, reason: str, channel_id: str | None) -> ModerationCase:
    """Record what a moderator did by hand; ``reason`` is required except to unban."""
    reason = clean(reason, what=_("reason"), max_len=500)
    if action != "unban" and not reason:
        raise InvalidInput(_("Give a reason: it is shown to the person and kept in the case log."))
    if action == "timeout" and not (duration_s and 0 < duration_s <= MAX_TIMEOUT_S):
        raise InvalidInput(_("A timeout lasts from 1 second to 14 days."))
    case = ModerationCase(community_id=c.id, platform=c.platform, user_id=user_id, user_name=user_name[:200],
                          channel_id=channel_id, rule=None, action=action,
                          duration_s=duration_s if action == "timeout" else None, reason=reason,
                          automatic=False, counts=action in ("warn", "timeout", "ban"), moderator_id=actor.id,
                          created_at=utcnow())
    uow.session.add(case)
    uow.session.flush()
    _announce(uow, c, case)
    return case


def cases(uow: UnitOfWork, c: Community, *, user_id: str | None = None, since: dt.datetime | None = None,
          limit: int = 15) -> list[ModerationCase]:
    q = select(ModerationCase).where(ModerationCase.community_id == c.id)
    if user_id:
        q = q.where(ModerationCase.user_id == user_id)
    if since:
        q = q.where(ModerationCase.created_at >= since)
    return list(uow.session.scalars(q.order_by(ModerationCase.id.desc()).limit(limit)))


def get_case(uow: UnitOfWork, case_id: int, *, community: Community | None = None) -> ModerationCase:
    """The case with that id; with ``community``, only one of that community's cases or of a community
    linked with it (a Twitch channel's case, from the Discord server whose mod-log shows it)."""
    case = uow.session.get(ModerationCase, case_id)
    if case is not None and community is not None and case.community_id != community.id and all(
            g.id != case.community_id for g in linked_group(uow, community)):
        case = None
    if case is None:
        raise NotFound(_("No case has the id {id}.", id=case_id))
    return case


def add_note(uow: UnitOfWork, actor: Member, case: ModerationCase, note: str) -> None:
    note = clean(note, what=_("note"), max_len=1000)
    stamp = utcnow().strftime("%Y-%m-%d %H:%M")
    case.notes = (case.notes + "\n" if case.notes else "") + f"[{stamp} {actor.display_name}] {note}"


@dataclass(frozen=True)
class Edited:
    changed: tuple[str, ...]
    #: For a timeout still running whose length changed: the seconds left to set on the platform
    #: (0: it is over now, lift it).
    remaining_s: int | None = None


def edit_case(uow: UnitOfWork, actor: Member, case: ModerationCase, *, reason: str | None, duration_s: int | None,
              now: dt.datetime) -> Edited:
    """Change a case's reason or a timeout's length afterwards; the old values stay in its notes."""
    if reason is None and duration_s is None:
        raise InvalidInput(_("Say what to change: --reason, or --duration for a timeout."))
    if case.undone_at is not None:
        raise ConcurrentChange(_("Case {id} was undone; there is nothing to edit.", id=case.id))
    if duration_s is not None and case.action != "timeout":
        raise InvalidInput(_("Only a timeout has a duration; case {id} is a {action}.", id=case.id,
                             action=action_label(case.action)))
    changed: list[str] = []
    stamp = now.strftime("%Y-%m-%d %H:%M")
    lines: list[str] = []
    remaining: int | None = None
    if reason is not None:
        reason = clean(reason, what=_("reason"), max_len=500, allow_newlines=False)
        if not reason:
            raise InvalidInput(_("The reason cannot be empty."))
        lines.append(f"[{stamp} {actor.display_name}] reason was: {case_reason(case)}")
        case.reason, case.automatic = reason, False
        changed.append(_("reason"))
    if duration_s is not None and duration_s != case.duration_s:
        old = case.duration_s or 0
        still_running = case.created_at + dt.timedelta(seconds=old) > now
        lines.append(f"[{stamp} {actor.display_name}] duration was: {old} s")
        case.duration_s = duration_s
        changed.append(_("duration"))
        left = int((case.created_at + dt.timedelta(seconds=duration_s) - now).total_seconds())
        if still_running or left > 0:
            remaining = max(0, left)
    case.notes = "\n".join([*([case.notes] if case.notes else []), *lines])
    audit(uow, actor, "mod case edit", f"case {case.id}", detail=", ".join(changed))
    return Edited(tuple(changed), remaining)


def undo(uow: UnitOfWork, actor: Member, case: ModerationCase) -> Literal["untimeout", "unban"]:
    """Lift a timeout or a ban; returns the action to carry out ("untimeout" or "unban")."""
    if case.action not in ("timeout", "ban"):
        raise InvalidInput(_("Only timeouts and bans can be undone; case {id} is a {action}.", id=case.id,
                             action=action_label(case.action)))
    if case.undone_at:
        raise InvalidInput(_("Case {id} was already undone.", id=case.id))
    case.undone_at, case.undone_by_id = utcnow(), actor.id
    return "untimeout" if case.action == "timeout" else "unban"


# ---------------------------------------------------------------- cases as people read them


def action_label(action: str) -> str:
    """A case's action in the current language."""
    labels = {"warn": _("warn"), "timeout": _("timeout"), "ban": _("ban"), "delete": _("delete"), "unban": _("unban")}
    return labels.get(action, action)


def case_facts(case: ModerationCase) -> dict[str, Any] | None:
    """The facts of an automatic case's violation (``Violation.facts``), or None for a manual case
    or one recorded before they were kept (its reason is then an English sentence)."""
    if not case.automatic or not case.reason.startswith("{"):
        return None
    try:
        facts = json.loads(case.reason)
    except ValueError:
        return None
    return facts if isinstance(facts, dict) else None


def case_reason(case: ModerationCase) -> str:
    """Why the case was opened, in the current language: the moderator's words, or what the rule saw."""
    facts = case_facts(case)
    if facts is None:
        return case.reason or action_label(case.action)
    try:
        return _violation_reason(case.rule or "", facts)
    except (KeyError, IndexError, ValueError):
        return case.reason


def _violation_reason(rule: str, facts: dict[str, Any]) -> str:
    if rule == "banned_word":
        return _("banned word: {word}", word=facts["word"])
    if rule == "pattern":
        return _("banned pattern: {pattern}", pattern=facts["pattern"])
    if rule == "link":
        return _("link to {host} not allowed", host=facts["host"])
    if rule == "mentions":
        return _("{count} mentions (limit {limit})", count=facts["count"], limit=facts["limit"])
    if rule == "caps":
        return _("{percent}% capitals", percent=facts["percent"])
    if rule == "repeat":
        return _("same message {count} times in {window}", count=facts["count"], window=facts["window"])
    if rule == "flood":
        return _("{count} messages in {window}", count=facts["count"], window=facts["window"])
    raise KeyError(rule)


@dataclass(frozen=True)
class Stats:
    since: dt.datetime
    per_rule: list[tuple[str, int]]
    per_hour: list[tuple[str, int]]
    total: int


def stats(uow: UnitOfWork, c: Community) -> Stats:
    """Actions per rule and per hour during the last stream (or the last 24 hours)."""
    since = c.stream_started_at or utcnow() - dt.timedelta(days=1)
    until = c.stream_ended_at if c.stream_ended_at and c.stream_ended_at > since else utcnow()
    rows = uow.session.execute(select(ModerationCase.rule, ModerationCase.created_at).where(
        ModerationCase.community_id == c.id, ModerationCase.created_at >= since, ModerationCase.created_at <= until)).all()
    per_rule = Counter(rule or "manual" for rule, _at in rows)
    per_hour = Counter(at.strftime("%Y-%m-%d %H:00") for _rule, at in rows)
    return Stats(since, per_rule.most_common(), sorted(per_hour.items()), len(rows))


# ---------------------------------------------------------------- linked communities, emergency mode


def link(uow: UnitOfWork, twitch: Community, discord: Community) -> None:
    """A Twitch channel goes with a Discord server: its cases may be posted in the server's mod-log,
    and emergency mode typed in either covers both."""
    twitch.linked = discord.label


def linked_group(uow: UnitOfWork, c: Community) -> list[Community]:
    """``c`` first, then the communities linked with it (either way round)."""
    group = [c]
    partners = list(uow.session.scalars(select(Community).where(Community.linked == c.label).order_by(Community.id)))
    if c.linked:
        platform, _sep, external = c.linked.partition(":")
        partner = uow.session.scalars(select(Community).where(Community.platform == platform,
                                                              Community.external_id == external)).one_or_none()
        if partner is not None:
            partners.insert(0, partner)
    for p in partners:
        if all(p.id != g.id for g in group):
            group.append(p)
    return group


#: What emergency mode sets: Twitch chat followers-only (followed for 10 minutes) and slow (30 s between
#: messages); Discord's slow mode (30 s) in the server's stream channels.
TWITCH_EMERGENCY: dict[str, Any] = {"follower_mode": True, "follower_mode_duration": 10, "slow_mode": True,
                                    "slow_mode_wait_time": 30}
DISCORD_SLOW_S = 30
EMERGENCY_DEFAULT_S = 30 * 60
EMERGENCY_MOST_S = 24 * 3600
#: Twitch's settings when mona never learnt what they were (the platform refused to say): all off.
TWITCH_CALM: dict[str, Any] = {"follower_mode": False, "slow_mode": False}


@dataclass(frozen=True)
class ChatChange:
    """A chat's settings to change on its platform (a ``chat_mode`` effect to request)."""

    community: Community
    channel_id: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Emergency:
    until: dt.datetime
    origin: Community
    changes: list[ChatChange]
    #: The Discord servers in the group that have no stream channel to slow down.
    no_channels: list[Community]


def emergency_of(uow: UnitOfWork, c: Community) -> tuple[Community, dt.datetime] | None:
    """The community of the group holding the emergency under way, and when it ends; None when off."""
    for g in linked_group(uow, c):
        until = (g.emergency or {}).get("until")
        if until:
            return g, dt.datetime.fromisoformat(until)
    return None


def start_emergency(uow: UnitOfWork, actor: Member | None, c: Community, *, for_s: int, now: dt.datetime,
                    channels: list[str] | None = None) -> Emergency:
    """Emergency mode for ``c`` and its linked communities: Twitch followers-only and slow, Discord slow
    mode in the stream channels (``channels``, remembered for next time; else the ones remembered).
    The effects to request are returned; ``record_emergency`` keeps their ids once requested."""
    if not 60 <= for_s <= EMERGENCY_MOST_S:
        raise InvalidInput(_("Emergency mode lasts from a minute to 24 hours."))
    running = emergency_of(uow, c)
    if running is not None:
        raise InvalidInput(_("Emergency mode is already on until {until}: /mod emergency off ends it.",
                             until=running[1].strftime("%H:%M UTC")))
    if channels is not None and c.platform != "discord":
        raise InvalidInput(_("Stream channels are Discord channels: give them in the Discord server."))
    changes: list[ChatChange] = []
    missing: list[Community] = []
    for g in linked_group(uow, c):
        if g.platform == "twitch":
            changes.append(ChatChange(g, None, dict(TWITCH_EMERGENCY)))
        elif g.platform == "discord":
            if g.id == c.id and channels is not None:
                g.emergency = {**(g.emergency or {}), "channels": channels}
            slow = list((g.emergency or {}).get("channels") or [])
            if not slow:
                missing.append(g)
            changes += [ChatChange(g, ch, {"rate_limit_per_user": DISCORD_SLOW_S}) for ch in slow]
    if not changes:
        raise InvalidInput(_("Nothing to slow down here: give the Discord channels of the stream with --channels "
                             "#chat, or link a Twitch channel with /mod modlog #channel --twitch CHANNEL_ID."))
    until = now + dt.timedelta(seconds=for_s)
    c.emergency = {**(c.emergency or {}), "until": until.isoformat(), "by": actor.display_name if actor else "",
                   "effects": []}
    return Emergency(until, c, changes, missing)


def record_emergency(origin: Community, effect_ids: list[int]) -> None:
    origin.emergency = {**(origin.emergency or {}), "effects": effect_ids}


def end_emergency(uow: UnitOfWork, c: Community) -> list[ChatChange]:
    """End the group's emergency: what to set back, from what each change found before it (a change
    whose earlier settings mona never learnt goes back to calm: Twitch modes off, Discord slow mode 0)."""
    running = emergency_of(uow, c)
    if running is None:
        raise InvalidInput(_("Emergency mode is not on."))
    origin = running[0]
    ids = list((origin.emergency or {}).get("effects") or [])
    origin.emergency = {k: v for k, v in (origin.emergency or {}).items() if k not in ("until", "by", "effects")}
    restores: list[ChatChange] = []
    for effect in uow.session.scalars(select(PlatformEffect).where(PlatformEffect.id.in_(ids)).order_by(PlatformEffect.id)):
        if effect.status in ("refused",):
            continue  # nothing was changed
        target = uow.session.scalars(select(Community).where(Community.platform == effect.platform,
                                                             Community.external_id == effect.community)).one_or_none()
        if target is None:
            continue
        previous = effect.previous or (dict(TWITCH_CALM) if effect.platform == "twitch" else {"rate_limit_per_user": 0})
        restores.append(ChatChange(target, effect.channel_id, previous))
    return restores


def emergencies_due(uow: UnitOfWork, now: dt.datetime) -> list[Community]:
    """Communities whose emergency mode has run its time (the ticker ends them)."""
    rows = uow.session.scalars(select(Community).order_by(Community.id))  # a handful of rows
    return [c for c in rows if (until := (c.emergency or {}).get("until")) and dt.datetime.fromisoformat(until) <= now]
