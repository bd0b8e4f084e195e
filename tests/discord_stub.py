"""A local stand-in for Discord's REST API (the part notifications use), on 127.0.0.1.

- ``POST /channels/{id}/messages``: creates a message, keeping its ``nonce``; with
  ``enforce_nonce`` a second post with the same nonce returns the first message, as Discord does
  (Discord only remembers nonces for a few minutes; the stand-in for ever).
- ``GET /channels/{id}/messages?limit=N``: the channel's messages, newest first. Whether they
  carry their ``nonce`` is ``echo_nonce`` (Discord does not promise it on messages read back).
- ``PATCH /channels/{id}/messages/{id}``: edits a message.
- ``POST /users/@me/channels``: opens (or finds) the DM channel with ``recipient_id``.

Requests need ``Authorization: Bot <token>``. Every request is recorded. ``unknown_channels``
answer 404 ``10003 Unknown Channel``; ``fail`` answers the next requests of a method with 429
(``retry_after`` in the body and the ``Retry-After`` header), 5xx or any JSON error;
``drop_response`` does the work and closes the connection without an answer. Responses carry
``Content-Type: application/json`` exactly, as Discord's do.

A context manager; leaving it (or ``stop()``) stops the server and joins every thread it started.
"""

from __future__ import annotations

import json
import math
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.standin import QuietHandler

BOT_TOKEN = "discord-test-token"
BOT_USER_ID = "1100000000000000001"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class Failure:
    status: int
    body: dict[str, Any] | None = None
    retry_after_header: str | None = None
    drop: bool = False


@dataclass
class Channel:
    id: str
    recipient_id: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)


class DiscordStub:
    def __init__(self, *, token: str = BOT_TOKEN, echo_nonce: bool = False) -> None:
        self.token = token
        self.echo_nonce = echo_nonce
        self.requests: list[Request] = []
        self.channels: dict[str, Channel] = {}
        self.unknown_channels: set[str] = set()
        self.failures: dict[str, list[Failure]] = {}
        self._ids = 1200000000000000000
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        # Handler threads are joined by server_close(), so nothing outlives the stand-in.
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="discord-rest-stub", daemon=True)
        self._stopped = False

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v10"

    def __enter__(self) -> DiscordStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving (connections are refused from then on); harmless when already stopped."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- what a test sets up and reads ----------------------------------------------------------

    def fail(self, method: str, status: int, *, retry_after: float | None = None, code: int | None = None,
             message: str | None = None, retry_after_header: str | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests with HTTP ``method`` (``POST``, ``GET``, ``PATCH``) with
        ``status``: a 429 carries ``retry_after`` in its body and ``Retry-After`` rounded up, as Discord's do."""
        body: dict[str, Any] | None
        if status == 429:
            body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
            if retry_after is None:
                body = None
            elif retry_after_header is None:
                retry_after_header = str(math.ceil(retry_after))
        elif code is not None or message is not None:
            body = {"message": message or "", "code": code or 0}
        else:
            body = {"message": f"{status}: Server Error", "code": 0} if status >= 500 else None
        with self._lock:
            self.failures.setdefault(method, []).extend([Failure(status, body, retry_after_header)] * times)

    def drop_response(self, method: str, times: int = 1) -> None:
        """Do the next ``times`` requests with ``method``, then close the connection unanswered."""
        with self._lock:
            self.failures.setdefault(method, []).extend([Failure(0, drop=True)] * times)

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """The channel's messages, oldest first."""
        with self._lock:
            channel = self.channels.get(channel_id)
            return [dict(m) for m in channel.messages] if channel else []

    def requests_to(self, method: str, path_part: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and path_part in r.path]

    # -- the API --------------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def _shown(self, m: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in m.items() if k not in ("nonce", "enforce_nonce")}
        if self.echo_nonce and m.get("nonce") is not None:
            shown["nonce"] = m["nonce"]
        return shown

    def _answer(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = path.removeprefix("/api/v10/").strip("/").split("/")
        with self._lock:
            if method == "POST" and parts == ["users", "@me", "channels"]:
                recipient = str((body or {}).get("recipient_id") or "")
                if not recipient.isdigit():
                    return 400, {"message": "Invalid Form Body", "code": 50035,
                                 "errors": {"recipient_id": {"_errors": [{"code": "NUMBER_TYPE_COERCE"}]}}}
                dm = next((c for c in self.channels.values() if c.recipient_id == recipient), None)
                if dm is None:
                    dm = Channel(self._next_id(), recipient)
                    self.channels[dm.id] = dm
                return 200, {"id": dm.id, "type": 1, "recipients": [{"id": recipient}]}
            if len(parts) < 3 or parts[0] != "channels" or parts[2] != "messages":
                return 404, {"message": "404: Not Found", "code": 0}
            channel_id = parts[1]
            if channel_id in self.unknown_channels:
                return 404, {"message": "Unknown Channel", "code": 10003}
            channel = self.channels.setdefault(channel_id, Channel(channel_id))
            if method == "GET" and len(parts) == 3:
                limit = min(100, int(query.get("limit") or 50))
                return 200, [self._shown(m) for m in reversed(channel.messages)][:limit]
            if method == "POST" and len(parts) == 3:
                nonce = body.get("nonce")
                if body.get("enforce_nonce") and nonce is not None:
                    earlier = next((m for m in channel.messages if m.get("nonce") == nonce), None)
                    if earlier is not None:
                        return 200, {**earlier}
                if not (body.get("content") or body.get("embeds") or body.get("components")):
                    return 400, {"message": "Cannot send an empty message", "code": 50006}
                message = {"id": self._next_id(), "channel_id": channel_id, "type": 0,
                           "author": {"id": BOT_USER_ID, "username": "mona", "bot": True},
                           "content": body.get("content") or "", "embeds": body.get("embeds") or [],
                           "components": body.get("components") or [], "mentions": [], "mention_everyone": False,
                           "allowed_mentions": body.get("allowed_mentions"), "nonce": nonce}
                if body.get("message_reference"):
                    message["type"] = 19
                    message["message_reference"] = {**body["message_reference"], "channel_id": channel_id}
                channel.messages.append(message)
                return 200, dict(message)
            if method == "PATCH" and len(parts) == 4:
                edited = next((m for m in channel.messages if m["id"] == parts[3]), None)
                if edited is None:
                    return 404, {"message": "Unknown Message", "code": 10008}
                for k in ("content", "embeds", "components", "allowed_mentions"):
                    if k in body:
                        edited[k] = body[k]
                edited["edited_timestamp"] = "2026-11-01T00:00:00+00:00"
                return 200, self._shown(edited)
        return 405, {"message": "405: Method Not Allowed", "code": 0}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                with stub._lock:
                    stub.requests.append(Request(self.command, url.path, body, dict(self.headers.items())))
                    queued = stub.failures.get(self.command)
                    failure = queued.pop(0) if queued else None
                if self.headers.get("Authorization") != f"Bot {stub.token}":
                    self._json(401, {"message": "401: Unauthorized", "code": 0})
                    return
                if failure is not None and not failure.drop:
                    headers = {"Retry-After": failure.retry_after_header} if failure.retry_after_header else {}
                    if failure.body is None:
                        self._send(failure.status, b"", "text/plain", headers)
                    else:
                        self._json(failure.status, failure.body, headers)
                    return
                status, answer = stub._answer(self.command, url.path, query, body)
                if failure is not None:  # done, but the answer is lost on the way back
                    self.close_connection = True
                    return
                self._json(status, answer)

            do_GET = do_POST = do_PATCH = _handle  # noqa: N815 - http.server's naming

            def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(data).encode(), "application/json", headers)

        return Handler
