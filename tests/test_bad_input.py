"""Bad input gets a specific message to the person who typed it, and changes nothing."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from core.artists import Artist
from core.outbox import OutboxEvent
from handlers.parser import tokenize


def rows(mona) -> tuple[int, int]:
    with mona.db.uow() as uow:
        return (uow.session.scalar(select(func.count()).select_from(Artist)),
                uow.session.scalar(select(func.count()).select_from(OutboxEvent)))


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("/artsit add Alex", "Unknown command /artsit. Did you mean /artist?"),
        ("/artist ad Alex", "Unknown subcommand /artist ad."),
        ("/artist", "/artist needs a subcommand"),
        ("/artist add", "Something is missing. Usage: /artist add NAME"),
        ("/artist deal-status 1 won extra", "Too many arguments (extra)"),
        ("/artist add Alex --followers lots", "--followers must be a whole number, not lots."),
        ("/artist add Alex --followers -3", "--followers must not be negative."),
        ("/artist add Alex --pipeline jazz", "--pipeline must be one of mona, spark, not jazz."),
        ("/artist add Alex --genre", "--genre needs a value"),
        ("/artist add Alex --genre pop --genre rap", "--genre is given twice."),
        ('/artist add "Alex', 'There is an unclosed quote (")'),
        ("/artist add Alex --instagram bad/handle", "is not a valid instagram handle"),
        ("/artist add Al\x07ex", "contains a control character (U+0007)"),
        ("/artist add " + "x" * 4001, "characters long; the limit is 4000."),
        ("/artist add Alex --ownr @Lina", "Unknown option --ownr. Options here:"),
        ("/artist show Nobody", "No artist is called Nobody."),
        ("/pipeline jazz", "Unknown pipeline jazz. Pipelines: mona, spark."),
        ("/mona role @Lina viewer", "You cannot change your own role"),
    ],
)
def test_bad_input_gets_a_specific_message_and_changes_nothing(bot, mona, command, message):
    before = rows(mona)
    r = bot.run(command)
    assert r.error and r.ephemeral
    assert message in r.text
    assert rows(mona) == before


@pytest.mark.probe("input: invisible names, impossible times, numbers past the columns")
@pytest.mark.parametrize(("command", "message"), [
        # Names that show nothing are refused, whatever invisible character they are made of.
        *[(f"/artist add {c}{c}", "shows nothing: it needs at least one visible character")
          for c in ("\u2060", "\ufeff", "\u3164", "\u2800", "\u00ad", "\u034f", "\u180e")],
        ("/remind me tomorrow 25:99 call Alex", "25:99 is not a time of day"),
        # Numbers past what the columns hold, and digits int() cannot read, are told, not crashed on.
        ("/artist add Alex --followers 99999999999999999999", "--followers must be a whole number"),
        ("/artist add Alex --followers 9999999999999999999", "--followers is too large"),
        ("/mona notify remove 99999999999", "Nothing has the number #99999999999."),
        ("/mona jobs retry 99999999999", "Nothing has the number #99999999999."),
        ("/remind cancel 99999999999", "Nothing has the number #99999999999."),
        ("/mod case 99999999999 --in discord:1", "Nothing has the number #99999999999."),
        ("/remind cancel \u00b2", "ID must be a number like 12 or #12, not \u00b2."),
        ("/artist deal-status \u00b2 won", "DEAL_ID must be a number like 12 or #12"),
])
def test_input_found_by_probing_gets_a_specific_message_and_changes_nothing(bot, mona, command, message):
    test_bad_input_gets_a_specific_message_and_changes_nothing(bot, mona, command, message)


@pytest.mark.probe("input: invisible names, impossible times, numbers past the columns")
def test_a_follower_count_past_two_billion_is_kept(bot, mona):
    bot.run("/artist add Big Star --followers 3000000000")
    with mona.db.uow() as uow:
        assert uow.session.scalars(select(Artist.followers)).one() == 3_000_000_000
    assert "Followers: 3,000,000,000" in bot.run("/artist show Big Star").plain_text()


def test_over_long_note_is_refused(bot, mona):
    bot.run("/artist add Alex")
    r = bot.run("/artist note Alex " + "blah " * 900)
    assert r.error and "the limit is 4000" in r.text


def test_a_crash_answers_with_a_reference_and_logs_the_traceback(bot, mona, monkeypatch, caplog):
    import core.pipeline_stats

    def boom(*a, **k):
        raise RuntimeError("db exploded: password=hunter2")

    monkeypatch.setattr("handlers.pipeline.pipeline_figures", boom)
    with caplog.at_level(logging.ERROR, logger="mona.app"):
        r = bot.run("/pipeline")
    assert r.error and r.text.startswith("Something went wrong on our side (ref ")
    assert "hunter2" not in r.text
    assert "Traceback" not in r.text
    assert any(rec.exc_info for rec in caplog.records)
    assert core.pipeline_stats  # the real module is untouched


def test_the_log_line_of_a_command_names_no_argument(bot, mona, caplog):
    with caplog.at_level(logging.INFO, logger="mona.app"):
        bot.run("/artist add Secret Person --email secret@example.com")
    line = caplog.records[-1].getMessage()
    assert "artist add" in line and "secret" not in line.lower()


def test_chat_clients_smart_punctuation_is_understood():
    assert tokenize("add “Alex Blue” —genre pop") == ["add", "Alex Blue", "--genre", "pop"]
    assert tokenize("note Alex j'ai appelé") == ["note", "Alex", "j'ai", "appelé"]
