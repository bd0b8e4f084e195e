"""A local stand-in for an OpenAI-compatible API, so the real ``openai`` client runs against loopback.

``OpenAIStandIn`` serves ``POST /v1/chat/completions`` (and ``GET /v1/models``) on 127.0.0.1 at a
free port, in the OpenAI wire format, from a thread of its own; it records every request (method,
path, headers, JSON body) before answering, so tests assert on the prompts and count the client's
retries. What it answers is set by a mode:

- ``answer(text)``: a chat completion whose content is ``text`` (the default: a short plan);
- ``answer_slowly(seconds)``: the same, after ``seconds`` (longer than the client's timeout);
- ``fail(status, times=n)``: ``status`` (500 by default) ``n`` times, then the answer; ``times=None``
  fails every time. 401 says the key is wrong, echoing it as OpenAI does; 429 carries
  ``Retry-After: 0``;
- ``answer_empty()``: a chat completion whose content is empty.

Error answers carry ``retry-after-ms`` (1 ms unless told otherwise), which the client honours,
so its bounded retries take milliseconds rather than its default backoff of seconds.
Use it as a context manager: leaving stops the server and any slow answer still waiting.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from tests.standin import QuietHandler

DEFAULT_ANSWER = ("1. Open a Distribution request to lift Market Opportunity.\n"
                  "2. Plan two releases with Marketing/Image.\n"
                  "3. Move the artist to the next step once the figures are updated.")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class _Answer:
    status: int
    data: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering.
    delay: float = 0.0


class OpenAIStandIn:
    def __init__(self, *, retry_after_ms: int | None = 1) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._retry_after_ms = retry_after_ms
        self.answer(DEFAULT_ANSWER)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        # Leaving joins every connection's thread: a stop that returns is a clean one.
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-standin", daemon=True)

    # -- life ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to give the client (``OPENAI_BASE_URL``)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> OpenAIStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # a slow answer still waiting gives up at once
        self._server.shutdown()
        self._server.server_close()  # joins the connections' threads
        self._thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # -- modes -----------------------------------------------------------------------------------

    def answer(self, text: str | None) -> None:
        """Answer every chat completion with ``text`` as its content (``None``: a null content)."""
        with self._lock:
            self._text, self._delay, self._status, self._failures_left = text, 0.0, 500, 0

    def answer_slowly(self, seconds: float, text: str = DEFAULT_ANSWER) -> None:
        self.answer(text)
        with self._lock:
            self._delay = seconds

    def fail(self, status: int = 500, *, times: int | None = None, then: str = DEFAULT_ANSWER) -> None:
        """Answer ``status`` ``times`` times (``None``: always), then ``then``."""
        self.answer(then)
        with self._lock:
            self._status, self._failures_left = status, -1 if times is None else times

    def answer_empty(self) -> None:
        self.answer("")

    # -- what it received ------------------------------------------------------------------------

    def chat_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith("/chat/completions")]

    # -- serving ---------------------------------------------------------------------------------

    def _handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> _Answer:
        """Record the request and say how to answer it."""
        with self._lock:
            self.requests.append(Recorded(method, path, headers, body))
            number = len(self.requests)
            failing = self._failures_left != 0
            if self._failures_left > 0:
                self._failures_left -= 1
            text, status, delay = self._text, self._status, self._delay
        if method == "GET" and path.rstrip("/").endswith("/v1/models"):
            return _Answer(200, {"object": "list", "data": [{"id": "mona-test", "object": "model", "created": 0,
                                                             "owned_by": "standin"}]})
        if not (method == "POST" and path.rstrip("/").endswith("/v1/chat/completions")):
            return _Answer(404, _error(f"Unknown request {method} {path}", "invalid_request_error", "unknown_url"))
        if failing:
            return self._failure(status, headers)
        model = body.get("model") if isinstance(body, dict) else None
        return _Answer(200, _completion(model or "mona-test", text, number=number), delay=delay)

    def _failure(self, status: int, headers: dict[str, str]) -> _Answer:
        extra = {"retry-after-ms": str(self._retry_after_ms)} if self._retry_after_ms is not None else {}
        if status == 401:
            key = headers.get("authorization", "").removeprefix("Bearer ")
            return _Answer(401, _error(f"Incorrect API key provided: {key}.", "invalid_request_error",
                                       "invalid_api_key"))
        if status == 429:
            return _Answer(429, _error("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
                           {"Retry-After": "0", **extra})
        return _Answer(status, _error("The server had an error while processing your request.", "server_error",
                                      None), extra)

    def _handler_class(self) -> type[QuietHandler]:
        standin = self

        class Handler(QuietHandler):
            #: A connection idle this long is closed, so that leaving never waits on a client left open.
            timeout = 5

            def _serve(self) -> None:
                try:
                    body = self._read_body() if self.command == "POST" else None
                except json.JSONDecodeError:
                    body = None
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = standin._handle(self.command, self.path, headers, body)
                if answer.delay and standin._stopping.wait(answer.delay):
                    self.close_connection = True
                    return  # stopping: the client gave up long ago
                try:
                    self._send(answer.status, json.dumps(answer.data).encode(), "application/json", answer.headers)
                except OSError:  # the client timed out and closed the connection
                    self.close_connection = True

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self._serve()

            def do_GET(self) -> None:  # noqa: N802
                self._serve()

        return Handler


def _completion(model: str, text: str | None, *, number: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-standin-{number}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "system_fingerprint": None,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": text, "refusal": None}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": len(text or "") // 4,
                  "total_tokens": 100 + len(text or "") // 4},
    }


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}
