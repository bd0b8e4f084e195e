"""The Slack adapter: one Bolt app for Socket Mode and for the HTTP Events API.

The adapter only translates. A slash command, a button or menu click, or a modal submission
becomes an ``Invocation``; ``Dispatcher.dispatch`` returns a ``Reply``; ``bot.slack_render`` turns
it into Block Kit. Whatever Slack sent, the same handlers run as on every other platform.

How each kind is answered:

- ``/artist``, ``/pipeline``, ``/mona``: the reply travels *in the acknowledgement* itself
  (``response_type`` ``in_channel`` or ``ephemeral``). A reply that is a form opens a modal with
  ``views.open``.
- a button or menu click: acknowledged, then the reply goes to the message's ``response_url``
  (replacing the message when the reply says so, e.g. a refreshed card or the next page); a form
  opens a modal.
- a modal submission: field errors are shown beside the fields (``response_action: errors``) and
  the modal stays open; otherwise the modal closes and the reply is posted in the channel the
  modal was opened from (``chat.postEphemeral`` or ``chat.postMessage``).

Why ``process_before_response=True``: mona's commands are short database work (milliseconds), so
the listener runs *before* Bolt answers Slack and the reply is the acknowledgement's body. One
HTTP round trip instead of two (ack, then a ``response_url`` post), and no hand-off to Bolt's
thread pool, which costs about 10 ms per request. Slack's 3-second limit still holds: work that
may take longer belongs in a job that posts its result later. The same setting is what
serverless hosts require, so the app runs unchanged there.

Tokens and the signing secret are read from ``Settings`` and only handed to the Slack SDK; this
module never logs them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import health
from bot.slack_render import (
    action_id_of,
    blocks,
    fallback_text,
    modal_view,
    read_view_metadata,
    submitted_values,
    view_metadata,
)
from core.i18n import _, use_language
from handlers.registry import registry
from handlers.reply import Invocation, Modal, Reply

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from bot.app import Mona

PLATFORM = "slack"
EVENTS_PATH = "/slack/events"

log = logging.getLogger("mona.slack")
T = TypeVar("T")


def build_app(mona: Mona, *, client: WebClient | None = None) -> App:
    """The Bolt app with mona's listeners. Creating it calls ``auth.test`` with the bot token.

    ``client`` replaces the Web API client built from settings (``SLACK_BOT_TOKEN``,
    ``SLACK_API_URL``); tests and benchmarks point it at a local stand-in."""
    settings = mona.settings
    if client is None:
        base_url = settings.slack_api_url or WebClient.BASE_URL
        client = WebClient(token=settings.slack_bot_token, base_url=base_url.rstrip("/") + "/")
    app = App(name="mona", signing_secret=settings.slack_signing_secret or "", client=client,
              process_before_response=True)
    adapter = _Adapter(mona)
    for group in registry.groups:
        app.command(f"/{group}")(adapter.command_listener(group))
    app.action(re.compile(".*"))(adapter.on_action)
    app.view(re.compile(".*"))(adapter.on_view_submission)
    return app


class _Adapter:
    """Payload → ``Invocation`` → ``Dispatcher.dispatch`` → Block Kit, for each kind of request."""

    def __init__(self, mona: Mona) -> None:
        self.mona = mona

    def _dispatch(self, inv: Invocation) -> Reply:
        return self.mona.dispatcher.dispatch(inv)

    def _render(self, fn: Callable[[], T]) -> T:
        """Render in the deployment's language (the renderer has a few words of its own)."""
        with use_language(self.mona.settings.lang):
            return fn()

    def _open_modal(self, client: WebClient, trigger_id: str | None, modal: Modal, channel_id: str | None) -> bool:
        view = self._render(lambda: modal_view(modal, view_metadata(modal, channel_id)))
        try:
            client.views_open(trigger_id=trigger_id or "", view=view)
            return True
        except SlackApiError as e:
            log.warning("views.open failed for %s: %s", modal.callback_id, e.response.get("error"))
            return False

    def _message(self, reply: Reply) -> dict[str, Any]:
        return self._render(lambda: {"text": fallback_text(reply), "blocks": blocks(reply)})

    # -- slash commands -------------------------------------------------------------------------

    def command_listener(self, group: str) -> Callable[..., None]:
        def on_command(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
            words = typed_text(body.get("text") or "").strip()
            user_id = body["user_id"]
            channel_id = body.get("channel_id")
            reply = self._dispatch(Invocation(
                platform=PLATFORM, user_id=user_id, user_name=body.get("user_name") or user_id,
                channel_id=channel_id, kind="command", text=f"/{group} {words}".strip()))
            if reply.modal is not None:
                ack()
                if not self._open_modal(client, body.get("trigger_id"), reply.modal, channel_id):
                    respond(text=self._render(lambda: fallback_text(_modal_failed())), response_type="ephemeral")
                return
            ack(**self._message(reply), response_type="ephemeral" if reply.ephemeral else "in_channel")

        on_command.__name__ = f"on_{group}_command"
        return on_command

    # -- buttons and menus ----------------------------------------------------------------------

    def on_action(self, ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        action = (body.get("actions") or [{}])[0]
        user = body.get("user") or {}
        user_id = user.get("id", "")
        channel_id = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        value = action.get("value")
        if value is None:
            value = (action.get("selected_option") or {}).get("value", "")
        reply = self._dispatch(Invocation(
            platform=PLATFORM, user_id=user_id, user_name=user.get("username") or user.get("name") or user_id,
            channel_id=channel_id, kind="action", name=action_id_of(action.get("action_id", "")), value=value))
        if reply.modal is not None:
            if self._open_modal(client, body.get("trigger_id"), reply.modal, channel_id):
                return
            reply = _modal_failed()
        message = self._message(reply)
        if reply.error:
            message.update(response_type="ephemeral", replace_original=False)
        else:
            message.update(response_type="ephemeral" if reply.ephemeral else "in_channel",
                           replace_original=reply.replace_original)
        if respond.response_url:
            try:
                respond(**message)
            except OSError as e:  # the response_url is unreachable or expired (30 minutes, 5 uses)
                log.warning("posting to the response_url failed: %s", e)
        elif channel_id:  # a click inside a modal or the App Home has no response_url
            self._post(client, channel_id, user_id, reply, message)

    # -- modal submissions ----------------------------------------------------------------------

    def on_view_submission(self, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        view = body.get("view") or {}
        meta, channel_id = read_view_metadata(view.get("private_metadata") or "")
        user = body.get("user") or {}
        user_id = user.get("id", "")
        values = submitted_values(((view.get("state") or {}).get("values")) or {})
        reply = self._dispatch(Invocation(
            platform=PLATFORM, user_id=user_id, user_name=user.get("username") or user.get("name") or user_id,
            channel_id=channel_id, kind="submit", name=view.get("callback_id", ""), value=meta, values=values))
        if reply.field_errors:
            ack(response_action="errors", errors=_errors_on_fields(reply.field_errors, _block_ids(view)))
            return
        if reply.modal is not None:
            modal = reply.modal
            ack(response_action="update", view=self._render(lambda: modal_view(modal, view_metadata(modal, channel_id))))
            return
        ack()
        self._post(client, channel_id or user_id, user_id, reply, self._message(reply))

    def _post(self, client: WebClient, channel_id: str, user_id: str, reply: Reply, message: dict[str, Any]) -> None:
        """Post in the channel (ephemerally if the reply says so); if the bot cannot post there
        (a private channel it is not in), send it to the person's DM with the app instead."""
        body = {"text": message["text"], "blocks": message["blocks"]}
        try:
            if reply.ephemeral and channel_id != user_id:
                client.chat_postEphemeral(channel=channel_id, user=user_id, **body)
            else:
                client.chat_postMessage(channel=channel_id, **body)
            return
        except SlackApiError as e:
            log.warning("posting to %s failed (%s); sending to the user's DM", channel_id, e.response.get("error"))
        try:
            client.chat_postMessage(channel=user_id, **body)
        except SlackApiError as e:
            log.error("could not deliver a reply to %s: %s", user_id, e.response.get("error"))


_MARKUP = re.compile(r"<([^<>]*)>")


def typed_text(sent: str) -> str:
    """A slash command's text as the person typed it.

    With ``should_escape`` Slack rewrites what it recognises: ``alex@example.com`` arrives as
    ``<mailto:alex@example.com|alex@example.com>``, a link as ``<https://…>``, ``#crm`` as
    ``<#C…|crm>``, ``@here`` as ``<!here>``; and the ``&``, ``<``, ``>`` the person typed arrive
    as entities. User and channel mentions stay ``<@U…|name>``, ``<#C…|name>``: the parser reads
    their ids."""

    def plain(m: re.Match[str]) -> str:
        target, _, label = m.group(1).partition("|")
        if target.startswith(("@", "#")):
            return m.group(0)  # user and channel mentions: the parser reads their ids
        if target.startswith("!"):  # <!here>, <!channel>, <!subteam^S…|@team>, <!date^…|fallback>
            return label or "@" + target[1:].split("^", 1)[0]
        return label or target.removeprefix("mailto:")

    # Markup first: what the person typed as < and > is still &lt; and &gt; at this point.
    return _MARKUP.sub(plain, sent).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _modal_failed() -> Reply:
    return Reply(text=_("Slack would not open the form; try again."), error=True)


def _block_ids(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view.get("blocks") or [] if b.get("type") == "input" and b.get("block_id")]


def _errors_on_fields(errors: dict[str, str], block_ids: Iterable[str]) -> dict[str, str]:
    """Slack refuses errors naming a block that is not in the view: put those on the first field."""
    ids = list(block_ids)
    out: dict[str, str] = {}
    for name, message in errors.items():
        target = name if name in ids or not ids else ids[0]
        out[target] = f"{out[target]} {message}" if target in out else message
    return out


# ----------------------------------------------------------------------------------------------
# Serving


def wsgi_app(mona: Mona, app: App) -> WSGIApplication:
    """``POST /slack/events`` → Bolt (signature checked there), ``GET /healthz`` → 200 ``ok`` when
    the database answers (503 otherwise), anything else 404."""
    if not mona.settings.slack_signing_secret:
        raise ValueError("SLACK_SIGNING_SECRET is required to serve Slack over HTTP")
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (environ.get("PATH_INFO") or "/") == EVENTS_PATH and environ.get("REQUEST_METHOD") == "POST":
            return slack(environ, start_response)
        return health.answer(mona, environ, start_response)

    return application


def serve_http(mona: Mona) -> None:
    """Serve the Events API and the health check with waitress (blocks)."""
    import waitress

    settings = mona.settings
    app = build_app(mona)
    log.info("Slack over HTTP on %s:%s%s", settings.http_host, settings.http_port, EVENTS_PATH)
    waitress.serve(wsgi_app(mona, app), host=settings.http_host, port=settings.http_port, threads=8)


def run_socket_mode(mona: Mona) -> None:
    """Connect to Slack over Socket Mode with the app-level token (blocks)."""
    if not mona.settings.slack_app_token:
        raise ValueError("SLACK_APP_TOKEN is required for Socket Mode")
    SocketModeHandler(build_app(mona), mona.settings.slack_app_token).start()  # type: ignore[no-untyped-call]
