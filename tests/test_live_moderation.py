"""Moderation that follows the stream: a Twitch channel's cases in a Discord mod-log, and emergency mode
(Twitch followers-only and slow chat through Helix's chat settings, Discord slow mode), restored by itself.

The real twitchio and discord.py clients run against their local stand-ins (``LiveTwitch``,
``LiveDiscord``) at once, on PostgreSQL; what mona did is read from the requests they recorded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Mona
from bot.console import ConsoleBot
from core.config import Settings
from core.db import utcnow
from core.effects import PlatformEffect
from core.moderation.store import Community
from jobs.ticker import emergencies_once
from tests.discord_gateway_stub import (
    ADMIN_ID,
    CHANNEL_ID,
    GUILD_ID,
    MODERATOR_ID,
    MODLOG_ID,
    LiveDiscord,
    components_of,
)
from tests.test_discord import embed_of
from tests.test_twitch import settings as twitch_settings  # noqa: F401 (the fixture, under another name)
from tests.twitch_stub import BROADCASTER_ID, MOD_ID, SPAMMER_ID, LiveTwitch


@pytest.fixture
def settings(twitch_settings: Settings) -> Settings:  # noqa: F811
    """Twitch as in test_twitch, and a Discord admin and server as in test_discord."""
    return dataclasses.replace(twitch_settings, admins=twitch_settings.admins | {f"discord:{ADMIN_ID}"},
                               discord_guild_ids=(int(GUILD_ID),))


@pytest.fixture
def both(mona: Mona) -> Iterator[tuple[LiveTwitch, LiveDiscord]]:
    with LiveDiscord(mona) as discord, LiveTwitch(mona, guard=mona.guard) as twitch:
        yield twitch, discord


def _link(discord: LiveDiscord) -> None:
    """On Discord: the Twitch channel's cases go to #mod-log."""
    linked = discord.command("mod modlog", {"channel": ("channel", MODLOG_ID), "twitch": BROADCASTER_ID})
    assert "Twitch channel 100000010: default cases now go to" in str(linked.body)


def _modlog_posts(discord: LiveDiscord, count: int = 1) -> list[dict[str, Any]]:
    return [r.body for r in discord.stand_in.wait_for("POST", rf"^/channels/{MODLOG_ID}/messages$", count=count)]


# ---------------------------------------------------------------- Twitch cases in the Discord mod-log


def test_a_twitch_case_the_guard_makes_is_posted_in_the_linked_discord_mod_log(
        both: tuple[LiveTwitch, LiveDiscord], bot: ConsoleBot) -> None:
    twitch, discord = both
    _link(discord)
    assert not bot.run(f"/mod words add crypto --in twitch:{BROADCASTER_ID}").error
    twitch.say("buy crypto here", by=SPAMMER_ID)
    twitch.stand_in.wait_for("DELETE", r"^/moderation/chat$")
    twitch.settle()
    [post] = _modlog_posts(discord)
    embed = embed_of(post)
    assert embed["title"].startswith("Twitch · Case 1: ")
    assert embed["description"] == "banned word: crypto\nMessage: crypto\nRule: a banned word"


def test_a_ban_typed_in_the_console_for_twitch_is_posted_in_discord_and_undone_from_there(
        both: tuple[LiveTwitch, LiveDiscord], bot: ConsoleBot) -> None:
    twitch, discord = both
    _link(discord)
    banned = bot.run(f"/mod ban @spammy raid --in twitch:{BROADCASTER_ID}")
    assert banned.text == "Case 1: ban @spammy." and banned.footer == "Done on Twitch."
    [post] = _modlog_posts(discord)
    assert embed_of(post)["title"] == "Twitch · Case 1: ban spammy"
    assert [c["custom_id"] for c in components_of(post)] == ["mod.undo|1"]
    [posted] = [m for m in discord.stand_in.messages.values() if m.get("channel_id") == MODLOG_ID]
    undone = discord.click(posted, "mod.undo|1", by=MODERATOR_ID)
    assert "Case 1 undone by" in str(undone.body)
    unban = twitch.stand_in.wait_for("DELETE", r"^/moderation/bans$")[0]
    assert unban.query["user_id"] == SPAMMER_ID


def test_what_twitch_refused_is_said_in_the_discord_mod_log_post(both: tuple[LiveTwitch, LiveDiscord],
                                                                 bot: ConsoleBot) -> None:
    twitch, discord = both
    _link(discord)
    twitch.stand_in.fail("POST", "/moderation/bans", 400, "The user specified in the user_id field is already banned.")
    refused = bot.run(f"/mod ban @spammy raid --in twitch:{BROADCASTER_ID}")
    assert refused.footer == "Twitch refused: 400 The user specified in the user_id field is already banned."
    [post] = _modlog_posts(discord)
    assert embed_of(post)["description"] == (  # Discord's markdown escaped
        "raid\nBy a moderator\nTwitch did not carry out ban for spammy: 400 The user specified in the user\\_id field "
        "is already banned.")


def test_linking_twitch_is_done_from_the_discord_server_with_a_channel_and_a_numeric_id(
        both: tuple[LiveTwitch, LiveDiscord], bot: ConsoleBot) -> None:
    _twitch, discord = both
    wrong = discord.command("mod modlog", {"channel": ("channel", MODLOG_ID), "twitch": "monamusic"})
    assert embed_of(wrong.body["data"])["description"].endswith(
        "takes the Twitch channel's numeric id (TWITCH\\_CHANNEL\\_ID), not monamusic.")
    assert bot.run("/mod modlog #mod-log --twitch monamusic").text == (
        "--twitch takes the Twitch channel's numeric id (TWITCH_CHANNEL_ID), not monamusic.")
    elsewhere = bot.run(f"/mod modlog #mod-log --twitch {BROADCASTER_ID} --in twitch:{BROADCASTER_ID}")
    assert elsewhere.error and "from the Discord server they go to" in elsewhere.text


# ---------------------------------------------------------------- emergency mode


def _effects(mona: Mona, kind: str = "chat_mode") -> list[PlatformEffect]:
    with mona.db.uow() as uow:
        rows = list(uow.session.scalars(select(PlatformEffect).where(PlatformEffect.kind == kind)
                                        .order_by(PlatformEffect.id)))
        for r in rows:
            uow.session.expunge(r)
    return rows


def test_emergency_from_twitch_chat_slows_both_chats_and_its_end_puts_the_earlier_settings_back(
        both: tuple[LiveTwitch, LiveDiscord], mona: Mona) -> None:
    twitch, discord = both
    _link(discord)
    twitch.stand_in.chat_settings.update(slow_mode=True, slow_mode_wait_time=5)  # what the channel had
    discord.stand_in.slow_mode[CHANNEL_ID] = 2
    # The stream channels are set once, from Discord; this emergency is ended at once.
    on = discord.command("mod emergency", {"state": "on", "channels": f"<#{CHANNEL_ID}>"})
    assert "Emergency mode is on until" in str(on.body)
    assert "Twitch chat is followers-only and slow (30 s); slow mode (30 s) in" in str(on.body)
    off = discord.command("mod emergency", {"state": "off"})
    assert "Emergency mode is off: the chat settings are set back as they were." in str(off.body)
    discord.stand_in.wait_for("PATCH", rf"^/channels/{CHANNEL_ID}$", count=2)
    assert discord.stand_in.slow_mode[CHANNEL_ID] == 2

    answer = twitch.answer_to(twitch.say("!emergency on --for 10m", by=MOD_ID))["message"]
    assert answer.startswith("Emergency mode is on until")
    assert twitch.stand_in.chat_settings.items() >= {"follower_mode": True, "follower_mode_duration": 10,
                                                     "slow_mode": True, "slow_mode_wait_time": 30}.items()
    discord.stand_in.wait_for("PATCH", rf"^/channels/{CHANNEL_ID}$", count=3)
    assert discord.stand_in.slow_mode[CHANNEL_ID] == 30

    again = twitch.answer_to(twitch.say("!emergency", by=MOD_ID))["message"]
    assert again.startswith("Emergency mode is already on until")

    assert emergencies_once(mona.runtime, now=utcnow() + dt.timedelta(minutes=5)) == 0  # not yet
    assert emergencies_once(mona.runtime, now=utcnow() + dt.timedelta(minutes=11)) == 1
    mona.run_pending_jobs()
    discord.stand_in.wait_for("PATCH", rf"^/channels/{CHANNEL_ID}$", count=4)
    assert discord.stand_in.slow_mode[CHANNEL_ID] == 2
    assert {k: twitch.stand_in.chat_settings[k] for k in ("follower_mode", "slow_mode", "slow_mode_wait_time")} == {
        "follower_mode": False, "slow_mode": True, "slow_mode_wait_time": 5}
    assert emergencies_once(mona.runtime, now=utcnow() + dt.timedelta(minutes=12)) == 0  # ended once


def test_emergency_needs_something_to_slow_down_and_says_when_it_is_not_on(mona: Mona, bot: ConsoleBot) -> None:
    r = bot.run("/mod emergency on --in discord:123456789012345678")
    assert r.error and r.text.startswith("Nothing to slow down here: give the Discord channels of the stream")
    off = bot.run(f"/mod emergency off --in twitch:{BROADCASTER_ID}")
    assert off.error and off.text == "Emergency mode is not on."
    short = bot.run(f"/mod emergency on --for 10s --in twitch:{BROADCASTER_ID}")
    assert short.error and short.text == "Emergency mode lasts from a minute to 24 hours."
    with mona.db.uow() as uow:  # nothing half-written
        assert [c.label for c in uow.session.scalars(select(Community))] == []
        assert uow.session.scalars(select(PlatformEffect)).first() is None
