"""What the platform stand-ins share: the log of the requests they received (readable and awaited
from any thread), the failures a test queues on them, and the harness that runs the real client
against one on an asyncio loop in a thread of its own and checks, on leaving, that nothing was
left behind (tasks, threads, errors logged).

Used by ``tests/discord_gateway_stub.py`` and ``tests/twitch_stub.py``; the quiet JSON request
handler by the http.server stand-ins (and the benchmarks' stubs)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Generic, Protocol, Self, TypeVar

T = TypeVar("T")


class _Request(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...


R = TypeVar("R", bound=_Request)


# ----------------------------------------------------------------------------------------------
# The recorded requests and the failures to inject


@dataclass
class Failure:
    """Answer the next ``method`` request whose path contains ``path_part`` with ``status``;
    ``detail`` is what the stand-in puts in its error (Discord's error code, Twitch's message)."""

    method: str
    path_part: str
    status: int
    detail: Any


@dataclass
class RequestLog(Generic[R]):
    """The requests a stand-in received, in order. A stand-in ``_record``s each one on its loop;
    tests read them with ``requests_to`` and ``wait_for`` from any thread. ``_describe`` is how a
    request is listed when ``wait_for`` gives up."""

    requests: list[R] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._changed = threading.Condition()
        self._failures: list[Failure] = []

    def _record(self, request: R) -> None:
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()

    def _describe(self, request: R) -> str:
        return f"{request.method} {request.path}"

    def _matching(self, method: str, pattern: str) -> list[R]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    def _add_failure(self, method: str, path_part: str, status: int, detail: Any) -> None:
        self._failures.append(Failure(method, path_part, status, detail))

    def _take_failure(self, method: str, path: str) -> Failure | None:
        """The failure queued for this request, if any (it is used up)."""
        failure = next((f for f in self._failures if f.method == method and f.path_part in path), None)
        if failure is not None:
            self._failures.remove(failure)
        return failure

    # -- reading what happened (from any thread) ------------------------------------------------

    def requests_to(self, method: str, pattern: str = "") -> list[R]:
        with self._changed:
            return self._matching(method, pattern)

    def wait_for(self, method: str, pattern: str = "", *, count: int = 1, timeout: float = 5.0) -> list[R]:
        """The first ``count`` requests matching, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self._matching(method, pattern)
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(f"  {self._describe(r)}" for r in self.requests)
                    raise AssertionError(f"no {method} {pattern!r} within {timeout}s; requests:\n{seen}")
                self._changed.wait(left)


# ----------------------------------------------------------------------------------------------
# The real client against a stand-in, on a loop of its own


class ErrorLog(logging.Handler):
    """Every record of level ERROR and above it is given."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _of_another_loop(name: str, mine: str) -> bool:
    """A worker thread of another ``LiveLoop`` still open (it checks its own when it closes)."""
    return "-worker_" in name and not name.startswith(mine)


class LiveLoop:
    """An event loop in its own thread, for a client and its stand-in. Use as a context manager:
    entering collects the errors of ``loggers``, ``_patch``es, starts the loop and runs ``_start``;
    leaving runs ``_close`` (the client's and the stand-in's), waits for the other tasks, stops the
    loop and shuts its worker threads down, ``_unpatch``es, and fails if a task was left pending, a
    thread left running, or an error logged."""

    def __init__(self, *, loggers: tuple[str, ...], thread_name: str) -> None:
        self.errors = ErrorLog()
        self.loggers = loggers
        self.loop = asyncio.new_event_loop()
        # Its worker threads are named after it, so that two live loops at once (Discord and Twitch
        # in one spec) each check only their own.
        self.loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix=f"{thread_name}-worker"))
        self._thread = threading.Thread(target=self.loop.run_forever, name=thread_name, daemon=True)
        self._threads_before = set(threading.enumerate())
        self._others = f"{thread_name}-worker"

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _patch(self) -> None:
        """Point the client library at the stand-in (before the loop starts)."""

    def _unpatch(self) -> None:
        """Put back what ``_patch`` (or the client's start) changed."""

    async def _start(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        """Close the client and the stand-in."""

    def __enter__(self) -> Self:
        for name in self.loggers:
            logging.getLogger(name).addHandler(self.errors)
        self._patch()
        self._thread.start()
        try:
            self.run(self._start())
        except BaseException:
            self.__exit__()
            raise
        return self

    async def _stop(self) -> list[str]:
        await self._close()
        current = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not current]
        if others:
            await asyncio.wait(others, timeout=2)
        pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        for t in pending:
            t.cancel()
        return [repr(t) for t in pending]

    def __exit__(self, *exc: object) -> None:
        pending: list[str] = []
        try:
            if self._thread.is_alive():
                pending = self.run(self._stop())
        finally:
            for name in self.loggers:
                logging.getLogger(name).removeHandler(self.errors)
            self._unpatch()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()
        for t in set(threading.enumerate()) - self._threads_before:
            t.join(2)
        left = [t.name for t in set(threading.enumerate()) - self._threads_before
                if t.is_alive() and not _of_another_loop(t.name, self._others)]
        if exc and exc[0] is not None:
            return
        assert not pending, f"tasks left pending: {pending}"
        assert not left, f"threads left running: {left}"
        errors = [f"{r.name}: {r.getMessage()}" for r in self.errors.records]
        assert not errors, f"errors logged: {errors}"


# ----------------------------------------------------------------------------------------------
# http.server stand-ins


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers with ``_send``."""

    protocol_version = "HTTP/1.1"

    def _read_body(self) -> Any:
        """The request's body: a JSON object, or a form (each field's first value)."""
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "json" in (self.headers.get("Content-Type") or ""):
            return json.loads(raw or b"{}")
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base
        pass
