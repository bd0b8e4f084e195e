"""Moderation on Twitch: chat messages as ``ChatEvent``s, who is who in the channel, and
``ModAction``s carried out through Helix with the bot account's token.

Both the ``ChatGuard``'s outcome for a message and the ``effects`` of a command's reply come here,
so one code path deletes, warns, times out and bans. Twitch refusing (403: the bot is not a
moderator of the channel or lacks a scope; 400: the user is a moderator or already banned) is
logged and returned as a short line; it never stops the client. Twitch has no mod-log channel:
``ModLogPost``s are logged (cases stay in the case log, which ``/mod cases`` shows everywhere).

Error texts from Twitch are logged by their status and message only, never as the exception's
text: twitchio puts the request URL in it, which holds the client secret for token requests.

Helix's rate limit: every request mona makes to Twitch (Helix and OAuth, whether by twitchio
itself or through ``twitch_act``, ``Enforcer.say`` and ``apply_effect``) goes through the aiohttp
session of ``helix_session``, whose middleware waits for ``Ratelimit-Reset`` and sends a request
answered 429 again, at most ``RATE_LIMIT_RETRIES`` times and ``RATE_LIMIT_WAIT_S`` seconds in all;
past that the 429 stands and is handled as any refusal (an effect is tried again later).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import twitchio
from aiohttp.client_middlewares import ClientHandlerType

from bot.discord_moderation import Action
from bot.twitch_commands import chat_line
from core.effects import EffectResult, PlatformEffect, routed_elsewhere
from core.i18n import _, use_language
from handlers.chat import ChatEvent, ModAction, ModLogPost, notice_holds

PLATFORM = "twitch"
DEFAULT_TIMEOUT_S = 600
#: Twitch's longest timeout: two weeks.
MAX_TIMEOUT_S = 1_209_600
MAX_REASON = 500
#: Badges that make someone a moderator of the channel (the broadcaster included).
MODERATOR_BADGES = frozenset({"broadcaster", "moderator", "lead_moderator"})

#: How often a request Helix answered 429 is sent again, and the longest wait for the reset in all.
RATE_LIMIT_RETRIES = 2
RATE_LIMIT_WAIT_S = 3.0
#: The wait when Twitch's clock says the bucket has already refilled (or does not say when).
RATE_LIMIT_MIN_WAIT_S = 0.1

log = logging.getLogger("mona.twitch")

#: How a case's mod-log post reaches a channel on another platform: (the post, what Twitch refused).
Relay = Callable[[ModLogPost, list[str]], None]


def rate_limit_wait(headers: Any, now: float) -> float:
    """Seconds until Helix's bucket refills: ``Ratelimit-Reset`` is the Unix time it does."""
    try:
        reset = float(headers.get("Ratelimit-Reset", ""))
    except ValueError:
        return RATE_LIMIT_MIN_WAIT_S
    return max(reset - now, RATE_LIMIT_MIN_WAIT_S)


async def retry_rate_limited(request: aiohttp.ClientRequest, handler: ClientHandlerType) -> aiohttp.ClientResponse:
    """An aiohttp client middleware: a request answered 429 is sent again once the bucket has
    refilled, within the bounds above; the last answer is returned as it is."""
    waited = 0.0
    response = await handler(request)
    for _attempt in range(RATE_LIMIT_RETRIES):
        if response.status != 429:
            break
        wait = rate_limit_wait(response.headers, time.time())
        if waited + wait > RATE_LIMIT_WAIT_S:
            log.warning("Twitch's rate limit resets in %.0f s: %s %s is not tried again", wait, request.method,
                        request.url.path)
            break
        response.release()
        log.info("Twitch's rate limit: %s %s again in %.1f s", request.method, request.url.path, wait)
        await asyncio.sleep(wait)
        waited += wait
        response = await handler(request)
    return response


def helix_session() -> aiohttp.ClientSession:
    """The session every request to Twitch goes through (pass it to ``twitchio.Client(session=…)``
    and close it after the client); call on the loop that uses it."""
    return aiohttp.ClientSession(middlewares=(retry_rate_limited,))


def twitch_error(error: twitchio.HTTPException) -> str:
    """What Twitch said, without the request (whose URL may hold secrets)."""
    extra: Any = error.extra
    message = extra.get("message") if isinstance(extra, dict) else None
    return f"{error.status} {message or ''}".strip()


def emote_spans(text: str, fragments: Sequence[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    """Where the emote fragments (``(type, text)`` in message order) sit in ``text``, as Python
    slices ``text[start:end]``."""
    spans: list[tuple[int, int]] = []
    at = 0
    for kind, piece in fragments:
        start = text.find(piece, at) if piece else -1
        if start < 0:
            continue
        if kind == "emote":
            spans.append((start, start + len(piece)))
        at = start + len(piece)
    return tuple(spans)


def platform_roles(badges: frozenset[str]) -> frozenset[str]:
    """The badges as mona reads roles: a lead moderator is a moderator."""
    return badges | {"moderator"} if "lead_moderator" in badges else badges


def chat_event(message: twitchio.ChatMessage) -> ChatEvent:
    """A chat message as the moderation side sees it."""
    badges = platform_roles(frozenset(b.set_id for b in message.badges))
    broadcaster = message.chatter.id == message.broadcaster.id or "broadcaster" in badges
    if broadcaster:
        badges |= {"broadcaster"}
    fragments = [(f.type, f.text) for f in message.fragments]
    return ChatEvent(
        platform=PLATFORM, community=message.broadcaster.id, channel_id=message.broadcaster.id, message_id=message.id,
        user_id=message.chatter.id, user_name=message.chatter.display_name or message.chatter.name or message.chatter.id,
        text=message.text, roles=badges, is_moderator=broadcaster or bool(badges & MODERATOR_BADGES),
        is_broadcaster=broadcaster, mention_count=sum(1 for f in message.fragments if f.type == "mention"),
        emote_spans=emote_spans(message.text, fragments))


@dataclass(frozen=True)
class TwitchUser:
    id: str
    login: str
    name: str


class Directory:
    """Who is who in the channel, with few Helix calls.

    Logins → users: from chat (chatters and mentions seen) or Helix ``GET /users?login=``, kept
    (at most ``size``). Moderators: Helix ``GET /moderation/moderators``, which Twitch answers only
    with the broadcaster's own token (the bot is the broadcaster, or
    ``TWITCH_BROADCASTER_REFRESH_TOKEN`` is set), kept ``ttl`` seconds and asked for by every chat
    message without a moderator badge (``MonaTwitch``) as well as for the people commands name;
    when Twitch refuses, the last list (or the badges) serves and Twitch is asked again after
    ``ttl``. Without that token: the moderator badges seen in chat this session. The broadcaster
    is always a moderator."""

    def __init__(self, client: twitchio.Client, channel_id: str, *, ttl: float = 60.0, size: int = 5000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.channel_id = channel_id
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._users: OrderedDict[str, TwitchUser] = OrderedDict()
        self._badged: OrderedDict[str, bool] = OrderedDict()
        #: (until when, the ids) of the last list Twitch gave.
        self._moderators: tuple[float, frozenset[str]] | None = None
        self._lock = asyncio.Lock()
        #: After Twitch refused to list them: not asked again before then (and warned once).
        self._retry_at = 0.0
        self._refused = False

    def _keep(self, cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self.size:
            cache.popitem(last=False)

    def saw(self, message: twitchio.ChatMessage, event: ChatEvent) -> None:
        """Learn from a chat message: its author (and whether they wear a moderator badge now), and
        the people it mentions."""
        chatter = message.chatter
        if chatter.name:
            self._keep(self._users, chatter.name.lower(), TwitchUser(chatter.id, chatter.name.lower(), event.user_name))
        self._keep(self._badged, event.user_id, event.is_moderator)
        for fragment in message.fragments:
            who = fragment.mention
            if who is not None and who.name:
                self._keep(self._users, who.name.lower(), TwitchUser(who.id, who.name.lower(), who.display_name or who.name))

    async def user(self, login: str) -> TwitchUser | None:
        """The Twitch user called ``login``, or ``None`` when there is none."""
        login = login.lower()
        if login in self._users:
            return self._users[login]
        found = await self.client.fetch_users(logins=[login])
        if not found:
            return None
        user = TwitchUser(found[0].id, (found[0].name or login).lower(), found[0].display_name or login)
        self._keep(self._users, login, user)
        return user

    async def is_moderator(self, user_id: str) -> bool:
        """Whether ``user_id`` moderates the channel: Twitch's list when mona may ask for it
        (every chat message without a moderator badge asks, through the cache), else the badges
        seen in chat."""
        if user_id == self.channel_id:
            return True
        moderators = await self._helix_moderators()
        if moderators is not None:
            return user_id in moderators
        return self._badged.get(user_id, False)

    async def _helix_moderators(self) -> frozenset[str] | None:
        if self.channel_id not in self.client.tokens:
            return None
        async with self._lock:
            now = self.clock()
            if self._moderators is not None and self._moderators[0] > now:
                return self._moderators[1]
            if self._retry_at > now:
                return self._moderators[1] if self._moderators else None
            broadcaster = self.client.create_partialuser(self.channel_id)
            try:
                ids = frozenset([u.id async for u in broadcaster.fetch_moderators(first=100)])
            except (twitchio.HTTPException, aiohttp.ClientError, OSError) as e:
                if not self._refused:
                    why = twitch_error(e) if isinstance(e, twitchio.HTTPException) else type(e).__name__
                    log.warning("Twitch would not list the channel's moderators (%s); using the last list or the "
                                "badges seen in chat, and asking again every %.0f s", why, self.ttl)
                self._refused = True
                self._retry_at = now + self.ttl
                return self._moderators[1] if self._moderators else None
            self._refused = False
            self._moderators = (self.clock() + self.ttl, ids)
            return ids


class Enforcer:
    """Speaks in the channel and carries out moderation as the bot account; texts in ``lang``."""

    def __init__(self, client: twitchio.Client, *, channel_id: str, bot_id: str, lang: str,
                 relay: Relay | None = None) -> None:
        self.client = client
        self.channel_id = channel_id
        self.bot_id = bot_id
        self.lang = lang
        #: Posts a case in a mod-log on another platform (a Discord channel), from any thread.
        self.relay = relay

    async def say(self, text: str, *, reply_to: str | None = None, channel_id: str | None = None) -> None:
        """Post ``text`` as one chat line (``chat_line``); a refusal is logged."""
        line = chat_line(text)
        if not line:
            return
        channel = self.client.create_partialuser(channel_id or self.channel_id)
        try:
            sent = await channel.send_message(line, sender=self.bot_id, token_for=self.bot_id,
                                              reply_to_message_id=reply_to)
        except twitchio.HTTPException as e:
            log.warning("Twitch refused a chat message in %s: %s", channel.id, twitch_error(e))
            return
        if not sent.sent:
            log.info("Twitch dropped a chat message in %s: %s %s", channel.id, sent.dropped_code, sent.dropped_message)

    async def carry_out(self, actions: tuple[ModAction, ...], posts: tuple[ModLogPost, ...]) -> list[str]:
        """Do each action (and post its notice); log the mod-log posts. Returns what Twitch refused,
        as short lines in the team's language."""
        problems: list[str] = []
        refused: set[str] = set()
        for action in actions:
            try:
                await self._act(action)
            except twitchio.HTTPException as e:
                if action.kind == "delete" and e.status == 404:
                    log.info("message %s was already gone", action.message_id)
                else:
                    log.warning("Twitch refused to %s user %s in %s: %s", action.kind, action.user_id,
                                action.community, twitch_error(e))
                    with use_language(self.lang):
                        problems.append(_("Twitch refused to {action} {user}: {why}", action=action.kind,
                                          user=action.user_id, why=twitch_error(e)))
                    refused.add(action.kind)
            if action.notice and notice_holds(action, refused):
                await self.say(action.notice, channel_id=action.community or None)
        for post in posts:
            if self.relay is not None and routed_elsewhere(post.channel_id, PLATFORM):
                try:
                    await asyncio.to_thread(self.relay, post, problems)
                except Exception:  # the case is in the case log; the post is what failed
                    log.exception("could not post case %s in the mod-log %s", post.undo_value, post.channel_id)
                continue
            # Twitch has no mod-log channel; the case itself is in the case log.
            log.info("mod-log (twitch): %s — %s", post.title, post.text)
        return problems

    async def _act(self, action: ModAction) -> None:
        await twitch_act(self.client, self.bot_id, action, default_channel=self.channel_id)


async def twitch_act(client: twitchio.Client, bot_id: str, action: Action, *, default_channel: str = "") -> None:
    """One moderation action through Helix as the bot (the same calls with or without a chat
    connection). Raises ``twitchio.HTTPException`` when Twitch refuses."""
    channel = client.create_partialuser(action.community or default_channel)
    reason = action.reason[:MAX_REASON] or None
    if action.kind == "delete":
        if action.message_id:
            await channel.delete_chat_messages(moderator=bot_id, message_id=action.message_id)
    elif action.kind == "timeout":
        seconds = min(max(action.duration_s or DEFAULT_TIMEOUT_S, 1), MAX_TIMEOUT_S)
        await channel.timeout_user(moderator=bot_id, user=action.user_id, duration=seconds, reason=reason)
    elif action.kind == "ban":
        await channel.ban_user(moderator=bot_id, user=action.user_id, reason=reason)
    elif action.kind in ("unban", "untimeout"):
        await channel.unban_user(moderator=bot_id, user_id=action.user_id)
    # "warn": the notice is the warning.


async def apply_effect(client: twitchio.Client, bot_id: str, effect: PlatformEffect) -> EffectResult:
    """A command's action on Twitch (``core.effects``): do it as the bot, then post its notice in
    the channel's chat only if it went through. A @login typed outside Twitch is looked up first."""
    try:
        if effect.kind == "chat_mode":
            return await _chat_mode(client, bot_id, effect)
        if not effect.user_id.isdigit() and effect.kind != "delete":
            users = await client.fetch_users(logins=[effect.user_id.lstrip("@").lower()])
            if not users:
                return EffectResult("refused", f"there is no Twitch user called @{effect.user_id}")
            effect.user_id = str(users[0].id)
        await twitch_act(client, bot_id, effect)
    except twitchio.HTTPException as e:
        if effect.kind == "delete" and e.status == 404:
            return EffectResult("done", "the message was already gone")
        if e.status >= 500 or e.status == 429:  # 429: still rate-limited after waiting (retry_rate_limited)
            return EffectResult("failed", f"Twitch answered {e.status}", retry=True)
        log.warning("Twitch refused to %s user %s in %s: %s", effect.kind, effect.user_id, effect.community, twitch_error(e))
        return EffectResult("refused", twitch_error(e))
    except (aiohttp.ClientError, OSError) as e:
        return EffectResult("failed", f"Twitch could not be reached ({type(e).__name__})", retry=True)
    if effect.notice:
        line = chat_line(effect.notice)
        try:
            if line:
                await client.create_partialuser(effect.community).send_message(line, sender=bot_id, token_for=bot_id)
        except twitchio.HTTPException as e:
            log.warning("could not post the notice of effect %s: %s", effect.id, twitch_error(e))
    if effect.modlog_channel and routed_elsewhere(effect.modlog_channel, PLATFORM) is None:
        # Twitch has no mod-log channel; the case itself is in the case log (a route to a Discord
        # channel is posted there once this is settled: ``jobs.effects``).
        log.info("mod-log (twitch): %s — %s", effect.modlog_title, effect.modlog_text)
    return EffectResult("done")


#: The chat settings emergency mode changes, and so restores.
CHAT_MODE_FIELDS = ("follower_mode", "follower_mode_duration", "slow_mode", "slow_mode_wait_time")


async def _chat_mode(client: twitchio.Client, bot_id: str, effect: PlatformEffect) -> EffectResult:
    """Followers-only and slow chat (emergency mode) through Helix's chat settings: read what they
    were, then set them. Raises like ``twitch_act``; called inside ``apply_effect``'s handling."""
    channel = client.create_partialuser(effect.community)
    before = await channel.fetch_chat_settings(moderator=bot_id, token_for=bot_id)
    previous = {f: getattr(before, f) for f in CHAT_MODE_FIELDS}
    wanted = {k: v for k, v in (effect.payload or {}).items() if k in CHAT_MODE_FIELDS}
    # Helix refuses a duration with its mode off: a mode switched off is sent alone.
    for mode, duration in (("follower_mode", "follower_mode_duration"), ("slow_mode", "slow_mode_wait_time")):
        if wanted.get(mode) is False or wanted.get(duration) is None:
            wanted.pop(duration, None)
    await channel.update_chat_settings(moderator=bot_id, token_for=bot_id, **wanted)
    return EffectResult("done", previous=previous)


class TwitchModeration:
    """``core.effects.ModerationGateway`` over Helix with the bot account's refresh token: no chat
    connection, so a command typed in Slack, the console or another process acts on a channel."""

    platform = PLATFORM

    def __init__(self, *, client_id: str, client_secret: str | None, bot_id: str, bot_token: str | None,
                 refresh_token: str, api_url: str, auth_url: str) -> None:
        self.client_id, self.client_secret, self.bot_id = client_id, client_secret, bot_id
        self.bot_token, self.refresh_token = bot_token, refresh_token
        self.api_url, self.auth_url = api_url, auth_url

    def carry_out(self, effect: PlatformEffect) -> EffectResult:
        return asyncio.run(self._carry_out(effect))

    async def _carry_out(self, effect: PlatformEffect) -> EffectResult:
        twitchio.http.Route.BASE = self.api_url.rstrip("/") + "/"
        twitchio.http.Route.ID_BASE = self.auth_url.rstrip("/") + "/"
        session = helix_session()
        client = twitchio.Client(client_id=self.client_id, client_secret=self.client_secret, bot_id=self.bot_id,
                                 fetch_client_user=False, session=session)
        try:
            try:
                await client.login(load_tokens=False, save_tokens=False)
                await client.add_token(self.bot_token or "-", self.refresh_token)
            except twitchio.InvalidTokenException:
                return EffectResult("failed", "Twitch refused mona's tokens (TWITCH_REFRESH_TOKEN)")
            except (twitchio.HTTPException, aiohttp.ClientError, OSError) as e:
                return EffectResult("failed", f"Twitch could not be reached ({type(e).__name__})", retry=True)
            return await apply_effect(client, self.bot_id, effect)
        finally:
            await client.close()
            await session.close()


class LiveTwitchModeration:
    """The same over the connected client (its tokens and session) on its loop, from any thread."""

    platform = PLATFORM

    def __init__(self, client: twitchio.Client, bot_id: str, loop: asyncio.AbstractEventLoop, *,
                 timeout: float = 10.0) -> None:
        self.client, self.bot_id, self.loop, self.timeout = client, bot_id, loop, timeout

    def carry_out(self, effect: PlatformEffect) -> EffectResult:
        future = asyncio.run_coroutine_threadsafe(apply_effect(self.client, self.bot_id, effect), self.loop)
        return future.result(self.timeout)

    def health_problem(self) -> str | None:
        """What is wrong with the connected client (``MonaTwitch.health_problem``), for ``/healthz``."""
        problem: Callable[[], str | None] | None = getattr(self.client, "health_problem", None)
        return problem() if problem is not None else None
