"""Moderation storage: each community's rules and settings, and the one case log across platforms.

A community is a Discord server or a Twitch channel. Its rules are kept as JSON (the engine's
``Rules``), with a version bumped on every change so that running guards reload them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, fields
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow
from core.moderation.engine import (
    CapsRule,
    EscalationPolicy,
    FloodRule,
    LinkPolicy,
    LinkRule,
    MentionRule,
    PatternRule,
    RepeatRule,
    Rules,
    WordRule,
)


class Community(Base):
    __tablename__ = "communities"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_communities_platform_external"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(100))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    escalation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Where cases are posted: {"default": channel, "auto": channel, "manual": channel, "<rule>": channel}.
    modlog: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    #: The community on the other platform it goes with (``discord:SERVER_ID`` for a Twitch channel whose
    #: cases are posted in that server's mod-log): emergency mode covers both.
    linked: Mapped[str | None] = mapped_column(String(120), default=None)
    #: Emergency mode while it runs: {"until": ISO time, "by": who, "effects": [ids of the chat_mode effects]}.
    emergency: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    stream_started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    stream_ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def label(self) -> str:
        return f"{self.platform}:{self.external_id}"


class ModerationCase(Base):
    __tablename__ = "moderation_cases"
    __table_args__ = (
        Index("ix_moderation_cases_user", "community_id", "user_id", "created_at"),
        Index("ix_moderation_cases_at", "community_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(100))
    user_name: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[str | None] = mapped_column(String(100))
    #: The offending part of the message as the user wrote it.
    excerpt: Mapped[str] = mapped_column(String(300), default="")
    rule: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(12))
    duration_s: Mapped[int | None] = mapped_column(default=None)
    #: A moderator's own words; for an automatic case, the facts of the violation as JSON
    #: (``{"word": "arnaque"}``, see ``Violation.facts``), rendered in the team's language when shown
    #: (``service.case_reason``). Cases recorded before that hold an English sentence.
    reason: Mapped[str] = mapped_column(String(500), default="")
    automatic: Mapped[bool] = mapped_column(default=True)
    counts: Mapped[bool] = mapped_column(default=True)  # a strike towards escalation
    moderator_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    notes: Mapped[str] = mapped_column(Text, default="")


# ---------------------------------------------------------------- rules as JSON

_PARTS: dict[str, type] = {"words": WordRule, "patterns": PatternRule, "links": LinkRule, "caps": CapsRule,
                           "repeat": RepeatRule, "flood": FloodRule, "mentions": MentionRule}


def _plain(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, LinkPolicy):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def rules_to_json(rules: Rules) -> dict[str, Any]:
    return dict(_plain(asdict(rules)))


def _part(cls: type, data: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in ("words", "allowed_domains", "exempt_roles"):
            value = frozenset(value)
        elif f.name == "patterns":
            value = tuple(value)
        elif f.name == "policy":
            value = LinkPolicy(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def rules_from_json(data: dict[str, Any]) -> Rules:
    parts = {name: _part(cls, data.get(name) or {}) for name, cls in _PARTS.items()}
    return Rules(**parts, stream_mode=bool(data.get("stream_mode", False)),
                 vip_roles=frozenset(data.get("vip_roles", ["vip"])))


def policy_from_json(data: dict[str, Any]) -> EscalationPolicy:
    kwargs = dict(data)
    if "timeouts_s" in kwargs:
        kwargs["timeouts_s"] = tuple(kwargs["timeouts_s"])
    if "delete_only" in kwargs:
        kwargs["delete_only"] = frozenset(kwargs["delete_only"])
    return EscalationPolicy(**kwargs)
