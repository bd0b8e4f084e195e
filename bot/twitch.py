"""The Twitch adapter: the broadcaster's chat through EventSub (websocket) and Helix, as the bot
account, with twitchio 3.

The adapter only translates, as the Discord one does:

- every chat message (but the bot's own) becomes a ``ChatEvent`` for the injected ``ChatGuard``
  (in a worker thread); its ``Outcome`` is carried out through Helix (``bot.twitch_moderation``).
  A message the guard acted on is not run as a command.
- ``!uptime`` (Helix ``GET /streams``), ``!socials`` (``MONA_SOCIALS``) and ``!artist NAME``
  (``/artist show NAME``, answered with the name and the stage only) for everyone;
  ``!warn``, ``!timeout``, ``!ban``, ``!unban``, ``!permit``, ``!stream``, ``!cases`` mirror the
  ``/mod`` commands: the ``@login`` named first becomes a platform mention ``<@id|name>``, the
  chatter's badges go in ``Invocation.platform_roles`` (the dispatcher lets the channel's
  moderators moderate), and mentioned moderators in ``protected_ids``. The reply is one chat line
  (``bot.twitch_commands``) in answer to the command; its ``effects`` are carried out like the
  guard's. Other ``!words`` are left to other bots.

Tokens come from ``Settings`` and live in memory only (twitchio refreshes them; nothing is written
to disk); they are never logged. The core is synchronous: dispatching runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
import twitchio
from twitchio.eventsub import ChatMessageSubscription

from bot.twitch_commands import (
    MOD_COMMANDS,
    NAMES_A_USER,
    ChatCommand,
    artist_line,
    mention,
    parse_command,
    reply_line,
    split_target,
    uptime_line,
)
from bot.twitch_moderation import PLATFORM, Directory, Enforcer, LiveTwitchModeration, chat_event, twitch_error
from core.i18n import _, use_language
from handlers.chat import AllowAll, ChatEvent, ChatGuard, Outcome
from handlers.reply import Invocation, Reply

if TYPE_CHECKING:
    from bot.app import Mona

log = logging.getLogger("mona.twitch")

#: What the bot account's token must allow (README, "Connecting a Twitch channel").
BOT_SCOPES = ("chat:read", "chat:write", "moderator:manage:banned_users", "moderator:manage:chat_messages",
              "user:read:chat", "user:write:chat")


class TwitchConnectError(RuntimeError):
    """Twitch refused to let mona in (a configured token, the application's credentials) or could
    not be reached; the message names the setting or gives Twitch's answer, never a secret."""


def point_at(api_url: str, auth_url: str, eventsub_url: str) -> None:
    """Where twitchio connects: Helix, Twitch's OAuth server and EventSub's websocket, or local
    stand-ins (tests). Process-wide: twitchio keeps them as class and module attributes."""
    twitchio.http.Route.BASE = api_url.rstrip("/") + "/"
    twitchio.http.Route.ID_BASE = auth_url.rstrip("/") + "/"
    twitchio.eventsub.websockets.WSS = eventsub_url


class _NoStarletteHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "StarletteAdapter" not in str(record.msg)


def _quiet_twitchio() -> None:
    """twitchio warns about a web framework mona does not use, and logs token requests (URLs
    holding the client secret) at debug level: keep both out of mona's log."""
    client_log = logging.getLogger("twitchio.client")
    if not any(isinstance(f, _NoStarletteHint) for f in client_log.filters):
        client_log.addFilter(_NoStarletteHint())
    auth_log = logging.getLogger("twitchio.authentication")
    if auth_log.getEffectiveLevel() < logging.INFO:
        auth_log.setLevel(logging.INFO)


class MonaTwitch(twitchio.Client):
    """A twitchio client running mona in one channel: ``event_message`` feeds the ``ChatGuard``
    and answers the chat commands. ``mod_commands`` maps ``!words`` to registry commands."""

    def __init__(self, mona: Mona, *, guard: ChatGuard | None = None,
                 mod_commands: dict[str, str] | None = None, **options: Any) -> None:
        s = mona.settings
        if not (s.twitch_client_id and s.twitch_bot_id and s.twitch_channel_id and s.twitch_refresh_token):
            raise ValueError("TWITCH_CLIENT_ID, TWITCH_BOT_ID, TWITCH_CHANNEL_ID and TWITCH_REFRESH_TOKEN are required")
        _quiet_twitchio()
        super().__init__(client_id=s.twitch_client_id, client_secret=s.twitch_client_secret, bot_id=s.twitch_bot_id,
                         fetch_client_user=False, **options)
        self.mona = mona
        self.guard: ChatGuard = guard or AllowAll()
        self.mod_commands = MOD_COMMANDS if mod_commands is None else mod_commands
        self.channel_id: str = s.twitch_channel_id
        self.bot_user_id: str = s.twitch_bot_id
        self.directory = Directory(self, self.channel_id)
        self.enforcer = Enforcer(self, channel_id=self.channel_id, bot_id=self.bot_user_id, lang=s.lang)
        self._handling: set[asyncio.Task[Any]] = set()

    # -- tokens: from the settings, in memory ---------------------------------------------------

    async def load_tokens(self, path: str | None = None, /) -> None:
        s = self.mona.settings
        assert s.twitch_refresh_token is not None
        await self._add_user_token("TWITCH_BOT_TOKEN / TWITCH_REFRESH_TOKEN", s.twitch_bot_token,
                                   s.twitch_refresh_token, expected=self.bot_user_id, scopes=BOT_SCOPES)
        if s.twitch_broadcaster_refresh_token and self.channel_id != self.bot_user_id:
            await self._add_user_token("TWITCH_BROADCASTER_REFRESH_TOKEN", None, s.twitch_broadcaster_refresh_token,
                                       expected=self.channel_id, scopes=("moderation:read",))

    async def _add_user_token(self, names: str, token: str | None, refresh: str, *, expected: str,
                              scopes: tuple[str, ...]) -> None:
        # Without an access token, twitchio's validation fails and it refreshes: one round trip more.
        try:
            valid = await self.add_token(token or "-", refresh)
        except twitchio.InvalidTokenException:
            raise TwitchConnectError(f"Twitch refused {names}: create new tokens (README, Connecting a Twitch channel)") from None
        if valid.user_id != expected:
            self.http.remove_token(valid.user_id or "")
            raise TwitchConnectError(f"{names} belongs to Twitch user {valid.user_id}, not to {expected}")
        missing = sorted(set(scopes) - set(valid.scopes))
        if missing:
            log.warning("the token of Twitch user %s lacks the scopes %s; Twitch will refuse what needs them",
                        expected, ", ".join(missing))

    async def save_tokens(self, path: str | None = None, /) -> None:
        """Nothing is written: the refresh tokens in the environment are enough at the next start."""

    # -- connecting -----------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        # Commands typed anywhere act on this channel through this connected client while it runs.
        self._rest_moderation = self.mona.use_moderator(
            LiveTwitchModeration(self, self.bot_user_id, asyncio.get_running_loop()))
        subscription = ChatMessageSubscription(broadcaster_user_id=self.channel_id, user_id=self.bot_user_id)
        await self.subscribe_websocket(subscription, token_for=self.bot_user_id)
        log.info("reading the chat of Twitch channel %s as user %s", self.channel_id, self.bot_user_id)

    async def close(self, **options: Any) -> None:
        """Finish the messages being handled (a moderation action half-done helps nobody), then
        close twitchio's websocket and HTTP sessions."""
        current = asyncio.current_task()
        pending = [t for t in self._handling if t is not current]
        if pending:
            await asyncio.wait(pending, timeout=5)
        self.mona.restore_moderator("twitch", getattr(self, "_rest_moderation", None))
        await super().close(**options)

    async def event_subscription_revoked(self, payload: twitchio.SubscriptionRevoked) -> None:
        log.warning("Twitch revoked mona's chat subscription (%s): was the bot banned, or its token revoked?",
                    payload.reason.value)

    # -- chat messages --------------------------------------------------------------------------

    async def event_message(self, payload: twitchio.ChatMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handling.add(task)
        try:
            await self._on_message(payload)
        except Exception:
            log.exception("handling Twitch message %s failed", payload.id)
        finally:
            if task is not None:
                self._handling.discard(task)

    async def _on_message(self, message: twitchio.ChatMessage) -> None:
        if message.chatter.id == self.bot_user_id or message.broadcaster.id != self.channel_id:
            return
        event = chat_event(message)
        self.directory.saw(message, event)
        try:
            outcome = await asyncio.to_thread(self.guard.on_message, event)
        except Exception:
            log.exception("the chat guard failed on message %s", event.message_id)
            outcome = Outcome()
        if outcome.actions or outcome.modlog:
            await self.enforcer.carry_out(outcome.actions, outcome.modlog)
        if outcome.actions:
            return  # acted on: not a command to run
        command = parse_command(event.text)
        if command is not None:
            await self._run_command(command, event)

    async def _run_command(self, command: ChatCommand, event: ChatEvent) -> None:
        with use_language(self.mona.settings.lang):
            if command.word == "uptime":
                line = await self._uptime()
            elif command.word == "socials":
                line = self.mona.settings.socials or _("No socials are set up yet.")
            elif command.word == "artist":
                if not command.args:
                    line = _("Usage: !artist NAME")
                else:
                    reply = await self._run_dispatcher(self._invocation(event, f"/artist show {command.args}"))
                    line = artist_line(reply)
            elif command.word in self.mod_commands:
                line = await self._mirror(command, event)
            else:
                return
        await self.enforcer.say(line, reply_to=event.message_id)

    async def _uptime(self) -> str:
        try:
            streams = await self.fetch_streams(user_ids=[self.channel_id], max_results=1)
        except twitchio.HTTPException as e:
            log.warning("Twitch would not say whether the stream is live: %s", twitch_error(e))
            return _("Twitch did not answer; try again in a moment.")
        started = streams[0].started_at if streams else None
        return uptime_line(started, dt.datetime.now(dt.UTC))

    async def _mirror(self, command: ChatCommand, event: ChatEvent) -> str:
        """A ``/mod`` command typed in chat: dispatch it and return its line (what it did on
        Twitch is carried out by ``core.effects``, and the line says whether it went through)."""
        words = self.mod_commands[command.word]
        args = command.args
        protected: frozenset[str] = frozenset()
        if command.word in NAMES_A_USER and args:
            login, rest = split_target(args)
            if login is None:
                return _("Name someone with @login: !{command} @login …", command=command.word)
            try:
                user = await self.directory.user(login)
            except twitchio.HTTPException as e:
                log.warning("Twitch would not look up @%s: %s", login, twitch_error(e))
                return _("Twitch did not answer; try again in a moment.")
            if user is None:
                return _("There is no Twitch user called @{login}.", login=login)
            if await self.directory.is_moderator(user.id):
                protected = frozenset({user.id})
            args = f"{mention(user.id, user.name)} {rest}".strip()
        inv = self._invocation(event, f"/{words} {args}".strip(), protected_ids=protected)
        reply = await self._run_dispatcher(inv)
        return reply_line(reply)

    def _invocation(self, event: ChatEvent, text: str, **kw: Any) -> Invocation:
        return Invocation(platform=PLATFORM, user_id=event.user_id, user_name=event.user_name, kind="command", text=text,
                          channel_id=self.channel_id, community=self.channel_id, platform_roles=event.roles, **kw)

    async def _run_dispatcher(self, inv: Invocation) -> Reply:
        return await asyncio.to_thread(self.mona.dispatcher.dispatch, inv)


async def serve_twitch(mona: Mona, guard: ChatGuard | None = None) -> None:
    """Connect to Twitch with the settings and serve until cancelled (on the running loop, which
    Discord's client may share). The guard is mona's moderation unless another is given."""
    s = mona.settings
    point_at(s.twitch_api_url, s.twitch_auth_url, s.twitch_eventsub_url)
    try:
        async with MonaTwitch(mona, guard=guard or mona.guard) as client:
            await client.start(with_adapter=False, save_tokens=False)
    except twitchio.HTTPException as e:
        # twitchio's text holds the request's URL, which holds the client secret for token requests.
        raise TwitchConnectError(f"Twitch refused to connect: {twitch_error(e)}") from None
    except (aiohttp.ClientError, OSError) as e:
        raise TwitchConnectError(f"Twitch could not be reached: {e}") from None


def run_twitch(mona: Mona, guard: ChatGuard | None = None) -> None:
    """Connect to Twitch and serve until interrupted (blocks)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_twitch(mona, guard))
