"""Moderation actions on a platform decided by a command, wherever it was typed.

A ``/mod ban @x spam --in twitch:123`` typed in Slack or the console cannot be carried out by the
adapter it came through. The command writes a ``PlatformEffect`` row in its own transaction; after
commit a job hands it to the platform's ``ModerationGateway`` (Discord's REST API, Twitch's Helix:
no gateway connection needed), which records what really happened: done, refused by the platform
(and why), or failed. The command's reply says which, or that it is queued when the worker has not
got to it yet. A public notice ("@x is banned") is posted only once the action went through.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UnitOfWork, utcnow
from core.i18n import _

log = logging.getLogger("mona.effects")

#: "log" only posts the mod-log entry (a Twitch case in a Discord mod-log); "chat_mode" changes a chat's
#: settings (``payload``: Twitch's Helix chat settings, or Discord's ``rate_limit_per_user`` of ``channel_id``)
#: and keeps what they were in ``previous``, for emergency mode.
EffectKind = Literal["delete", "warn", "timeout", "untimeout", "ban", "unban", "log", "chat_mode"]
EffectStatus = Literal["queued", "done", "refused", "failed"]
PLATFORM_NAMES = {"discord": "Discord", "twitch": "Twitch"}
#: How long a command waits for its effect before answering "queued" (chat answers within 3 s).
WAIT_S = 2.0


class PlatformEffect(Base):
    __tablename__ = "platform_effects"
    __table_args__ = (Index("ix_platform_effects_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    community: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(40))
    user_name: Mapped[str] = mapped_column(String(100), default="")
    channel_id: Mapped[str | None] = mapped_column(String(40), default=None)
    message_id: Mapped[str | None] = mapped_column(String(64), default=None)
    duration_s: Mapped[int | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(String(500), default="")
    #: Posted in ``channel_id`` once the action went through (never when the platform refused it).
    notice: Mapped[str | None] = mapped_column(String(500), default=None)
    case_id: Mapped[int | None] = mapped_column(default=None)
    #: The case as posted in the community's mod-log channel, once carried out (with what was refused).
    modlog_channel: Mapped[str | None] = mapped_column(String(40), default=None)
    modlog_title: Mapped[str] = mapped_column(String(200), default="")
    modlog_text: Mapped[str] = mapped_column(String(2000), default="")
    #: The action id of the mod-log post's Undo button (``None``: no button).
    undo_action: Mapped[str | None] = mapped_column(String(40), default=None)
    #: What a "chat_mode" effect sets, and what the platform had before (to restore it).
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    previous: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    detail: Mapped[str] = mapped_column(String(500), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(default=None)


@dataclass(frozen=True)
class EffectResult:
    """What a platform made of an action: done, refused (``detail`` says why), or try again later."""

    status: EffectStatus
    detail: str = ""
    retry: bool = False
    #: A "chat_mode" effect's settings as they were before it changed them.
    previous: dict[str, Any] | None = None


class ModerationGateway(Protocol):
    """A platform's moderation over its REST API (the real client; tests point it at a stand-in)."""

    platform: str

    def carry_out(self, effect: PlatformEffect) -> EffectResult:
        """Do the action, then post its notice if it went through. Never raises for a refusal."""
        ...


class EffectRunner(Protocol):
    """How commands start effects and wait a little for their outcome (``core.app.Services``)."""

    def start(self, effect_id: int) -> None: ...

    def outcome(self, effect_id: int, *, wait_s: float) -> PlatformEffect | None: ...


def request(uow: UnitOfWork, *, platform: str, community: str, kind: EffectKind, user_id: str, user_name: str = "",
            channel_id: str | None = None, message_id: str | None = None, duration_s: int | None = None,
            reason: str = "", notice: str | None = None, case_id: int | None = None,
            modlog: tuple[str, str, str, str | None] | None = None,
            payload: dict[str, Any] | None = None) -> PlatformEffect:
    """Record an action to carry out on ``platform`` once the current transaction commits;
    ``modlog`` is (channel id, title, text, undo action id) of the case's mod-log post."""
    channel, title, text, undo = modlog or (None, "", "", None)
    effect = PlatformEffect(platform=platform, community=community, kind=kind, user_id=user_id, user_name=user_name[:100],
                            channel_id=channel_id, message_id=message_id, duration_s=duration_s, reason=reason[:500],
                            notice=notice[:500] if notice else None, case_id=case_id, status="queued",
                            modlog_channel=channel, modlog_title=title[:200], modlog_text=text[:2000], undo_action=undo,
                            payload=payload)
    uow.session.add(effect)
    uow.session.flush()
    return effect


def record_result(effect: PlatformEffect, result: EffectResult) -> None:
    effect.attempts += 1
    if result.retry:
        effect.detail = result.detail[:500]
        return
    effect.status, effect.detail, effect.done_at = result.status, result.detail[:500], utcnow()
    if result.previous is not None:
        effect.previous = result.previous


def routed_elsewhere(channel: str | None, platform: str) -> str | None:
    """The platform of a mod-log route on another platform (``discord:123`` for a Twitch case), if it is."""
    if not channel or ":" not in channel:
        return None
    there = channel.partition(":")[0]
    return there if there in PLATFORM_NAMES and there != platform else None


def relay_modlog(uow: UnitOfWork, *, source: str, route: str, title: str, text: str, undo: str | None,
                 case_id: int | None, problems: list[str]) -> PlatformEffect:
    """A case's mod-log post on another platform (``route`` is ``discord:CHANNEL_ID``), as an effect
    of its own: headed with the platform the case is on, with what that platform refused."""
    platform, _sep, channel = route.partition(":")
    where = PLATFORM_NAMES.get(source, source)
    lines = [text, *problems]
    return request(uow, platform=platform, community="", kind="log", user_id="", case_id=case_id,
                   modlog=(channel, f"{where} · {title}", "\n".join(line for line in lines if line), undo))


def after_commit(runner: EffectRunner | None, effect: PlatformEffect, *, wait_s: float = WAIT_S) -> Callable[[], str]:
    """What a command defers (``Context.defer``): start the effect's job once committed, wait a
    little for its outcome, and say what happened."""
    effect_id, platform = effect.id, effect.platform

    def carry_out() -> str:
        if runner is None:
            return describe(None, platform=platform)
        try:
            runner.start(effect_id)
        except Exception:  # the queue is down: the effect is saved, and the sweep enqueues it later
            log.warning("effect %s saved but not enqueued; the sweep will", effect_id, exc_info=True)
            return describe(None, platform=platform)
        return describe(runner.outcome(effect_id, wait_s=wait_s), platform=platform)

    return carry_out


def describe(effect: PlatformEffect | None, *, platform: str) -> str:
    """What the person who typed the command is told about the action."""
    where = PLATFORM_NAMES.get(platform, platform)
    if effect is None or effect.status == "queued":
        return _("Queued: {platform} will carry it out as soon as a worker is free.", platform=where)
    if effect.status == "done":
        return _("Done on {platform}.", platform=where)
    if effect.status == "refused":
        return _("{platform} refused: {why}", platform=where, why=effect.detail)
    return _("Not carried out on {platform}: {why}", platform=where, why=effect.detail)
