"""Local stand-ins for Slack, so the real Bolt app and the real Slack SDK run against loopback.

- ``WebApiStub``: the Web API (``auth.test``, ``views.open``, ``chat.postMessage``,
  ``chat.postEphemeral``, ``chat.update``, ``conversations.open``, ``conversations.history``,
  ``conversations.replies``, ``apps.connections.open``, ``files.info``), ``response_url`` endpoints
  (``/response/<id>``) and the downloads of files shared with ``share_file``
  (``url_private_download``, served to the bot token only); it records every call and keeps the
  messages posted, with their metadata. Files mona uploads go the way ``files_upload_v2`` takes:
  ``files.getUploadURLExternal`` hands out an upload URL (``/upload/v1/<file id>``, recorded as
  ``upload/<file id>`` with the bytes received), ``files.completeUploadExternal`` shares what was
  uploaded there in a channel (``uploads`` keeps each file: name, title, bytes, channel).
  A method can be made to answer ``ok: false``, an HTTP error (429 with ``Retry-After``, 500), to
  drop the connection after doing its work (a reply lost on the way back), or to hold its answer
  for a while after doing its work (a slow Slack; time to kill the client mid-request).
- ``WsgiServer``: serves a WSGI app (mona's ``wsgi_app``) with waitress on a free port.
- ``SocketModeStub``: a websocket endpoint playing Slack's side of Socket Mode.
- ``SlackRequests``: posts correctly signed slash commands and interactions built from the payload
  shapes kept in ``tests/fixtures/slack``, message shortcuts (``message_action``) and Events API
  events (``event_callback``, e.g. a file shared in a DM).

Each is a context manager that stops its threads on exit. Used by the Slack specs, and meant for
the benchmark and later platform tests too.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from tests.standin import QuietHandler

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-0000000000-test"
APP_TOKEN = "xapp-test"
FIXTURES = Path(__file__).parent / "fixtures" / "slack"

AUTH_TEST = {"ok": True, "url": "https://monaxspark.slack.com/", "team": "MONA x SPARK", "user": "mona",
             "team_id": "T0MONA001", "user_id": "U0MONABOT", "bot_id": "B0MONA001", "is_enterprise_install": False}


def payload(name: str) -> dict[str, Any]:
    """A fresh copy of a payload fixture: ``slash_command``, ``block_actions``, ``view_submission``."""
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))


def signature(body: bytes, timestamp: int, *, secret: str = SIGNING_SECRET) -> str:
    """Slack's request signature: ``v0=`` + HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": signature(body, ts, secret=secret)}


# ----------------------------------------------------------------------------------------------
# Web API


@dataclass(frozen=True)
class Failure:
    """How a method fails once: an HTTP ``status`` (``retry_after`` sets the header), or, with
    ``drop``, doing its work and closing the connection without an answer."""

    status: int = 500
    retry_after: float | None = None
    drop: bool = False


@dataclass(frozen=True)
class Call:
    """One request the stub received: ``method`` is the API method (``chat.postMessage``),
    ``response/<id>`` for a response_url or ``download/<file id>`` for a file's download;
    ``token`` is the bearer token it carried; ``at`` is when it arrived (``time.time()``)."""

    method: str
    body: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.time, compare=False)


class WebApiStub:
    """Slack's Web API on 127.0.0.1. ``errors[method] = "code"`` makes a method answer
    ``{"ok": false, "error": code}``; ``fail`` and ``drop_response`` make it fail at the HTTP
    level, ``hold`` makes it answer late; ``socket_url`` is what ``apps.connections.open`` hands
    out. ``messages`` are the messages posted (``channel``, ``ts``, ``text``, ``blocks``,
    ``metadata``, ``thread_ts``), which ``conversations.history`` and ``conversations.replies``
    serve back, newest first and oldest first as Slack does, with their metadata only when
    ``include_all_metadata`` is asked."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.errors: dict[str, str] = {}
        self.failures: dict[str, list[Failure]] = {}
        self.holds: dict[str, list[float]] = {}
        self.messages: list[dict[str, Any]] = []
        self.socket_url: str | None = None
        #: Files shared with ``share_file``: what ``files.info`` answers, and their bytes.
        self.files: dict[str, dict[str, Any]] = {}
        self.file_contents: dict[str, bytes] = {}
        #: Files mona uploaded, by file id: ``filename``, ``length`` announced, ``content`` received,
        #: and once completed ``title`` and ``channel``.
        self.uploads: dict[str, dict[str, Any]] = {}
        self._ts = 0
        self._stopped = False
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="slack-web-api-stub", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, key: str = "r1") -> str:
        return f"{self.url}/response/{key}"

    def __enter__(self) -> WebApiStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def stop(self) -> None:
        """Stop serving now (connections are refused from then on); exiting again is harmless."""
        self.__exit__()

    def fail(self, method: str, status: int = 500, *, retry_after: float | None = None, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP ``status`` and do nothing else."""
        with self._lock:
            self.failures.setdefault(method, []).extend([Failure(status, retry_after)] * times)

    def drop_response(self, method: str, times: int = 1) -> None:
        """Do the next ``times`` calls of ``method``, then close the connection without answering."""
        with self._lock:
            self.failures.setdefault(method, []).extend([Failure(drop=True)] * times)

    def hold(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Do the next ``times`` calls of ``method`` (a posted message is recorded at once), then
        wait ``seconds`` before answering; a client gone meanwhile gets nothing."""
        with self._lock:
            self.holds.setdefault(method, []).extend([seconds] * times)

    def share_file(self, name: str, content: bytes, *, filetype: str | None = None, mimetype: str | None = None,
                   size: int | None = None, download_url: str | None = None) -> dict[str, Any]:
        """A file as someone shared it on Slack; returns it as a message's ``files`` lists it.
        ``files.info`` describes it (``size`` defaults to the content's, ``filetype`` and
        ``mimetype`` to what Slack infers from a .csv, .txt or .png name) and its
        ``url_private_download`` serves ``content`` to the bot token (or is ``download_url``)."""
        with self._lock:
            file_id = f"F0FILE{len(self.files) + 1:04d}"
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        kinds = {"csv": ("csv", "text/csv"), "txt": ("text", "text/plain"), "png": ("png", "image/png")}
        inferred_type, inferred_mime = kinds.get(extension, ("binary", "application/octet-stream"))
        download = download_url or f"{self.url}/files-pri/T0MONA001-{file_id}/download/{urllib.parse.quote(name)}"
        file = {"id": file_id, "created": int(time.time()), "timestamp": int(time.time()), "name": name, "title": name,
                "mimetype": mimetype or inferred_mime, "filetype": filetype or inferred_type,
                "pretty_type": (filetype or inferred_type).upper(), "user": "USAM0001", "user_team": "T0MONA001",
                "editable": False, "size": len(content) if size is None else size, "mode": "hosted",
                "is_external": False, "external_type": "", "is_public": False, "public_url_shared": False,
                "display_as_bot": False, "username": "",
                "url_private": download.replace("/download/", "/"), "url_private_download": download,
                "permalink": f"https://monaxspark.slack.com/files/USAM0001/{file_id}/{name}"}
        with self._lock:
            self.files[file_id] = file
            self.file_contents[file_id] = content
        return dict(file)

    def shared_files(self, channel: str) -> list[dict[str, Any]]:
        """The files mona uploaded and shared in ``channel``, in order."""
        with self._lock:
            return [dict(u) for u in self.uploads.values() if u.get("channel") == channel]

    def messages_in(self, channel: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self.messages if m["channel"] == channel]

    def wait_messages(self, channel: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The messages of ``channel`` once there are at least ``count`` of them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := [dict(m) for m in self.messages if m["channel"] == channel]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(found)} of {count} messages in {channel} after {timeout}s")
                self._changed.wait(left)
            return found

    def _next_hold(self, method: str) -> float:
        with self._lock:
            queued = self.holds.get(method)
            return queued.pop(0) if queued else 0.0

    def _next_failure(self, method: str) -> Failure | None:
        with self._lock:
            queued = self.failures.get(method)
            return queued.pop(0) if queued else None

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def posted_to(self, response_url: str) -> list[Call]:
        """What mona posted to a ``response_url`` handed out by ``response_url()``."""
        return self.calls_to(response_url.removeprefix(self.url + "/"))

    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    def wait_for(self, method: str, count: int = 1, timeout: float = 3.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len([c for c in self.calls if c.method == method]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {method} call within {timeout}s; calls: {[c.method for c in self.calls]}")
                self._changed.wait(left)
            return [c for c in self.calls if c.method == method]

    def _record(self, call: Call) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method in self.errors:
            return {"ok": False, "error": self.errors[method]}
        if method == "auth.test":
            return AUTH_TEST
        if method == "views.open":
            view = body.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            return {"ok": True, "view": {**(view or {}), "id": "V0MONA0001"}}
        if method == "chat.postMessage":
            channel = body.get("channel")
            with self._changed:
                self._ts += 1
                ts = f"{int(time.time())}.{self._ts:06d}"
                message = {"channel": channel, "ts": ts, "text": body.get("text"), "blocks": _decoded(body.get("blocks")),
                           "metadata": _decoded(body.get("metadata")), "thread_ts": body.get("thread_ts")}
                self.messages.append(message)
                self._changed.notify_all()
            return {"ok": True, "channel": channel, "ts": ts,
                    "message": {"text": body.get("text"), "blocks": body.get("blocks")}}
        if method == "chat.update":
            with self._lock:
                found = next((m for m in self.messages if m["channel"] == body.get("channel")
                              and m["ts"] == body.get("ts")), None)
                if found is None:
                    return {"ok": False, "error": "message_not_found"}
                found.update(text=body.get("text"), blocks=_decoded(body.get("blocks")))
            return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts"), "text": body.get("text")}
        if method == "conversations.open":
            users = str(body.get("users") or "")
            if not users:
                return {"ok": False, "error": "users_list_not_supplied"}
            return {"ok": True, "channel": {"id": "D" + users.replace(",", "")}}
        if method in ("conversations.history", "conversations.replies"):
            return self._read(method, body)
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{time.time():.6f}"}
        if method == "files.info":
            with self._lock:
                file = self.files.get(str(body.get("file") or ""))
            return {"ok": True, "file": dict(file)} if file else {"ok": False, "error": "file_not_found"}
        if method == "files.getUploadURLExternal":
            filename, length = str(body.get("filename") or ""), str(body.get("length") or "")
            if not filename or not length.isdecimal():
                return {"ok": False, "error": "invalid_arguments"}
            with self._lock:
                file_id = f"F0UP{len(self.uploads) + 1:05d}"
                self.uploads[file_id] = {"id": file_id, "filename": filename, "length": int(length), "content": None}
            return {"ok": True, "upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            return self._complete_upload(body)
        if method == "apps.connections.open":
            if self.socket_url is None:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_url}
        return {"ok": False, "error": "unknown_method"}

    def _complete_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        """Share the files uploaded to their URLs (as Slack: each must have arrived whole) in ``channel_id``."""
        try:
            files = json.loads(str(body.get("files") or "[]"))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        channel = body.get("channel_id")
        done = []
        with self._lock:
            for f in files:
                upload = self.uploads.get(str(f.get("id")))
                if upload is None or upload["content"] is None or len(upload["content"]) != upload["length"]:
                    return {"ok": False, "error": "file_not_found"}
            for f in files:
                upload = self.uploads[str(f["id"])]
                upload.update(title=f.get("title") or upload["filename"], channel=channel)
                done.append({"id": upload["id"], "name": upload["filename"], "title": upload["title"],
                             "size": upload["length"], "mimetype": "image/png" if upload["filename"].endswith(".png")
                             else "application/octet-stream"})
        return {"ok": True, "files": done}

    def _read(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel")
        limit = int(body.get("limit") or 100)
        with_metadata = str(body.get("include_all_metadata")).lower() in ("1", "true")
        with self._lock:
            if method == "conversations.history":
                found = [m for m in reversed(self.messages) if m["channel"] == channel
                         and m["thread_ts"] in (None, m["ts"])]
            else:
                ts = body.get("ts")
                found = [m for m in self.messages if m["channel"] == channel
                         and (m["ts"] == ts or m["thread_ts"] == ts)]
            shown = []
            for m in found[:limit]:
                message = {"type": "message", "bot_id": AUTH_TEST["bot_id"], "text": m["text"], "ts": m["ts"]}
                if m["thread_ts"]:
                    message["thread_ts"] = m["thread_ts"]
                if with_metadata and m["metadata"]:
                    message["metadata"] = m["metadata"]
                shown.append(message)
        return {"ok": True, "messages": shown, "has_more": len(found) > limit}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                """A Web API method called with GET (``files.info``), or a file's download."""
                path, _, query = self.path.partition("?")
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ") or None
                if path.startswith("/files-pri/"):
                    file_id = path.split("/")[2].rsplit("-", 1)[-1]
                    stub._record(Call(f"download/{file_id}", {}, token))
                    with stub._lock:
                        content = stub.file_contents.get(file_id)
                    if content is None:
                        self._send(404, b"not found", "text/plain")
                    elif token != BOT_TOKEN:  # as Slack does: the sign-in page instead of the file
                        self._send(200, b"<!DOCTYPE html><html><title>Slack</title>Sign in</html>", "text/html; charset=utf-8")
                    else:
                        try:
                            self._send(200, content, "application/octet-stream")
                        except (BrokenPipeError, ConnectionResetError):
                            self.close_connection = True  # the client read what it wanted and left
                    return
                self._api(path, {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}, token)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.startswith("/upload/v1/"):
                    self._upload(self.path.split("?", 1)[0].rsplit("/", 1)[-1])
                    return
                body = self._read_body()
                auth = self.headers.get("Authorization") or ""
                token = auth.removeprefix("Bearer ") or body.get("token")
                path = self.path.split("?", 1)[0]
                if path.startswith("/response/"):
                    stub._record(Call(path.strip("/"), body, token))
                    self._send(200, b"ok", "text/plain")
                    return
                self._api(path, body, token)

            def _upload(self, file_id: str) -> None:
                """A file's bytes posted to the upload URL ``files.getUploadURLExternal`` gave."""
                content = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub._record(Call(f"upload/{file_id}", {"content": content}, None))
                failure = stub._next_failure(f"upload/{file_id}") or stub._next_failure("upload")
                if failure is not None:
                    self._fail(failure)
                    return
                with stub._lock:
                    upload = stub.uploads.get(file_id)
                    if upload is not None:
                        upload["content"] = content
                if upload is None:
                    self._send(404, b"not found", "text/plain")
                else:
                    self._send(200, f"OK - {len(content)}".encode(), "text/plain")

            def _api(self, path: str, body: dict[str, Any], token: str | None) -> None:
                method = path.removeprefix("/api/")
                stub._record(Call(method, body, token))
                failure = stub._next_failure(method)
                if failure is not None and not failure.drop:
                    self._fail(failure)
                    return
                answer = json.dumps(stub._answer(method, body)).encode()
                if failure is not None:  # the work is done, the answer is lost
                    self.close_connection = True
                    return
                held = stub._next_hold(method)
                if held:
                    time.sleep(held)
                try:
                    self._send(200, answer, "application/json; charset=utf-8")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client went away while the answer was held

            def _fail(self, failure: Failure) -> None:
                if failure.status == 429:
                    data, content_type = json.dumps({"ok": False, "error": "ratelimited"}).encode(), "application/json"
                else:
                    data, content_type = f"HTTP {failure.status}".encode(), "text/plain"
                headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else None
                self._send(failure.status, data, content_type, headers)

        return Handler


def _decoded(value: Any) -> Any:
    """A JSON argument as sent: a dict or list in a JSON body, a string in a form."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# ----------------------------------------------------------------------------------------------
# mona's HTTP endpoint


class WsgiServer:
    """A WSGI app served by waitress on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, app: Callable[..., Any], *, threads: int = 4, **options: Any) -> None:
        """``options`` are waitress's (e.g. ``bot.slack.SERVER_OPTIONS``, as ``serve_http`` uses)."""
        self._server = create_server(app, host="127.0.0.1", port=0, **{**options, "threads": threads})
        self._thread = threading.Thread(target=self._server.run, name="waitress", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.effective_port}"  # type: ignore[union-attr]

    def __enter__(self) -> WsgiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # Close every socket from inside waitress's own loop (a thunk run by its trigger), so the
        # loop ends at once instead of at its next timeout, then stop the worker threads.
        server = self._server
        # A loop that has already closed its sockets (the trigger among them) is ending by itself.
        with contextlib.suppress(OSError):
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))  # type: ignore[union-attr]
        self._thread.join(timeout=5)
        server.task_dispatcher.shutdown()


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Response:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return Response(r.status, r.read(), r.headers.get("Content-Type") or "")
    except urllib.error.HTTPError as e:
        return Response(e.code, e.read(), e.headers.get("Content-Type") or "")


class SlackRequests:
    """Slack's side of the Events API: signed slash commands and interactions posted to mona."""

    def __init__(self, base_url: str, web_api: WebApiStub, *, secret: str = SIGNING_SECRET) -> None:
        self.events_url = f"{base_url}/slack/events"
        self.web_api = web_api
        self.secret = secret
        self._responses = 0

    def post(self, body: bytes, content_type: str, *, headers: dict[str, str] | None = None) -> Response:
        """Post ``body`` signed with the signing secret, unless ``headers`` are given."""
        sent = {"Content-Type": content_type, **(signed_headers(body, secret=self.secret) if headers is None else headers)}
        return http("POST", self.events_url, body, sent)

    def next_response_url(self) -> str:
        self._responses += 1
        return self.web_api.response_url(f"r{self._responses}")

    def command_body(self, text: str, *, user: str = "UADMIN01", command: str = "/artist",
                     channel: str = "C0CRM0001") -> bytes:
        form = payload("slash_command")
        if user != form["user_id"]:
            form.update(user_id=user, user_name=user.lower())
        form.update(command=command, text=text, channel_id=channel, response_url=self.next_response_url())
        return urllib.parse.urlencode(form).encode()

    def command(self, text: str, **kw: Any) -> Response:
        """``/artist show Alex`` is ``command("show Alex")``; other commands with ``command=``."""
        return self.post(self.command_body(text, **kw), "application/x-www-form-urlencoded")

    def interaction(self, data: dict[str, Any]) -> Response:
        body = urllib.parse.urlencode({"payload": json.dumps(data)}).encode()
        return self.post(body, "application/x-www-form-urlencoded")

    def click(self, element: dict[str, Any], *, option: dict[str, Any] | None = None, user: str = "UADMIN01",
              channel: str = "C0CRM0001") -> tuple[Response, str]:
        """Click a rendered button, or pick ``option`` in a rendered menu; returns the response and
        the response_url Slack gave with the click."""
        data = self.click_payload(element, option=option, user=user, channel=channel)
        return self.interaction(data), data["response_url"]

    def click_payload(self, element: dict[str, Any], *, option: dict[str, Any] | None = None, user: str = "UADMIN01",
                      channel: str = "C0CRM0001") -> dict[str, Any]:
        """The ``block_actions`` payload of ``click`` (also what Socket Mode carries)."""
        data = payload("block_actions")
        if user != data["user"]["id"]:
            data["user"].update(id=user, username=user.lower(), name=user.lower())
        data["channel"]["id"] = data["container"]["channel_id"] = channel
        data["response_url"] = self.next_response_url()
        action: dict[str, Any] = {"action_id": element["action_id"], "block_id": "Xb0vK", "type": element["type"],
                                  "action_ts": f"{time.time():.6f}"}
        if element["type"] == "button":
            action["text"] = element["text"]
            if "value" in element:
                action["value"] = element["value"]
        else:
            assert option is not None, "pick an option of a menu"
            action.update(selected_option=option, placeholder=element.get("placeholder"))
        data["actions"] = [action]
        return data

    def shortcut_payload(self, callback_id: str, files: list[dict[str, Any]], *, user: str = "UADMIN01",
                         channel: str = "C0CRM0001", text: str = "The metrics of the week") -> dict[str, Any]:
        """A message shortcut (``message_action``) chosen on someone's message holding ``files``
        (as ``WebApiStub.share_file`` returns them), with a response_url of its own."""
        self._responses += 1
        return {"type": "message_action", "token": "gIkuvaNzQIHg97ATvDxqgjtO", "action_ts": f"{time.time():.6f}",
                "team": {"id": "T0MONA001", "domain": "monaxspark"},
                "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T0MONA001"},
                "channel": {"id": channel, "name": "crm"}, "is_enterprise_install": False, "enterprise": None,
                "callback_id": callback_id, "trigger_id": f"8033470584673.1234567890123.{self._responses:032x}",
                "response_url": self.web_api.response_url(f"r{self._responses}"),
                "message_ts": "1764070100.000200",
                "message": {"client_msg_id": "5a4e2f0c-8f1e-4d59-9c3e-2f35c7a1b0d4", "type": "message", "text": text,
                            "user": "USAM0001", "ts": "1764070100.000200", "team": "T0MONA001", "files": files,
                            "upload": False, "display_as_bot": False, "blocks": []}}

    def shortcut(self, callback_id: str, files: list[dict[str, Any]], **kw: Any) -> tuple[Response, str]:
        """Choose a message shortcut on a message holding ``files``; returns the response and the
        shortcut's response_url."""
        data = self.shortcut_payload(callback_id, files, **kw)
        return self.interaction(data), data["response_url"]

    def event_body(self, event: dict[str, Any]) -> dict[str, Any]:
        """An Events API delivery (``event_callback``) of ``event``."""
        self._responses += 1
        return {"token": "gIkuvaNzQIHg97ATvDxqgjtO", "team_id": "T0MONA001", "context_team_id": "T0MONA001",
                "api_app_id": "A0MONA001", "event": event, "type": "event_callback",
                "event_id": f"Ev0MONA{self._responses:05d}", "event_time": int(time.time()),
                "authorizations": [{"enterprise_id": None, "team_id": "T0MONA001", "user_id": "U0MONABOT",
                                    "is_bot": True, "is_enterprise_install": False}],
                "is_ext_shared_channel": False, "event_context": f"4-eyJldCI6Im1lc3NhZ2UifQ-{self._responses}"}

    def event(self, event: dict[str, Any]) -> Response:
        return self.post(json.dumps(self.event_body(event)).encode(), "application/json")

    @staticmethod
    def dm_file_share(files: list[dict[str, Any]], *, user: str = "UADMIN01", channel: str = "D0ADMIN01",
                      text: str = "") -> dict[str, Any]:
        """The ``message`` event of ``files`` sent in the DM ``channel`` with mona (``message.im``)."""
        ts = f"{time.time():.6f}"
        return {"type": "message", "subtype": "file_share", "text": text, "files": files, "upload": False,
                "user": user, "display_as_bot": False, "ts": ts, "client_msg_id": "0c1e5b8a-6f7d-4c2e-9a1b-3d4e5f6a7b8c",
                "channel": channel, "event_ts": ts, "channel_type": "im"}

    def submit(self, view: dict[str, Any], values: dict[str, str], *, user: str = "UADMIN01") -> Response:
        """Submit a view as opened by ``views.open``, with ``{block_id: value}`` filled in."""
        return self.interaction(self.submission(view, values, user=user))

    def submission(self, view: dict[str, Any], values: dict[str, str], *, user: str = "UADMIN01") -> dict[str, Any]:
        """The ``view_submission`` payload of ``submit`` (also what Socket Mode carries)."""
        data = payload("view_submission")
        self._responses += 1  # each submission has its own trigger_id, as on Slack
        data["trigger_id"] = f"{data['trigger_id']}.{self._responses}"
        if user != data["user"]["id"]:
            data["user"].update(id=user, username=user.lower(), name=user.lower())
        state: dict[str, dict[str, Any]] = {}
        for block in view["blocks"]:
            if block.get("type") != "input":
                continue
            element = block["element"]
            value = values.get(block["block_id"])
            if element["type"] == "static_select":
                chosen = next((o for o in element["options"] if o["value"] == value), None)
                entry = {"type": "static_select", "selected_option": chosen}
            else:
                entry = {"type": element["type"], "value": value or None}
            state[block["block_id"]] = {element["action_id"]: entry}
        data["view"].update({k: v for k, v in view.items() if k in ("blocks", "callback_id", "private_metadata",
                                                                     "title", "submit", "close")})
        data["view"]["state"] = {"values": state}
        return data


# ----------------------------------------------------------------------------------------------
# Socket Mode


class SocketModeStub:
    """Slack's Socket Mode endpoint on ``ws://127.0.0.1:PORT/link``: says ``hello`` to each client
    connection, sends envelopes on demand (on the newest connection, or one named by its number)
    and collects what clients send back. Its asyncio loop runs in its own thread, so synchronous
    code (Bolt) can use it. Faults: ``go_silent`` (a connection dropped without a close frame:
    nothing more is read or answered, pings included), ``refresh`` (Slack's ``disconnect`` of
    ``refresh_requested``: the connection stays open, as on Slack, until the client leaves it).

    Slack waits ``ACK_DEADLINE`` seconds for an envelope's acknowledgement, then counts it as
    failed; ``ack_for`` waits that long by default."""

    ACK_DEADLINE = 3.0

    def __init__(self) -> None:
        self.connected = threading.Event()
        self.connections: list[Any] = []
        #: What clients sent, in order, with ``_connection`` (its number) and ``_at`` (``time.monotonic()``).
        self.sent_back: list[dict[str, Any]] = []
        self._opened = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="socket-mode-stub", daemon=True)
        self._server: Any = None
        self._connection: Any = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    def __enter__(self) -> SocketModeStub:
        from websockets.asyncio.server import serve

        self._thread.start()

        async def start() -> Any:
            # No pings from Slack's side: a client has to notice a dead connection by its own.
            return await serve(self._session, "127.0.0.1", 0, ping_interval=None)

        self._server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            for connection in self.connections:  # a silent one would hold the server's close
                connection.transport.abort()
            self._server.close()
            await self._server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    async def _session(self, connection: Any) -> None:
        with self._opened:
            self.connections.append(connection)
            self._connection = connection
            number = len(self.connections)
            self._opened.notify_all()
        await connection.send(json.dumps({"type": "hello", "num_connections": 1,
                                          "debug_info": {"host": "applink-stub", "approximate_connection_time": 18060},
                                          "connection_info": {"app_id": "A0MONA001"}}))
        self.connected.set()
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in connection:
                got = {**json.loads(message), "_connection": number, "_at": time.monotonic()}
                with self._opened:
                    self.sent_back.append(got)
                    self._opened.notify_all()
        except ConnectionClosed:
            pass  # the SDK drops the socket without a closing handshake

    def wait_connections(self, count: int, timeout: float = 10.0) -> int:
        """Wait until ``count`` connections were opened in all; returns how many were."""
        with self._opened:
            if not self._opened.wait_for(lambda: len(self.connections) >= count, timeout):
                raise AssertionError(f"{len(self.connections)} of {count} Socket Mode connections within {timeout}s")
            return len(self.connections)

    def hang_up(self) -> None:
        """Close the client's connection from Slack's side, as Slack does when it rotates hosts.
        (A client closing on its own waits up to 3 s for its receive loop to let go.)"""
        if self._connection is not None:
            asyncio.run_coroutine_threadsafe(self._connection.close(), self._loop).result(5)

    def go_silent(self, number: int | None = None) -> None:
        """The connection (default: the newest) stops reading and sending without closing, as
        when the network drops it: the client's pings go unanswered."""
        connection = self._pick(number)
        self._loop.call_soon_threadsafe(connection.transport.pause_reading)

    def refresh(self, number: int | None = None) -> None:
        """Ask the client to move to a new connection, as Slack does every few hours."""
        self.send({"type": "disconnect", "reason": "refresh_requested",
                   "debug_info": {"host": "applink-stub"}}, on=number)

    def _pick(self, number: int | None) -> Any:
        assert self.connected.wait(5), "no Socket Mode client connected"
        with self._opened:
            return self.connections[-1] if number is None else self.connections[number - 1]

    def send(self, envelope: dict[str, Any], *, on: int | None = None) -> float:
        """Send on connection number ``on`` (1 is the first; default: the newest); returns when
        it was sent (``time.monotonic()``)."""
        connection = self._pick(on)
        asyncio.run_coroutine_threadsafe(connection.send(json.dumps(envelope)), self._loop).result(5)
        return time.monotonic()

    def ack_for(self, envelope_id: str, timeout: float = ACK_DEADLINE, *, sent_at: float | None = None,
                nth: int = 1) -> dict[str, Any]:
        """The ``nth`` acknowledgement of ``envelope_id`` (an envelope sent twice is acknowledged
        twice), if it comes within ``timeout`` (by default Slack's deadline) of ``sent_at`` (what
        ``send`` returned; default: now)."""

        def found() -> list[dict[str, Any]]:
            return [m for m in self.sent_back if m.get("envelope_id") == envelope_id]

        left = timeout if sent_at is None else sent_at + timeout - time.monotonic()
        with self._opened:
            if not self._opened.wait_for(lambda: len(found()) >= nth, max(0.0, left)):
                raise AssertionError(f"envelope {envelope_id} was not acknowledged ({nth}×) within {timeout}s")
            return found()[nth - 1]

    def acks_for(self, envelope_id: str) -> list[dict[str, Any]]:
        with self._opened:
            return [m for m in self.sent_back if m.get("envelope_id") == envelope_id]
