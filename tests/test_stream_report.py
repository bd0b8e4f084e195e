"""The stream report's audience: chat messages per minute from what the guard sees on Twitch and
Discord, the peak of viewers Twitch gives, and the chart, shown as a path in the console, uploaded
on Slack (``files_upload_v2``) and attached on Discord. Real SDKs against the stand-ins, on
PostgreSQL; sessions are opened and closed by OBS's events in the outbox, as the relay does."""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app import Mona
from bot.console import ConsoleBot, render
from core import outbox, sessions
from core.config import Settings
from core.db import utcnow
from core.sessions import ChatMinute, ChatTally, StreamSession, ViewerSample

PNG = b"\x89PNG\r\n\x1a\n"


def wait_until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.02)
    raise AssertionError("not within the time")


def obs_says(mona: Mona, type_: str, **extra: Any) -> None:
    """An event of OBS's, relayed (``stream.started`` opens a session, ``stream.stopped`` ends it)."""
    with mona.db.uow() as uow:
        outbox.record(uow, type_, studio="obs", **extra)
        uow.commit()
    mona.run_pending_jobs()


def go_live(mona: Mona) -> None:
    obs_says(mona, "stream.scene_changed", scene="Intro")
    time.sleep(0.05)
    obs_says(mona, "stream.started")
    time.sleep(0.05)
    obs_says(mona, "stream.scene_changed", scene="Live")


def png_size(content: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert content[:8] == PNG, content[:16]
    width, height = struct.unpack(">II", content[16:24])
    return width, height


def counted(mona: Mona) -> int:
    """The chat messages written for sessions so far (what is waiting in memory written first)."""
    mona.guard.chat.flush()
    with mona.db.uow() as uow:
        return int(uow.session.scalar(select(func.coalesce(func.sum(ChatMinute.count), 0))) or 0)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(settings, data_dir=str(tmp_path))


# ---------------------------------------------------------------- the figures


def test_chat_counts_only_while_a_session_is_under_way_per_minute_and_platform(mona: Mona) -> None:
    tally = ChatTally(mona.db, session_check_s=0)
    tally.count("twitch")
    tally.flush()
    with mona.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(ChatMinute)) == 0
    obs_says(mona, "stream.started")
    at = dt.datetime(2026, 11, 20, 20, 3, 12, tzinfo=dt.UTC)
    for platform, when in (("twitch", at), ("twitch", at + dt.timedelta(seconds=40)), ("discord", at),
                           ("twitch", at + dt.timedelta(minutes=1))):
        tally.count(platform, when)
    tally.flush()
    tally.count("twitch", at)  # added to what was written
    tally.flush()
    obs_says(mona, "stream.stopped")
    tally.count("twitch", at)
    tally.flush()
    with mona.db.uow() as uow:
        rows = {(m.minute.strftime("%H:%M"), m.platform): m.count for m in uow.session.scalars(select(ChatMinute))}
    assert rows == {("20:03", "twitch"): 3, ("20:03", "discord"): 1, ("20:04", "twitch"): 1}


def test_the_report_gives_the_average_the_busiest_minute_and_the_peak_of_viewers(bot: ConsoleBot, mona: Mona) -> None:
    start = dt.datetime(2026, 11, 20, 20, 0, 30, tzinfo=dt.UTC)  # 21:00 in Paris, the team's timezone
    with mona.db.uow() as uow:
        s = StreamSession(title="Villa live", started_at=start, ended_at=start + dt.timedelta(minutes=10))
        uow.session.add(s)
        uow.session.flush()
        for minute, platform, n in ((0, "twitch", 4), (3, "twitch", 9), (3, "discord", 2), (7, "discord", 10),
                                    (12, "twitch", 50)):  # the last one after the end: not this stream's
            uow.session.add(ChatMinute(session_id=s.id, minute=start.replace(second=0) + dt.timedelta(minutes=minute),
                                       platform=platform, count=n))
        for minute, viewers in ((1, 40), (5, 63), (6, 63), (9, 51)):
            uow.session.add(ViewerSample(session_id=s.id, at=start + dt.timedelta(minutes=minute), viewers=viewers,
                                         platform="twitch"))
        uow.commit()
    r = bot.run("/stream report")
    text = r.plain_text()
    assert "Chat: 25 messages (Twitch 13, Discord 12), 2.5 a minute; busiest minute 21:03 with 11" in text
    assert "Peak viewers: 63 at 21:05" in text
    [chart] = r.files
    assert chart.title == "Chart of stream #1" and chart.path.name == "stream-session-1.png"
    png_size(chart.path.read_bytes())
    with mona.db.uow() as uow:
        report = sessions.report(uow, None, now=utcnow(), charts=None)
    assert [n for _m, n in report.chat.minutes] == [4, 0, 0, 11, 0, 0, 0, 10, 0, 0, 0]


def test_without_chat_or_viewer_counts_the_report_says_so(bot: ConsoleBot, mona: Mona) -> None:
    go_live(mona)
    obs_says(mona, "stream.stopped")
    text = bot.run("/stream report").plain_text()
    assert "Chat: no message seen" in text and "Peak viewers: Twitch did not say" in text


# ---------------------------------------------------------------- Twitch and the console


def twitch_settings(settings: Settings) -> Settings:
    from tests.twitch_stub import BOT_ID, BOT_REFRESH, BOT_TOKEN, BROADCASTER_ID, CLIENT_ID, CLIENT_SECRET

    return dataclasses.replace(
        settings, twitch_client_id=CLIENT_ID, twitch_client_secret=CLIENT_SECRET, twitch_bot_id=BOT_ID,
        twitch_bot_token=BOT_TOKEN, twitch_refresh_token=BOT_REFRESH, twitch_channel_id=BROADCASTER_ID)


def test_a_stream_s_twitch_chat_and_viewers_are_in_its_report_and_chart_shown_in_the_console(
        mona: Mona, settings: Settings) -> None:
    from bot.app import bootstrap
    from tests.twitch_stub import BROADCASTER_ID, MOD_ID, SPAMMER_ID, VIEWER_ID, LiveTwitch

    twitch_mona = bootstrap(twitch_settings(settings), migrate=False, db=mona.db)

    def samples() -> list[int]:
        with twitch_mona.db.uow() as uow:
            return list(uow.session.scalars(select(ViewerSample.viewers).order_by(ViewerSample.id)))

    with LiveTwitch(twitch_mona, guard=twitch_mona.guard, viewers_every=0.05) as live:
        live.stand_in.viewer_count = 42
        live.stand_in.live_since = utcnow()
        time.sleep(0.3)
        assert samples() == []  # live on Twitch, but no session: nothing kept
        go_live(twitch_mona)
        wait_until(lambda: 42 in samples())
        live.stand_in.viewer_count = 57
        wait_until(lambda: 57 in samples())
        live.stand_in.viewer_count = 31
        wait_until(lambda: 31 in samples())
        for n, by in enumerate((VIEWER_ID, VIEWER_ID, SPAMMER_ID, MOD_ID, VIEWER_ID, SPAMMER_ID, VIEWER_ID)):
            live.say(f"message {n}", by=by)
        live.settle()
        assert wait_until(lambda: counted(twitch_mona) == 7)
        obs_says(twitch_mona, "stream.stopped")
        time.sleep(0.1)  # a sample asked for before the end, kept meanwhile
        kept = len(samples())
        time.sleep(0.3)
        assert len(samples()) == kept  # the session ended: no more samples
        assert live.stand_in.requests_to("GET", r"^/streams$")[-1].query["user_id"] == BROADCASTER_ID

    desk = ConsoleBot(twitch_mona.dispatcher, user_name="Lina")
    r = desk.run("/stream report")
    text = r.plain_text()
    assert "Chat: 7 messages (Twitch 7), 7.0 a minute; busiest minute " in text
    with twitch_mona.db.uow() as uow:
        peak_at = uow.session.scalar(select(ViewerSample.at).where(ViewerSample.viewers == 57))
    assert peak_at is not None
    assert f"Peak viewers: 57 at {peak_at.astimezone(ZoneInfo(settings.timezone)).strftime('%H:%M')}" in text
    [chart] = r.files
    shown = render(r)
    assert f"Chart of stream #1: {chart.path}" in shown
    assert chart.path.parent == Path(settings.data_dir or "") / "reports"
    width, height = png_size(chart.path.read_bytes())
    assert (width, height) == (640, 450)  # the scenes (two of them) above, chat and viewers over time below


# ---------------------------------------------------------------- Slack


def report_on_slack(slack_mona: Mona, web_api: Any, chat: int = 2) -> tuple[Any, str]:
    """A stream with ``chat`` messages counted, then ``/stream report`` typed in Slack's #crm."""
    from bot.slack import build_app, wsgi_app
    from tests.slack_stub import SlackRequests, WsgiServer

    go_live(slack_mona)
    for _n in range(chat):
        slack_mona.guard.chat.count("discord")
    slack_mona.guard.chat.flush()
    obs_says(slack_mona, "stream.stopped")
    with WsgiServer(wsgi_app(slack_mona, build_app(slack_mona))) as server:
        slack = SlackRequests(server.url, web_api)
        body = slack.command_body("report", command="/stream")
        response_url = web_api.response_url(f"r{slack._responses}")
        r = slack.post(body, "application/x-www-form-urlencoded")
        assert r.status == 200
        wait_until(lambda: web_api.calls_to("files.completeUploadExternal"))
        time.sleep(0.1)  # what the lazy listener does after the upload
        return r.json, response_url


def test_on_slack_the_report_arrives_at_once_and_its_chart_is_uploaded_into_the_channel(
        slack_mona: Mona, web_api: Any) -> None:
    from tests.test_slack import shown

    answer, response_url = report_on_slack(slack_mona, web_api)
    assert answer["response_type"] == "in_channel"
    assert "Stream report #1" in shown(answer) and "2 messages (Discord 2)" in shown(answer)
    [asked] = web_api.calls_to("files.getUploadURLExternal")
    assert asked.body["filename"] == "stream-session-1.png"
    [upload] = web_api.shared_files("C0CRM0001")
    assert upload["title"] == "Chart of stream #1" and upload["content"][:8] == PNG
    assert len(upload["content"]) == int(asked.body["length"])
    [sent] = [c for c in web_api.calls if c.method.startswith("upload/")]
    assert sent.body["content"] == upload["content"]
    assert web_api.posted_to(response_url) == []  # nothing to add


def test_on_slack_a_chart_slack_refuses_leaves_the_report_and_says_it_could_not_be_attached(
        slack_mona: Mona, web_api: Any) -> None:
    web_api.errors["files.completeUploadExternal"] = "not_in_channel"
    answer, response_url = report_on_slack(slack_mona, web_api)
    assert answer["response_type"] == "in_channel" and "Stream report #1" in answer["text"]
    [note] = wait_until(lambda: web_api.posted_to(response_url))
    assert note.body["response_type"] == "ephemeral" and note.body["replace_original"] is False
    assert note.body["text"].endswith("Chart of stream #1 could not be attached (not_in_channel).")
    assert "Traceback" not in str(note.body)


# ---------------------------------------------------------------- Discord


@pytest.fixture
def discord_settings(settings: Settings) -> Settings:
    from tests.discord_gateway_stub import ADMIN_ID, GUILD_ID

    return dataclasses.replace(settings, admins=settings.admins | {f"discord:{ADMIN_ID}"},
                               discord_guild_ids=(int(GUILD_ID),))


def discord_chat_then_report(mona: Mona, settings: Settings, *, fail: bool,
                             defer_after: float = 2.0) -> tuple[Any, Any, Any]:
    from bot.app import bootstrap
    from tests.discord_gateway_stub import CHANNEL_ID, SPAMMER_ID, VIEWER_ID, LiveDiscord, message_create

    discord_mona = bootstrap(settings, migrate=False, db=mona.db)
    go_live(discord_mona)
    with LiveDiscord(discord_mona, guard=discord_mona.guard, defer_after=defer_after) as live:
        for n, by in enumerate((VIEWER_ID, SPAMMER_ID, VIEWER_ID)):
            live.send("MESSAGE_CREATE", message_create(f"hello {n}", by=by, message_id=live.stand_in.next_id(),
                                                       channel_id=CHANNEL_ID))
        assert wait_until(lambda: counted(discord_mona) == 3)
        obs_says(discord_mona, "stream.stopped")
        if fail:
            live.stand_in.fail("POST", "/callback", status=413, code=40005)
        first = live.command("stream report")
        if defer_after == 0:  # "thinking…" first, then the answer edits it
            return first, live.stand_in.wait_for("PATCH", r"/messages/@original$"), live.stand_in
        callbacks = live.stand_in.wait_for("POST", r"^/interactions/.*/callback$", count=2 if fail else 1)
        time.sleep(0.1)
        assert len(live.stand_in.requests_to("POST", r"^/interactions/.*/callback$")) == len(callbacks)
        return first, callbacks, live.stand_in


def test_on_discord_the_report_comes_with_its_chart_attached(mona: Mona, discord_settings: Settings) -> None:
    from tests.discord_gateway_stub import interaction_id
    from tests.test_discord import embed_of, embed_text

    callback, callbacks, discord = discord_chat_then_report(mona, discord_settings, fail=False)
    assert len(callbacks) == 1
    [(field, filename, content)] = callback.files
    assert (field, filename) == ("files[0]", "stream-session-1.png") and content[:8] == PNG
    data = callback.body["data"]
    assert data["attachments"] == [{"id": 0, "filename": "stream-session-1.png", "description": "Chart of stream #1"}]
    [attachment] = discord.messages[discord.responses[interaction_id(callback)]]["attachments"]
    assert attachment["filename"] == "stream-session-1.png" and discord.files[attachment["id"]] == content
    text = embed_text(embed_of(data))
    assert "Chat: 3 messages (Discord 3), 3.0 a minute" in text and "Peak viewers: Twitch did not say" in text


def test_on_discord_a_report_that_took_a_while_gets_its_chart_with_the_edit(
        mona: Mona, discord_settings: Settings) -> None:
    from tests.test_discord import embed_of, embed_text

    thinking, [edit], _d = discord_chat_then_report(mona, discord_settings, fail=False, defer_after=0.0)
    assert thinking.body["type"] == 5 and thinking.files == ()
    [(field, filename, content)] = edit.files
    assert (field, filename) == ("files[0]", "stream-session-1.png") and content[:8] == PNG
    assert edit.body["attachments"] == [{"id": 0, "filename": "stream-session-1.png",
                                         "description": "Chart of stream #1"}]
    assert "Chat: 3 messages (Discord 3)" in embed_text(embed_of(edit.body))


def test_on_discord_a_chart_discord_refuses_leaves_the_report_and_says_it_could_not_be_attached(
        mona: Mona, discord_settings: Settings) -> None:
    from tests.test_discord import embed_of

    refused, callbacks, _d = discord_chat_then_report(mona, discord_settings, fail=True)
    assert refused.files  # the first answer carried the chart; Discord refused it
    [_first, sent] = callbacks
    assert sent.files == () and "attachments" not in sent.body["data"]
    embed = embed_of(sent.body["data"])
    assert embed["title"] == "Stream report #1: Unplanned stream"
    assert embed["footer"]["text"] == "Chart of stream #1 could not be attached (413 Request entity too large)."
