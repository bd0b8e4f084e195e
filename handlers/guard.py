"""The ``Guard`` that checks every chat message (Discord and Twitch alike).

The guard holds one ``ModerationEngine`` per community in memory and asks the database only when
a message is flagged (to record the case and count strikes) or, every few seconds, whether the
community's rules changed (``/mod`` commands tell it through ``core.app.RulesCache``).

Every message it is given also counts toward the chat figures of the stream session under way
(``core.sessions.ChatTally``: in memory, written every second or so), moderated community or not.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from core.config import Settings
from core.db import Database, utcnow
from core.i18n import _, use_language
from core.moderation import service as mod
from core.moderation.engine import ChatMessage, ModerationEngine, format_duration
from core.moderation.store import Community, ModerationCase
from core.sessions import ChatTally
from handlers.chat import ChatEvent, ModAction, ModLogPost, Outcome

log = logging.getLogger("mona.moderation")
REFRESH_S = 2.0
PERMIT_S = 60.0
#: The action id of a case's Undo button (``handlers.moderation.UndoCase``).
UNDO = "mod.undo"


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
        #: The chat messages of the stream session under way, per minute.
        self.chat = ChatTally(db)

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
        self.chat.count(event.platform)
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
    reason = mod.case_reason(case)
    actions = [ModAction("delete", c.external_id, event.user_id, event.channel_id, event.message_id,
                         reason=reason, case_id=case.id)]
    if case.action == "warn":
        notice = _("{who}, your message was removed ({reason}). Warning {n}.", who=who, reason=shown, n=counting)
        actions.append(ModAction("warn", c.external_id, event.user_id, event.channel_id, notice=notice, reason=reason,
                                 case_id=case.id))
    elif case.action in ("timeout", "ban"):
        notice = (_("{who} is timed out for {duration} ({reason}).", who=who, duration=format_duration(case.duration_s or 0),
                    reason=shown) if case.action == "timeout"
                  else _("{who} is banned ({reason}).", who=who, reason=shown))
        actions.append(ModAction(case.action, c.external_id, event.user_id, event.channel_id, duration_s=case.duration_s,  # type: ignore[arg-type]
                                 reason=reason, notice=notice, case_id=case.id))
    return Outcome(tuple(actions), modlog_posts(c, case))


def modlog_posts(c: Community, case: ModerationCase) -> tuple[ModLogPost, ...]:
    """The case as the mod-log shows it, in the team's language (call inside ``use_language``):
    what was done and why, and the offending text as the person wrote it."""
    channel = mod.modlog_channel(c, automatic=case.automatic, rule=case.rule)
    if channel is None:
        return ()
    title = _("Case {id}: {action} {user}", id=case.id, action=mod.action_label(case.action), user=case.user_name)
    lines = [mod.case_reason(case)]
    if case.duration_s:
        lines.append(_("Duration: {d}", d=format_duration(case.duration_s)))
    if case.excerpt:
        lines.append(_("Message: {excerpt}", excerpt=case.excerpt))
    lines.append(_("Rule: {rule}", rule=rule_label(case.rule)) if case.rule else _("By a moderator"))
    undo = UNDO if case.action in ("timeout", "ban") else None
    return (ModLogPost(channel, title, "\n".join(lines), undo, str(case.id)),)


