"""A local stand-in for Twitch (OAuth, Helix and the EventSub websocket) on 127.0.0.1, and
``LiveTwitch``: the real ``MonaTwitch`` client (twitchio 3) connected to it, for specs that drive
mona the way Twitch does.

The stand-in (aiohttp, one event loop shared with the client, on a thread of its own) behaves as
Twitch documents it, as far as mona is concerned:

- OAuth under ``/oauth2/``: ``token`` (client credentials for the app token; ``refresh_token``,
  answered with ``refresh_token`` and ``scope``) and ``validate`` (user tokens carry their user id
  and scopes; unknown tokens get 401).
- Helix under ``/helix/``: every request needs a known token and the client id; user-token
  endpoints check that the token's user is the ``moderator_id`` / ``sender_id`` / subscriber, and
  ``GET /moderation/moderators`` that it is the broadcaster's. ``POST /eventsub/subscriptions``
  (websocket transport with the current session), ``GET /users``, ``GET /streams``,
  ``DELETE /moderation/chat``, ``POST`` / ``DELETE /moderation/bans`` (a moderator or the
  broadcaster cannot be banned: 400), ``POST /chat/messages``, ``GET`` / ``PATCH /chat/settings``
  (kept in ``chat_settings``); ``GET /streams`` says ``viewer_count`` while ``live_since`` is set.
  Every request is recorded with its query, JSON body and token's user; ``fail`` makes the next
  matching request answer an error, and ``throttle`` answer 429 with ``Ratelimit-Limit``,
  ``Ratelimit-Remaining`` and ``Ratelimit-Reset`` (the Unix time, in whole seconds, when the
  bucket refills) as Helix does.
- EventSub on ``/ws``: ``session_welcome`` with a session id of its own on each connection;
  ``notify`` pushes a ``channel.chat.message`` notification whose event carries every documented
  field, nulls included (``chat_message``; shared chat with ``source=``), on the websocket of the
  subscription; ``revoke`` sends a ``revocation`` message for it and forgets it.

twitchio's three patch points are set through ``bot.twitch.point_at`` only (by ``LiveTwitch``, or
by ``serve_twitch`` from the settings) and restored by ``twitchio_restored``, the one place that
names them here.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import twitchio
from aiohttp import web

from bot.app import Mona
from bot.twitch import MonaTwitch, point_at
from handlers.chat import AllowAll, ChatEvent, ChatGuard, Outcome
from tests.standin import LiveLoop, RequestLog

CLIENT_ID = "mona-test-client"
CLIENT_SECRET = "mona-test-secret"
APP_TOKEN = "app-token-1"
BOT_TOKEN = "bot-token-1"
BOT_REFRESH = "bot-refresh-1"
BROADCASTER_REFRESH = "broadcaster-refresh-1"
BOT_ID = "100000001"
BROADCASTER_ID = "100000010"
MOD_ID = "100000002"
VIEWER_ID = "100000003"
SPAMMER_ID = "100000004"
STRANGER_ID = "100000005"
#: Another channel, whose chat is shared with the broadcaster's in a shared chat session.
OTHER_CHANNEL_ID = "100000020"
BOT_SCOPES = ["chat:read", "chat:write", "moderator:manage:banned_users", "moderator:manage:chat_messages",
              "moderator:manage:chat_settings",
              "user:read:chat", "user:write:chat"]
#: Emotes the stand-in recognises in chat text (Twitch turns their names into emote fragments).
EMOTES = {"Kappa": "25", "monaHype": "emotesv2_0001"}


@dataclass(frozen=True)
class TwitchUser:
    id: str
    login: str
    name: str
    badges: tuple[tuple[str, str], ...] = ()


USERS = {u.id: u for u in (
    TwitchUser(BOT_ID, "monabot", "MonaBot"),
    TwitchUser(BROADCASTER_ID, "monamusic", "MonaMusic", (("broadcaster", "1"), ("subscriber", "0"))),
    TwitchUser(MOD_ID, "dana", "Dana", (("moderator", "1"),)),
    TwitchUser(VIEWER_ID, "vic", "Vic", (("subscriber", "12"), ("vip", "1"))),
    TwitchUser(SPAMMER_ID, "spammy", "Spammy"),
    TwitchUser(STRANGER_ID, "stranger", "Stranger"),
    TwitchUser(OTHER_CHANNEL_ID, "otherchannel", "OtherChannel", (("broadcaster", "1"),)),
)}
BY_LOGIN = {u.login: u for u in USERS.values()}
MODERATORS = frozenset({MOD_ID})


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _error(status: int, message: str) -> web.Response:
    errors = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}
    return _json({"error": errors.get(status, "Error"), "status": status, "message": message}, status)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    #: The user whose token was used ("" for the app token).
    token_user: str | None


# ----------------------------------------------------------------------------------------------
# Payloads as Twitch sends them


def user_payload(user: TwitchUser) -> dict[str, Any]:
    return {"id": user.id, "login": user.login, "display_name": user.name, "type": "", "broadcaster_type": "",
            "description": "", "profile_image_url": "https://example.invalid/p.png", "offline_image_url": "",
            "view_count": 0, "created_at": "2020-01-01T00:00:00Z"}


def fragments(text: str) -> list[dict[str, Any]]:
    """Text split as Twitch splits it: emote names and ``@login`` of existing users become emote
    and mention fragments, the rest text fragments."""
    out: list[dict[str, Any]] = []
    plain = ""
    names = "|".join(map(re.escape, EMOTES))
    for piece in re.split(rf"(@\w+|(?<!\S)(?:{names})(?!\S))", text):
        if not piece:
            continue
        user = BY_LOGIN.get(piece[1:].lower()) if piece.startswith("@") else None
        if piece in EMOTES or user is not None:
            if plain:
                out.append({"type": "text", "text": plain, "cheermote": None, "emote": None, "mention": None})
                plain = ""
            if user is not None:
                out.append({"type": "mention", "text": piece, "cheermote": None, "emote": None,
                            "mention": {"user_id": user.id, "user_name": user.name, "user_login": user.login}})
            else:
                out.append({"type": "emote", "text": piece, "cheermote": None, "mention": None,
                            "emote": {"id": EMOTES[piece], "emote_set_id": "0", "owner_id": BROADCASTER_ID,
                                      "format": ["static"]}})
        else:
            plain += piece
    if plain:
        out.append({"type": "text", "text": plain, "cheermote": None, "emote": None, "mention": None})
    return out


def chat_message(text: str, *, by: str, message_id: str | None = None, badges: tuple[tuple[str, str], ...] | None = None,
                 source: str | None = None) -> dict[str, Any]:
    """The event of a ``channel.chat.message`` notification, every documented field present.
    ``badges`` replaces the chatter's badges (a moderator whose message carries none: ``()``);
    ``source`` is the channel a shared chat message was sent in (``None``: not shared chat)."""
    who = USERS[by]
    broadcaster = USERS[BROADCASTER_ID]
    message_id = message_id or str(uuid.uuid4())
    shown = who.badges if badges is None else badges
    as_badges = [{"set_id": s, "id": i, "info": "12" if s == "subscriber" else ""} for s, i in shown]
    origin = USERS[source] if source is not None else None
    return {
        "broadcaster_user_id": broadcaster.id, "broadcaster_user_login": broadcaster.login,
        "broadcaster_user_name": broadcaster.name,
        "source_broadcaster_user_id": origin.id if origin else None,
        "source_broadcaster_user_login": origin.login if origin else None,
        "source_broadcaster_user_name": origin.name if origin else None,
        "chatter_user_id": who.id, "chatter_user_login": who.login, "chatter_user_name": who.name,
        "message_id": message_id, "source_message_id": message_id if origin else None,
        "is_source_only": False if origin else None,
        "message": {"text": text, "fragments": fragments(text)},
        "color": "#9146FF", "badges": as_badges,
        "source_badges": as_badges if origin else None, "message_type": "text", "cheer": None, "reply": None,
        "channel_points_custom_reward_id": None, "channel_points_animation_id": None,
    }


# ----------------------------------------------------------------------------------------------
# The stand-in


@dataclass
class TwitchStandIn(RequestLog[Recorded]):
    """OAuth, Helix and EventSub on loopback; start and use it on one event loop. The requests it
    received are read (from any thread) with ``requests_to`` and ``wait_for``."""

    #: When the channel went live (``None``: offline), for ``GET /streams``.
    live_since: dt.datetime | None = None
    #: The live stream's ``viewer_count`` in ``GET /streams`` (set it to change what Twitch says).
    viewer_count: int = 42

    def __post_init__(self) -> None:
        super().__post_init__()
        self._port = 0
        self._runner: web.AppRunner | None = None
        #: Open EventSub connections by session id; ``session_id`` is the latest one's.
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self.session_id = ""
        self.subscriptions: list[dict[str, Any]] = []
        self.subscribed: asyncio.Event | None = None
        self._issued = itertools.count(2)
        #: Access token → (user id, scopes); the app token has no user.
        self.tokens: dict[str, tuple[str | None, list[str]]] = {APP_TOKEN: (None, []), BOT_TOKEN: (BOT_ID, BOT_SCOPES)}
        self.refresh_tokens: dict[str, tuple[str, list[str]]] = {
            BOT_REFRESH: (BOT_ID, BOT_SCOPES), BROADCASTER_REFRESH: (BROADCASTER_ID, ["moderation:read"])}
        #: The broadcaster's chat settings (``GET`` / ``PATCH /chat/settings``), as Helix names them.
        self.chat_settings: dict[str, Any] = {
            "emote_mode": False, "follower_mode": False, "follower_mode_duration": None, "slow_mode": False,
            "slow_mode_wait_time": None, "subscriber_mode": False, "unique_chat_mode": False,
            "non_moderator_chat_delay": False, "non_moderator_chat_delay_duration": None}

    async def start(self) -> None:
        self.subscribed = asyncio.Event()
        app = web.Application()
        app.router.add_get("/ws", self._eventsub)
        app.router.add_route("*", "/oauth2/{tail:.*}", self._oauth)
        app.router.add_route("*", "/helix/{tail:.*}", self._helix)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for ws in list(self._sockets.values()):
            if not ws.closed:
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/helix/"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/"

    @property
    def eventsub_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/ws"

    def fail(self, method: str, path_part: str, status: int = 403, message: str = "forbidden") -> None:
        """Answer the next ``method`` Helix request whose path contains ``path_part`` with an error."""
        self._add_failure(method, path_part, status, message)

    def throttle(self, method: str, path_part: str, *, times: int = 1, reset_in: float = 0.0) -> None:
        """Answer the next ``times`` such requests with 429, the bucket refilling ``reset_in``
        seconds from when each is answered (``Ratelimit-Reset`` is in whole seconds, as Twitch's)."""
        for _ in range(times):
            self._add_failure(method, path_part, 429, reset_in)

    # -- reading what happened (from any thread) ------------------------------------------------

    def _describe(self, request: Recorded) -> str:
        return f"{request.method} {request.path} {request.query}"

    def chat(self) -> list[dict[str, Any]]:
        """The chat messages mona posted, in order (``POST /chat/messages`` bodies)."""
        return [r.body for r in self.requests_to("POST", r"^/chat/messages$")]

    # -- EventSub -------------------------------------------------------------------------------

    async def _eventsub(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = f"session-{uuid.uuid4().hex[:12]}"
        self.session_id = session
        self._sockets[session] = ws
        await ws.send_json({
            "metadata": {"message_id": str(uuid.uuid4()), "message_type": "session_welcome", "message_timestamp": _now()},
            "payload": {"session": {"id": session, "status": "connected", "connected_at": _now(),
                                    "keepalive_timeout_seconds": int(request.query.get("keepalive_timeout_seconds", 10)),
                                    "reconnect_url": None, "recovery_url": None}}})
        async for _msg in ws:  # Twitch closes a connection that sends anything; the client sends nothing
            pass
        del self._sockets[session]
        # Twitch ends the subscriptions of a websocket that closes.
        self.subscriptions = [s for s in self.subscriptions if s["transport"]["session_id"] != session]
        return ws

    def _chat_subscription(self) -> dict[str, Any]:
        sub = next((s for s in self.subscriptions if s["type"] == "channel.chat.message"), None)
        assert sub is not None, "the client is not subscribed to chat messages"
        return sub

    async def notify(self, event: dict[str, Any]) -> None:
        sub = self._chat_subscription()
        await self._sockets[sub["transport"]["session_id"]].send_json({
            "metadata": {"message_id": str(uuid.uuid4()), "message_type": "notification", "message_timestamp": _now(),
                         "subscription_type": sub["type"], "subscription_version": sub["version"]},
            "payload": {"subscription": sub, "event": event}})

    async def revoke(self, status: str = "user_removed") -> None:
        """Twitch ends the chat subscription (the bot was banned, its token revoked …): a
        ``revocation`` message on its websocket, and no more notifications for it."""
        sub = self._chat_subscription()
        self.subscriptions.remove(sub)
        assert self.subscribed is not None
        self.subscribed.clear()
        await self._sockets[sub["transport"]["session_id"]].send_json({
            "metadata": {"message_id": str(uuid.uuid4()), "message_type": "revocation", "message_timestamp": _now(),
                         "subscription_type": sub["type"], "subscription_version": sub["version"]},
            "payload": {"subscription": sub | {"status": status}}})

    # -- OAuth ----------------------------------------------------------------------------------

    async def _oauth(self, request: web.Request) -> web.Response:
        params = {**dict(await request.post()), **dict(request.query)}
        path = "/" + request.match_info["tail"]
        self._record(Recorded(request.method, "/oauth2" + path,
                              {k: v for k, v in params.items() if k != "client_secret"}, None, None))
        if path == "/validate":
            # Twitch documents "OAuth <token>"; it accepts "Bearer", which twitchio sends for the app token.
            token = request.headers.get("Authorization", "").removeprefix("OAuth ").removeprefix("Bearer ")
            if token not in self.tokens:
                return _error(401, "invalid access token")
            user_id, scopes = self.tokens[token]
            body: dict[str, Any] = {"client_id": CLIENT_ID, "scopes": scopes, "expires_in": 14_000}
            if user_id is not None:
                body |= {"login": USERS[user_id].login, "user_id": user_id}
            return _json(body)
        if path == "/token" and request.method == "POST":
            if params.get("client_id") != CLIENT_ID or params.get("client_secret") != CLIENT_SECRET:
                return _error(403, "invalid client secret")
            if params.get("grant_type") == "client_credentials":
                return _json({"access_token": APP_TOKEN, "expires_in": 5_000_000, "token_type": "bearer"})
            refresh = str(params.get("refresh_token") or "")
            if params.get("grant_type") == "refresh_token" and refresh in self.refresh_tokens:
                user_id, scopes = self.refresh_tokens[refresh]
                access = f"user-token-{next(self._issued)}"
                self.tokens[access] = (user_id, scopes)
                return _json({"access_token": access, "refresh_token": refresh, "expires_in": 14_000,
                              "scope": scopes, "token_type": "bearer"})
            return _error(400, "Invalid refresh token")
        return _error(404, "Not Found")

    # -- Helix ----------------------------------------------------------------------------------

    async def _helix(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        path = "/" + request.match_info["tail"]
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        known = self.tokens.get(token)
        query: dict[str, Any] = {}
        for key, value in request.query.items():
            query[key] = [*query[key], value] if key in query and isinstance(query[key], list) else (
                [query[key], value] if key in query else value)
        self._record(Recorded(request.method, path, query, body, known[0] or "" if known else None))
        if known is None or request.headers.get("Client-Id") != CLIENT_ID:
            return _error(401, "Invalid OAuth token")
        failure = self._take_failure(request.method, path)
        if failure is not None and failure.status == 429:
            reset = int(time.time() + float(failure.detail))
            response = _error(429, "Too Many Requests")
            response.headers.update({"Ratelimit-Limit": "800", "Ratelimit-Remaining": "0", "Ratelimit-Reset": str(reset)})
            return response
        if failure is not None:
            return _error(failure.status, failure.detail)
        return self._answer(request.method, path, query, body or {}, known[0])

    def _answer(self, method: str, path: str, query: dict[str, Any], body: dict[str, Any],
                user: str | None) -> web.Response:
        def as_list(value: Any) -> list[str]:
            return value if isinstance(value, list) else [value] if value else []

        if (method, path) == ("POST", "/eventsub/subscriptions"):
            session = body.get("transport", {}).get("session_id")
            if session not in self._sockets:
                return _error(400, "websocket transport session does not exist or has already disconnected")
            if user != body.get("condition", {}).get("user_id"):
                return _error(403, "subscription missing proper authorization")
            sub = {"id": str(uuid.uuid4()), "status": "enabled", "type": body["type"], "version": body["version"],
                   "condition": body["condition"], "created_at": _now(), "cost": 0,
                   "transport": {"method": "websocket", "session_id": session, "connected_at": _now()}}
            self.subscriptions.append(sub)
            assert self.subscribed is not None
            self.subscribed.set()
            return _json({"data": [sub], "total": 1, "total_cost": 0, "max_total_cost": 10}, 202)
        if (method, path) == ("GET", "/users"):
            found = [u for u in USERS.values() if u.id in as_list(query.get("id")) or u.login in as_list(query.get("login"))]
            return _json({"data": [user_payload(u) for u in found]})
        if (method, path) == ("GET", "/streams"):
            live = self.live_since is not None and BROADCASTER_ID in as_list(query.get("user_id"))
            streams = [{"id": "4000", "user_id": BROADCASTER_ID, "user_login": "monamusic", "user_name": "MonaMusic",
                        "game_id": "26936", "game_name": "Music", "type": "live", "title": "Villa session",
                        "viewer_count": self.viewer_count, "started_at": self.live_since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "language": "en", "thumbnail_url": "https://example.invalid/{width}x{height}.jpg",
                        "tag_ids": [], "tags": ["music"], "is_mature": False}] if live and self.live_since else []
            return _json({"data": streams, "pagination": {}})
        if (method, path) == ("GET", "/moderation/moderators"):
            if user != query.get("broadcaster_id"):
                return _error(401, "The ID in broadcaster_id must match the user ID found in the request's OAuth token.")
            return _json({"data": [{"user_id": m, "user_login": USERS[m].login, "user_name": USERS[m].name}
                                   for m in sorted(MODERATORS)], "pagination": {}})
        if path == "/chat/settings" and method in ("GET", "PATCH"):
            return self._chat_settings(method, query, body, user)
        if path in ("/moderation/chat", "/moderation/bans") and user != query.get("moderator_id"):
            return _error(403, "The user in moderator_id must match the user ID in the access token.")
        if (method, path) == ("DELETE", "/moderation/chat"):
            return web.Response(status=204)
        if (method, path) == ("POST", "/moderation/bans"):
            target = body.get("data", {}).get("user_id")
            if target in MODERATORS or target == BROADCASTER_ID:
                return _error(400, "The user specified in the user_id field may not be banned.")
            duration = body["data"].get("duration")
            end = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=duration)).strftime("%Y-%m-%dT%H:%M:%SZ") if duration else None
            return _json({"data": [{"broadcaster_id": query["broadcaster_id"], "moderator_id": query["moderator_id"],
                                    "user_id": target, "created_at": _now(), "end_time": end}]})
        if (method, path) == ("DELETE", "/moderation/bans"):
            return web.Response(status=204)
        if (method, path) == ("POST", "/chat/messages"):
            if user != body.get("sender_id"):
                return _error(403, "The sender must match the user ID in the access token.")
            return _json({"data": [{"message_id": str(uuid.uuid4()), "is_sent": True, "drop_reason": None}]})
        return _error(404, "Not Found")

    def _chat_settings(self, method: str, query: dict[str, Any], body: dict[str, Any], user: str | None) -> web.Response:
        """``GET /chat/settings`` (``moderator_id`` optional, the token's user when given) and
        ``PATCH /chat/settings`` (``moderator_id`` required, the token's user; the body holds the
        fields to change). Both answer the whole settings."""
        if query.get("broadcaster_id") != BROADCASTER_ID:
            return _error(400, "The broadcaster_id query parameter is required.")
        moderator = query.get("moderator_id")
        if (method == "PATCH" or moderator is not None) and user != moderator:
            return _error(403, "The user in moderator_id must match the user ID in the access token.")
        if method == "PATCH":
            unknown = set(body) - set(self.chat_settings)
            if not body or unknown:
                return _error(400, f"Invalid chat settings: {sorted(unknown) or 'none given'}")
            self.chat_settings.update(body)
            # Twitch fills in the default duration of a mode turned on without one (slow mode
            # 30 s, followers 0 min), and clears the durations of the modes turned off.
            if body.get("slow_mode") and body.get("slow_mode_wait_time") is None:
                self.chat_settings["slow_mode_wait_time"] = 30
            if body.get("follower_mode") and body.get("follower_mode_duration") is None:
                self.chat_settings["follower_mode_duration"] = 0
            for mode, duration in (("slow_mode", "slow_mode_wait_time"), ("follower_mode", "follower_mode_duration"),
                                   ("non_moderator_chat_delay", "non_moderator_chat_delay_duration")):
                if not self.chat_settings[mode]:
                    self.chat_settings[duration] = None
        settings = {"broadcaster_id": BROADCASTER_ID, **self.chat_settings}
        if moderator is not None:
            settings["moderator_id"] = moderator
        else:  # Helix leaves the delay out unless a moderator asks
            settings.pop("non_moderator_chat_delay")
            settings.pop("non_moderator_chat_delay_duration")
        return _json({"data": [settings]})


# ----------------------------------------------------------------------------------------------
# The real client against the stand-in


@contextlib.contextmanager
def twitchio_restored() -> Iterator[None]:
    """Put twitchio's addresses (Helix, OAuth, EventSub) back as they were, whatever a test set."""
    saved = (twitchio.http.Route.BASE, twitchio.http.Route.ID_BASE, twitchio.eventsub.websockets.WSS)
    try:
        yield
    finally:
        twitchio.http.Route.BASE, twitchio.http.Route.ID_BASE, twitchio.eventsub.websockets.WSS = saved


class _Recording:
    """The guard under test, recording every message it is given."""

    def __init__(self, guard: ChatGuard) -> None:
        self.guard = guard
        self.events: list[ChatEvent] = []

    def on_message(self, event: ChatEvent) -> Outcome:
        self.events.append(event)
        return self.guard.on_message(event)


class LiveTwitch(LiveLoop):
    """``MonaTwitch`` logged in, its chat subscription made over the stand-in's EventSub websocket,
    on an event loop in its own thread.

    Use as a context manager; leaving it closes the client (which finishes the messages being
    handled) and the stand-in, shuts the loop's worker threads down, and fails if a task was left
    pending, a thread left running, or an error logged by twitchio or mona."""

    def __init__(self, mona: Mona, *, guard: ChatGuard | None = None,
                 mod_commands: dict[str, str] | None = None, viewers_every: float = 60.0) -> None:
        super().__init__(loggers=("twitchio", "mona"), thread_name="twitch-test-loop")
        self.mona = mona
        self.guard = _Recording(guard or AllowAll())
        self.mod_commands = mod_commands
        self.viewers_every = viewers_every
        self.stand_in = TwitchStandIn()
        self._sent = 0
        self._restored = twitchio_restored()
        self.client: MonaTwitch | None = None
        self._running: asyncio.Task[None] | None = None

    def _patch(self) -> None:
        self._restored.__enter__()

    def _unpatch(self) -> None:
        self._restored.__exit__(None, None, None)

    async def _start(self) -> None:
        await self.stand_in.start()
        # The one place the tests patch twitchio.
        point_at(self.stand_in.api_url, self.stand_in.auth_url, self.stand_in.eventsub_url)
        self.client = MonaTwitch(self.mona, guard=self.guard, mod_commands=self.mod_commands,
                                 viewers_every=self.viewers_every)
        self._running = asyncio.create_task(self.client.start(with_adapter=False, save_tokens=False))
        assert self.stand_in.subscribed is not None
        subscribed = asyncio.create_task(self.stand_in.subscribed.wait())
        done, _ = await asyncio.wait({subscribed, self._running}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        if subscribed not in done:
            subscribed.cancel()
            if self._running in done:
                self._running.result()  # the client's own error
            raise AssertionError("the client did not subscribe to chat messages")
        await self.client.wait_until_ready()

    async def _close(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self._running is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._running, 5)
        await self.stand_in.stop()

    # -- driving it from a test -----------------------------------------------------------------

    def say(self, text: str, *, by: str, badges: tuple[tuple[str, str], ...] | None = None,
            source: str | None = None) -> str:
        """A chat message from ``by`` arrives (``badges``, ``source``: see ``chat_message``);
        returns its message id."""
        event = chat_message(text, by=by, badges=badges, source=source)
        self.run(self.stand_in.notify(event))
        if by != BOT_ID and source in (None, BROADCASTER_ID):
            self._sent += 1  # what the guard is to see (shared chat from elsewhere is not)
        return str(event["message_id"])

    @property
    def events(self) -> list[ChatEvent]:
        """The messages the guard was given, in order."""
        return self.guard.events

    def answer_to(self, message_id: str, *, timeout: float = 5.0) -> dict[str, Any]:
        """The chat message mona posted in reply to ``message_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in self.stand_in.chat():
                if body.get("reply_parent_message_id") == message_id:
                    return body
            time.sleep(0.01)
        raise AssertionError(f"no reply to {message_id}; chat: {self.stand_in.chat()}")

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until the messages sent so far (but the bot's) are handled: the guard, commands,
        Helix calls."""
        async def idle() -> None:
            assert self.client is not None
            while len(self.guard.events) < self._sent or self.client._handling:
                await asyncio.sleep(0.005)
        self.run(asyncio.wait_for(idle(), timeout))
