"""Specs of the notifiers: Slack (the real slack_sdk client against the Web API stand-in), Discord
(the REST stand-in) and the console. What a delivery job relies on: where a message goes, that it
carries its idempotency key, that a retry after a crash finds it instead of posting twice, and that
every failure is either ``RetryLater`` (with the server's retry-after) or ``PermanentFailure``
(with a reason a person understands). No spec sleeps; every stand-in stops its threads."""

from __future__ import annotations

import base64
import datetime as dt
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.notify_console import ConsoleNotifier
from bot.notify_discord import DISCORD_EPOCH_MS, DiscordNotifier, discord_notifier, nonce_of
from bot.notify_slack import SlackNotifier, slack_client, slack_notifier
from bot.slack_render import blocks, fallback_text
from core.config import Settings
from core.notifier import Action, Message, PermanentFailure, RetryLater
from handlers.reply import Button, Reply
from tests.discord_stub import BOT_TOKEN as DISCORD_TOKEN
from tests.discord_stub import DiscordStub
from tests.slack_stub import BOT_TOKEN as SLACK_TOKEN
from tests.slack_stub import WebApiStub

# ----------------------------------------------------------------------------------------------
# The stand-ins, read back as the platforms read back a busy channel: by time, a page at a time.
# (What tests/slack_stub.py and tests/discord_stub.py could do themselves.)


class PagedWebApi(WebApiStub):
    """Slack's Web API stand-in whose ``conversations.history`` and ``conversations.replies`` read
    as Slack's do: only messages between ``oldest`` and ``latest`` (exclusive unless
    ``inclusive``), ``limit`` at a time but never more than ``page_cap`` (Slack may return fewer
    than asked), and a ``next_cursor`` to the next page while there is more."""

    page_cap = 100

    def _read(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        inclusive = str(body.get("inclusive")).lower() in ("1", "true")
        oldest, latest = float(body.get("oldest") or 0), float(body.get("latest") or "inf")
        cursor = str(body.get("cursor") or "")
        start = int(base64.b64decode(cursor).decode().removeprefix("offset:")) if cursor else 0
        limit = min(self.page_cap, int(body.get("limit") or 100))
        everything = super()._read(method, {**body, "limit": 10**9})["messages"]
        between = [m for m in everything
                   if (oldest <= float(m["ts"]) <= latest if inclusive else oldest < float(m["ts"]) < latest)]
        page = between[start:start + limit]
        more = start + limit < len(between)
        next_cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return {"ok": True, "messages": page, "has_more": more, "response_metadata": {"next_cursor": next_cursor}}


class SnowflakeDiscord(DiscordStub):
    """Discord's REST stand-in with message ids that are snowflakes of the time they were made,
    ``GET …/messages?after=ID`` answered as Discord does (the ``limit`` messages right after ``ID``,
    newest first), and nonces remembered for ``nonce_memory_s`` seconds only (Discord: a few
    minutes), after which a post with the same nonce is a new message."""

    nonce_memory_s = 300.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._last_id = 0
        self._posted_at: dict[str, float] = {}

    def _next_id(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        self._last_id = max(self._last_id + 1, ms << 22)
        return str(self._last_id)

    def _answer(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = path.removeprefix("/api/v10/").strip("/").split("/")
        if method == "GET" and len(parts) == 3 and "after" in query:
            status, newest_first = super()._answer(method, path, {"limit": "100"}, body)
            if status != 200:
                return status, newest_first
            with self._lock:
                channel = self.channels[parts[1]]
                after = int(query["after"])
                limit = min(100, int(query.get("limit") or 50))
                later = [self._shown(m) for m in channel.messages if int(m["id"]) > after][:limit]
            return 200, list(reversed(later))
        if method == "POST" and len(parts) == 3 and isinstance(body, dict) and body.get("nonce") is not None:
            with self._lock:
                first = self._posted_at.setdefault(str(body["nonce"]), time.monotonic())
            if time.monotonic() - first >= self.nonce_memory_s:
                body = {k: v for k, v in body.items() if k != "enforce_nonce"}  # Discord forgot it
        return super()._answer(method, path, query, body)


CHANNEL = "C0NOTIFY1"
DCHANNEL = "1300000000000000001"
ASSIGNED = Message(title="Request assigned", text="Mix & master for Alex <3",
                   actions=(Action("Accept", "request.accept", "42"), Action("Open", "request.show", "42")))


def an_hour_ago() -> dt.datetime:
    """Since when an earlier attempt may have posted, in these specs."""
    return dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2
    while (left := [t for t in threading.enumerate() if t not in before and t.is_alive()]) and time.monotonic() < deadline:
        left[0].join(0.05)
    assert not left, f"threads left running: {left}"


# ----------------------------------------------------------------------------------------------
# Slack


@pytest.fixture
def slack_api() -> Iterator[WebApiStub]:
    with WebApiStub() as stub:
        yield stub


@pytest.fixture
def slack(slack_api: WebApiStub) -> SlackNotifier:
    return slack_notifier(Settings(database_url="sqlite://", slack_bot_token=SLACK_TOKEN, slack_api_url=slack_api.api_url))


def test_slack_notifier_client_leaves_retries_to_the_job(slack_api: WebApiStub) -> None:
    client = slack_notifier(Settings(database_url="sqlite://", slack_bot_token=SLACK_TOKEN,
                                     slack_api_url=slack_api.url + "/api")).client
    assert client.retry_handlers == []
    assert client.timeout == 10
    assert client.base_url == slack_api.api_url
    assert slack_client("xoxb-1").base_url == "https://slack.com/api/"


def test_slack_posts_to_a_channel_with_the_key_in_message_metadata(slack: SlackNotifier, slack_api: WebApiStub) -> None:
    ref = slack.send(CHANNEL, ASSIGNED, key="delivery:1")

    [call] = slack_api.calls_to("chat.postMessage")
    [posted] = slack_api.messages_in(CHANNEL)
    assert ref == f"{CHANNEL}:{posted['ts']}"
    assert call.token == SLACK_TOKEN
    assert call.body["metadata"] == {"event_type": "mona_delivery", "event_payload": {"key": "delivery:1"}}
    reply = Reply(title="Request assigned", text="Mix & master for Alex <3", ephemeral=False,
                  actions=(Button("Accept", "request.accept", "42"), Button("Open", "request.show", "42")))
    assert call.body["blocks"] == blocks(reply)  # the reply renderer, escaping included
    assert call.body["text"] == fallback_text(reply) == "Request assigned\nMix &amp; master for Alex &lt;3"
    assert [e["value"] for e in call.body["blocks"][-1]["elements"]] == ["42", "42"]
    assert "thread_ts" not in call.body


def test_slack_direct_message_opens_the_conversation_first(slack: SlackNotifier, slack_api: WebApiStub) -> None:
    ref = slack.send("user:U0LINA01", Message("Your reminder: call Alex"), key="reminder:7")

    assert slack_api.methods() == ["conversations.open", "chat.postMessage"]
    assert slack_api.calls_to("conversations.open")[0].body["users"] == "U0LINA01"
    [posted] = slack_api.messages_in("DU0LINA01")
    assert ref == f"DU0LINA01:{posted['ts']}"


def test_slack_thread_reply_goes_to_the_thread_of_the_reference(slack: SlackNotifier, slack_api: WebApiStub) -> None:
    parent = slack.send(CHANNEL, Message("Stream planned"), key="k:parent")

    slack.send(CHANNEL, Message("Starts in 10 minutes", thread=parent), key="k:reply")

    reply = slack_api.calls_to("chat.postMessage")[1].body
    assert (reply["channel"], reply["thread_ts"]) == tuple(parent.split(":"))


def test_slack_possibly_sent_returns_the_earlier_message_and_does_not_post_twice(
        slack: SlackNotifier, slack_api: WebApiStub) -> None:
    first = slack.send(CHANNEL, ASSIGNED, key="delivery:1")

    again = slack.send(CHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=an_hour_ago())

    assert again == first
    assert len(slack_api.messages_in(CHANNEL)) == 1
    assert len(slack_api.calls_to("chat.postMessage")) == 1
    [history] = slack_api.calls_to("conversations.history")
    assert history.body["channel"] == CHANNEL and history.body["include_all_metadata"] in ("1", "true")


def test_slack_answer_lost_after_posting_then_retry_delivers_exactly_once(
        slack: SlackNotifier, slack_api: WebApiStub) -> None:
    slack_api.drop_response("chat.postMessage")
    with pytest.raises(RetryLater, match="network error"):
        slack.send(CHANNEL, ASSIGNED, key="delivery:1")
    assert len(slack_api.messages_in(CHANNEL)) == 1  # Slack did post it; the client could not know

    ref = slack.send(CHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=an_hour_ago())

    [posted] = slack_api.messages_in(CHANNEL)
    assert ref == f"{CHANNEL}:{posted['ts']}"
    assert len(slack_api.calls_to("chat.postMessage")) == 1  # and the client never retried by itself


def test_slack_possibly_sent_posts_a_message_that_was_never_posted(slack: SlackNotifier, slack_api: WebApiStub) -> None:
    slack.send(CHANNEL, Message("another notification"), key="delivery:0")

    ref = slack.send(CHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=an_hour_ago())

    posted = slack_api.messages_in(CHANNEL)
    assert len(posted) == 2
    assert ref == f"{CHANNEL}:{posted[1]['ts']}"
    assert posted[1]["metadata"]["event_payload"] == {"key": "delivery:1"}


def test_slack_possibly_sent_in_a_thread_reads_the_thread(slack: SlackNotifier, slack_api: WebApiStub) -> None:
    parent = slack.send(CHANNEL, Message("Stream planned"), key="k:parent")
    reply = slack.send(CHANNEL, Message("Starts soon", thread=parent), key="k:reply")

    assert slack.send(CHANNEL, Message("Starts soon", thread=parent), key="k:reply", possibly_sent_since=an_hour_ago()) == reply

    [replies] = slack_api.calls_to("conversations.replies")
    assert replies.body["ts"] == parent.split(":")[1]
    assert len(slack_api.messages_in(CHANNEL)) == 2


def test_slack_rate_limit_is_retry_later_with_slacks_retry_after(slack: SlackNotifier, slack_api: WebApiStub) -> None:
    slack_api.fail("chat.postMessage", 429, retry_after=7)
    started = time.monotonic()

    with pytest.raises(RetryLater) as caught:
        slack.send(CHANNEL, ASSIGNED, key="delivery:1")

    assert (caught.value.reason, caught.value.retry_after) == ("ratelimited", 7.0)
    assert time.monotonic() - started < 1  # the client did not sleep on it
    assert len(slack_api.calls_to("chat.postMessage")) == 1
    assert slack_api.messages_in(CHANNEL) == []


def test_slack_server_error_is_retry_later(slack: SlackNotifier, slack_api: WebApiStub) -> None:
    slack_api.fail("chat.postMessage", 500)

    with pytest.raises(RetryLater, match="HTTP 500"):
        slack.send(CHANNEL, ASSIGNED, key="delivery:1")
    assert len(slack_api.calls_to("chat.postMessage")) == 1


@pytest.mark.parametrize("code", ["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"])
def test_slack_passing_errors_are_retry_later(slack: SlackNotifier, slack_api: WebApiStub, code: str) -> None:
    slack_api.errors["chat.postMessage"] = code

    with pytest.raises(RetryLater) as caught:
        slack.send(CHANNEL, ASSIGNED, key="delivery:1")
    assert caught.value.reason == code


@pytest.mark.parametrize(("code", "reason"), [
    ("channel_not_found", "channel_not_found: the channel does not exist or the bot cannot see it"),
    ("not_in_channel", "not_in_channel: the bot is not a member of the channel; invite it"),
    ("is_archived", "is_archived: the channel is archived"),
    ("invalid_auth", "invalid_auth: the bot token is not valid"),
    ("some_new_error", "some_new_error"),
])
def test_slack_other_errors_are_permanent_with_a_clear_reason(slack: SlackNotifier, slack_api: WebApiStub,
                                                             code: str, reason: str) -> None:
    slack_api.errors["chat.postMessage"] = code

    with pytest.raises(PermanentFailure) as caught:
        slack.send(CHANNEL, ASSIGNED, key="delivery:1")
    assert caught.value.reason == reason


def test_slack_possibly_sent_does_not_post_blindly_when_slack_refuses_the_lookup(
        slack: SlackNotifier, slack_api: WebApiStub) -> None:
    slack_api.errors["conversations.history"] = "missing_scope"

    with pytest.raises(PermanentFailure, match="^missing_scope: the app lacks a scope"):
        slack.send(CHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=an_hour_ago())
    assert slack_api.calls_to("chat.postMessage") == []


def test_slack_network_error_is_retry_later_at_once(slack: SlackNotifier, slack_api: WebApiStub) -> None:
    slack_api.stop()
    started = time.monotonic()

    with pytest.raises(RetryLater, match="network error"):
        slack.send(CHANNEL, ASSIGNED, key="delivery:1")
    assert time.monotonic() - started < 1


def test_slack_update_edits_the_message_and_keeps_its_key(slack: SlackNotifier, slack_api: WebApiStub) -> None:
    ref = slack.send(CHANNEL, Message("Scoring 0/40 artists…", title="Scoring"), key="job:9")

    slack.update(ref, Message("Scoring done: 40 artists", title="Scoring"))

    [call] = slack_api.calls_to("chat.update")
    assert (call.body["channel"], call.body["ts"]) == tuple(ref.split(":"))
    [posted] = slack_api.messages_in(CHANNEL)
    assert posted["text"] == "Scoring\nScoring done: 40 artists"
    assert posted["metadata"]["event_payload"] == {"key": "job:9"}
    with pytest.raises(PermanentFailure, match="message_not_found"):
        slack.update(f"{CHANNEL}:1.000000", Message("gone"))
    with pytest.raises(PermanentFailure, match="not a Slack message reference"):
        slack.update("console:1", Message("elsewhere"))


def test_slack_user_text_pings_nobody(slack: SlackNotifier, slack_api: WebApiStub) -> None:
    slack.send(CHANNEL, Message("<!channel> <@U0BOSS> & co", title="<!here> Alex"), key="k")

    body = slack_api.calls_to("chat.postMessage")[0].body
    assert body["text"] == "&lt;!here&gt; Alex\n&lt;!channel&gt; &lt;@U0BOSS&gt; &amp; co"
    assert body["blocks"][0]["text"]["text"] == "*&lt;!here&gt; Alex*\n&lt;!channel&gt; &lt;@U0BOSS&gt; &amp; co"


# ----------------------------------------------------------------------------------------------
def _a_second_ago() -> dt.datetime:
    """When the lost attempt began: a whole second back (the stand-ins' clocks count seconds)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)


@pytest.mark.probe("jobs: exactly once on a busy channel")
def test_slack_a_retry_finds_its_message_behind_250_later_ones_reading_every_page_since_the_attempt(
        ) -> None:
    with PagedWebApi() as api:
        slack = slack_notifier(Settings(database_url="sqlite://", slack_bot_token=SLACK_TOKEN, slack_api_url=api.api_url))
        began = _a_second_ago()
        lost = slack.send(CHANNEL, ASSIGNED, key="delivery:1")  # posted; the worker died before it knew
        for i in range(250):  # a busy channel meanwhile
            slack.send(CHANNEL, Message(f"artist {i} added"), key=f"delivery:other:{i}")

        again = slack.send(CHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=began)

        assert again == lost
        ours = [m for m in api.messages_in(CHANNEL) if m["metadata"]["event_payload"]["key"] == "delivery:1"]
        assert len(ours) == 1
        pages = api.calls_to("conversations.history")
        assert len(pages) >= 3  # 252 messages, at most 100 a page: every page read
        assert {float(p.body["oldest"]) for p in pages} == {began.timestamp()}


def test_slack_possibly_sent_an_hour_ago_reads_every_page_of_that_hour() -> None:
    with PagedWebApi() as api:
        slack = slack_notifier(Settings(database_url="sqlite://", slack_bot_token=SLACK_TOKEN, slack_api_url=api.api_url))
        lost = slack.send(CHANNEL, ASSIGNED, key="delivery:1")
        for i in range(150):
            slack.send(CHANNEL, Message(f"artist {i} added"), key=f"delivery:other:{i}")

        assert slack.send(CHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=an_hour_ago()) == lost
        assert len(api.messages_in(CHANNEL)) == 151


def test_slack_a_retry_in_a_busy_thread_reads_every_page_of_the_thread() -> None:
    with PagedWebApi() as api:
        slack = slack_notifier(Settings(database_url="sqlite://", slack_bot_token=SLACK_TOKEN, slack_api_url=api.api_url))
        parent = slack.send(CHANNEL, Message("Stream planned"), key="k:parent")
        began = _a_second_ago()
        for i in range(120):
            slack.send(CHANNEL, Message(f"reply {i}", thread=parent), key=f"k:before:{i}")
        reply = slack.send(CHANNEL, Message("Starts soon", thread=parent), key="k:reply")

        assert slack.send(CHANNEL, Message("Starts soon", thread=parent), key="k:reply",
                          possibly_sent_since=began) == reply
        assert len(api.messages_in(CHANNEL)) == 122
        pages = api.calls_to("conversations.replies")
        assert len(pages) == 2 and {float(p.body["oldest"]) for p in pages} == {began.timestamp()}


# Discord


@pytest.fixture
def discord_api() -> Iterator[DiscordStub]:
    with DiscordStub() as stub:
        yield stub


@pytest.fixture
def discord(discord_api: DiscordStub) -> DiscordNotifier:
    return discord_notifier(DISCORD_TOKEN, discord_api.api_base)


def test_discord_posts_to_a_channel_with_the_key_as_nonce(discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    ref = discord.send(DCHANNEL, ASSIGNED, key="delivery:1")

    [request] = discord_api.requests_to("POST", f"/channels/{DCHANNEL}/messages")
    [posted] = discord_api.messages(DCHANNEL)
    assert ref == f"{DCHANNEL}:{posted['id']}"
    assert request.headers["Authorization"] == f"Bot {DISCORD_TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "DiscordBot (mona, 0.1)"
    body = request.body
    assert body["nonce"] == nonce_of("delivery:1") and len(body["nonce"]) <= 25
    assert body["enforce_nonce"] is True
    assert body["allowed_mentions"]["parse"] == []
    assert body["embeds"] == [{"title": "Request assigned", "description": "Mix & master for Alex <3"}]
    assert body["components"] == [{"type": 1, "components": [
        {"type": 2, "style": 1, "label": "Accept", "custom_id": "request.accept|42"},
        {"type": 2, "style": 2, "label": "Open", "custom_id": "request.show|42"}]}]


def test_discord_message_without_title_is_plain_content(discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    discord.send(DCHANNEL, Message("Daily digest: 3 artists moved"), key="digest:1")

    [posted] = discord_api.messages(DCHANNEL)
    assert (posted["content"], posted["embeds"], posted["components"]) == ("Daily digest: 3 artists moved", [], [])


def test_discord_direct_message_opens_the_dm_channel_first(discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    ref = discord.send("user:1400000000000000042", Message("Your reminder"), key="reminder:7")

    [opened] = discord_api.requests_to("POST", "/users/@me/channels")
    assert opened.body == {"recipient_id": "1400000000000000042"}
    dm = next(c for c in discord_api.channels.values() if c.recipient_id == "1400000000000000042")
    [posted] = discord_api.messages(dm.id)
    assert ref == f"{dm.id}:{posted['id']}"


def test_discord_thread_reply_references_the_message(discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    parent = discord.send(DCHANNEL, Message("Stream planned"), key="k:parent")

    discord.send(DCHANNEL, Message("Starts in 10 minutes", thread=parent), key="k:reply")

    reply = discord_api.messages(DCHANNEL)[1]
    assert reply["message_reference"]["message_id"] == parent.split(":")[1]


@pytest.mark.parametrize("echo_nonce", [True, False], ids=["nonce-read-back", "nonce-enforced"])
def test_discord_possibly_sent_returns_the_earlier_message_and_does_not_post_twice(
        discord: DiscordNotifier, discord_api: DiscordStub, echo_nonce: bool) -> None:
    discord_api.echo_nonce = echo_nonce
    first = discord.send(DCHANNEL, ASSIGNED, key="delivery:1")

    again = discord.send(DCHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=an_hour_ago())

    assert again == first
    assert len(discord_api.messages(DCHANNEL)) == 1
    assert len(discord_api.requests_to("GET", f"/channels/{DCHANNEL}/messages")) == 1
    # Found by reading the channel when messages carry their nonce; otherwise posted again with the
    # same nonce and enforce_nonce, which Discord answers with the message it already has.
    assert len(discord_api.requests_to("POST", f"/channels/{DCHANNEL}/messages")) == (1 if echo_nonce else 2)


def test_discord_answer_lost_after_posting_then_retry_delivers_exactly_once(
        discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    discord_api.drop_response("POST")
    with pytest.raises(RetryLater, match="network error"):
        discord.send(DCHANNEL, ASSIGNED, key="delivery:1")

    ref = discord.send(DCHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=an_hour_ago())

    [posted] = discord_api.messages(DCHANNEL)
    assert ref == f"{DCHANNEL}:{posted['id']}"


def test_discord_possibly_sent_posts_a_message_that_was_never_posted(
        discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    discord_api.echo_nonce = True
    discord.send(DCHANNEL, Message("another notification"), key="delivery:0")

    ref = discord.send(DCHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=an_hour_ago())

    posted = discord_api.messages(DCHANNEL)
    assert len(posted) == 2
    assert ref == f"{DCHANNEL}:{posted[1]['id']}"
    assert posted[1]["nonce"] == nonce_of("delivery:1")


@pytest.mark.probe("jobs: exactly once on a busy channel")
@pytest.mark.parametrize("how", ["since the attempt", "possibly sent"])
def test_discord_a_retry_finds_its_message_behind_250_later_ones_once_discord_forgot_the_nonce(how: str) -> None:
    with SnowflakeDiscord(echo_nonce=True) as api:
        api.nonce_memory_s = 0  # the lost attempt is older than Discord's memory of nonces
        discord = discord_notifier(DISCORD_TOKEN, api.api_base)
        began = _a_second_ago()
        lost = discord.send(DCHANNEL, ASSIGNED, key="delivery:1")  # posted; the worker died before it knew
        for i in range(250):  # a busy channel meanwhile
            discord.send(DCHANNEL, Message(f"artist {i} added"), key=f"delivery:other:{i}")

        if how == "since the attempt":
            again = discord.send(DCHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=began)
        else:
            again = discord.send(DCHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=an_hour_ago())

        assert again == lost
        assert [m["nonce"] for m in api.messages(DCHANNEL)].count(nonce_of("delivery:1")) == 1
        reads = api.requests_to("GET", f"/channels/{DCHANNEL}/messages")
        assert len(reads) == 1  # the lost message is the first after the attempt began: on the first page


def test_discord_a_retry_reads_every_page_after_the_attempt_to_know_it_never_posted() -> None:
    with SnowflakeDiscord(echo_nonce=True) as api:
        discord = discord_notifier(DISCORD_TOKEN, api.api_base)
        began = _a_second_ago()
        for i in range(250):
            discord.send(DCHANNEL, Message(f"artist {i} added"), key=f"delivery:other:{i}")

        ref = discord.send(DCHANNEL, ASSIGNED, key="delivery:1", possibly_sent_since=began)

        posted = api.messages(DCHANNEL)
        assert len(posted) == 251 and ref == f"{DCHANNEL}:{posted[-1]['id']}"
        assert len(api.requests_to("GET", f"/channels/{DCHANNEL}/messages")) == 3  # 100, 100, 50: every page


def test_discord_rate_limit_is_retry_later_with_discords_retry_after(
        discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    discord_api.fail("POST", 429, retry_after=2.5)  # Retry-After header: 3
    started = time.monotonic()

    with pytest.raises(RetryLater) as caught:
        discord.send(DCHANNEL, ASSIGNED, key="delivery:1")

    assert (caught.value.reason, caught.value.retry_after) == ("ratelimited", 2.5)
    assert time.monotonic() - started < 1
    assert discord_api.messages(DCHANNEL) == []


def test_discord_rate_limit_without_a_json_body_uses_the_header(discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    discord_api.fail("POST", 429, retry_after_header="12")

    with pytest.raises(RetryLater) as caught:
        discord.send(DCHANNEL, ASSIGNED, key="delivery:1")
    assert caught.value.retry_after == 12.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_discord_server_error_is_retry_later(discord: DiscordNotifier, discord_api: DiscordStub, status: int) -> None:
    discord_api.fail("POST", status)

    with pytest.raises(RetryLater, match=f"HTTP {status}"):
        discord.send(DCHANNEL, ASSIGNED, key="delivery:1")


def test_discord_unknown_channel_is_permanent_with_a_clear_reason(discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    discord_api.unknown_channels.add(DCHANNEL)

    with pytest.raises(PermanentFailure) as caught:
        discord.send(DCHANNEL, ASSIGNED, key="delivery:1")
    assert caught.value.reason == "10003 Unknown Channel: the channel does not exist or the bot cannot see it"


@pytest.mark.parametrize(("status", "code", "message", "reason"), [
    (403, 50001, "Missing Access", "50001 Missing Access: the bot has no access to the channel"),
    (403, 50013, "Missing Permissions", "50013 Missing Permissions: the bot lacks a permission"),
    (400, 50007, "Cannot send messages to this user", "50007 Cannot send messages to this user: the user"),
])
def test_discord_client_errors_are_permanent(discord: DiscordNotifier, discord_api: DiscordStub,
                                             status: int, code: int, message: str, reason: str) -> None:
    discord_api.fail("POST", status, code=code, message=message)

    with pytest.raises(PermanentFailure) as caught:
        discord.send(DCHANNEL, ASSIGNED, key="delivery:1")
    assert caught.value.reason.startswith(reason)


def test_discord_wrong_token_is_permanent(discord_api: DiscordStub) -> None:
    with pytest.raises(PermanentFailure, match="401: Unauthorized: the bot token is not valid"):
        DiscordNotifier("not-the-token", discord_api.api_base).send(DCHANNEL, ASSIGNED, key="delivery:1")


def test_discord_network_error_is_retry_later(discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    discord_api.stop()

    with pytest.raises(RetryLater, match="network error"):
        discord.send(DCHANNEL, ASSIGNED, key="delivery:1")


def test_discord_update_edits_the_message(discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    ref = discord.send(DCHANNEL, Message("Scoring 0/40 artists…", title="Scoring",
                                         actions=(Action("Cancel", "job.cancel", "9"),)), key="job:9")

    discord.update(ref, Message("Scoring done: 40 artists"))

    [request] = discord_api.requests_to("PATCH")
    assert request.path.endswith("/channels/{}/messages/{}".format(*ref.split(":")))
    [posted] = discord_api.messages(DCHANNEL)
    assert (posted["content"], posted["embeds"], posted["components"]) == ("Scoring done: 40 artists", [], [])
    assert posted["allowed_mentions"]["parse"] == []
    with pytest.raises(PermanentFailure, match="10008 Unknown Message"):
        discord.update(f"{DCHANNEL}:1", Message("gone"))


def test_discord_user_text_pings_nobody_and_shows_as_typed(discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    discord.send(DCHANNEL, Message("@everyone @here <@123> <@&456> **bold** _x_ `c` ~s~ |s| > q \\ see https://x.y/a_b_c"),
                 key="k")

    [request] = discord_api.requests_to("POST", "/messages")
    assert request.body["content"] == (
        "@\u200beveryone @\u200bhere \\<@123\\> \\<@&456\\> \\*\\*bold\\*\\* \\_x\\_ \\`c\\` \\~s\\~ \\|s\\| \\> q \\\\ "
        "see https://x.y/a_b_c")
    assert request.body["allowed_mentions"] == {"parse": [], "replied_user": False}


def test_discord_buttons_fit_discords_limits(discord: DiscordNotifier, discord_api: DiscordStub) -> None:
    actions = tuple(Action(f"Page {n}", "cmd.run", f"/artist list --page {n}") for n in range(7))
    actions += (Action("Too long", "cmd.run", "x" * 100), Action("Page 0 again", "cmd.run", "/artist list --page 0"))

    discord.send(DCHANNEL, Message("Artists", actions=actions), key="k")

    rows = discord_api.messages(DCHANNEL)[0]["components"]
    assert [len(r["components"]) for r in rows] == [5, 2]
    ids = [b["custom_id"] for r in rows for b in r["components"]]
    assert ids == [f"cmd.run|/artist list --page {n}" for n in range(7)]
    assert all(len(i) <= 100 for i in ids)


# ----------------------------------------------------------------------------------------------
# Console


def test_console_writes_lines_and_returns_references() -> None:
    out = io.StringIO()
    console = ConsoleNotifier(out)

    first = console.send("crm", ASSIGNED, key="delivery:1")
    second = console.send("user:U1", Message("Your reminder", thread=first), key="reminder:1")

    assert (first, second) == ("console:1", "console:2")
    assert out.getvalue() == ("[#crm] Request assigned — Mix & master for Alex <3\n"
                              "  [Accept]\n"
                              "  [Open]\n"
                              "[@U1 ↳ console:1] Your reminder\n")


def test_console_possibly_sent_returns_the_earlier_reference_without_writing() -> None:
    out = io.StringIO()
    console = ConsoleNotifier(out)
    ref = console.send("crm", ASSIGNED, key="delivery:1")
    written = out.getvalue()

    assert console.send("crm", ASSIGNED, key="delivery:1", possibly_sent_since=an_hour_ago()) == ref
    assert out.getvalue() == written
    assert console.send("crm", ASSIGNED, key="delivery:2", possibly_sent_since=an_hour_ago()) == "console:2"


def test_console_update_writes_the_new_content() -> None:
    out = io.StringIO()
    console = ConsoleNotifier(out)
    ref = console.send("crm", Message("Scoring 0/40", title="Scoring"), key="job:9")

    console.update(ref, Message("Scoring done", title="Scoring"))

    assert out.getvalue().splitlines()[-1] == "[update console:1] Scoring — Scoring done"
    with pytest.raises(PermanentFailure):
        console.update("console:9", Message("nothing there"))
