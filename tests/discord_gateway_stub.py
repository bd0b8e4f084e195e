"""A local stand-in for Discord (REST API and gateway) on 127.0.0.1, and ``LiveDiscord``: the real
``MonaDiscord`` client connected to it, for specs that drive mona the way Discord does.

The stand-in (aiohttp, one event loop shared with the client, on a thread of its own):

- REST under ``/api/v10``: login (``/users/@me``, ``/oauth2/applications/@me``), command sync
  (``PUT /applications/{app}/[guilds/{g}/]commands``), interaction callbacks (answered with the
  ``?with_response=1`` shape discord.py expects: ``{"interaction": …, "resource": {type,
  message}}``), follow-ups and edits of the original response (``/webhooks/{app}/{token}…``),
  channels (``GET``, ``PATCH`` of ``rate_limit_per_user``: the slow mode, kept in ``slow_mode``),
  channel messages (post, delete), members (get, ``PATCH`` for timeouts), bans (``PUT`` /
  ``DELETE``). Every request is recorded with its query, JSON body and headers; ``fail`` makes the
  next matching request answer an error. Answers carry ``Content-Type: application/json`` exactly.
  Files come as Discord takes them, ``multipart/form-data`` with the JSON in ``payload_json`` and
  each file in ``files[n]``: the request is recorded with its JSON and its files (name, bytes), and
  the message made or edited lists them as ``attachments`` (served under ``/attachments/``).
- the gateway on ``/gateway/``: HELLO, heartbeat ACKs, and on IDENTIFY a READY with one guild
  then its GUILD_CREATE (channels, roles, members with ``member_count`` equal to them, so no
  chunking). Frames are plain text, which discord.py accepts beside the zlib-stream it asks for.
  ``dispatch(t, d)`` pushes any event (``INTERACTION_CREATE``, ``MESSAGE_CREATE`` …).

The two patch points of discord.py (``Route.BASE``, ``DiscordWebSocket.DEFAULT_GATEWAY``) are set
in one place, ``LiveDiscord``, through ``bot.discord.point_at`` (what ``run_discord`` does from the
settings), and restored when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import discord
from aiohttp import WSMsgType, web

from bot.app import Mona
from bot.discord import MonaDiscord, point_at
from handlers.chat import ChatGuard
from tests.standin import LiveLoop, RequestLog

BOT_TOKEN = "discord-gateway-test-token"
APP_ID = "1300000000000000001"
BOT_ID = "1300000000000000002"
GUILD_ID = "1300000000000000010"
OWNER_ID = "900000000000000009"
ADMIN_ID = "900000000000000001"
VIEWER_ID = "900000000000000002"
SPAMMER_ID = "900000000000000003"
#: A member of the server with Discord's Moderate Members permission (and no mona role).
MODERATOR_ID = "900000000000000004"
CHANNEL_ID = "1300000000000000020"
MODLOG_ID = "1300000000000000021"
MOD_ROLE_ID = "1300000000000000030"
FAN_ROLE_ID = "1300000000000000031"
#: Permissions as Discord sends them: all of them for the admin, Send Messages only for others.
ALL_PERMISSIONS = str((1 << 50) - 1)
SEND_MESSAGES = str(1 << 11)
MANAGE_MESSAGES = str(1 << 13)
MODERATE_MEMBERS = str((1 << 40) | (1 << 11))
TIMESTAMP = "2026-11-01T10:00:00.000000+00:00"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    #: The files of a multipart request: (field name, filename, bytes), in order.
    files: tuple[tuple[str, str, bytes], ...] = ()


def multipart(content_type: str, raw: bytes) -> tuple[Any, tuple[tuple[str, str, bytes], ...]]:
    """A ``multipart/form-data`` body as Discord reads it: the JSON of ``payload_json``, and the files."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    body: Any = None
    files: list[tuple[str, str, bytes]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True) or b""
        if name == "payload_json":
            body = json.loads(content)
        else:
            files.append((str(name), part.get_filename() or "", content))
    return body, tuple(files)


def user(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": user_id, "username": name.lower(), "global_name": name, "discriminator": "0", "avatar": None,
            "bot": bot, "public_flags": 0}


def member(user_id: str, name: str, *, roles: tuple[str, ...] = (), bot: bool = False,
           permissions: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"user": user(user_id, name, bot=bot), "roles": list(roles), "joined_at": TIMESTAMP,
                            "deaf": False, "mute": False, "flags": 0, "pending": False, "nick": None,
                            "communication_disabled_until": None}
    if permissions is not None:
        data["permissions"] = permissions
    return data


MEMBERS = {
    BOT_ID: member(BOT_ID, "mona", bot=True),
    OWNER_ID: member(OWNER_ID, "Owner"),
    ADMIN_ID: member(ADMIN_ID, "Dana", roles=(MOD_ROLE_ID,)),
    VIEWER_ID: member(VIEWER_ID, "Vic", roles=(FAN_ROLE_ID,)),
    SPAMMER_ID: member(SPAMMER_ID, "Spammy", roles=(FAN_ROLE_ID,)),
    MODERATOR_ID: member(MODERATOR_ID, "Moe"),
}


def _role(role_id: str, name: str, permissions: str, position: int) -> dict[str, Any]:
    return {"id": role_id, "name": name, "color": 0, "colors": {"primary_color": 0}, "hoist": False, "position": position,
            "permissions": permissions, "managed": False, "mentionable": True, "flags": 0, "icon": None,
            "unicode_emoji": None}


def _channel(channel_id: str, name: str, position: int) -> dict[str, Any]:
    return {"id": channel_id, "type": 0, "name": name, "position": position, "guild_id": GUILD_ID,
            "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None, "last_message_id": None,
            "rate_limit_per_user": 0}


def guild_payload() -> dict[str, Any]:
    members = list(MEMBERS.values())
    return {
        "id": GUILD_ID, "name": "MONA x SPARK", "owner_id": OWNER_ID, "icon": None, "splash": None,
        "discovery_splash": None, "features": [], "verification_level": 0, "default_message_notifications": 0,
        "explicit_content_filter": 0, "mfa_level": 0, "premium_tier": 0, "preferred_locale": "en-US",
        "nsfw_level": 0, "afk_timeout": 300, "system_channel_flags": 0, "large": False, "unavailable": False,
        "member_count": len(members), "members": members, "presences": [], "voice_states": [], "threads": [],
        "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [], "emojis": [], "stickers": [],
        "roles": [_role(GUILD_ID, "@everyone", SEND_MESSAGES, 0),
                  _role(MOD_ROLE_ID, "Moderator", str(int(MANAGE_MESSAGES) | int(SEND_MESSAGES)), 2),
                  _role(FAN_ROLE_ID, "Fans", SEND_MESSAGES, 1)],
        "channels": [_channel(CHANNEL_ID, "crm", 0), _channel(MODLOG_ID, "mod-log", 1)],
    }


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json"})


@dataclass
class DiscordStandIn(RequestLog[Recorded]):
    """REST and gateway on loopback; start and use it on one event loop. The requests it received
    are read (from any thread) with ``requests_to`` and ``wait_for``."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    identified: asyncio.Event | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._ids = itertools.count(1400000000000000000)
        self._seq = 0
        self._ws: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None
        self._port = 0
        #: Files attached to interactions, by attachment id (served under /attachments/).
        self.files: dict[str, bytes] = {}
        self._originals: dict[str, str] = {}  # interaction token → message id of its original response
        self._uploaded: tuple[tuple[str, str, bytes], ...] = ()  # the files of the request being answered
        #: Interaction id → id of the message its response created or edited / the message clicked on.
        self.responses: dict[str, str] = {}
        self.clicked: dict[str, str] = {}
        #: Channel id → its slow mode (``rate_limit_per_user``, seconds), set by ``PATCH /channels/{id}``.
        self.slow_mode: dict[str, int] = {CHANNEL_ID: 0, MODLOG_ID: 0}

    # -- set-up ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.identified = asyncio.Event()
        app = web.Application()
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        app.router.add_get("/attachments/{id}/{name}", self._attachment)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _attachment(self, request: web.Request) -> web.Response:
        """A file attached to an interaction, as Discord's CDN serves it."""
        content = self.files.get(request.match_info["id"])
        return web.Response(body=content) if content is not None else web.Response(status=404)

    def attach(self, attachment_id: str, filename: str, content: bytes) -> dict[str, Any]:
        """Keep a file for the CDN; its entry for an interaction's ``resolved.attachments``."""
        self.files[attachment_id] = content
        url = f"http://127.0.0.1:{self._port}/attachments/{attachment_id}/{filename}"
        return {"id": attachment_id, "filename": filename, "size": len(content), "url": url, "proxy_url": url,
                "content_type": "text/csv"}

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway/"

    def next_id(self) -> str:
        return str(next(self._ids))

    def fail(self, method: str, path_part: str, status: int = 403, code: int = 50013) -> None:
        """Answer the next ``method`` request whose path contains ``path_part`` with an error."""
        self._add_failure(method, path_part, status, code)

    # -- the gateway ----------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 45_000}}))
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(msg.data)
            if payload.get("op") == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif payload.get("op") == 2:
                await self.dispatch("READY", {
                    "v": 10, "user": user(BOT_ID, "mona", bot=True), "guilds": [{"id": GUILD_ID, "unavailable": True}],
                    "session_id": "stand-in-session", "resume_gateway_url": self.gateway_url,
                    "application": {"id": APP_ID, "flags": 0}, "private_channels": [], "relationships": []})
                await self.dispatch("GUILD_CREATE", guild_payload())
                assert self.identified is not None
                self.identified.set()
        return ws

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        assert self._ws is not None, "the client is not connected"
        self._seq += 1
        await self._ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    # -- REST -----------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        raw = await request.read()
        files: tuple[tuple[str, str, bytes], ...] = ()
        if request.content_type == "multipart/form-data":
            body, files = multipart(request.headers["Content-Type"], raw)
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        path = "/" + request.match_info["tail"]
        self._record(Recorded(request.method, path, dict(request.query), body, dict(request.headers), files))
        if request.headers.get("Authorization") not in (f"Bot {BOT_TOKEN}", None):
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        failure = self._take_failure(request.method, path)
        if failure is not None:
            messages = {413: "Request entity too large", 400: "Invalid Form Body"}
            return _json({"message": messages.get(failure.status, "Missing Permissions"), "code": failure.detail},
                         failure.status)
        self._uploaded = files
        try:
            return self._answer(request.method, path, body)
        finally:
            self._uploaded = ()

    def _attachments(self, data: dict[str, Any], kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A message's attachments after ``data``: those of ``kept`` it names by id, and the files of
        the request it names by index (``{"id": n, "filename", "description"}`` ↔ ``files[n]``)."""
        if "attachments" not in data:
            return kept
        uploaded = {name.removeprefix("files[").removesuffix("]"): (filename, content)
                    for name, filename, content in self._uploaded}
        known = {a["id"]: a for a in kept}
        out = []
        for entry in data.get("attachments") or []:
            ref = str(entry.get("id"))
            if ref in known:
                out.append(known[ref])
            elif ref in uploaded:
                filename, content = uploaded[ref]
                attached = self.attach(self.next_id(), entry.get("filename") or filename, content)
                out.append(attached | {"content_type": "image/png" if filename.endswith(".png") else "application/octet-stream",
                                       "description": entry.get("description")})
        return out

    def post(self, channel_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """A message posted earlier by someone else (e.g. a notification from bot/notify_discord.py)."""
        return self._message(channel_id, data)

    def _message(self, channel_id: str, data: dict[str, Any], *, interaction: bool = False) -> dict[str, Any]:
        message = {
            "id": self.next_id(), "channel_id": channel_id, "guild_id": GUILD_ID, "author": user(BOT_ID, "mona", bot=True),
            "content": data.get("content") or "", "embeds": data.get("embeds") or [],
            "components": data.get("components") or [], "attachments": self._attachments(data, []),
            "mentions": [], "mention_roles": [],
            "mention_everyone": False, "pinned": False, "tts": False, "timestamp": TIMESTAMP, "edited_timestamp": None,
            "type": 20 if interaction else 0, "flags": data.get("flags") or 0,
            "allowed_mentions": data.get("allowed_mentions"),
        }
        self.messages[message["id"]] = message
        return message

    def _answer(self, method: str, path: str, body: Any) -> web.Response:
        parts = path.strip("/").split("/")
        if method == "GET" and parts == ["users", "@me"]:
            return _json(user(BOT_ID, "mona", bot=True))
        if method == "GET" and parts == ["oauth2", "applications", "@me"]:
            return _json({"id": APP_ID, "name": "mona", "icon": None, "description": "", "bot_public": False,
                          "bot_require_code_grant": False, "owner": user(OWNER_ID, "Owner"), "verify_key": "0" * 64,
                          "flags": 0, "summary": "", "team": None})
        if method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            guild = parts[3] if len(parts) == 5 else None
            return _json([{**c, "id": self.next_id(), "application_id": APP_ID, "guild_id": guild, "version": "1",
                           "default_member_permissions": None, "nsfw": False} for c in body or []])
        if method == "POST" and parts[0] == "interactions" and parts[-1] == "callback":
            return self._callback(parts[1], parts[2], body or {})
        if parts[0] == "webhooks" and len(parts) >= 3:
            token = parts[2]
            if method == "PATCH" and parts[-1] == "@original":
                original = self.messages.get(self._originals.get(token, ""))
                if original is None:
                    return _json({"message": "Unknown Message", "code": 10008}, 404)
                original.update({k: v for k, v in (body or {}).items() if k in ("content", "embeds", "components")})
                original["attachments"] = self._attachments(body or {}, original["attachments"])
                return _json(original)
            if method == "POST" and len(parts) == 3:
                return _json(self._message(CHANNEL_ID, body or {}, interaction=True))
        if parts[0] == "channels" and len(parts) == 2 and method in ("GET", "PATCH"):
            return self._channel(method, parts[1], body or {})
        if parts[0] == "channels" and len(parts) >= 3 and parts[2] == "messages":
            if method == "POST" and len(parts) == 3:
                return _json(self._message(parts[1], body or {}))
            if method == "DELETE" and len(parts) == 4:
                return web.Response(status=204)
        if parts[0] == "guilds" and len(parts) == 4 and parts[2] == "members":
            known = MEMBERS.get(parts[3])
            if known is None:
                return _json({"message": "Unknown Member", "code": 10007}, 404)
            if method == "PATCH":
                return _json({**known, **(body or {})})
            return _json(known)
        if parts[0] == "guilds" and len(parts) == 4 and parts[2] == "bans" and method in ("PUT", "DELETE"):
            return web.Response(status=204)
        return _json({"message": "404: Not Found", "code": 0}, 404)

    def _channel(self, method: str, channel_id: str, body: dict[str, Any]) -> web.Response:
        """A guild text channel (``GET``), or its slow mode changed (``PATCH`` with
        ``rate_limit_per_user``, 0 to 21600 seconds, as Discord allows)."""
        names = {CHANNEL_ID: ("crm", 0), MODLOG_ID: ("mod-log", 1)}
        if channel_id not in names:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        if method == "PATCH":
            seconds = body.get("rate_limit_per_user")
            if set(body) - {"rate_limit_per_user"} or not isinstance(seconds, int) or not 0 <= seconds <= 21_600:
                return _json({"message": "Invalid Form Body", "code": 50035,
                              "errors": {"rate_limit_per_user": {"_errors": [{"code": "NUMBER_TYPE_MAX",
                                                                              "message": "Invalid slow mode"}]}}}, 400)
            self.slow_mode[channel_id] = seconds
        return _json(_channel(channel_id, *names[channel_id]) | {"rate_limit_per_user": self.slow_mode.get(channel_id, 0)})

    def _callback(self, interaction_id: str, token: str, body: dict[str, Any]) -> web.Response:
        kind = body.get("type")
        data = body.get("data") or {}
        message: dict[str, Any] | None = None
        if kind in (4, 5):  # a message, or "thinking…" to be edited
            message = self._message(CHANNEL_ID, data, interaction=True)
            self._originals[token] = message["id"]
        elif kind == 7:  # the message clicked on, edited
            message = self.messages.get(self.clicked.get(interaction_id, ""))
            if message is None:
                return _json({"message": "Unknown Message", "code": 10008}, 404)
            message.update({k: v for k, v in data.items() if k in ("content", "embeds", "components")})
            message["attachments"] = self._attachments(data, message["attachments"])
        if message is not None:
            self.responses[interaction_id] = message["id"]
        answer: dict[str, Any] = {"interaction": {
            "id": interaction_id, "type": 2, "response_message_id": message["id"] if message else None,
            "response_message_loading": kind == 5, "response_message_ephemeral": bool((data.get("flags") or 0) & 64)}}
        if message is not None:
            answer["resource"] = {"type": kind, "message": message}
        return _json(answer)


# ----------------------------------------------------------------------------------------------
# Interaction and message payloads, as Discord sends them


def _interaction(kind: int, data: dict[str, Any], *, by: str, message: dict[str, Any] | None = None,
                 interaction_id: str) -> dict[str, Any]:
    who = MEMBERS[by]
    payload: dict[str, Any] = {
        "id": interaction_id, "application_id": APP_ID, "type": kind, "data": data, "guild_id": GUILD_ID,
        "channel_id": CHANNEL_ID, "channel": _channel(CHANNEL_ID, "crm", 0),
        "member": {**who, "permissions": ALL_PERMISSIONS if by in (ADMIN_ID, OWNER_ID)
                   else MODERATE_MEMBERS if by == MODERATOR_ID else SEND_MESSAGES},
        "token": f"token-{interaction_id}", "version": 1, "locale": "en-US", "guild_locale": "en-US",
        "app_permissions": ALL_PERMISSIONS, "attachment_size_limit": 26_214_400, "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD_ID}, "context": 0,
    }
    if message is not None:
        payload["message"] = message
    return payload


def slash_data(words: str, options: dict[str, Any], *, focused: str | None = None,
               users: tuple[str, ...] = ()) -> dict[str, Any]:
    """``data`` of a slash command (or, with ``focused``, of its autocomplete): ``words`` like
    ``artist add``; option values typed by their Python type (int → 4, bool → 5, str → 3), user
    options given as ``("user", id)``, channel options as ``("channel", id)``."""
    leaf: list[dict[str, Any]] = []
    channels: dict[str, Any] = {}
    for name, value in options.items():
        if isinstance(value, tuple) and value[0] == "user":
            option: dict[str, Any] = {"type": 6, "name": name, "value": value[1]}
        elif isinstance(value, tuple) and value[0] == "channel":
            option = {"type": 7, "name": name, "value": value[1]}
            channels[value[1]] = _channel(value[1], *{CHANNEL_ID: ("crm", 0), MODLOG_ID: ("mod-log", 1)}[value[1]]) | {
                "permissions": SEND_MESSAGES}
        elif isinstance(value, bool):
            option = {"type": 5, "name": name, "value": value}
        elif isinstance(value, int):
            option = {"type": 4, "name": name, "value": value}
        else:
            option = {"type": 3, "name": name, "value": value}
        if name == focused:
            option["focused"] = True
        leaf.append(option)
    names = words.split()
    nested: list[dict[str, Any]] = leaf
    for depth in range(len(names) - 1, 0, -1):
        nested = [{"type": 1 if depth == len(names) - 1 else 2, "name": names[depth], "options": nested}]
    data: dict[str, Any] = {"id": "1400000000000000999", "name": names[0], "type": 1, "guild_id": GUILD_ID,
                            "options": nested}
    if channels:
        data["resolved"] = {"channels": channels}
    if users:
        data["resolved"] = data.get("resolved", {}) | {"users": {u: MEMBERS[u]["user"] for u in users},
                            "members": {u: {k: v for k, v in MEMBERS[u].items() if k != "user"} | {"permissions": SEND_MESSAGES}
                                        for u in users}}
    return data


def message_create(content: str, *, by: str, message_id: str, channel_id: str = CHANNEL_ID,
                   mentions: tuple[str, ...] = (), role_mentions: tuple[str, ...] = ()) -> dict[str, Any]:
    who = MEMBERS[by]
    return {
        "id": message_id, "channel_id": channel_id, "guild_id": GUILD_ID, "author": who["user"],
        "member": {k: v for k, v in who.items() if k != "user"}, "content": content, "timestamp": TIMESTAMP,
        "edited_timestamp": None, "tts": False, "mention_everyone": False,
        "mentions": [{**MEMBERS[m]["user"], "member": {k: v for k, v in MEMBERS[m].items() if k != "user"}} for m in mentions],
        "mention_roles": list(role_mentions), "attachments": [], "embeds": [], "pinned": False, "type": 0, "flags": 0,
        "components": [],
    }


# ----------------------------------------------------------------------------------------------
# The real client against the stand-in


#: Tasks discord.py starts for each event and command; closing waits for them to finish.
_HANDLERS = ("discord.py: ", "CommandTree-invoker")


class LiveDiscord(LiveLoop):
    """``MonaDiscord`` logged in and connected to the stand-in, on an event loop in its own thread.

    Use as a context manager; leaving it waits for the event handlers still running, closes the
    client and the stand-in, shuts the loop's worker threads down, and fails if a task was left
    pending, a thread left running, or an error logged by discord.py or mona (``expect_errors``
    lists the loggers a test expects errors from)."""

    def __init__(self, mona: Mona, *, guard: ChatGuard | None = None, defer_after: float = 2.0) -> None:
        super().__init__(loggers=("discord", "mona"), thread_name="discord-test-loop")
        self.mona = mona
        self.guard = guard
        self.defer_after = defer_after
        self.stand_in = DiscordStandIn()
        self._patched = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        self.client: MonaDiscord | None = None
        self._connection: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        await self.stand_in.start()
        point_at(self.stand_in.api_base, self.stand_in.gateway_url)  # the one place the tests patch discord.py
        self.client = MonaDiscord(self.mona, guard=self.guard, defer_after=self.defer_after, guild_ready_timeout=0.05)
        await self.client.login(BOT_TOKEN)
        self._connection = asyncio.create_task(self.client.connect(reconnect=False))
        ready = asyncio.create_task(self.client.wait_until_ready())
        done, _ = await asyncio.wait({ready, self._connection}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            raise AssertionError("the client did not become ready")

    async def _close(self) -> None:
        handling = [t for t in asyncio.all_tasks() if t.get_name().startswith(_HANDLERS)]
        if handling:
            await asyncio.wait(handling, timeout=5)
        if self.client is not None:
            await self.client.close()
        if self._connection is not None:
            with contextlib.suppress(discord.ConnectionClosed, discord.GatewayNotFound, ConnectionError):
                await asyncio.wait_for(self._connection, 5)
        await self.stand_in.stop()

    def _unpatch(self) -> None:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._patched

    # -- driving it from a test -----------------------------------------------------------------

    def send(self, event: str, data: dict[str, Any]) -> None:
        self.run(self.stand_in.dispatch(event, data))

    def interact(self, kind: int, data: dict[str, Any], *, by: str = ADMIN_ID, message: dict[str, Any] | None = None,
                 timeout: float = 5.0) -> Recorded:
        """Send an INTERACTION_CREATE and return the interaction callback the client posted."""
        interaction_id = self.stand_in.next_id()
        if message is not None:
            self.stand_in.clicked[interaction_id] = message["id"]
        self.send("INTERACTION_CREATE", _interaction(kind, data, by=by, message=message, interaction_id=interaction_id))
        return self.stand_in.wait_for("POST", rf"^/interactions/{interaction_id}/", timeout=timeout)[0]

    def command(self, words: str, options: dict[str, Any] | None = None, *, by: str = ADMIN_ID,
                users: tuple[str, ...] = (), files: dict[str, tuple[str, bytes]] | None = None) -> Recorded:
        """A slash command; ``files`` attaches a file to an option: option name → (filename, bytes)."""
        data = slash_data(words, options or {}, users=users)
        for n, (option, (filename, content)) in enumerate((files or {}).items()):
            attachment_id = str(1500000000000000000 + n)
            leaf = data
            while leaf.get("options") and leaf["options"][0]["type"] in (1, 2):
                leaf = leaf["options"][0]
            leaf.setdefault("options", []).append({"type": 11, "name": option, "value": attachment_id})
            data.setdefault("resolved", {}).setdefault("attachments", {})[attachment_id] = \
                self.stand_in.attach(attachment_id, filename, content)
        return self.interact(2, data, by=by)

    def autocomplete(self, words: str, options: dict[str, Any], focused: str) -> list[dict[str, Any]]:
        callback = self.interact(4, slash_data(words, options, focused=focused))
        assert callback.body["type"] == 8
        return list(callback.body["data"]["choices"])

    def message(self, callback: Recorded) -> dict[str, Any]:
        """The message an interaction's response created or edited, as the stand-in keeps it."""
        return self.stand_in.messages[self.stand_in.responses[interaction_id(callback)]]

    def click(self, message: dict[str, Any], custom_id: str, *, values: tuple[str, ...] | None = None,
              by: str = ADMIN_ID) -> Recorded:
        """Click a component of ``message`` (a message the client sent): a button, or a menu with
        ``values`` chosen."""
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": 2}
        if values is not None:
            data = {"custom_id": custom_id, "component_type": 3, "values": list(values)}
        return self.interact(3, data, by=by, message=message)

    def submit(self, custom_id: str, values: dict[str, str], *, by: str = ADMIN_ID,
               choices: tuple[str, ...] = ()) -> Recorded:
        """Submit a modal: text inputs inside labels (type 18); names in ``choices`` as menus."""
        components = [
            {"type": 18, "id": n, "component": {"type": 3, "id": 100 + n, "custom_id": name, "values": [value]}
             if name in choices else {"type": 4, "id": 100 + n, "custom_id": name, "value": value}}
            for n, (name, value) in enumerate(values.items(), 1)]
        return self.interact(5, {"custom_id": custom_id, "components": components}, by=by)


def components_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The buttons and menus of a message payload, flattened."""
    return [c for row in message.get("components") or [] for c in row.get("components") or []]


def interaction_id(callback: Recorded) -> str:
    return callback.path.split("/")[2]
