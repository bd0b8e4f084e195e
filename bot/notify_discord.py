"""``Notifier`` for Discord, over Discord's REST API with the standard library.

A delivery job is synchronous and sends one message: plain HTTP (``urllib.request``) is all it
needs, with no event loop and no gateway connection.

Rendering: a message with a title is an embed (title, description); without one it is the
message's ``content``. Text is escaped for Discord markdown (``\\ * _ ~ ` | >``, headings and list
markers at the start of a line, ``[`` of masked links, ``<`` of mention syntax), ``@everyone`` and
``@here`` are broken with a zero-width space, and every message goes out with
``allowed_mentions: {"parse": []}``: nothing in a notification pings anyone.

Buttons are action rows of buttons whose ``custom_id`` is ``"{action_id}|{value}"`` (the Discord
adapter splits it at the first ``|``). Discord allows 100 characters: a button whose custom id
would be longer is left out (and logged) rather than cut, because a cut value would do something
else than its label says; so is a second button with the same custom id (Discord refuses
duplicates within a message).

Exactly once: each message is posted with ``nonce`` = a hash of the idempotency key and
``enforce_nonce: true``. Discord then answers a second post with the same nonce by the same bot
"within the past few minutes" with the message already created instead of a new one. A retry that
may follow a post (``send`` with ``possibly_sent_since``) also reads the
channel and returns a message whose ``nonce`` is ours without posting: every message after the
snowflake of the earliest moment the earlier attempt may have posted (``after``), page after
page — bounded by time, not by a number of messages, so a busy channel does not hide it.
Caveat: Discord documents ``nonce`` on messages for the create response and the gateway event;
whether it is still present on messages read back later is not promised (discord.py's docs say it
is only reliable on the message returned by ``send``), so the server-side nonce check is what
protects a retry, and only for a few minutes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from core.notifier import Message, Notifier, PermanentFailure, RetryLater

PLATFORM = "discord"
API_BASE = "https://discord.com/api/v10"
USER_AGENT = "DiscordBot (mona, 0.1)"
USER_PREFIX = "user:"
#: Messages per page when looking for an earlier delivery (Discord's most).
PAGE = 100
#: The first millisecond of 2015, where Discord's snowflakes count from.
DISCORD_EPOCH_MS = 1420070400000

#: Limits from Discord's reference.
MAX_CONTENT = 2000
MAX_EMBED_TITLE = 256
MAX_EMBED_DESCRIPTION = 4096
MAX_NONCE = 25
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
BUTTONS_PER_ROW = 5
MAX_ROWS = 5
ELLIPSIS = "…"
ZWSP = "\u200b"

#: Short explanations of the JSON error codes people will meet.
HINTS = {
    10003: "the channel does not exist or the bot cannot see it",
    10008: "the message no longer exists",
    10013: "the user does not exist",
    50001: "the bot has no access to the channel",
    50007: "the user does not accept direct messages from the bot",
    50013: "the bot lacks a permission in the channel (Send Messages, Embed Links)",
    50035: "Discord refused the message's content",
    40001: "the bot token is not valid",
    0: "the bot token is not valid",
}

log = logging.getLogger("mona.discord")

_ALWAYS = re.compile(r"([\\*_~`|>\[])")
_LINE_START = re.compile(r"(?m)^([ \t]*)([#\-+]|\d+\.)")
_MENTION_SYNTAX = re.compile(r"<(?=[@#:/]|a:|t:)")
_MASS_MENTION = re.compile(r"@(everyone|here)", re.IGNORECASE)
_SNOWFLAKE = re.compile(r"[0-9]{1,20}")
_URL = re.compile(r"(https?://[^\s<]+[^<.,:;\"')\]\s])")


def _escape_plain(text: str) -> str:
    text = _ALWAYS.sub(r"\\\1", text)
    text = _LINE_START.sub(r"\1\\\2", text)
    text = _MENTION_SYNTAX.sub(r"\\<", text)
    return _MASS_MENTION.sub(lambda m: "@" + ZWSP + m.group(1), text)


def escape(text: str) -> str:
    """Text as Discord shows it literally: markdown escaped (outside links, which would break),
    mention syntax neutralised, ``@everyone`` / ``@here`` broken by a zero-width space."""
    parts = _URL.split(text)
    # split() with one group: even indexes are text between links, odd ones the links.
    return "".join(p if i % 2 else _escape_plain(p) for i, p in enumerate(parts))


def fit(escaped: str, limit: int) -> str:
    """Cut escaped text to ``limit`` characters with "…", never right after an escaping backslash."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + ELLIPSIS


def nonce_of(key: str) -> str:
    """The message nonce for an idempotency key: 25 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:MAX_NONCE]


def snowflake_at(when: dt.datetime) -> int:
    """The smallest snowflake of ``when``: a message created at or after it has a greater id
    (minus one, so that a message of that very millisecond is after it too)."""
    ms = int(when.timestamp() * 1000) - DISCORD_EPOCH_MS
    return max(0, (ms << 22) - 1)


def parse_ref(ref: str) -> tuple[str, str]:
    """``"CHANNEL:MESSAGE_ID"`` → ``(channel id, message id)``."""
    channel, sep, message_id = ref.partition(":")
    if not (sep and channel and message_id):
        raise PermanentFailure(f"not a Discord message reference: {ref!r}")
    return channel, message_id


def components(message: Message) -> list[dict[str, Any]]:
    """Buttons as action rows (type 1) of buttons (type 2); the first is primary (style 1)."""
    buttons: list[dict[str, Any]] = []
    seen: set[str] = set()
    for action in message.actions:
        custom_id = f"{action.action_id}|{action.value}"
        if len(custom_id) > MAX_CUSTOM_ID:
            log.warning("left out a button whose custom id is %d characters (Discord allows %d)",
                        len(custom_id), MAX_CUSTOM_ID)
            continue
        if custom_id in seen:
            log.warning("left out a second button with the custom id %r", custom_id)
            continue
        seen.add(custom_id)
        label = action.label.strip() or action.action_id
        if len(label) > MAX_BUTTON_LABEL:
            label = label[: MAX_BUTTON_LABEL - 1] + ELLIPSIS
        buttons.append({"type": 2, "style": 1 if not buttons else 2, "label": label, "custom_id": custom_id})
    if len(buttons) > BUTTONS_PER_ROW * MAX_ROWS:
        log.warning("left out %d buttons (Discord allows %d)", len(buttons) - BUTTONS_PER_ROW * MAX_ROWS,
                    BUTTONS_PER_ROW * MAX_ROWS)
        buttons = buttons[: BUTTONS_PER_ROW * MAX_ROWS]
    return [{"type": 1, "components": buttons[i : i + BUTTONS_PER_ROW]}
            for i in range(0, len(buttons), BUTTONS_PER_ROW)]


def render(message: Message) -> dict[str, Any]:
    """The message's ``content``, ``embeds``, ``components`` and ``allowed_mentions``; every key is
    present, so the same body replaces all of an earlier message in an edit."""
    body: dict[str, Any] = {"content": "", "embeds": [], "components": components(message),
                            "allowed_mentions": {"parse": [], "replied_user": False}}
    if message.title:
        embed: dict[str, Any] = {"title": fit(escape(" ".join(message.title.split())), MAX_EMBED_TITLE)}
        if message.text:
            embed["description"] = fit(escape(message.text), MAX_EMBED_DESCRIPTION)
        body["embeds"] = [embed]
    else:
        # Discord refuses a message with nothing in it.
        body["content"] = fit(escape(message.text), MAX_CONTENT) or ZWSP
    return body


def _float(value: Any) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _failure(status: int, headers: Any, raw: bytes) -> RetryLater | PermanentFailure:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if status == 429:
        retry_after = _float(data.get("retry_after"))
        if retry_after is None:
            retry_after = _float(headers.get("Retry-After") if headers is not None else None)
        return RetryLater("ratelimited" + (" (global)" if data.get("global") else ""),
                          retry_after=1.0 if retry_after is None else retry_after)
    if status >= 500 or status == 408:
        return RetryLater(f"Discord answered HTTP {status}")
    message = str(data.get("message") or f"HTTP {status}")
    code = data.get("code")
    reason = f"{code} {message}" if isinstance(code, int) and code else message
    hint = HINTS.get(code) if isinstance(code, int) else None
    if hint:
        reason += f": {hint}"
    if data.get("errors"):
        reason += " " + json.dumps(data["errors"], separators=(",", ":"))[:500]
    return PermanentFailure(reason)


class DiscordNotifier:
    """Posts and edits notifications with ``POST``/``PATCH /channels/{id}/messages``.

    ``target`` is a channel id, or ``user:<user id>`` for a direct message (the DM channel comes
    from ``POST /users/@me/channels``). A reply to a thread (``Message.thread``) is posted in the
    channel of the message it replies to, with a ``message_reference``. References are
    ``"CHANNEL:MESSAGE_ID"``."""

    platform = PLATFORM

    def __init__(self, token: str, api_base: str = API_BASE, *, timeout: float = 10.0) -> None:
        self._token = token
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:  # never the token
        return f"DiscordNotifier(api_base={self.api_base!r})"

    # -- HTTP ---------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bot {self._token}", "User-Agent": USER_AGENT}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.api_base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            try:
                raw = e.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                e.close()
            raise _failure(e.code, e.headers, raw) from None
        except (OSError, http.client.HTTPException) as e:  # URLError, refused, reset, timeout
            raise RetryLater(f"network error: {e}") from e
        try:
            return json.loads(raw) if raw else None
        except ValueError as e:
            raise RetryLater(f"Discord answered {method} {path} with something else than JSON") from e

    # -- Notifier -----------------------------------------------------------------------------

    def _channel(self, target: str) -> str:
        if target.startswith(USER_PREFIX):
            user = target.removeprefix(USER_PREFIX)
            if not user:
                raise PermanentFailure(f"no user in target {target!r}")
            dm = self._request("POST", "/users/@me/channels", {"recipient_id": user})
            channel = dm.get("id") if isinstance(dm, dict) else None
            if not channel:
                raise RetryLater("POST /users/@me/channels returned no channel")
            return str(channel)
        if not target:
            raise PermanentFailure("no target channel")
        return target

    def _where(self, target: str, message: Message) -> tuple[str, str | None]:
        """The channel a message goes to, and the message it replies to."""
        if message.thread:
            return parse_ref(message.thread)
        return self._channel(target), None

    def send(self, target: str, message: Message, *, key: str, possibly_sent_since: dt.datetime | None = None) -> str:
        """Post ``message``; when an earlier attempt may have posted it, first the message posted with
        ``key`` since ``possibly_sent_since``, if one is found (``core.notifier.Notifier.send``)."""
        channel, reply_to = self._where(target, message)
        if possibly_sent_since is not None:
            found = self.find(channel, key, since=possibly_sent_since)
            if found is not None:
                return found
        return self._post(channel, reply_to, message, key)

    def _post(self, channel: str, reply_to: str | None, message: Message, key: str) -> str:
        body = render(message)
        body.update(nonce=nonce_of(key), enforce_nonce=True)
        if reply_to:
            body["message_reference"] = {"message_id": reply_to, "fail_if_not_exists": False}
        posted = self._request("POST", f"/channels/{_q(channel)}/messages", body)
        if not isinstance(posted, dict) or not posted.get("id"):
            raise RetryLater("Discord returned no message id")
        return f"{posted.get('channel_id') or channel}:{posted['id']}"

    def update(self, ref: str, message: Message) -> None:
        channel, message_id = parse_ref(ref)
        self._request("PATCH", f"/channels/{_q(channel)}/messages/{_q(message_id)}", render(message))

    def find(self, channel: str, key: str, *, since: dt.datetime) -> str | None:
        """The reference of a message of the channel created at or after ``since`` whose nonce is
        the key's: every message after the snowflake of ``since`` is read, a page at a time."""
        nonce = nonce_of(key)
        after = snowflake_at(since)
        while True:
            page = self._request("GET", f"/channels/{_q(channel)}/messages?after={after}&limit={PAGE}")
            page = page if isinstance(page, list) else []
            ids: list[int] = []
            for m in page:
                message_id = str(m.get("id") or "") if isinstance(m, dict) else ""
                if not _SNOWFLAKE.fullmatch(message_id):
                    continue
                if str(m.get("nonce")) == nonce:
                    return f"{channel}:{message_id}"
                ids.append(int(message_id))
            if len(page) < PAGE or not ids or max(ids) <= after:
                return None
            after = max(ids)  # Discord serves the messages after ``after`` newest first: go on from the newest


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def discord_notifier(token: str, api_base: str | None = None) -> DiscordNotifier:
    return DiscordNotifier(token, api_base or API_BASE)


if TYPE_CHECKING:
    _conforms: type[Notifier] = DiscordNotifier
