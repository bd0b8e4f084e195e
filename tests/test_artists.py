"""Specs of the artists CRM, driven through the console adapter on real PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.artists import Artist, Interaction, Opportunity, StageStay
from core.outbox import OutboxEvent


def count(mona, model) -> int:
    with mona.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


def artist(mona, name_key: str) -> Artist:
    with mona.db.uow() as uow:
        return uow.session.scalars(select(Artist).where(Artist.name_key == name_key)).one()


def test_adding_an_artist_puts_them_at_the_first_stage_with_their_details(bot, mona):
    r = bot.run("/artist add Éloïse Dupré --genre pop --city Lyon --followers 12,000 --instagram @eloise --email e@x.fr")
    assert not r.error and not r.ephemeral
    assert "Added Éloïse Dupré to MONA at Prospection." in r.text
    a = artist(mona, "eloise dupre")
    assert (a.pipeline, a.stage, a.genre, a.city, a.followers, a.instagram) == ("mona", "Prospection", "pop", "Lyon", 12000, "eloise")
    assert count(mona, StageStay) == 1
    with mona.db.uow() as uow:
        assert [e.type for e in uow.session.scalars(select(OutboxEvent))] == ["artist.created"]


def test_an_artist_can_start_in_spark(bot, mona):
    bot.run("/artist add Nova --pipeline spark")
    assert artist(mona, "nova").stage == "Qualification"


def test_names_match_without_case_or_accents(bot):
    bot.run("/artist add Éloïse Dupré")
    assert bot.run("/artist show ELOISE DUPRE").title == "Éloïse Dupré (#1)"
    assert bot.run("/artist show #1").title == "Éloïse Dupré (#1)"
    assert bot.run("/artist show dupré").title == "Éloïse Dupré (#1)"


def test_an_ambiguous_name_offers_the_candidates_instead_of_guessing(bot):
    bot.run("/artist add Alex Blue")
    bot.run("/artist add Alex Red")
    r = bot.run("/artist move alex next")
    assert "Several artists match alex" in r.text
    assert [b.label for b in r.buttons] == ["Alex Blue (#1, Prospection)", "Alex Red (#2, Prospection)"]
    moved = bot.click(r, "Alex Red")
    assert "moved Alex Red from Prospection (MONA) to Check-up (MONA)" in moved.text


def test_an_unknown_artist_suggests_close_names(bot):
    bot.run("/artist add Stromae")
    r = bot.run("/artist show Stromea")
    assert r.error and "No artist is called Stromea. Did you mean Stromae?" in r.text


def test_a_duplicate_name_is_refused(bot, mona):
    bot.run("/artist add Nova")
    r = bot.run("/artist add nova")
    assert r.error and "Nova already exists (#1)" in r.text
    assert r.title == "Nova (#1)"  # the card of the one that exists, below the message
    assert count(mona, Artist) == 1


def test_moving_records_history_and_an_event(bot, mona):
    bot.run("/artist add Alex Blue")
    r = bot.run("/artist move Alex Blue Check-up --reason first call went well")
    assert "moved Alex Blue from Prospection (MONA) to Check-up (MONA)" in r.text
    with mona.db.uow() as uow:
        stays = uow.session.scalars(select(StageStay).order_by(StageStay.id)).all()
        assert [(s.stage, s.left_at is None) for s in stays] == [("Prospection", False), ("Check-up", True)]
        assert stays[1].reason == "first call went well"
        assert uow.session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.id)).all() == [
            "artist.created", "artist.stage_changed"]


def test_multi_word_stages_need_no_quotes(bot, mona):
    bot.run("/artist add Nova --pipeline spark")
    bot.run("/artist move Nova villa prep")
    assert artist(mona, "nova").stage == "Villa Prep"


def test_leaving_fidelisation_qualifies_a_mona_artist_into_spark(bot, mona):
    bot.run("/artist add Alex")
    bot.run("/artist move Alex Fidélisation")
    r = bot.run("/artist move Alex qualification")
    assert "to Qualification (SPARK)" in r.text
    a = artist(mona, "alex")
    assert (a.pipeline, a.stage) == ("spark", "Qualification")


def test_an_unknown_stage_lists_the_valid_ones(bot, mona):
    bot.run("/artist add Alex")
    r = bot.run("/artist move Alex Chekup")
    assert r.error
    assert "Unknown stage Chekup. Valid stages: Check-up, Prescription, Exécution, Fidélisation." in r.text
    assert "Did you mean Check-up?" in r.text
    r = bot.run("/artist move Alex Showcase")
    assert "Showcase belongs to the other pipeline" in r.text
    assert artist(mona, "alex").stage == "Prospection"


def test_moving_from_the_card_select(bot, mona):
    bot.run("/artist add Alex")
    card = bot.run("/artist show Alex")
    r = bot.click(card, "Move to… Prescription")
    assert r.replace_original and "to Prescription (MONA)" in r.text
    assert artist(mona, "alex").stage == "Prescription"


def test_a_stale_card_does_not_overwrite_a_newer_move(bot, mona):
    bot.run("/artist add Alex")
    card = bot.run("/artist show Alex")
    bob = bot.as_user("bob", "Bob")
    bob.run("/mona whoami")
    bot.run("/mona role @Bob member")
    assert not bob.run("/artist move Alex Exécution").error
    r = bot.click(card, "Move to… Check-up")
    assert r.error and "Alex was changed by Bob meanwhile; nothing was saved." in r.text
    assert artist(mona, "alex").stage == "Exécution"


def test_notes_log_interactions_with_their_type(bot, mona):
    bot.run("/artist add Alex Blue")
    r = bot.run("/artist note Alex Blue --type call j'ai appelé pour l'EP")
    assert "Logged a call with Alex Blue." in r.text
    with mona.db.uow() as uow:
        i = uow.session.scalars(select(Interaction)).one()
        assert (i.kind, i.text) == ("call", "j'ai appelé pour l'EP")
    card = bot.run("/artist show alex blue")
    assert "call · Lina: j'ai appelé pour l'EP" in card.plain_text()


def test_the_log_interaction_form_from_the_card(bot, mona):
    bot.run("/artist add Alex")
    form = bot.click(bot.run("/artist show Alex"), "Log interaction")
    assert form.modal and form.modal.callback_id == "artist.note"
    r = bot.submit(form.modal, {"kind": "meeting", "text": "Studio visit"})
    assert "Logged with Alex." in r.text and "meeting · Lina: Studio visit" in r.plain_text()
    bad = bot.submit(form.modal, {"kind": "meeting", "text": "  "})
    assert bad.field_errors and "text" in bad.field_errors
    assert count(mona, Interaction) == 1


def test_deals_show_on_the_card_with_their_total(bot, mona):
    bot.run("/artist add Alex")
    bot.run("/artist deal Alex 1500 Summer tour")
    bot.run("/artist deal Alex 2500,50 --currency usd Sync deal")
    r = bot.run("/artist show Alex")
    text = r.plain_text()
    assert "Open deals: €1,500.00 + $2,500.50" in text
    assert "#1 Summer tour · €1,500.00" in text
    with mona.db.uow() as uow:
        assert uow.session.get(Opportunity, 2).value == Decimal("2500.50")


def test_deal_status_won_or_lost(bot, mona):
    bot.run("/artist add Alex")
    r = bot.run("/artist deal Alex 1500 Summer tour")
    won = bot.click(r, "Won")
    assert "Deal #1 (Summer tour, €1,500.00) is won." in won.text
    again = bot.run("/artist deal-status 1 lost")
    assert again.error and "already won" in again.text
    assert bot.run("/artist deal-status 9 won").text == "No deal has the id #9."
    assert "won or lost, not maybe" in bot.run("/artist deal-status 1 maybe").text


def test_bad_amounts_and_currencies_are_refused_and_nothing_is_stored(bot, mona):
    bot.run("/artist add Alex")
    assert "must not be negative" in bot.run("/artist deal Alex -5 Refund").text
    assert "is not an amount" in bot.run("/artist deal Alex 12abc Thing").text
    assert "Unknown currency XYZ" in bot.run("/artist deal Alex 100 --currency XYZ Thing").text
    assert "Give an amount" in bot.run("/artist deal Alex Summer tour").text
    assert count(mona, Opportunity) == 0


def test_editing_details(bot, mona):
    bot.run("/artist add Alex")
    r = bot.run("/artist edit Alex --city Saint Denis --followers 500 --name Alex B")
    assert "Updated Alex B: city, followers, name" in r.text or "Updated Alex B:" in r.text
    a = artist(mona, "alex b")
    assert (a.city, a.followers) == ("Saint Denis", 500)
    assert "not an email" in bot.run("/artist edit Alex B --email nope").text
    assert "Say what to change" in bot.run("/artist edit Alex B").text
    assert "Unknown option --colour" in bot.run("/artist edit Alex B --colour red").text


def test_archive_hides_and_undo_restores(bot, mona):
    bot.run("/artist add Alex")
    r = bot.run("/artist archive Alex")
    assert "Archived Alex." in r.text
    assert "No artist matches." in bot.run("/artist list").text
    restored = bot.click(r, "Undo")
    assert "Restored Alex." in restored.text
    assert artist(mona, "alex").archived_at is None


def test_list_is_paginated_with_buttons(bot):
    for i in range(23):
        bot.run(f"/artist add Artist {i:02d} --genre {'rap' if i % 2 else 'pop'}")
    first = bot.run("/artist list")
    assert first.title == "Artists: 23 · page 1/3"
    assert [b.label for b in first.buttons] == ["Next"]
    second = bot.click(first, "Next")
    assert second.title == "Artists: 23 · page 2/3" and second.replace_original
    assert [b.label for b in second.buttons] == ["Previous", "Next"]
    assert "Artist 10" in second.text
    rap = bot.run("/artist list --search rap")
    assert rap.title.startswith("Artists: 11 ")
    assert "only 3 pages" in bot.run("/artist list --page 4").text


def test_list_filters_by_stage_and_owner(bot):
    bot.run("/artist add Alex")
    bot.run("/artist add Nova --pipeline spark")
    bot.run("/artist move Nova Villa Prep")
    assert "Nova" in bot.run("/artist list --stage villa prep").text
    assert "Alex" not in bot.run("/artist list --stage villa prep").text
    assert bot.run("/artist list --owner @Lina").title.startswith("Artists: 2 ")
    assert "No team member is called @ghost" in bot.run("/artist list --owner @ghost").text


@pytest.mark.probe("input: an ambiguous name among many says the real count")
def test_an_ambiguous_name_among_many_says_how_many_match_in_all(bot):
    for n in range(1, 13):
        bot.run(f"/artist add Alex {n:02d}")
    r = bot.run("/artist show Alex")
    assert len(r.buttons) == 5 and r.footer == "and 7 more: type more of the name."
