"""``GET /healthz``: 200 when the database answers and no connected adapter reports a problem
(e.g. Twitch revoked the chat subscription and mona could not make it again), 503 otherwise, with
what is wrong; for process managers and the compose file's health checks. Served by the Slack
HTTP server, or on its own when mona connects out (Socket Mode, Discord, Twitch) and has no other
HTTP server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot import hooks

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from bot.app import Mona

HEALTH_PATH = "/healthz"
FEED_PATH = "/cal.ics"
#: The health check reads no body; a workflow's webhook takes up to 1 MiB (waitress refuses larger
#: ones, 413, before mona sees them).
MAX_BODY = 1024 * 1024 + 1024
log = logging.getLogger("mona.health")


def database_answers(mona: Mona) -> bool:
    try:
        with mona.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError as e:
        log.warning("health check: database unavailable (%s)", type(e).__name__)
        return False


def adapter_problems(mona: Mona) -> list[str]:
    """What the connected adapters say is wrong: a gateway commands use (``mona.runtime.moderators``)
    may have ``health_problem() -> str | None`` (``bot.twitch_moderation.LiveTwitchModeration``)."""
    problems: list[str] = []
    for gateway in list(mona.runtime.moderators.values()):
        check = getattr(gateway, "health_problem", None)
        problem = check() if callable(check) else None
        if problem:
            problems.append(str(problem))
    return problems


def answer(mona: Mona, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The health check, a workflow's incoming webhook (``bot.hooks``), or 404 for any other path."""
    path = environ.get("PATH_INFO") or "/"
    method = environ.get("REQUEST_METHOD", "GET")
    if path.startswith(hooks.PREFIX):
        return hooks.answer(mona, environ, start_response)
    if path == FEED_PATH and method in ("GET", "HEAD"):
        return _feed(mona, environ, start_response)
    if path == HEALTH_PATH and method in ("GET", "HEAD"):
        problems = adapter_problems(mona)
        if not database_answers(mona):
            status, body = "503 Service Unavailable", b"database unavailable"
        elif problems:
            status, body = "503 Service Unavailable", "; ".join(problems).encode()
        else:
            status, body = "200 OK", b"ok"
    else:
        status, body = "404 Not Found", b"not found"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body if method != "HEAD" else b""]


def _feed(mona: Mona, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """A member's calendar as iCalendar (``/cal.ics?token=…``, from ``/cal link``); 404 for a token
    that is not, or no longer, valid."""
    from urllib.parse import parse_qs

    from core import calendar

    token = (parse_qs(environ.get("QUERY_STRING") or "").get("token") or [""])[0]
    with mona.db.uow() as uow:
        events = calendar.feed_events(uow, token) if token else None
        body = calendar.export(events, name="mona") if events is not None else b"not found"
    status = "200 OK" if events is not None else "404 Not Found"
    kind = "text/calendar; charset=utf-8" if events is not None else "text/plain; charset=utf-8"
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body if environ.get("REQUEST_METHOD") != "HEAD" else b""]


def serve_in_background(mona: Mona) -> threading.Thread:
    """The health check alone, on ``MONA_HTTP_HOST:PORT``, in a daemon thread."""
    from waitress.server import create_server

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return answer(mona, environ, start_response)

    server = create_server(application, host=mona.settings.http_host, port=mona.settings.http_port, threads=2,
                           max_request_body_size=MAX_BODY)
    thread = threading.Thread(target=server.run, name="mona-health", daemon=True)
    thread.start()
    log.info("health check on %s:%s%s", mona.settings.http_host, mona.settings.http_port, HEALTH_PATH)
    return thread
