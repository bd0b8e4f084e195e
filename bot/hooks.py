"""``POST /hooks/NAME``: an incoming webhook runs the workflow of that name (``core.workflows.from_webhook``):
the body (a JSON object, at most 1 MiB) signed with HMAC-SHA256 of the workflow's secret in
``X-Mona-Signature: sha256=…``. Answers 202 with the run's id, or 4xx with the reason: 404 no such
webhook, 401 a wrong signature, 413 a body too big, 400 a body that is not a JSON object or fails the
conditions, 409 the workflow is disabled. Served beside the health check (``bot.health``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from core import workflows as flows
from core.errors import NotFound, UserError
from core.i18n import use_language

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from bot.app import Mona

PREFIX = "/hooks/"
log = logging.getLogger("mona.hooks")


def answer(mona: Mona, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    name = (environ.get("PATH_INFO") or "")[len(PREFIX):].strip("/")
    if environ.get("REQUEST_METHOD") != "POST":
        return _send(start_response, "405 Method Not Allowed", {"error": "POST only"})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0 or length > flows.MAX_HOOK_BODY:
        return _send(start_response, "413 Content Too Large", {"error": f"the body is at most {flows.MAX_HOOK_BODY} bytes"})
    body = environ["wsgi.input"].read(length) if length else b""
    with use_language(mona.settings.lang):
        try:
            with mona.db.uow() as uow:
                run = flows.from_webhook(uow, name, body, environ.get("HTTP_X_MONA_SIGNATURE"))
                uow.commit()
                run_id = run.id
        except flows.BadSignature as e:
            log.warning("webhook %s: wrong signature", name)
            return _send(start_response, "401 Unauthorized", {"error": e.message})
        except NotFound as e:
            return _send(start_response, "404 Not Found", {"error": e.message})
        except flows.Disabled as e:
            return _send(start_response, "409 Conflict", {"error": e.message})
        except UserError as e:
            return _send(start_response, "400 Bad Request", {"error": e.message})
    runner = mona.app.services.flows
    if runner is not None:
        runner.start([run_id])
    return _send(start_response, "202 Accepted", {"run": run_id})


def _send(start_response: StartResponse, status: str, payload: dict[str, object]) -> Iterable[bytes]:
    body = json.dumps(payload, ensure_ascii=False).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
