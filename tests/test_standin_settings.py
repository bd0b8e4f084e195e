"""The stand-ins' chat settings, driven by the real SDKs: Twitch's ``GET`` / ``PATCH
/chat/settings`` through twitchio, a Discord channel's slow mode (``GET`` / ``PATCH
/channels/{id}``) through discord.py. Other specs rely on them behaving as the platforms do."""

from __future__ import annotations

import dataclasses

import discord
import pytest

from bot.app import Mona
from core.config import Settings
from tests.discord_gateway_stub import CHANNEL_ID, LiveDiscord
from tests.twitch_stub import (
    BOT_ID,
    BOT_REFRESH,
    BOT_TOKEN,
    BROADCASTER_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    MOD_ID,
    LiveTwitch,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, twitch_client_id=CLIENT_ID, twitch_client_secret=CLIENT_SECRET, twitch_bot_id=BOT_ID,
        twitch_bot_token=BOT_TOKEN, twitch_refresh_token=BOT_REFRESH, twitch_channel_id=BROADCASTER_ID)


def test_twitch_chat_settings_are_read_and_changed_by_the_token_s_moderator(mona: Mona) -> None:
    with LiveTwitch(mona) as live:
        assert live.client is not None
        channel = live.client.create_partialuser(BROADCASTER_ID)

        before = live.run(channel.fetch_chat_settings(moderator=BOT_ID, token_for=BOT_ID))
        assert (before.slow_mode, before.slow_mode_wait_time, before.follower_mode) == (False, None, False)
        assert before.non_moderator_chat_delay is False

        after = live.run(channel.update_chat_settings(BOT_ID, slow_mode=True, slow_mode_wait_time=20,
                                                      follower_mode=True, token_for=BOT_ID))
        assert (after.slow_mode, after.slow_mode_wait_time, after.follower_mode, after.follower_mode_duration) == (
            True, 20, True, 0)
        assert live.stand_in.chat_settings["slow_mode_wait_time"] == 20
        patch = live.stand_in.requests_to("PATCH", r"^/chat/settings$")[-1]
        assert patch.query == {"broadcaster_id": BROADCASTER_ID, "moderator_id": BOT_ID}
        assert patch.body == {"slow_mode": True, "slow_mode_wait_time": 20, "follower_mode": True}

        off = live.run(channel.update_chat_settings(BOT_ID, slow_mode=False, token_for=BOT_ID))
        assert (off.slow_mode, off.slow_mode_wait_time) == (False, None)

        # Someone else's id as the moderator: Helix refuses, nothing changes.
        with pytest.raises(Exception, match="moderator_id"):
            live.run(channel.update_chat_settings(MOD_ID, emote_mode=True, token_for=BOT_ID))
        assert live.stand_in.chat_settings["emote_mode"] is False


def test_a_discord_channel_s_slow_mode_is_read_and_changed(mona: Mona) -> None:
    with LiveDiscord(mona) as live:
        assert live.client is not None
        client = live.client

        async def change() -> tuple[int, int]:
            channel = await client.fetch_channel(int(CHANNEL_ID))
            assert isinstance(channel, discord.TextChannel)
            before = channel.slowmode_delay
            edited = await channel.edit(slowmode_delay=30)
            assert edited is not None
            return before, edited.slowmode_delay

        assert live.run(change()) == (0, 30)
        assert live.stand_in.slow_mode[CHANNEL_ID] == 30
        patch = live.stand_in.requests_to("PATCH", rf"^/channels/{CHANNEL_ID}$")[-1]
        assert patch.body == {"rate_limit_per_user": 30}
        assert live.stand_in.requests_to("GET", rf"^/channels/{CHANNEL_ID}$")
