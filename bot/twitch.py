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
- A moderator is known by badge or, when ``TWITCH_BROADCASTER_REFRESH_TOKEN`` is set, by Twitch's
  list of the channel's moderators (``Directory``), which every message without a moderator
  badge consults: a moderator is never flagged for a message that happens to carry no badge.
- One line per command: a timeout, ban or warning Twitch carried out is announced by its public
  notice, which is then the answer (``ANNOUNCED``); people who do not moderate the channel get at
  most one refusal a minute, without configuration hints (those are for moderators).
- Shared chat: a message sent in another channel of the shared session is that channel's to
  moderate; mona neither checks nor answers it here.
- While a stream session is under way (``core.sessions``), the live stream's viewer count
  (Helix ``GET /streams``) is kept for its report about once a minute (``viewers_every``).
- A revoked chat subscription is made again, with backoff (``resubscribe_delays``);
  ``subscription_state`` and ``health_problem`` say how it stands, and the chat is told once when
  mona could not subscribe again.

Tokens come from ``Settings`` and live in memory only (twitchio refreshes them; nothing is written
to disk); they are never logged. The core is synchronous: dispatching runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import twitchio
from twitchio.eventsub import ChatMessageSubscription

from bot.twitch_commands import (
    ANNOUNCED,
    MOD_COMMANDS,
    NAMES_A_USER,
    ChatCommand,
    RefusalLimiter,
    artist_line,
    in_chat_terms,
    mention,
    parse_command,
    reply_line,
    split_target,
    uptime_line,
)
from bot.twitch_moderation import (
    PLATFORM,
    Directory,
    Enforcer,
    LiveTwitchModeration,
    chat_event,
    helix_session,
    twitch_error,
)
from core import effects, sessions
from core.errors import PermissionDenied, UserError
from core.i18n import _, use_language
from handlers.chat import AllowAll, ChatEvent, ChatGuard, Outcome
from handlers.registry import Dispatcher
from handlers.reply import Invocation, Reply

if TYPE_CHECKING:
    from bot.app import Mona

log = logging.getLogger("mona.twitch")

#: What the bot account's token must allow (README, "Connecting a Twitch channel").
BOT_SCOPES = ("chat:read", "chat:write", "moderator:manage:banned_users", "moderator:manage:chat_messages",
              "moderator:manage:chat_settings",
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


SubscriptionState = Literal["connecting", "subscribed", "resubscribing", "lost"]
#: How often the viewer count is asked while a stream session is under way, in seconds.
VIEWERS_EVERY = 60.0


@dataclasses.dataclass(frozen=True)
class Refusal(Reply):
    """A reply refusing a command to someone without the permission it needs."""


class ChatDispatcher(Dispatcher):
    """mona's dispatcher, telling refusals (``Refusal``) from other errors: chat answers them
    differently to viewers (``MonaTwitch._refuse``)."""

    def error(self, inv: Invocation, e: UserError) -> Reply:
        reply = super().error(inv, e)
        if isinstance(e, PermissionDenied):
            return Refusal(text=reply.text, error=True)
        return reply


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
    and answers the chat commands. ``mod_commands`` maps ``!words`` to registry commands.
    Construct it on the loop it runs on (its HTTP session is made there)."""

    #: Seconds before each attempt to subscribe again after Twitch revoked the chat subscription;
    #: after the last one fails mona stays up, deaf, and says so (``subscription_state == "lost"``).
    resubscribe_delays: tuple[float, ...] = (1.0, 5.0, 15.0, 30.0)

    def __init__(self, mona: Mona, *, guard: ChatGuard | None = None,
                 mod_commands: dict[str, str] | None = None, viewers_every: float = VIEWERS_EVERY,
                 **options: Any) -> None:
        s = mona.settings
        if not (s.twitch_client_id and s.twitch_bot_id and s.twitch_channel_id and s.twitch_refresh_token):
            raise ValueError("TWITCH_CLIENT_ID, TWITCH_BOT_ID, TWITCH_CHANNEL_ID and TWITCH_REFRESH_TOKEN are required")
        _quiet_twitchio()
        self._session = helix_session()  # Helix's 429 waited out for every request (bot.twitch_moderation)
        super().__init__(client_id=s.twitch_client_id, client_secret=s.twitch_client_secret, bot_id=s.twitch_bot_id,
                         fetch_client_user=False, session=self._session, **options)
        self.mona = mona
        self.guard: ChatGuard = guard or AllowAll()
        self.mod_commands = MOD_COMMANDS if mod_commands is None else mod_commands
        self.dispatcher = ChatDispatcher(mona.dispatcher.app, mona.dispatcher.registry)
        self.channel_id: str = s.twitch_channel_id
        self.bot_user_id: str = s.twitch_bot_id
        self.directory = Directory(self, self.channel_id)
        self.enforcer = Enforcer(self, channel_id=self.channel_id, bot_id=self.bot_user_id, lang=s.lang,
                                 relay=functools.partial(mona.relay_modlog, PLATFORM))
        self.refusals = RefusalLimiter()
        self.subscription_state: SubscriptionState = "connecting"
        self._revoked_because = ""
        self._resubscribing: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[Any]] = set()
        self.viewers_every = viewers_every
        self._watching: asyncio.Task[None] | None = None

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
        await self._subscribe()
        self.subscription_state = "subscribed"
        log.info("reading the chat of Twitch channel %s as user %s", self.channel_id, self.bot_user_id)
        self._watching = asyncio.create_task(self._watch_viewers(), name="mona: Twitch viewer counts")

    async def _subscribe(self) -> None:
        subscription = ChatMessageSubscription(broadcaster_user_id=self.channel_id, user_id=self.bot_user_id)
        await self.subscribe_websocket(subscription, token_for=self.bot_user_id)

    async def close(self, **options: Any) -> None:
        """Finish the messages being handled (a moderation action half-done helps nobody), then
        close twitchio's websocket and HTTP sessions."""
        current = asyncio.current_task()
        for task in (self._resubscribing, self._watching):
            if task is not None and task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        pending = [t for t in self._handling if t is not current]
        if pending:
            await asyncio.wait(pending, timeout=5)
        self.mona.restore_moderator("twitch", getattr(self, "_rest_moderation", None))
        try:
            await super().close(**options)
        finally:
            await self._session.close()

    # -- the chat subscription --------------------------------------------------------------------

    def health_problem(self) -> str | None:
        """What keeps mona from reading the chat, for the health check; ``None`` when it reads it
        (or is still connecting)."""
        if self.subscription_state == "resubscribing":
            return f"Twitch revoked the chat subscription ({self._revoked_because}); subscribing again"
        if self.subscription_state == "lost":
            return (f"mona no longer reads the chat of Twitch channel {self.channel_id}: Twitch revoked the "
                    f"subscription ({self._revoked_because}) and subscribing again failed")
        return None

    async def event_subscription_revoked(self, payload: twitchio.SubscriptionRevoked) -> None:
        if payload.type != ChatMessageSubscription.type:
            return
        self._revoked_because = payload.reason.value
        log.warning("Twitch revoked mona's chat subscription (%s): was the bot banned, or its token revoked? "
                    "Subscribing again", self._revoked_because)
        if self._resubscribing is None or self._resubscribing.done():
            self.subscription_state = "resubscribing"
            self._resubscribing = asyncio.create_task(self._resubscribe(), name="mona: Twitch chat resubscription")

    async def _resubscribe(self) -> None:
        for attempt, delay in enumerate(self.resubscribe_delays, 1):
            await asyncio.sleep(delay)
            try:
                await self._subscribe()
            except Exception as e:  # noqa: BLE001 - whatever stopped it, the next attempt may do better
                why = twitch_error(e) if isinstance(e, twitchio.HTTPException) else type(e).__name__
                log.warning("subscribing again to the chat of Twitch channel %s failed (attempt %d of %d): %s",
                            self.channel_id, attempt, len(self.resubscribe_delays), why)
                continue
            self.subscription_state = "subscribed"
            log.info("reading the chat of Twitch channel %s again", self.channel_id)
            return
        self.subscription_state = "lost"
        log.error("mona could not subscribe again to the chat of Twitch channel %s (revoked: %s); it no longer "
                  "reads or moderates that chat until restarted", self.channel_id, self._revoked_because)
        with use_language(self.mona.settings.lang):
            line = _("Moderators: mona no longer reads this chat (Twitch ended its subscription: {reason}) and "
                     "could not subscribe again; nothing is moderated until mona is restarted.",
                     reason=self._revoked_because)
        await self.enforcer.say(line)

    # -- the audience of a stream session -------------------------------------------------------

    async def _watch_viewers(self) -> None:
        """Every ``viewers_every`` seconds, while a session is under way, keep the viewer count."""
        while True:
            try:
                await self.sample_viewers()
            except Exception:
                log.exception("keeping the Twitch viewer count failed")
            await asyncio.sleep(self.viewers_every)

    async def sample_viewers(self) -> int | None:
        """Ask Twitch how many watch the live stream and keep it for the session under way; the
        count kept, or ``None`` (no session, the channel offline, Twitch not answering)."""
        db = self.mona.db

        def session_under_way() -> int | None:
            with db.uow() as uow:
                return sessions.under_way(uow)

        if await asyncio.to_thread(session_under_way) is None:
            return None
        try:
            streams = await self.fetch_streams(user_ids=[self.channel_id], max_results=1)
        except twitchio.HTTPException as e:
            log.warning("Twitch would not say how many watch: %s", twitch_error(e))
            return None
        if not streams:
            return None  # OBS streams, Twitch does not show it live (yet)
        viewers, at = int(streams[0].viewer_count), dt.datetime.now(dt.UTC)

        def keep() -> int | None:
            with db.uow() as uow:
                kept = sessions.record_viewers(uow, viewers, platform=PLATFORM, at=at)
                uow.commit()
                return kept

        return viewers if await asyncio.to_thread(keep) is not None else None

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
        source = message.source_broadcaster
        if source is not None and source.id != self.channel_id:
            return  # shared chat: sent in another channel, which moderates it
        event = chat_event(message)
        self.directory.saw(message, event)
        if not event.is_moderator and await self.directory.is_moderator(event.user_id):
            # A moderator by Twitch's list whose message carries no moderator badge.
            event = dataclasses.replace(event, is_moderator=True, roles=event.roles | {"moderator"})
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
                answer = await self._mirror(command, event)
                if answer is None:
                    return
                line = answer
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

    async def _mirror(self, command: ChatCommand, event: ChatEvent) -> str | None:
        """A ``/mod`` command typed in chat: dispatch it and return its line, or ``None`` when
        nothing is to be posted (what it did on Twitch is carried out by ``core.effects``, and
        the line says whether it went through)."""
        words = self.mod_commands[command.word]
        args = command.args
        protected: frozenset[str] = frozenset()
        if command.word in NAMES_A_USER and args:
            login, rest = split_target(args)
            if login is None:
                return self._refuse(event, _("Name someone with @login: !{command} @login …", command=command.word))
            try:
                user = await self.directory.user(login)
            except twitchio.HTTPException as e:
                log.warning("Twitch would not look up @%s: %s", login, twitch_error(e))
                return self._refuse(event, _("Twitch did not answer; try again in a moment."))
            if user is None:
                return self._refuse(event, _("There is no Twitch user called @{login}.", login=login))
            if await self.directory.is_moderator(user.id):
                protected = frozenset({user.id})
            args = f"{mention(user.id, user.name)} {rest}".strip()
        inv = self._invocation(event, f"/{words} {args}".strip(), protected_ids=protected)
        reply = await self._run_dispatcher(inv)
        if isinstance(reply, Refusal) and not event.is_moderator:
            # Not the full refusal: its hints (roles, MONA_ADMINS) are for the channel's moderators.
            return self._refuse(event, _("Only the channel's moderators can use !{command}.", command=command.word))
        line = in_chat_terms(reply_line(reply), self.mod_commands, self.dispatcher.registry.commands)
        if reply.error:
            return self._refuse(event, line)
        if command.word in ANNOUNCED and _done_footer() in (reply.footer or "").splitlines():
            return None  # its public notice, posted once Twitch carried it out, is the answer
        return line

    def _refuse(self, event: ChatEvent, line: str) -> str | None:
        """A refusal or an error, as posted: always to the channel's moderators, at most once a
        minute to anyone else (``RefusalLimiter``), so viewers cannot spend the bot's chat quota."""
        if event.is_moderator or self.refusals.allow(event.user_id):
            return line
        log.debug("not answering %s again within the minute", event.user_id)
        return None

    def _invocation(self, event: ChatEvent, text: str, **kw: Any) -> Invocation:
        return Invocation(platform=PLATFORM, user_id=event.user_id, user_name=event.user_name, kind="command", text=text,
                          channel_id=self.channel_id, community=self.channel_id, platform_roles=event.roles, **kw)

    async def _run_dispatcher(self, inv: Invocation) -> Reply:
        return await asyncio.to_thread(self.dispatcher.dispatch, inv)


def _done_footer() -> str:
    """The footer of a command whose effect went through (``core.effects.describe``), in the
    current language."""
    return effects.describe(effects.PlatformEffect(status="done"), platform=PLATFORM)


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
