"""Moderation on Discord: server messages as ``ChatEvent``s, and ``ModAction``s / ``ModLogPost``s
carried out with discord.py.

Both the ``ChatGuard``'s outcome for a message and the ``effects`` of a command's reply come here,
so one code path deletes, warns, times out and bans. Discord refusing (a missing permission, a role
above mona's) never stops the rest: the refusal is logged, listed in the mod-log posts of the same
outcome, and returned so that the adapter can tell the person who ran the command.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, Protocol, cast

import aiohttp
import discord

from bot import discord_render as render
from core.effects import EffectResult, PlatformEffect
from core.i18n import _, use_language
from handlers.chat import ChatEvent, ModAction, ModLogPost, notice_holds
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
        refused: set[str] = set()
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
                    refused.add(action.kind)
            except (ValueError, LookupError) as e:
                log.warning("could not %s user %s: %s", action.kind, action.user_id, e)
                problems.append(self._problem(action, None))
                refused.add(action.kind)
            if action.notice and notice_holds(action, refused):
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
            why = refusal(error) if error is not None else _("not found on Discord")
            # Markup, not plain text: the user as a mention (shown as their name; nothing pings).
            return _("Could not carry out {action} for {user}: {why}.", action=action.kind, user=f"<@{action.user_id}>",
                     why=render.escape(why))

    async def _send(self, channel_id: str, **message: Any) -> None:
        try:
            channel = self.client.get_partial_messageable(int(channel_id))
            await channel.send(**{k: v for k, v in message.items() if v is not None}, allowed_mentions=render.NO_MENTIONS)
        except (discord.HTTPException, ValueError) as e:
            log.warning("could not post in channel %s: %s", channel_id, e)

    async def _act(self, action: ModAction, message: discord.Message | None) -> None:
        await discord_act(self.client.http, action)


class Action(Protocol):
    """A moderation action as both the guard's ``ModAction`` and a command's ``PlatformEffect`` carry it."""

    @property
    def kind(self) -> str: ...
    @property
    def community(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def channel_id(self) -> str | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def duration_s(self) -> int | None: ...
    @property
    def reason(self) -> str: ...


async def discord_act(http: discord.http.HTTPClient, action: Action) -> None:
    """One moderation action through Discord's REST API (the same calls with or without a
    gateway connection). Raises ``discord.HTTPException`` when Discord refuses."""
    reason = action.reason[:MAX_REASON] or None
    if action.kind == "delete":
        if action.channel_id and action.message_id:
            await http.delete_message(int(action.channel_id), int(action.message_id), reason=reason)
    elif action.kind == "timeout":
        seconds = min(max(action.duration_s or DEFAULT_TIMEOUT_S, 1), MAX_TIMEOUT_S)
        until = discord.utils.utcnow() + dt.timedelta(seconds=seconds)
        await http.edit_member(int(action.community), int(action.user_id), reason=reason,
                               communication_disabled_until=until.isoformat())
    elif action.kind == "untimeout":
        await http.edit_member(int(action.community), int(action.user_id), reason=reason, communication_disabled_until=None)
    elif action.kind == "ban":
        await http.ban(int(action.user_id), int(action.community), delete_message_seconds=BAN_DELETES_S, reason=reason)
    elif action.kind == "unban":
        await http.unban(int(action.user_id), int(action.community), reason=reason)
    # "warn": the notice is the warning.


async def apply_effect(http: discord.http.HTTPClient, effect: PlatformEffect, ids: render.CustomIds,
                       lang: str) -> EffectResult:
    """A command's action on Discord (``core.effects``): do it, post its notice only if it went
    through, then post the case in the mod-log with what Discord refused, if anything."""
    with use_language(lang):
        try:
            if effect.kind == "chat_mode":
                return await _chat_mode(http, effect)
            await discord_act(http, effect)
            result = EffectResult("done")
        except discord.HTTPException as e:
            if effect.kind == "delete" and isinstance(e, discord.NotFound):
                result = EffectResult("done", _("the message was already gone"))
            elif e.status >= 500:
                return EffectResult("failed", f"Discord answered {e.status}", retry=True)
            else:
                log.warning("Discord refused to %s user %s in %s: %s %s", effect.kind, effect.user_id, effect.community,
                            e.status, e.text)
                result = EffectResult("refused", refusal(e))
        except (aiohttp.ClientError, OSError) as e:
            return EffectResult("failed", f"Discord could not be reached ({type(e).__name__})", retry=True)
        if result.status == "done" and effect.notice and effect.channel_id:
            await _post(http, effect.channel_id, content=render.content(effect.notice))
        if effect.modlog_channel:
            problems = [] if result.status == "done" else [
                _("Could not carry out {action} for {user}: {why}.", action=effect.kind, user=f"<@{effect.user_id}>",
                  why=render.escape(result.detail))]
            post = ModLogPost(effect.modlog_channel, effect.modlog_title, effect.modlog_text, effect.undo_action,
                              str(effect.case_id or ""))
            undo = (Button(_("Undo"), post.undo_action_id, post.undo_value),) if post.undo_action_id else ()
            await _post(http, post.channel_id, embed=render.modlog_embed(post, problems), view=render.view(undo, ids))
        return result


async def _chat_mode(http: discord.http.HTTPClient, effect: PlatformEffect) -> EffectResult:
    """Slow mode of one channel (emergency mode): read what it was, then set it. Called inside
    ``apply_effect``'s error handling."""
    wanted = int((effect.payload or {}).get("rate_limit_per_user") or 0)
    channel = await http.get_channel(int(effect.channel_id or 0))
    before = int(cast(int, channel.get("rate_limit_per_user") or 0))
    if before != wanted:
        await http.edit_channel(int(effect.channel_id or 0), reason=effect.reason[:MAX_REASON] or None,
                                rate_limit_per_user=wanted)
    return EffectResult("done", previous={"rate_limit_per_user": before})


async def _post(http: discord.http.HTTPClient, channel_id: str, **message: Any) -> None:
    try:
        with discord.http.handle_message_parameters(**{k: v for k, v in message.items() if v is not None},
                                                    allowed_mentions=render.NO_MENTIONS) as params:
            await http.send_message(int(channel_id), params=params)
    except (discord.HTTPException, ValueError) as e:
        log.warning("could not post in channel %s: %s", channel_id, e)


class DiscordModeration:
    """``core.effects.ModerationGateway`` over Discord's REST API with the bot token: no gateway
    connection, so a command typed in Slack, the console or another process acts on a server."""

    platform = PLATFORM

    def __init__(self, token: str, api_url: str, lang: str) -> None:
        self.token, self.api_url, self.lang = token, api_url, lang
        self.ids = render.CustomIds()

    def carry_out(self, effect: PlatformEffect) -> EffectResult:
        return asyncio.run(self._carry_out(effect))

    async def _carry_out(self, effect: PlatformEffect) -> EffectResult:
        discord.http.Route.BASE = self.api_url.rstrip("/")
        http = discord.http.HTTPClient(asyncio.get_running_loop())
        try:
            await http.static_login(self.token)
        except discord.LoginFailure:
            await http.close()
            return EffectResult("failed", "Discord refused mona's token (DISCORD_TOKEN)")
        except (discord.HTTPException, aiohttp.ClientError, OSError) as e:
            await http.close()
            return EffectResult("failed", f"Discord could not be reached ({type(e).__name__})", retry=True)
        try:
            return await apply_effect(http, effect, self.ids, self.lang)
        finally:
            await http.close()


class LiveDiscordModeration:
    """The same over a connected client's own HTTP session (no second login), from any thread."""

    platform = PLATFORM

    def __init__(self, client: discord.Client, ids: render.CustomIds, lang: str, *, timeout: float = 10.0) -> None:
        self.client, self.ids, self.lang, self.timeout = client, ids, lang, timeout

    def carry_out(self, effect: PlatformEffect) -> EffectResult:
        future = asyncio.run_coroutine_threadsafe(apply_effect(self.client.http, effect, self.ids, self.lang),
                                                  self.client.loop)
        return future.result(self.timeout)


def refusal(error: discord.HTTPException) -> str:
    """Why Discord refused, in the team's language."""
    if isinstance(error, discord.Forbidden):
        return _("Discord refused: mona lacks the permission, or its role is below theirs")
    if isinstance(error, discord.NotFound):
        return _("not found on Discord")
    return f"HTTP {error.status} {error.text}".strip()
