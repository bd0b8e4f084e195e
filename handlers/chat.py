"""What chat adapters (Discord, Twitch) exchange with the moderation side, platform-neutrally.

An adapter turns every chat message it sees into a ``ChatEvent`` and gives it to a ``ChatGuard``;
the guard answers with ``ModAction`` effects (delete, warn, timeout, ban …) that the adapter
carries out at once with its own client, and mod-log posts to send. Manual moderation commands
go through ``core.effects`` instead (a job, wherever they were typed); both use the same platform
calls (``bot.discord_moderation.discord_act``, ``bot.twitch_moderation.twitch_act``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

ActionKind = Literal["delete", "warn", "timeout", "ban", "unban", "untimeout"]


@dataclass(frozen=True)
class ChatEvent:
    platform: str  # "discord" | "twitch"
    community: str  # Discord guild id, Twitch broadcaster (channel) id
    channel_id: str
    message_id: str
    user_id: str
    user_name: str
    text: str
    #: Role names or ids (Discord) / badges (Twitch: broadcaster, moderator, vip, subscriber).
    roles: frozenset[str] = frozenset()
    is_moderator: bool = False
    is_broadcaster: bool = False
    mention_count: int = 0
    #: Character spans of platform emotes in ``text`` (Twitch gives them; Discord's are in the text).
    emote_spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class ModAction:
    """One thing for the adapter to do on its platform."""

    kind: ActionKind
    community: str
    user_id: str
    channel_id: str | None = None
    message_id: str | None = None
    duration_s: int | None = None
    reason: str = ""
    #: Text to post in the channel where it happened (e.g. the warning), already in the team's language.
    notice: str | None = None
    case_id: int | None = None


def notice_holds(action: ModAction, refused: set[str]) -> bool:
    """Whether ``action``'s public notice is true after the actions tried so far: never for an
    action the platform refused, and a warning (which says the message was removed) only if the
    delete went through."""
    if action.kind in refused:
        return False
    return not (action.kind == "warn" and "delete" in refused)


@dataclass(frozen=True)
class ModLogPost:
    """A case to show in a mod-log channel (with an Undo button for timeouts and bans)."""

    channel_id: str
    title: str
    text: str
    undo_action_id: str | None = None
    undo_value: str = ""


@dataclass(frozen=True)
class Outcome:
    actions: tuple[ModAction, ...] = ()
    modlog: tuple[ModLogPost, ...] = field(default=())


class ChatGuard(Protocol):
    def on_message(self, event: ChatEvent) -> Outcome:
        """Check one chat message; fast (no I/O) for clean messages."""
        ...


class AllowAll:
    """The guard used until moderation rules exist for a community: lets everything through."""

    def on_message(self, event: ChatEvent) -> Outcome:
        return Outcome()
