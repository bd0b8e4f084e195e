"""/pipeline figures on real PostgreSQL, with history placed in the past."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from core.artists import Artist, StageStay
from core.db import utcnow
from core.pipeline_stats import pipeline_figures
from core.pipelines import Pipeline


def age(mona, artist_id: int, stage: str, days: float) -> None:
    """Pretend the artist entered ``stage`` ``days`` ago (and left the previous one then)."""
    at = utcnow() - dt.timedelta(days=days)
    with mona.db.uow() as uow:
        uow.session.execute(update(StageStay).where(StageStay.artist_id == artist_id, StageStay.stage == stage)
                            .values(entered_at=at))
        uow.session.execute(update(Artist).where(Artist.id == artist_id, Artist.stage == stage)
                            .values(stage_entered_at=at))
        uow.commit()


def test_counts_values_conversion_median_and_stuck(bot, mona, settings):
    for name in ("A", "B", "C", "D"):
        bot.run(f"/artist add {name}")
    bot.run("/artist deal A 1000 Tour")
    bot.run("/artist deal B 500 Merch")
    bot.run("/artist move A Check-up")
    bot.run("/artist move B Check-up")
    bot.run("/artist move A Prescription")
    age(mona, 3, "Prospection", 40)  # C has been waiting 40 days
    age(mona, 4, "Prospection", 10)
    with mona.db.uow() as uow:
        [fig] = pipeline_figures(uow, [Pipeline.MONA], stuck_days=30)
    by = {s.stage: s for s in fig.stages}
    assert (by["Prospection"].count, by["Check-up"].count, by["Prescription"].count) == (2, 1, 1)
    assert by["Check-up"].value == {"EUR": 500} and by["Prescription"].value == {"EUR": 1000}
    assert by["Prospection"].entered == 4 and by["Check-up"].entered == 2 and by["Prescription"].entered == 1
    assert by["Prospection"].conversion == 0.5 and by["Check-up"].conversion == 0.5
    assert by["Exécution"].conversion is None
    # Prospection stays: A ~0, B ~0, C 40, D 10 days → median (0+10)/2 = 5 days.
    assert abs(by["Prospection"].median_days - 5) < 0.01
    assert [(s.name, s.days) for s in fig.stuck] == [("C", 40)] and fig.stuck_total == 1

    text = bot.run("/pipeline mona").plain_text()
    assert "MONA: 4 artists" in text
    assert "Prospection: 2 · €0.00 · 50% to next · median 5 days" in text
    assert "Stuck for more than 30 days (1)" in text and "C (#3) · Prospection · 40 days" in text


def test_the_median_of_a_histogram():
    from core.pipeline_stats import weighted_median

    assert weighted_median({}) is None
    assert weighted_median({3: 1}) == 3
    assert weighted_median({0: 2, 10: 1, 40: 1}) == 5
    assert weighted_median({1: 1, 2: 1, 9: 1}) == 2
    assert weighted_median({1: 5, 100: 4}) == 1


def test_archived_artists_leave_the_counts(bot, mona):
    bot.run("/artist add A")
    bot.run("/artist add B")
    bot.run("/artist archive B")
    assert "MONA: 1 artist" in bot.run("/pipeline mona").plain_text()


def test_pipeline_buttons_switch_between_pipelines(bot):
    bot.run("/artist add Nova --pipeline spark")
    r = bot.run("/pipeline mona")
    spark = bot.click(r, "SPARK")
    assert "SPARK: 1 artist" in spark.plain_text() and spark.replace_original
