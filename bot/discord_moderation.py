"""Moderation on Discord: server messages as ``ChatEvent``s, and ``ModAction``s / ``ModLogPost``s
carried out with discord.py.

Both the ``ChatGuard``'s outcome for a message and the ``effects`` of a command's reply come here,
so one code path deletes, warns, times out and bans. Discord refusing (a missing permission, a role
above mona's) never stops the rest: the refusal is logged, listed in the mod-log posts of the same
outcome, and returned so that the adapter can tell the person who ran the command.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import discord

from bot import discord_render as render
from core.i18n import _, use_language
from handlers.chat import ChatEvent, ModAction, ModLogPost
from handlers.reply import Button

PLATFORM = "discord"
DEFAULT_TIMEOUT_S = 600
MAX_TIMEOUT_S = 28 * 24 * 3600
#: A ban also removes the banned person's messages of the last hour (spam, raids).
BAN_DELETES_S = 3600
MAX_REASON = 512

log = logging.getLogger("mona.discord")


def chat_event(message: discord.Message) -> ChatEvent:
    """A server message as the moderation side sees it."""
    author = message.author
    guild = message.guild
    roles: frozenset[str] = frozenset()
    moderator = False
    if isinstance(author, discord.Member):
        own = [r for r in author.roles if not r.is_default()]
        roles = frozenset([r.name for r in own] + [str(r.id) for r in own])
        perms = author.guild_permissions
        moderator = perms.manage_messages or perms.moderate_members
    return ChatEvent(
        platform=PLATFORM, community=str(guild.id) if guild else "", channel_id=str(message.channel.id),
        message_id=str(message.id), user_id=str(author.id), user_name=author.display_name, text=message.content,
        roles=roles, is_moderator=moderator, is_broadcaster=guild is not None and guild.owner_id == author.id,
        mention_count=len(message.mentions) + len(message.role_mentions))


class Enforcer:
    """Carries out moderation with a connected client; texts in the team's language ``lang``."""

    def __init__(self, client: discord.Client, ids: render.CustomIds, lang: str) -> None:
        self.client = client
        self.ids = ids
        self.lang = lang

    async def carry_out(self, actions: tuple[ModAction, ...], posts: tuple[ModLogPost, ...], *,
                        message: discord.Message | None = None) -> list[str]:
        """Do each action (and post its notice), then send the mod-log posts, which also list what
        Discord refused. Returns those refusals, in the team's language, as Discord markup."""
        problems: list[str] = []
        for action in actions:
            try:
                await self._act(action, message)
            except discord.HTTPException as e:
                if action.kind == "delete" and isinstance(e, discord.NotFound):
                    log.info("message %s was already gone", action.message_id)
                else:
                    log.warning("Discord refused to %s user %s in %s: %s %s", action.kind, action.user_id,
                                action.community, e.status, e.text)
                    problems.append(self._problem(action, e))
            except (ValueError, LookupError) as e:
                log.warning("could not %s user %s: %s", action.kind, action.user_id, e)
                problems.append(self._problem(action, None))
            if action.notice:
                channel_id = action.channel_id or (str(message.channel.id) if message else None)
                if channel_id:
                    await self._send(channel_id, content=render.content(action.notice))
        for post in posts:
            with use_language(self.lang):
                undo = (Button(_("Undo"), post.undo_action_id, post.undo_value),) if post.undo_action_id else ()
            await self._send(post.channel_id, embed=render.modlog_embed(post, problems), view=render.view(undo, self.ids))
        return problems

    def _problem(self, action: ModAction, error: discord.HTTPException | None) -> str:
        with use_language(self.lang):
            if isinstance(error, discord.Forbidden):
                why = _("Discord refused: mona lacks the permission, or its role is below theirs")
            elif isinstance(error, discord.NotFound):
                why = _("not found on Discord")
            elif error is not None:
                why = f"HTTP {error.status} {error.text}".strip()
            else:
                why = _("not found on Discord")
            # Markup, not plain text: the user as a mention (shown as their name; nothing pings).
            return _("Could not carry out {action} for {user}: {why}.", action=action.kind, user=f"<@{action.user_id}>",
                     why=render.escape(why))

    async def _send(self, channel_id: str, **message: Any) -> None:
        try:
            channel = self.client.get_partial_messageable(int(channel_id))
            await channel.send(**{k: v for k, v in message.items() if v is not None}, allowed_mentions=render.NO_MENTIONS)
        except (discord.HTTPException, ValueError) as e:
            log.warning("could not post in channel %s: %s", channel_id, e)

    async def _guild(self, community: str) -> discord.Guild:
        guild = self.client.get_guild(int(community))
        return guild if guild is not None else await self.client.fetch_guild(int(community))

    async def _member(self, guild: discord.Guild, user_id: str, message: discord.Message | None) -> discord.Member:
        if message is not None and isinstance(message.author, discord.Member) and str(message.author.id) == user_id:
            return message.author
        return guild.get_member(int(user_id)) or await guild.fetch_member(int(user_id))

    async def _act(self, action: ModAction, message: discord.Message | None) -> None:
        reason = action.reason[:MAX_REASON] or None
        if action.kind == "delete":
            if action.channel_id and action.message_id:
                await self.client.get_partial_messageable(int(action.channel_id)).get_partial_message(int(action.message_id)).delete()
            return
        if action.kind == "warn":
            return  # the notice is the warning
        guild = await self._guild(action.community)
        if action.kind == "timeout":
            seconds = min(max(action.duration_s or DEFAULT_TIMEOUT_S, 1), MAX_TIMEOUT_S)
            member = await self._member(guild, action.user_id, message)
            await member.timeout(dt.timedelta(seconds=seconds), reason=reason)
        elif action.kind == "untimeout":
            member = await self._member(guild, action.user_id, message)
            await member.timeout(None, reason=reason)
        elif action.kind == "ban":
            await guild.ban(discord.Object(id=int(action.user_id)), reason=reason, delete_message_seconds=BAN_DELETES_S)
        elif action.kind == "unban":
            await guild.unban(discord.Object(id=int(action.user_id)), reason=reason)
