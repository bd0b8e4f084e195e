"""Moderation service: editing a community's rules, the case log, strikes, undo and figures.

Plain functions over a unit of work, like the rest of the core; the guard that checks chat
messages (``handlers.moderation.Guard``) calls ``judge`` only for a message the engine flagged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from core.db import UnitOfWork, utcnow
from core.errors import InvalidInput, NotFound
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
from core.moderation.store import Community, ModerationCase, policy_from_json, rules_from_json, rules_to_json
from core.team import Member, audit
from core.text import clean

MAX_WORDS = 5000
MAX_PATTERNS = 200


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


def _save(uow: UnitOfWork, actor: Member | None, c: Community, rules: Rules, what: str) -> None:
    c.rules = rules_to_json(rules)
    c.version += 1
    c.updated_at = utcnow()
    audit(uow, actor, "mod.rules", c.label, what)


def add_words(uow: UnitOfWork, actor: Member, c: Community, words: list[str]) -> tuple[list[str], list[str]]:
    rules = rules_of(c)
    folded = [fold_banned_word(clean(w, what=_("word"), max_len=100, allow_newlines=False)) for w in words]
    folded = [w for w in folded if w]
    if not folded:
        raise InvalidInput(_("Give the words to ban, e.g. /mod words add spoiler scam."))
    added = sorted(set(folded) - rules.words.words)
    already = sorted(set(folded) & rules.words.words)
    if len(rules.words.words) + len(added) > MAX_WORDS:
        raise InvalidInput(_("A community can ban at most {n} words.", n=MAX_WORDS))
    if added:
        new = dataclasses.replace(rules.words, words=rules.words.words | set(added))
        _save(uow, actor, c, dataclasses.replace(rules, words=new), "words + " + ", ".join(added))
    return added, already


def remove_words(uow: UnitOfWork, actor: Member, c: Community, words: list[str]) -> tuple[list[str], list[str]]:
    rules = rules_of(c)
    folded = {fold_banned_word(w) for w in words}
    removed = sorted(folded & rules.words.words)
    missing = sorted(folded - rules.words.words)
    if removed:
        new = dataclasses.replace(rules.words, words=rules.words.words - set(removed))
        _save(uow, actor, c, dataclasses.replace(rules, words=new), "words - " + ", ".join(removed))
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
    _save(uow, actor, c, dataclasses.replace(rules, patterns=new), "pattern + " + text)
    return text


def remove_pattern(uow: UnitOfWork, actor: Member, c: Community, number: str) -> str:
    rules = rules_of(c)
    patterns = list(rules.patterns.patterns)
    if not number.isdigit() or not 1 <= int(number) <= len(patterns):
        raise InvalidInput(_("Give the number of the pattern, from /mod words list (1 to {n}).", n=len(patterns)))
    gone = patterns.pop(int(number) - 1)
    _save(uow, actor, c, dataclasses.replace(rules, patterns=dataclasses.replace(rules.patterns, patterns=tuple(patterns))),
          "pattern - " + gone)
    return gone


def set_links(uow: UnitOfWork, actor: Member, c: Community, mode: str, domains: list[str]) -> Rules:
    rules = rules_of(c)
    links = rules.links
    if mode == "off":
        links = dataclasses.replace(links, policy=LinkPolicy.OFF)
    elif mode == "block":
        links = dataclasses.replace(links, policy=LinkPolicy.BLOCK)
    elif mode == "allow":
        bad = [d for d in domains if not is_domain(d.lower())]
        if not domains or bad:
            raise InvalidInput(_("{value} is not a domain; write it like youtube.com.", value=", ".join(bad) or "?"))
        links = dataclasses.replace(links, policy=LinkPolicy.ALLOW_LIST,
                                    allowed_domains=links.allowed_domains | {d.lower().removeprefix("www.") for d in domains})
    else:
        raise InvalidInput(_("Say block, allow DOMAIN or off."))
    new = dataclasses.replace(rules, links=links)
    _save(uow, actor, c, new, f"links {mode} {' '.join(domains)}".strip())
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
    _save(uow, actor, c, rules, f"limits {limits}")
    return rules


def set_stream(uow: UnitOfWork, actor: Member | None, c: Community, on: bool) -> None:
    rules = rules_of(c)
    if rules.stream_mode == on:
        raise InvalidInput(_("Stream mode is already {state}.", state=_("on") if on else _("off")))
    if on:
        c.stream_started_at, c.stream_ended_at = utcnow(), None
    else:
        c.stream_ended_at = utcnow()
    _save(uow, actor, c, dataclasses.replace(rules, stream_mode=on), f"stream mode {'on' if on else 'off'}")


def set_modlog(uow: UnitOfWork, actor: Member, c: Community, channel: str, kind: str) -> None:
    kinds = {"default", "auto", "manual", "banned_word", "pattern", "link", "caps", "repeat", "flood", "mentions"}
    if kind not in kinds:
        raise InvalidInput(_("Cases can be routed by: {kinds}.", kinds=", ".join(sorted(kinds))))
    c.modlog = {**(c.modlog or {}), kind: channel}
    audit(uow, actor, "mod.modlog", c.label, f"{kind} -> {channel}")


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
                          action=decision.action, duration_s=decision.duration_s, reason=violation.reason[:500],
                          automatic=True, counts=decision.counts_as_strike, created_at=now)
    uow.session.add(case)
    uow.session.flush()
    return case, decision, counting


def manual_case(uow: UnitOfWork, actor: Member, c: Community, *, action: str, user_id: str, user_name: str,
                duration_s: int | None, reason: str, channel_id: str | None) -> ModerationCase:
    reason = clean(reason, what=_("reason"), max_len=500)
    case = ModerationCase(community_id=c.id, platform=c.platform, user_id=user_id, user_name=user_name[:200],
                          channel_id=channel_id, rule=None, action=action, duration_s=duration_s, reason=reason,
                          automatic=False, counts=action in ("warn", "timeout", "ban"), moderator_id=actor.id,
                          created_at=utcnow())
    uow.session.add(case)
    uow.session.flush()
    audit(uow, actor, f"mod.{action}", f"{c.label} user {user_id}", reason)
    return case


def cases(uow: UnitOfWork, c: Community, *, user_id: str | None = None, since: dt.datetime | None = None,
          limit: int = 15) -> list[ModerationCase]:
    q = select(ModerationCase).where(ModerationCase.community_id == c.id)
    if user_id:
        q = q.where(ModerationCase.user_id == user_id)
    if since:
        q = q.where(ModerationCase.created_at >= since)
    return list(uow.session.scalars(q.order_by(ModerationCase.id.desc()).limit(limit)))


def get_case(uow: UnitOfWork, case_id: str) -> ModerationCase:
    ref = case_id.lstrip("#")
    case = uow.session.get(ModerationCase, int(ref)) if ref.isdigit() else None
    if case is None:
        raise NotFound(_("No case has the id {id}.", id=case_id))
    return case


def add_note(uow: UnitOfWork, actor: Member, case: ModerationCase, note: str) -> None:
    note = clean(note, what=_("note"), max_len=1000)
    stamp = utcnow().strftime("%Y-%m-%d %H:%M")
    case.notes = (case.notes + "\n" if case.notes else "") + f"[{stamp} {actor.display_name}] {note}"


def undo(uow: UnitOfWork, actor: Member, case: ModerationCase) -> str:
    """Lift a timeout or a ban; returns the action to carry out ("untimeout" or "unban")."""
    if case.action not in ("timeout", "ban"):
        raise InvalidInput(_("Only timeouts and bans can be undone; case {id} is a {action}.", id=case.id, action=case.action))
    if case.undone_at:
        raise InvalidInput(_("Case {id} was already undone.", id=case.id))
    case.undone_at, case.undone_by_id = utcnow(), actor.id
    audit(uow, actor, "mod.undo", f"case {case.id}", f"{case.action} of {case.user_id}")
    return "untimeout" if case.action == "timeout" else "unban"


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
