"""Artist metrics: set from chat, each value kept with its day and source (history, never
overwritten), impossible values refused with the reason and nothing half-written."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from core.config import Settings
from core.metrics import METRICS, MetricValue
from tests.discord_gateway_stub import ADMIN_ID, GUILD_ID, LiveDiscord


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A Discord admin, and the server the commands are registered in."""
    return dataclasses.replace(settings, admins=settings.admins | {f"discord:{ADMIN_ID}"}, discord_guild_ids=(int(GUILD_ID),))


def stored(mona) -> list[tuple[str, Decimal, str]]:
    with mona.db.uow() as uow:
        return [(r.metric, r.value, r.source) for r in uow.session.scalars(select(MetricValue).order_by(MetricValue.id))]


def test_metrics_set_from_chat_are_kept_with_their_day_and_source_and_shown(bot, mona):
    bot.run("/artist add Alex Blue")
    r = bot.run("/artist metrics Alex Blue --instagram-followers 12,000 --engagement-rate 3,5 --tiktok-growth-28d +18")
    assert not r.error and r.text == "Recorded 3 metrics for Alex Blue."
    text = r.plain_text()
    today = dt.date.today().isoformat()
    assert f"Followers on Instagram: 12,000 · {today} · console" in text
    assert f"Engagement rate, in % (interactions per follower per post): 3.5 % · {today} · console" in text
    assert "Growth of TikTok followers over 28 days, in %: +18 %" in text
    assert sorted(stored(mona)) == [("engagement_rate", Decimal("3.5"), "console"),
                                    ("instagram_followers", Decimal(12000), "console"),
                                    ("tiktok_growth_28d", Decimal(18), "console")]


def test_a_new_value_keeps_the_old_one_in_the_history_and_the_latest_is_shown(bot, mona):
    bot.run("/artist add Alex")
    bot.run("/artist metrics Alex --instagram-followers 10000 --on 2026-10-01 --source Instagram Insights")
    bot.run("/artist metrics Alex --instagram-followers 12000")
    bot.run("/artist metrics Alex --instagram-followers 9000 --on 2026-09-01")  # an older reading, entered late
    shown = bot.run("/artist metrics Alex").plain_text()
    assert "Followers on Instagram: 12,000" in shown and "2 values kept" not in shown and "3 values kept in all" in shown
    assert [v for m, v, _s in stored(mona)] == [Decimal(10000), Decimal(12000), Decimal(9000)]


@pytest.mark.parametrize(("flags", "message"), [
    ("--engagement-rate 140", "--engagement-rate is a percentage: at most 100, not 140."),
    ("--engagement-rate 0.035", "looks like a fraction (0.035); write the percentage, e.g. 3.5 for 3.5 %."),
    ("--tiktok-growth-28d 10000", "--tiktok-growth-28d is a growth over 28 days in %, from -100 to +1000, not 10000."),
    ("--instagram-followers -5", "--instagram-followers cannot be negative."),
    ("--instagram-followers 12.5", "--instagram-followers is a count: a whole number, not 12.5."),
    ("--streams lots", "--streams must be a number, not lots."),
    ("--instagram-folowers 3", "Did you mean --instagram-followers?"),
    ("--instagram-followers 3 --on 2099-01-01", "2099-01-01 is in the future"),
    ("--instagram-followers 12000 --engagement-rate 140", "at most 100"),  # one bad value: none kept
])
def test_an_impossible_metric_is_refused_with_why_and_nothing_is_kept(bot, mona, flags, message):
    bot.run("/artist add Alex")
    r = bot.run(f"/artist metrics Alex {flags}")
    assert r.error and message in r.text
    assert stored(mona) == []


def test_with_no_metric_yet_it_says_how_to_set_one(bot):
    bot.run("/artist add Alex")
    assert bot.run("/artist metrics Alex").text.startswith("No metrics yet: set some with /artist metrics Alex")


def test_every_metric_is_an_option_of_the_command(bot):
    usage = bot.run("/mona help artist metrics").title or ""
    assert all(f"--{name.replace('_', '-')} N" in usage for name in METRICS)


def test_metrics_set_on_discord_come_from_its_options(mona: Any, bot: Any):
    bot.run("/artist add Alex")
    with LiveDiscord(mona) as live:
        callback = live.command("artist metrics", {"artist": "Alex", "monthly_listeners": "85000", "engagement_rate": "4.2"})
    assert "Recorded 2 metrics for Alex." in str(callback.body)
    with mona.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(MetricValue)) == 2
    assert sorted(stored(mona)) == [("engagement_rate", Decimal("4.2"), "discord"),
                                    ("monthly_listeners", Decimal(85000), "discord")]


# ---------------------------------------------------------------- importing a CSV file (mona import FILE)

CSV = ("artist,date,instagram_followers,engagement_rate,source\n"
       "Alex,2026-11-30,12000,3.5,Insights export\n"
       "Nobody,,100,,\n"
       "Alex,2026-11-30,13000,,\n"
       "Alex,,12500,140,\n"
       "Zoé,,5000,\"4,2\",\n"
       "Alex,yesterday,1,,\n"
       "Alex,2026-11-01,many,,\n")


def imported(mona, tmp_path, capsys, content: bytes, name: str = "metrics.csv") -> tuple[int, str]:
    from bot.cli import import_file

    path = tmp_path / name
    path.write_bytes(content)
    code = import_file(mona, str(path))
    return code, capsys.readouterr().out


def test_a_csv_file_is_imported_line_by_line_with_a_report_of_what_was_refused_and_why(bot, mona, tmp_path, capsys):
    bot.run("/artist add Alex")
    bot.run("/artist add Zoé")
    code, out = imported(mona, tmp_path, capsys, CSV.encode())
    assert code == 0 and "4 values imported from 2 lines; 5 lines refused." in out
    assert "Line 3 (Nobody): No artist is called Nobody." in out
    assert "Line 4 (Alex): Alex appears twice for 2026-11-30." in out
    assert "Line 5 (Alex): --engagement-rate is a percentage: at most 100, not 140." in out  # the whole line refused
    assert "Line 7 (Alex): yesterday is not a date" in out and "Line 8 (Alex): instagram_followers is not a number: many." in out
    assert sorted(stored(mona)) == [("engagement_rate", Decimal("3.5"), "Insights export"),
                                    ("engagement_rate", Decimal("4.2"), "csv:metrics.csv"),
                                    ("instagram_followers", Decimal(5000), "csv:metrics.csv"),
                                    ("instagram_followers", Decimal(12000), "Insights export")]


def test_a_latin_1_file_is_read_and_says_so(bot, mona, tmp_path, capsys):
    bot.run("/artist add Zoé")
    code, out = imported(mona, tmp_path, capsys, "artist;instagram_followers\nZoé;5000\n".encode("latin-1"))
    assert code == 0 and "1 values imported from 1 lines" in out and "read as Latin-1" in out
    assert stored(mona) == [("instagram_followers", Decimal(5000), "csv:metrics.csv")]


@pytest.mark.parametrize(("content", "message"), [
    ("name,instagram_followers\nAlex,3\n", "has no artist column"),
    ("artist,instagram_folowers\nAlex,3\n", "unknown column instagram_folowers. Did you mean instagram_followers?"),
    ("", "is empty"),
])
def test_a_file_whose_columns_cannot_be_read_imports_nothing(bot, mona, tmp_path, capsys, content, message):
    bot.run("/artist add Alex")
    code, out = imported(mona, tmp_path, capsys, content.encode())
    assert code == 1 and message in out
    assert stored(mona) == []


def test_a_csv_file_attached_on_discord_is_imported_with_its_report(mona: Any, bot: Any):
    bot.run("/artist add Alex")
    with LiveDiscord(mona) as live:
        callback = live.command("artist import", files={"file": ("metrics.csv", b"artist,instagram_followers\nAlex,12000\nNobody,3\n")})
    body = str(callback.body)
    assert "1 values imported from 1 lines; 1 lines refused." in body and "No artist is called Nobody." in body
    assert stored(mona) == [("instagram_followers", Decimal(12000), "csv:metrics.csv")]


def test_typing_artist_import_in_chat_says_to_attach_the_file(bot):
    r = bot.run("/artist import metrics.csv")
    assert r.error and "FILE is a file to attach: attach it to the command on Discord, or run mona import FILE" in r.text
