"""``Notifier`` for Slack, through slack_sdk's ``WebClient``.

A notification is rendered by the same Block Kit renderer as replies (``bot.slack_render``), so
user text is escaped the same way (an artist named ``<!channel>`` pings nobody) and Slack's size
limits are applied the same way.

Exactly once: every message carries Slack message metadata
``{"event_type": "mona_delivery", "event_payload": {"key": <idempotency key>}}``. A retry that may
follow a post (``send`` with ``possibly_sent_since``) first reads the
conversation (``conversations.history``, or ``conversations.replies`` for a thread, both with
``include_all_metadata``) and returns the message that already carries the key instead of posting
again. The look-back is bounded by time, not by a number of messages: every message since the
earliest moment the earlier attempt may have posted (``oldest``), page after page, however busy
the channel has been since (a count misses the message once that many others came after it: two
workers, 300 events, a worker killed mid-send, and 192 posts later the retry posted again).
Reading needs the ``channels:history``, ``groups:history``, ``im:history`` and ``mpim:history``
scopes, and, in a public channel, the bot must be a member (``chat:write.public`` lets it post
where it cannot read): a lookup that Slack refuses is a ``PermanentFailure`` rather than a blind
second post.

The job decides about retries, not the client: a ``WebClient`` built by ``slack_notifier`` has no
retry handlers. slack_sdk's default one retries a request once after a connection error, which
includes a connection reset *after* Slack received a ``chat.postMessage`` — a silent duplicate.
"""

from __future__ import annotations

import datetime as dt
import http.client
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.slack_render import blocks, fallback_text
from core.notifier import Message, Notifier, PermanentFailure, RetryLater
from handlers.reply import Button, Reply

if TYPE_CHECKING:
    from core.config import Settings

PLATFORM = "slack"
EVENT_TYPE = "mona_delivery"
#: Messages per page when looking for an earlier delivery (Slack advises at most 200).
PAGE = 200
USER_PREFIX = "user:"

#: ``ok: false`` errors that pass: the same call may succeed later.
TRANSIENT_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error",
                              "service_unavailable", "request_timeout"})

#: Short explanations of the permanent errors people will meet; other codes are shown as they are.
HINTS = {
    "channel_not_found": "the channel does not exist or the bot cannot see it",
    "not_in_channel": "the bot is not a member of the channel; invite it",
    "is_archived": "the channel is archived",
    "invalid_auth": "the bot token is not valid",
    "not_authed": "no bot token was sent",
    "account_inactive": "the bot token belongs to a deleted user or an uninstalled app",
    "token_revoked": "the bot token was revoked",
    "missing_scope": "the app lacks a scope for this call; reinstall it with the manifest's scopes",
    "msg_too_long": "the message is too long",
    "no_text": "the message has no text",
    "restricted_action": "a workspace setting prevents the bot from posting there",
    "user_not_found": "the user does not exist",
    "user_disabled": "the user's account is deactivated",
    "cannot_dm_bot": "the user is a bot and cannot receive a direct message",
    "message_not_found": "the message to update no longer exists",
    "cant_update_message": "the message was not posted by this bot",
    "edit_window_closed": "the message is too old to be edited",
    "invalid_blocks": "Slack refused the message's blocks",
    "invalid_metadata_format": "Slack refused the message metadata",
    "invalid_metadata_schema": "Slack refused the message metadata",
    "metadata_too_large": "the message metadata is too large",
}

T = TypeVar("T")
_TS = re.compile(r"\d+\.\d+")


def parse_ref(ref: str) -> tuple[str, str]:
    """``"C123:1700000000.000100"`` → ``("C123", "1700000000.000100")``."""
    channel, sep, ts = ref.partition(":")
    if not (sep and channel and _TS.fullmatch(ts)):
        raise PermanentFailure(f"not a Slack message reference: {ref!r}")
    return channel, ts


def _reason(code: str) -> str:
    hint = HINTS.get(code)
    return f"{code}: {hint}" if hint else code


def _retry_after(headers: Any) -> float:
    for name, value in dict(headers or {}).items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                break
    return 1.0


def _api_error(e: SlackApiError) -> RetryLater | PermanentFailure:
    response = e.response
    status = getattr(response, "status_code", 200)
    data = getattr(response, "data", None)
    code = str(data.get("error") or "") if isinstance(data, dict) else ""
    if status == 429:
        return RetryLater("ratelimited", retry_after=_retry_after(getattr(response, "headers", None)))
    if status >= 500:
        return RetryLater(f"Slack answered HTTP {status}" + (f" ({code})" if code else ""))
    if code in TRANSIENT_ERRORS:
        return RetryLater(code)
    if not code:
        return PermanentFailure(f"Slack answered HTTP {status} without an error code")
    return PermanentFailure(_reason(code))


def _call(fn: Callable[[], T]) -> T:
    """Run one Web API call; whatever goes wrong comes out as ``RetryLater`` or ``PermanentFailure``."""
    try:
        return fn()
    except SlackApiError as e:
        raise _api_error(e) from e
    except (OSError, http.client.HTTPException) as e:  # URLError, refused, reset, timeout
        raise RetryLater(f"network error: {e}") from e
    except SlackClientError as e:
        raise PermanentFailure(f"Slack client error: {e}") from e


def to_reply(message: Message) -> Reply:
    return Reply(title=message.title, text=message.text, ephemeral=False,
                 actions=tuple(Button(a.label, a.action_id, a.value) for a in message.actions))


def render(message: Message) -> dict[str, Any]:
    """``text`` and ``blocks`` of a message, as the reply renderer makes them."""
    reply = to_reply(message)
    return {"text": fallback_text(reply), "blocks": blocks(reply)}


class SlackNotifier:
    """Posts and edits notifications with ``chat.postMessage`` / ``chat.update``.

    ``target`` is a conversation id (``C…``, ``G…``, ``D…``) or ``user:U…`` for a direct message
    (opened with ``conversations.open``). A reply to a thread (``Message.thread``) goes to the
    conversation of the message it replies to. References are ``"CHANNEL:TS"``."""

    platform = PLATFORM

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def _channel(self, target: str) -> str:
        if target.startswith(USER_PREFIX):
            user = target.removeprefix(USER_PREFIX)
            if not user:
                raise PermanentFailure(f"no user in target {target!r}")
            opened = _call(lambda: self.client.conversations_open(users=user))
            channel = (opened.get("channel") or {}).get("id")
            if not channel:
                raise RetryLater("conversations.open returned no channel")
            return str(channel)
        if not target:
            raise PermanentFailure("no target channel")
        return target

    def _where(self, target: str, message: Message) -> tuple[str, str | None]:
        """The conversation and thread a message goes to."""
        if message.thread:
            return parse_ref(message.thread)
        return self._channel(target), None

    def send(self, target: str, message: Message, *, key: str, possibly_sent_since: dt.datetime | None = None) -> str:
        """Post ``message``; when an earlier attempt may have posted it, first the message posted with
        ``key`` since ``possibly_sent_since``, if one is found (``core.notifier.Notifier.send``)."""
        channel, thread_ts = self._where(target, message)
        if possibly_sent_since is not None:
            found = self.find(channel, key, since=possibly_sent_since, thread_ts=thread_ts)
            if found is not None:
                return found
        return self._post(channel, thread_ts, message, key)

    def _post(self, channel: str, thread_ts: str | None, message: Message, key: str) -> str:
        metadata = {"event_type": EVENT_TYPE, "event_payload": {"key": key}}
        posted = _call(lambda: self.client.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                                            metadata=metadata, **render(message)))
        ts = posted.get("ts")
        if not ts:
            raise RetryLater("chat.postMessage returned no ts")
        return f"{posted.get('channel') or channel}:{ts}"

    def update(self, ref: str, message: Message) -> None:
        # Metadata is left out: Slack keeps a message's metadata when an update does not name it.
        channel, ts = parse_ref(ref)
        _call(lambda: self.client.chat_update(channel=channel, ts=ts, **render(message)))

    def find(self, channel: str, key: str, *, since: dt.datetime, thread_ts: str | None = None) -> str | None:
        """The reference of a message in ``channel`` (or the thread) posted with ``key`` at or
        after ``since``: every page of the conversation back to then is read."""
        for m in self._since(channel, thread_ts, oldest=f"{since.timestamp():.6f}"):
            metadata = m.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == EVENT_TYPE and payload.get("key") == key and m.get("ts"):
                return f"{channel}:{m['ts']}"
        return None

    def _since(self, channel: str, thread_ts: str | None, *, oldest: str) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = self._page(channel, thread_ts, oldest=oldest, cursor=cursor)
            yield from page.get("messages") or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not (page.get("has_more") and cursor):
                return

    def _page(self, channel: str, thread_ts: str | None, *, oldest: str, cursor: str | None) -> Any:
        if thread_ts is None:
            return _call(lambda: self.client.conversations_history(
                channel=channel, oldest=oldest, inclusive=True, limit=PAGE, include_all_metadata=True, cursor=cursor))
        return _call(lambda: self.client.conversations_replies(
            channel=channel, ts=thread_ts, oldest=oldest, inclusive=True, limit=PAGE, include_all_metadata=True,
            cursor=cursor))


def slack_client(token: str | None, api_url: str | None = None) -> WebClient:
    """A ``WebClient`` that never retries on its own (``retry_handlers=[]``) and waits 10 s at most."""
    base_url = (api_url or WebClient.BASE_URL).rstrip("/") + "/"
    return WebClient(token=token, base_url=base_url, timeout=10, retry_handlers=[])


def slack_notifier(settings: Settings) -> SlackNotifier:
    return SlackNotifier(slack_client(settings.slack_bot_token, settings.slack_api_url))


if TYPE_CHECKING:
    _conforms: type[Notifier] = SlackNotifier
