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
- a reply carrying files (a stream report's chart): after the acknowledgement (a lazy listener,
  so Slack's 3 seconds hold), each is uploaded with ``files_upload_v2`` into the channel the
  command came from (into the person's DM with mona when the reply is for them alone); if Slack
  refuses, the person is told which file could not be attached and why, never a traceback.
- a file, which slash commands cannot carry: the message shortcut *Import metrics* on a message
  holding a CSV file, or the file sent to mona in a DM, runs ``/artist import`` on it (``Files``):
  acknowledged at once, the file fetched and imported after the acknowledgement, the report sent
  to the person alone (the shortcut's ``response_url``) or into that DM. ``/artist import`` typed
  as a slash command says how to do it.

Why ``process_before_response=True``: mona's commands are short database work (milliseconds), so
the listener runs *before* Bolt answers Slack and the reply is the acknowledgement's body. One
HTTP round trip instead of two (ack, then a ``response_url`` post), and no hand-off to Bolt's
thread pool, which costs about 10 ms per request. Slack's 3-second limit still holds: work that
may take longer belongs in a job that posts its result later. The same setting is what
serverless hosts require, so the app runs unchanged there.

Before Bolt (``Requests``): over HTTP the signature is checked on the raw bytes first, and an
unsigned request is read no further (its body is never parsed nor logged; bodies past ``MAX_BODY``
get a 413); a signed request that is not a payload mona can read gets a 400, not a traceback. Over
HTTP and Socket Mode alike each request runs once: a retry, a replay or an envelope delivered again
is answered with the first answer (``core.replays``).

Socket Mode uses slack_sdk's aiohttp client (websocket ping/pong, so a silently dropped
connection is replaced within seconds) with the synchronous Bolt app on a thread pool; when Slack
asks for a new connection, the new one is opened before the old one is let go.

Tokens and the signing secret are read from ``Settings`` and only handed to the Slack SDK; this
module never logs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import http.client
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiohttp import ClientWebSocketResponse, WSMsgType
from slack_bolt import Ack, App, BoltContext, BoltRequest, BoltResponse, Respond
from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.socket_mode.aiohttp import SocketModeClient as AiohttpSocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

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
from core import replays
from core.app import Command
from core.errors import UserError
from core.i18n import _, use_language
from handlers.args import MAX_UPLOAD, Upload
from handlers.metrics import ImportMetrics
from handlers.parser import tokenize
from handlers.registry import CommandSpec, registry
from handlers.reply import Attachment, Invocation, Modal, Reply, attachment_failed

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from bot.app import Mona

PLATFORM = "slack"
EVENTS_PATH = "/slack/events"
#: After how many seconds an import still running says it is under way.
PROGRESS_AFTER = 2.0
#: Where a listener leaves the files of its reply for ``_Adapter.send_files`` (Bolt's context).
FILES = "mona_files"

log = logging.getLogger("mona.slack")
T = TypeVar("T")


def build_app(mona: Mona, *, client: WebClient | None = None, progress_after: float = PROGRESS_AFTER) -> App:
    """The Bolt app with mona's listeners. Creating it calls ``auth.test`` with the bot token.

    ``client`` replaces the Web API client built from settings (``SLACK_BOT_TOKEN``,
    ``SLACK_API_URL``); tests and benchmarks point it at a local stand-in. An import of a file
    still running after ``progress_after`` seconds says it is under way."""
    settings = mona.settings
    if client is None:
        base_url = settings.slack_api_url or WebClient.BASE_URL
        client = WebClient(token=settings.slack_bot_token, base_url=base_url.rstrip("/") + "/")
    # Bolt sets the level of the logger named after the app on every request: not "mona" itself.
    app = App(name="mona.slack.bolt", signing_secret=settings.slack_signing_secret or "", client=client,
              process_before_response=True,
              # Runs what comes after the acknowledgement (lazy listeners: files, uploads).
              listener_executor=ThreadPoolExecutor(max_workers=5, thread_name_prefix="slack-after-ack"))
    adapter = _Adapter(mona)
    # Each listener answers within the acknowledgement; the files of its reply go after it.
    for group in registry.groups:
        app.command(f"/{group}")(ack=adapter.command_listener(group), lazy=[adapter.send_files])
    app.action(re.compile(".*"))(ack=adapter.on_action, lazy=[adapter.send_files])
    app.view(re.compile(".*"))(ack=adapter.on_view_submission, lazy=[adapter.send_files])
    files = Files(adapter, progress_after=progress_after)
    for shortcut in SHORTCUTS:
        app.shortcut(shortcut.callback_id)(ack=_acknowledge, lazy=[files.on_shortcut])
    app.event({"type": "message", "subtype": "file_share"})(ack=_acknowledge, lazy=[files.on_file_shared])
    # Any other message in a DM with mona (message.im): acknowledged, so that Slack does not send it again.
    app.event("message")(_acknowledge)
    return app


def _acknowledge(ack: Ack) -> None:
    ack()


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

    # -- files sent with a reply ----------------------------------------------------------------

    @staticmethod
    def _files_after(context: BoltContext, reply: Reply, channel_id: str | None, user_id: str) -> None:
        """Leave the reply's files for ``send_files``, which runs after the acknowledgement."""
        if reply.files and not reply.error:
            context[FILES] = {"channel": channel_id, "user": user_id, "private": reply.ephemeral,
                              "files": [[str(f.path), f.title] for f in reply.files]}

    def send_files(self, context: BoltContext, client: WebClient, respond: Respond) -> None:
        """Upload the files a listener left (Bolt's lazy listener, after the acknowledgement) into
        the channel the reply went to, or the person's DM for a private reply; when Slack refuses,
        tell the person which files could not be attached."""
        sending = context.get(FILES)
        if not sending:
            return
        files = tuple(Attachment(Path(path), title) for path, title in sending["files"])
        user_id, channel_id = str(sending["user"]), sending["channel"]
        try:
            if sending["private"] or not channel_id:
                channel_id = str(client.conversations_open(users=user_id)["channel"]["id"])
            client.files_upload_v2(channel=channel_id, file_uploads=[
                {"file": str(f.path), "filename": f.filename, "title": f.title} for f in files])
            return
        except SlackApiError as e:
            why = str(e.response.get("error") or "")
        except (SlackRequestError, OSError) as e:  # the upload URL refused the bytes, or the file is gone
            why = type(e).__name__
        log.warning("uploading %s to %s failed: %s", [f.filename for f in files], channel_id, why)
        if why == "missing_scope":
            why = self._render(lambda: _("the app needs the files:write scope: reinstall it with the manifest"))
        note = Reply(text=self._render(lambda: attachment_failed(files, why)), error=True, ephemeral=True)
        message = self._message(note)
        if respond.response_url:
            try:
                respond(**message, response_type="ephemeral", replace_original=False)
                return
            except OSError as e:
                log.warning("posting to the response_url failed: %s", e)
        self._post(client, str(sending["channel"] or user_id), user_id, note, message)

    # -- slash commands -------------------------------------------------------------------------

    def command_listener(self, group: str) -> Callable[..., None]:
        def on_command(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond,
                       context: BoltContext) -> None:
            words = typed_text(body.get("text") or "").strip()
            user_id = body["user_id"]
            channel_id = body.get("channel_id")
            shortcut = _file_shortcut_for(f"/{group} {words}")
            if shortcut is not None:  # a slash command carries no file: say where files go instead
                ack(**self._message(self._render(lambda: _how_to_send(shortcut))), response_type="ephemeral")
                return
            reply = self._dispatch(Invocation(
                platform=PLATFORM, user_id=user_id, user_name=body.get("user_name") or user_id,
                channel_id=channel_id, kind="command", text=f"/{group} {words}".strip()))
            if reply.modal is not None:
                ack()
                if not self._open_modal(client, body.get("trigger_id"), reply.modal, channel_id):
                    respond(text=self._render(lambda: fallback_text(_modal_failed())), response_type="ephemeral")
                return
            ack(**self._message(reply), response_type="ephemeral" if reply.ephemeral else "in_channel")
            self._files_after(context, reply, channel_id, user_id)

        on_command.__name__ = f"on_{group}_command"
        return on_command

    # -- buttons and menus ----------------------------------------------------------------------

    def on_action(self, ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond,
                  context: BoltContext) -> None:
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
        self._files_after(context, reply, channel_id, user_id)

    # -- modal submissions ----------------------------------------------------------------------

    def on_view_submission(self, ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
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
        self._files_after(context, reply, channel_id, user_id)

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


# ----------------------------------------------------------------------------------------------
# Files: what a slash command cannot carry
#
# A message shortcut on a message holding a file, or the file shared in a DM with mona, runs the
# command that takes a file (``/artist import``) on it. The file is looked up with ``files.info``
# (what the bot token may see) and downloaded from its ``url_private_download`` with the bot
# token, capped at ``MAX_UPLOAD``; the command then runs through ``Dispatcher.dispatch_values``
# like a Discord attachment: the same permission, one transaction, the same report.
#
# Where the report goes: for the shortcut, to the person alone (ephemeral, through the shortcut's
# response_url). A message shortcut is a private gesture in Slack, and "Only visible to you" is how
# Slack apps answer one: the report (which lines were refused, and why) is for the person who will
# fix the file, posting it in the file's thread would notify its author and everyone following
# the thread, and the response_url works in any conversation, even one mona is not a member of.
# For a file sent to mona in a DM, the report is a message in that DM.

#: What is read as a table of text: Slack's ``filetype``, the MIME type, or the name's ending.
_TABLE_TYPES = frozenset({"csv", "tsv", "text"})
_TABLE_MIMETYPES = frozenset({"text/csv", "application/csv", "text/plain", "text/tab-separated-values"})
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
#: files.info errors meaning the bot may not see the file where it was shared.
_OUT_OF_SIGHT = frozenset({"file_not_found", "access_denied", "not_in_channel", "channel_not_found"})


@dataclass(frozen=True)
class FileShortcut:
    """A message shortcut (a message's ⋯ *More actions* menu) running ``command`` on each file of
    the message, given as its ``field``. ``bot.slack_manifest`` declares it in the manifest."""

    callback_id: str
    #: As Slack shows it in the menu: at most 24 characters, in English like the rest of the manifest.
    name: str
    description: str
    command: type[Command]
    field: str


IMPORT_METRICS = FileShortcut("mona_import_file", "Import metrics",
                              "Import the CSV file of this message as artist metrics; the report comes back to you.",
                              ImportMetrics, "file")
SHORTCUTS: tuple[FileShortcut, ...] = (IMPORT_METRICS,)
#: What a file sent to mona in a DM is for.
DM_FILES = IMPORT_METRICS


def _file_shortcut_for(line: str) -> FileShortcut | None:
    """The shortcut that replaces a typed command taking a file (``/artist import …``), if it is one."""
    try:
        spec, _rest = registry.find(tokenize(line))
    except UserError:
        return None
    return next((s for s in SHORTCUTS if s.command is spec.cls), None)


def _spec_of(shortcut: FileShortcut) -> CommandSpec:
    return registry.commands[tuple(shortcut.command.key.split())]


def _how_to_send(shortcut: FileShortcut) -> Reply:
    spec = _spec_of(shortcut)
    return Reply(text=_("Slack commands cannot carry a file, so {command} starts from the file itself: on the message "
                        "holding the CSV file, open ⋯ (More actions) and choose {shortcut}; or send the file to mona in "
                        "a direct message.", command=spec.name, shortcut=shortcut.name),
                 footer=spec.summary, ephemeral=True)


class Files:
    """The files a message shortcut points at, or a DM with mona receives, run through their command.

    Both listeners run after the acknowledgement (Bolt's lazy listeners, on its thread pool): an
    import of 20,000 lines takes far longer than Slack's 3 seconds. Each file gets one answer, the
    command's reply or why the file was refused (too large, not a table, out of mona's sight);
    an import running longer than ``progress_after`` seconds first says it is under way."""

    def __init__(self, adapter: _Adapter, *, progress_after: float = PROGRESS_AFTER) -> None:
        self.adapter = adapter
        self.mona = adapter.mona
        self.progress_after = progress_after

    def on_shortcut(self, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        shortcut = next((s for s in SHORTCUTS if s.callback_id == body.get("callback_id")), IMPORT_METRICS)
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        channel_id = (body.get("channel") or {}).get("id")
        inv = Invocation(platform=PLATFORM, user_id=user_id, user_name=user.get("username") or user.get("name") or user_id,
                         channel_id=channel_id, kind="command", text=_spec_of(shortcut).name)

        def answer(reply: Reply) -> None:
            message = self.adapter._message(reply)
            if respond.response_url:
                try:
                    respond(**message, response_type="ephemeral", replace_original=False)
                    return
                except OSError as e:  # the response_url is unreachable or expired (30 minutes, 5 uses)
                    log.warning("posting to the response_url failed: %s", e)
            self.adapter._post(client, channel_id or user_id, user_id, dataclasses.replace(reply, ephemeral=True), message)

        self._run(client, shortcut, list((body.get("message") or {}).get("files") or []), inv, answer)

    def on_file_shared(self, event: dict[str, Any], client: WebClient) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id") or not isinstance(event.get("user"), str):
            return  # a file shared in a channel is imported with the shortcut, not on sight
        user_id, channel_id = event["user"], str(event.get("channel") or "")
        inv = Invocation(platform=PLATFORM, user_id=user_id, user_name=user_id, channel_id=channel_id,
                         kind="command", text=_spec_of(DM_FILES).name)

        def answer(reply: Reply) -> None:
            message = self.adapter._message(reply)
            try:
                client.chat_postMessage(channel=channel_id, text=message["text"], blocks=message["blocks"])
            except SlackApiError as e:
                log.error("could not answer a file sent to mona in %s: %s", channel_id, e.response.get("error"))

        self._run(client, DM_FILES, list(event.get("files") or []), inv, answer)

    def _run(self, client: WebClient, shortcut: FileShortcut, files: list[dict[str, Any]], inv: Invocation,
             answer: Callable[[Reply], None]) -> None:
        with use_language(self.mona.settings.lang):
            try:
                if not files:
                    answer(Reply(text=_("This message holds no file: choose {shortcut} on a message with the CSV file "
                                        "attached.", shortcut=shortcut.name), error=True))
                for shared in files:
                    fetched = self._fetch(client, shared)
                    if isinstance(fetched, Reply):
                        answer(fetched)
                        continue
                    under_way = Reply(text=_("Importing {file}…", file=fetched.name), ephemeral=True)
                    with _Progress(self.progress_after, functools.partial(answer, under_way)):
                        reply = self.mona.dispatcher.dispatch_values(inv, shortcut.command, {shortcut.field: fetched})
                    answer(reply)
            except Exception:
                log.exception("a file sent for %s could not be handled", shortcut.callback_id)
                answer(Reply(text=_("Something went wrong on our side; try again."), error=True))

    def _fetch(self, client: WebClient, shared: dict[str, Any]) -> Upload | Reply:
        """The file's name and bytes, or the reply saying why mona will not read it."""
        name = str(shared.get("name") or shared.get("title") or shared.get("id") or "?")
        try:
            info = client.files_info(file=str(shared.get("id") or "")).get("file") or {}
        except SlackApiError as e:
            error = str(e.response.get("error") or "")
            log.info("files.info refused file %s: %s", shared.get("id"), error)
            if error in _OUT_OF_SIGHT:
                return _refused(_("mona cannot open {file}: invite mona to the channel it was shared in (/invite @mona), "
                                  "or send the file to mona in a direct message.", file=name))
            if error == "missing_scope":
                return _refused(_needs_files_read(name))
            return _refused(_not_handed_over(name, error))
        name = str(info.get("name") or name)
        if info.get("is_external"):
            return _refused(_("{file} is a link to another service, not a file kept on Slack: download it and share "
                              "the file itself.", file=name))
        if not _is_table(info):
            return _refused(_("{file} is not a CSV file: send the metrics as a .csv file (a line of column names, "
                              "then one line per artist and day).", file=name))
        if _size(info) > MAX_UPLOAD:
            return _refused(_too_large(name))
        url = str(info.get("url_private_download") or info.get("url_private") or "")
        if not _may_carry_token(url, client.base_url):
            log.warning("files.info gave file %s an address outside Slack; the token is not sent there", info.get("id"))
            return _refused(_not_handed_over(name, _("its address is outside Slack")))
        try:
            content = _download(url, client)
        except _SignInPage:
            return _refused(_needs_files_read(name))
        except urllib.error.HTTPError as e:
            log.warning("downloading file %s failed: HTTP %s", info.get("id"), e.code)
            return _refused(_not_handed_over(name, f"HTTP {e.code}"))
        except (OSError, http.client.HTTPException) as e:
            log.warning("downloading file %s failed: %s", info.get("id"), type(e).__name__)
            return _refused(_not_handed_over(name, type(e).__name__))
        if content is None:
            return _refused(_too_large(name))
        return Upload(name, content)


def _refused(text: str) -> Reply:
    return Reply(text=text, error=True, ephemeral=True)


def _too_large(name: str) -> str:
    return _("{file} is too large: at most 1 MB.", file=name)


def _not_handed_over(name: str, error: str) -> str:
    return _("Slack would not hand over {file} ({error}); try again in a moment.", file=name, error=error)


def _needs_files_read(name: str) -> str:
    return _("Slack did not hand over {file}: the app needs the files:read scope (reinstall it from "
             "slack-manifest.yml).", file=name)


def _is_table(info: dict[str, Any]) -> bool:
    filetype = str(info.get("filetype") or "").lower()
    mimetype = str(info.get("mimetype") or "").split(";", 1)[0].strip().lower()
    return (filetype in _TABLE_TYPES or mimetype in _TABLE_MIMETYPES
            or str(info.get("name") or "").lower().endswith(_TABLE_SUFFIXES))


def _size(info: dict[str, Any]) -> int:
    size = info.get("size")
    return size if isinstance(size, int) else 0


def _may_carry_token(url: str, api_url: str) -> bool:
    """Whether ``url`` may be sent the bot token: Slack's own https hosts, or the address of the
    Web API mona is configured with (``SLACK_API_URL``, e.g. a local stand-in)."""
    to, api = urllib.parse.urlsplit(url), urllib.parse.urlsplit(api_url)
    host = (to.hostname or "").lower()
    if to.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com")):
        return True
    return bool(to.netloc) and (to.scheme, to.netloc) == (api.scheme, api.netloc)


class _SignInPage(Exception):
    """Slack answered a file download with a web page: the token may not read files."""


class _TokenRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to an address that may carry the bot token (urllib keeps the
    ``Authorization`` header on redirects); any other is an ``HTTPError``."""

    def __init__(self, api_url: str) -> None:
        super().__init__()
        self.api_url = api_url

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        if not _may_carry_token(newurl, self.api_url):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download(url: str, client: WebClient) -> bytes | None:
    """The bytes at ``url`` fetched with the client's bot token, proxy and TLS settings; ``None``
    when there are more than ``MAX_UPLOAD`` of them, whatever files.info said."""
    handlers: list[urllib.request.BaseHandler] = [_TokenRedirects(client.base_url)]
    if client.proxy:
        handlers.append(urllib.request.ProxyHandler({"http": client.proxy, "https": client.proxy}))
    if client.ssl is not None:
        handlers.append(urllib.request.HTTPSHandler(context=client.ssl))
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {client.token}"})
    with urllib.request.build_opener(*handlers).open(request, timeout=client.timeout) as response:
        if response.headers.get_content_type() == "text/html":
            raise _SignInPage
        data: bytes = response.read(MAX_UPLOAD + 1)
    return None if len(data) > MAX_UPLOAD else data


class _Progress:
    """Calls ``say`` if the work inside takes longer than ``after`` seconds (at once when ``after``
    is 0), and never after the work is done: what the work answers comes after it."""

    def __init__(self, after: float, say: Callable[[], None]) -> None:
        self.after = after
        self.say = say
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(after, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        with self._lock:
            if not self._done:
                self.say()

    def __enter__(self) -> _Progress:
        if self.after <= 0:
            self.say()
        else:
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


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
# Requests: checked, then answered once
#
# Between the network and Bolt. Over HTTP the signature is checked here first, on the raw bytes,
# and nothing else about a request is read before it holds: no parsing, no logging of what it
# sent. A signed request is then parsed and its shape checked (a payload mona cannot read gets a
# 400, not a traceback), and handed to Bolt already parsed. Over HTTP and Socket Mode alike, each
# request is run once: ``_Once`` claims a key that stays the same across retries and replays in
# ``handled_requests`` (``core.replays``) and stores the answer; a repeat gets that answer.

#: The largest request body accepted (Slack's are a few kilobytes; a form with long text stays far below).
MAX_BODY = 1024 * 1024
#: waitress's settings for the Events API (``serve_http``; the specs serve the same).
SERVER_OPTIONS: dict[str, Any] = {"max_request_body_size": MAX_BODY, "threads": 8}
#: How old a signed request may be (Slack's rule; a replay later than this is refused).
SIGNATURE_MAX_AGE = 5 * 60
#: How long a repeat waits for the first arrival's answer before saying it is still being handled.
REPLAY_WAIT = 2.0
#: How often this process deletes answers older than a day (``core.replays.KEEP``).
FORGET_EVERY = 3600.0


def signature_holds(secret: str, raw: bytes, timestamp: str, signature: str, *, now: float | None = None) -> bool:
    """Slack's request signature (``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``) over the raw
    bytes, with a timestamp of digits at most ``SIGNATURE_MAX_AGE`` seconds away. Never raises."""
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > SIGNATURE_MAX_AGE:
        return False
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def parse_request(raw: bytes, content_type: str) -> dict[str, Any] | str:
    """A signed body as Slack sends it (a form; interactions as a ``payload`` field holding JSON;
    the Events API as JSON), or why it cannot be read."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    data: Any
    if content_type.split(";", 1)[0].strip().lower() == "application/json" or text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return "the body is not JSON"
    else:
        form = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
        if "payload" in form:
            try:
                data = json.loads(form["payload"])
            except ValueError:
                return "payload is not JSON"
        else:
            data = form
    return payload_problem(data) or data


# What Bolt's request parsing and mona's listeners read, by kind of value. Anything else passes.
_TEXT = frozenset({"type", "command", "user_id", "user_name", "username", "name", "channel_id", "team_id",
                   "enterprise_id", "trigger_id", "api_app_id", "callback_id", "thread_ts", "user_team",
                   "function_execution_id", "bot_access_token", "private_metadata", "app_installed_team_id",
                   "action_id", "value", "response_url", "id"})
_ID_OR_OBJECT = frozenset({"user", "channel", "team", "enterprise"})
_NESTED = frozenset({"container", "event", "message", "previous_message", "item", "assistant_thread",
                     "function_data", "selected_option", "view", "state"})
_LISTS = frozenset({"actions", "authorizations", "response_urls", "blocks"})


def payload_problem(data: Any, where: str = "payload") -> str | None:
    """Why ``data`` is not a Slack payload mona can read (``None`` when it is): the values Bolt and
    the listeners read must have the types Slack documents; a slash command names its user, a
    click its action, a submission its view."""
    if not isinstance(data, dict):
        return f"{where} is not an object"
    for key, value in data.items():
        at = f"{where}.{key}"
        if value is None:
            if key == "response_urls":  # Bolt reads its length when the key is there
                return f"{at} is null"
            continue
        if key in _TEXT and not isinstance(value, str):
            return f"{at} is not a string"
        if key in _ID_OR_OBJECT and not isinstance(value, str):
            problem = payload_problem(value, at)
            if problem:
                return problem
        if key in _NESTED and (problem := payload_problem(value, at)):
            return problem
        if key in _LISTS:
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                return f"{at} is not a list of objects"
            if key != "blocks":  # blocks are Slack's own rendering of mona's message
                for n, item in enumerate(value):
                    if problem := payload_problem(item, f"{at}[{n}]"):
                        return problem
    return _kind_problem(data, where)


_INTERACTIONS = frozenset({"block_actions", "view_submission", "view_closed", "block_suggestion", "shortcut",
                           "message_action"})
_AN_ACTION = re.compile(r"\.actions\[\d+\]$")


def _kind_problem(data: dict[str, Any], where: str) -> str | None:
    if where == "payload":
        if not isinstance(data.get("text", ""), str):  # a slash command's text (elsewhere text is an object)
            return "payload.text is not a string"
        url = data.get("response_url")
        if url is not None and not url.startswith(("https://", "http://")):
            return "payload.response_url is not a URL"
        if "command" in data:
            if not (isinstance(data["command"], str) and data["command"].startswith("/")):
                return "payload.command is not a slash command"
            if not data.get("user_id"):
                return "a slash command without user_id"
        kind = data.get("type")
        if kind in _INTERACTIONS:
            if not (isinstance(data.get("user"), dict) and data["user"].get("id")):
                return f"a {kind} payload without user.id"
            if not all(isinstance(data.get(key) or {}, dict) for key in _ID_OR_OBJECT):
                return f"a {kind} payload whose user, channel or team is not an object"
        if kind == "block_actions" and not data.get("actions"):
            return "a block_actions payload without actions"
        if kind in ("view_submission", "view_closed") and not isinstance(data.get("view"), dict):
            return f"a {kind} payload without a view"
    if _AN_ACTION.search(where) and not data.get("action_id"):
        return f"{where} has no action_id"
    if where.endswith(".state") and "values" in data:
        values = data["values"]
        if not isinstance(values, dict) or not all(
                isinstance(by_action, dict) and all(_a_field_value(v) for v in by_action.values())
                for by_action in values.values()):
            return f"{where}.values is not what Slack sends: {{block_id: {{action_id: value}}}}"
    return None


def _a_field_value(entry: Any) -> bool:
    """One input's state in ``view.state.values``: ``value`` a string, or ``selected_option`` an
    object whose ``value`` is a string (either may be null)."""
    if not isinstance(entry, dict):
        return False
    option = entry.get("selected_option")
    return (isinstance(entry.get("value"), str | None) and isinstance(option, dict | None)
            and (option is None or isinstance(option.get("value"), str | None)))


def _busy(body: dict[str, Any], lang: str) -> BoltResponse:
    """The answer to a repeat whose first arrival is still running after ``REPLAY_WAIT``."""
    if "command" in body:  # a slash command's answer is a message; an interaction's is an empty ack
        with use_language(lang):
            text = _("This request is still being handled.")
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
    return BoltResponse(status=200, body="")


class _Once:
    """Runs each request once: the first arrival of a key claims it, runs, and stores its answer;
    a repeat gets that answer, waiting up to ``wait`` seconds while the first still runs."""

    def __init__(self, mona: Mona, *, wait: float = REPLAY_WAIT) -> None:
        self.mona = mona
        self.wait = wait
        self._forgot_at = -FORGET_EVERY  # monotonic time starts near 0 at boot: forget on the first request too

    def answer(self, key: str, body: dict[str, Any], run: Callable[[], BoltResponse]) -> BoltResponse:
        db = self.mona.db
        try:
            with db.uow() as uow:
                earlier = replays.claim(uow, key)
                if earlier is None and time.monotonic() - self._forgot_at > FORGET_EVERY:
                    self._forgot_at = time.monotonic()
                    replays.forget(uow)
                uow.commit()
        except SQLAlchemyError as e:
            log.warning("could not check whether a request was already handled (%s); handling it", type(e).__name__)
            return run()
        if earlier is not None:
            answer = earlier.answer if earlier.answer is not None else self._await(key)
            if answer is _GIVEN_UP:
                return self.answer(key, body, run)
            if answer is None:
                log.info("a repeated request came while the first was still running (%s)", key[:24])
                return _busy(body, self.mona.settings.lang)
            log.info("a repeated request was answered with the first answer (%s)", key[:24])
            return _decoded(answer)
        stored = False
        try:
            response = run()
            with db.uow() as uow:
                replays.store(uow, key, _encoded(response))
                uow.commit()
            stored = True
            return response
        finally:
            if not stored:
                with contextlib.suppress(SQLAlchemyError), db.uow() as uow:
                    replays.release(uow, key)
                    uow.commit()

    def _await(self, key: str) -> bytes | None:
        """The first arrival's answer once stored; ``None`` if still running after ``wait``;
        ``_GIVEN_UP`` if it gave the claim up."""
        deadline = time.monotonic() + self.wait
        while True:
            time.sleep(0.05)
            with self.mona.db.uow() as uow:
                now = replays.seen(uow, key)
            if now is None:
                return _GIVEN_UP
            if now.answer is not None or time.monotonic() >= deadline:
                return now.answer


_GIVEN_UP = b"\x00given up"


def _encoded(response: BoltResponse) -> bytes:
    return json.dumps({"status": response.status, "body": response.body}).encode()


def _decoded(answer: bytes) -> BoltResponse:
    data = json.loads(answer)
    return BoltResponse(status=int(data["status"]), body=str(data["body"]))


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Requests:
    """Mona's entry for every Slack request: ``http`` (the Events API, as WSGI) and ``socket_mode``
    (an envelope's request), both ending in ``app.dispatch`` once per request."""

    def __init__(self, mona: Mona, app: App, *, replay_wait: float = REPLAY_WAIT) -> None:
        self.mona = mona
        self.app = app
        self.once = _Once(mona, wait=replay_wait)
        self.secret = mona.settings.slack_signing_secret or ""

    def http(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length = str(environ.get("CONTENT_LENGTH") or "")
        if length and not (length.isascii() and length.isdigit()):
            return _plain(start_response, 400, "bad request")
        if length and int(length) > MAX_BODY:
            return _plain(start_response, 413, "request body too large")
        raw = environ["wsgi.input"].read(int(length) if length else MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return _plain(start_response, 413, "request body too large")
        timestamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "")
        signature = str(environ.get("HTTP_X_SLACK_SIGNATURE") or "")
        if not self.secret or not signature_holds(self.secret, raw, timestamp, signature):
            log.info("refused a request without a valid Slack signature")  # and nothing of what it sent
            return _send(start_response, BoltResponse(status=401, body={"error": "invalid request"}))
        content_type = str(environ.get("CONTENT_TYPE") or "")
        body = parse_request(raw, content_type)
        if isinstance(body, str):
            log.warning("refused a signed request mona cannot read: %s", body)
            return _send(start_response, BoltResponse(status=400, body={"error": "malformed request"}))
        headers: dict[str, str | Sequence[str]] = {
            name[5:].lower().replace("_", "-"): str(value) for name, value in environ.items() if name.startswith("HTTP_")}
        headers["content-type"] = content_type
        # The signature was checked above, so Bolt's own check is skipped the way it is for Socket
        # Mode, and Bolt gets the body parsed here (its own parser reads any form containing the
        # word "payload", e.g. "/artist add The payload", as an empty request).
        request = BoltRequest(body=body, headers=headers, mode="socket_mode")
        key = "slack:http:" + hashlib.sha256(raw).hexdigest()
        return _send(start_response, self.once.answer(key, body, lambda: self.app.dispatch(request)))

    def socket_mode(self, req: SocketModeRequest) -> BoltResponse:
        """The answer to one envelope: the same envelope (or its payload in a new envelope, a
        retry) delivered again gets the first answer."""
        body = req.payload
        problem = payload_problem(body)
        if problem:
            log.warning("ignored a Socket Mode envelope mona cannot read: %s", problem)
            return BoltResponse(status=200, body="")
        key = "slack:socket:" + hashlib.sha256(_canonical(body)).hexdigest()
        return self.once.answer(key, body, lambda: run_bolt_app(self.app, req))


def _send(start_response: StartResponse, response: BoltResponse) -> Iterable[bytes]:
    out = WsgiHttpResponse(status=response.status, headers=response.headers, body=response.body)
    start_response(out.status, out.get_headers())
    return out.get_body()


def _plain(start_response: StartResponse, status: int, text: str) -> Iterable[bytes]:
    return _send(start_response, BoltResponse(status=status, body=text))


# ----------------------------------------------------------------------------------------------
# Serving over HTTP


def wsgi_app(mona: Mona, app: App, *, replay_wait: float = REPLAY_WAIT) -> WSGIApplication:
    """``POST /slack/events`` → ``Requests.http`` (signature, shape, once) → Bolt, ``GET /healthz``
    → 200 ``ok`` when the database answers (503 otherwise), anything else 404."""
    if not mona.settings.slack_signing_secret:
        raise ValueError("SLACK_SIGNING_SECRET is required to serve Slack over HTTP")
    requests = Requests(mona, app, replay_wait=replay_wait)

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (environ.get("PATH_INFO") or "/") == EVENTS_PATH and environ.get("REQUEST_METHOD") == "POST":
            return requests.http(environ, start_response)
        return health.answer(mona, environ, start_response)

    return application


def serve_http(mona: Mona) -> None:
    """Serve the Events API and the health check with waitress (blocks)."""
    import waitress

    settings = mona.settings
    app = build_app(mona)
    log.info("Slack over HTTP on %s:%s%s", settings.http_host, settings.http_port, EVENTS_PATH)
    waitress.serve(wsgi_app(mona, app), host=settings.http_host, port=settings.http_port, **SERVER_OPTIONS)


# ----------------------------------------------------------------------------------------------
# Socket Mode
#
# slack_sdk's aiohttp client, which pings over the websocket: a connection that stops answering
# (dropped without a close frame) is closed after 1.5 × PING_INTERVAL and replaced at the next
# check, within 2.5 × PING_INTERVAL. (Bolt's default client notices only after five failed
# health checks, about a minute.) Bolt's app stays synchronous: the client runs on an event loop
# of its own, and each envelope is handled on a thread pool.

#: Seconds between websocket pings; a connection silent for 1.5 × this is replaced.
PING_INTERVAL = 3.0
#: How long the connection Slack asked to replace is still read after the new one is open.
DRAIN_SECONDS = 10.0


class _SocketModeClient(AiohttpSocketModeClient):
    """When Slack asks for a new connection (``disconnect``, e.g. ``refresh_requested``), the new
    one is opened before the old is let go, and the old one is still read until Slack closes it:
    what arrives on either is acknowledged at once, on the connection it came on. (slack_sdk's
    client closes the old connection first, losing what arrives meanwhile.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.draining: dict[ClientWebSocketResponse, asyncio.Future[None]] = {}
        self.origin: dict[str, ClientWebSocketResponse] = {}

    async def run_message_listeners(self, message: dict[str, Any], raw_message: str) -> None:
        if message.get("type") == "disconnect" and message.get("reason") != "too_many_websockets":
            await self._switch(str(message.get("reason") or ""))
            return
        await super().run_message_listeners(message, raw_message)

    async def _switch(self, reason: str) -> None:
        async with self.connect_operation_lock:
            old, old_receiver = self.current_session, self.message_receiver
            try:
                url = await self.issue_new_wss_url()
                new = await self.aiohttp_client_session.ws_connect(
                    url, autoping=False, heartbeat=self.ping_interval, proxy=self.proxy,
                    ssl=self.web_client.ssl if self.web_client.ssl is not None else True)
            except (TimeoutError, aiohttp.ClientError, SlackApiError, OSError) as e:
                self.logger.warning("Slack asked for a new connection (%s), which could not be opened (%s); "
                                    "staying on this one", reason, type(e).__name__)
                return
            self.wss_uri, self.current_session = url, new
            self.stale, self.last_ping_pong_time = False, None
            if self.current_session_monitor is not None:
                self.current_session_monitor.cancel()
            self.current_session_monitor = asyncio.ensure_future(self.monitor_current_session())
            if old_receiver is not None:
                old_receiver.cancel()  # its next message is read by _drain instead (cancelling loses nothing)
            self.message_receiver = asyncio.ensure_future(self.receive_messages())
            if old is not None and not old.closed:
                self.draining[old] = asyncio.ensure_future(self._drain(old))
            self.logger.info("switched to a new Socket Mode connection (Slack asked: %s)", reason)

    async def _drain(self, old: ClientWebSocketResponse) -> None:
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while not old.closed:
                    message = await old.receive()
                    if message.type == WSMsgType.TEXT:
                        with contextlib.suppress(ValueError, AttributeError):
                            data = json.loads(message.data)
                            if data.get("type") == "disconnect":
                                continue  # already on the new connection
                            if data.get("envelope_id"):
                                self.origin[str(data["envelope_id"])] = old
                        await self.enqueue_message(message.data)
                    elif message.type == WSMsgType.PING:
                        await old.pong(message.data)
                    elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                        break
        except TimeoutError:
            pass
        finally:
            self.draining.pop(old, None)
            with contextlib.suppress(Exception):
                await old.close()

    async def send_socket_mode_response(self, response: dict[str, Any] | SocketModeResponse) -> None:
        data = response.to_dict() if isinstance(response, SocketModeResponse) else response
        origin = self.origin.pop(str(data.get("envelope_id")), None)
        if origin is not None and not origin.closed:
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await origin.send_str(json.dumps(data))
                return
        await self.send_message(json.dumps(data))

    async def close(self) -> None:
        for task in list(self.draining.values()):
            task.cancel()
        for session in list(self.draining):
            with contextlib.suppress(Exception):
                await session.close()
        await super().close()  # type: ignore[no-untyped-call]


class SocketMode:
    """Mona connected over Socket Mode: ``connect()`` returns once connected (raising if Slack
    refuses the app token), ``close()`` disconnects and stops every thread it started."""

    def __init__(self, mona: Mona, app: App | None = None, *, app_token: str | None = None,
                 ping_interval: float = PING_INTERVAL, replay_wait: float = REPLAY_WAIT, concurrency: int = 10) -> None:
        token = app_token or mona.settings.slack_app_token
        if not token:
            raise ValueError("SLACK_APP_TOKEN is required for Socket Mode")
        self._own_app = app is None
        self.app = app if app is not None else build_app(mona)
        self.requests = Requests(mona, self.app, replay_wait=replay_wait)
        self._token = token
        self._ping_interval = ping_interval
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="slack-socket-mode", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="slack-envelope")
        self.client: _SocketModeClient | None = None

    def connect(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._connect(), self._loop).result(timeout=60)

    def start(self) -> None:
        """Connect and serve until interrupted (blocks)."""
        try:
            self.connect()
            log.info("Slack over Socket Mode")
            threading.Event().wait()
        finally:
            self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=15)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
        self._pool.shutdown(wait=True)
        if self._own_app:  # the work it still has after acknowledgements (uploads) finishes first
            self.app.listener_runner.listener_executor.shutdown(wait=True)

    async def _connect(self) -> None:
        web = self.app.client
        client = _SocketModeClient(
            app_token=self._token, logger=log.getChild("socket"), ping_interval=self._ping_interval,
            web_client=AsyncWebClient(base_url=web.base_url, timeout=web.timeout, ssl=web.ssl, proxy=web.proxy),
            proxy=web.proxy)
        client.socket_mode_request_listeners.append(self._handle)
        self.client = client
        client.wss_uri = await client.issue_new_wss_url()  # a refused token raises here, once
        await client.connect()  # type: ignore[no-untyped-call]

    async def _handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        response = await asyncio.get_running_loop().run_in_executor(self._pool, self.requests.socket_mode, req)
        if response.status != 200:
            log.info("an envelope got no acknowledgement (Bolt answered %s)", response.status)
            return
        payload: dict[str, Any] | None = None
        if response.body:
            payload = json.loads(response.body) if response.body.startswith("{") else {"text": response.body}
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=payload))

    async def _shutdown(self) -> None:
        if self.client is not None:
            await self.client.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._loop.shutdown_default_executor()


def run_socket_mode(mona: Mona) -> None:
    """Connect to Slack over Socket Mode with the app-level token (blocks)."""
    SocketMode(mona).start()
