"""Kanban boards (issue 12): cards added, shown and moved from chat on PostgreSQL, WIP limits, two people
moving the same card at once, due reminders, the digest and the artist card."""

from __future__ import annotations

import datetime as dt
import io
import threading
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import Mona
from bot.console import ConsoleBot
from core import kanban
from core.outbox import OutboxEvent
from jobs.ticker import tasks_once


def moved_events(mona: Mona) -> list[dict[str, object]]:
    with mona.db.uow() as uow:
        return [e.payload for e in uow.session.scalars(select(OutboxEvent).where(OutboxEvent.type == "task.moved")
                                                        .order_by(OutboxEvent.id))]


def test_a_task_goes_from_to_do_to_done_through_the_board_menus_and_each_move_is_an_event(bot: ConsoleBot,
                                                                                           mona: Mona) -> None:
    added = bot.run("/task add Book the studio --due 2030-01-10 --labels urgent,studio")
    assert added.text == "Added task #1 Book the studio to Team."
    board = bot.run("/task board")
    text = board.plain_text()
    assert "To do (1)" in text and "#1 Book the studio · due 2030-01-10 · [urgent] [studio]" in text
    assert "Doing (0)" in text and "Done (0)" in text
    doing = bot.click(board, "Doing")
    assert doing.text == "Task #1 Book the studio: To do → Doing."
    assert bot.run("/task done 1").text == "Task #1 Book the studio: Doing → Done."
    assert [(e["from_column"], e["column"], e["done"]) for e in moved_events(mona)] == [
        ("To do", "Doing", False), ("Doing", "Done", True)]
    stale = bot.click(board, "Doing")  # the menu of the board shown before the moves
    assert stale.error and "moved task #1 to Done meanwhile; nothing was changed." in stale.text


def test_a_move_past_a_wip_limit_asks_to_confirm(bot: ConsoleBot, mona: Mona) -> None:
    for title in ("Mix", "Master", "Artwork"):
        assert not bot.run(f"/task add {title}").error
    assert bot.run("/task wip Doing 1").text == "Doing of Team: WIP limit 1."
    assert not bot.run("/task move 1 Doing").error
    asked = bot.run("/task move 2 doing")
    assert asked.text == "Doing holds 1 cards, its WIP limit is 1: move it anyway?"
    assert [b.value for b in asked.buttons] == ['/task move 2 "Doing" --confirm']
    assert bot.click(asked, "anyway").text == "Task #2 Master: To do → Doing."
    assert len(moved_events(mona)) == 2


@pytest.mark.parametrize(("line", "message"), [
    ("/task board Villa", "There is no board Villa."),
    ("/task move 1 Doign", "Team has no column Doign; it has To do, Doing, Done. Did you mean Doing?"),
    ("/task wip Doing 0", "A WIP limit is a positive number of cards, or off."),
    ("/task wip Doing lots", "A WIP limit is a positive number of cards, or off."),
    ("/task add Gig --due 2030-02-30", "is not a date"),
    ("/task show 99", "There is no task #99."),
])
def test_bad_input_is_refused_with_the_reason(bot: ConsoleBot, mona: Mona, line: str, message: str) -> None:
    assert not bot.run("/task add Mix").error
    r = bot.run(line)
    assert r.error and message in r.text, r.text


def test_two_people_moving_the_same_card_at_once_one_wins_and_the_other_is_told(bot: ConsoleBot, mona: Mona) -> None:
    assert not bot.run("/task add Press kit").error
    sam = bot.as_user("USAM", "Sam")
    sam.run("/artist list")  # Sam has talked to mona: a member to give a role to
    assert not bot.run("/mona role @Sam member").error
    board = bot.run("/task board")
    theirs = sam.run("/task board")
    barrier = threading.Barrier(2)
    answers: dict[str, object] = {}

    def go(name: str, who: ConsoleBot, shown: object, column: str) -> None:
        barrier.wait()
        answers[name] = who.click(shown, column)  # type: ignore[arg-type]

    threads = [threading.Thread(target=go, args=("lina", bot, board, "Doing")),
               threading.Thread(target=go, args=("sam", sam, theirs, "Done"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    replies = list(answers.values())
    wins = [r for r in replies if not r.error]  # type: ignore[attr-defined]
    losses = [r for r in replies if r.error]  # type: ignore[attr-defined]
    assert len(wins) == 1 and len(losses) == 1
    assert "meanwhile; nothing was changed." in losses[0].text  # type: ignore[attr-defined]
    assert len(moved_events(mona)) == 1


def test_due_and_overdue_tasks_reach_the_assignee_once_a_day_the_digest_and_the_artist_card(
        bot: ConsoleBot, mona: Mona, out: io.StringIO) -> None:
    sam = bot.as_user("USAM", "Sam")
    sam.run("/artist list")
    assert not bot.run("/artist add Alex Blue").error
    today = dt.datetime.now(ZoneInfo("Europe/Paris")).date()  # the team's day
    assert not bot.run(f"/task add Send the contract --due {today.isoformat()} --assign @Sam --artist Alex Blue").error
    assert not bot.run(f"/task add Call the venue --due {(today - dt.timedelta(days=2)).isoformat()} --assign @Sam").error
    noon = dt.datetime.combine(today, dt.time(11, 0), tzinfo=ZoneInfo("Europe/Paris"))
    assert tasks_once(mona.runtime, now=noon) == 2
    assert tasks_once(mona.runtime, now=noon + dt.timedelta(hours=1)) == 0
    mona.run_pending_jobs()
    told = out.getvalue()
    assert "Task #1 Send the contract is due today." in told
    assert f"Task #2 Call the venue was due {(today - dt.timedelta(days=2)).isoformat()}." in told
    digest = bot.run("/mona digest").plain_text()
    assert "Tasks due today: 1 (#1 Send the contract)" in digest and "Overdue tasks: 1 (#2 Call the venue)" in digest
    assert "Open tasks\n#1 Send the contract" in bot.run("/artist show Alex Blue").plain_text()
    assert bot.run("/task mine").text == "No open task is assigned to you."
    assert "#1 Send the contract" in sam.run("/task mine").text


def test_a_board_of_its_own_with_its_columns(bot: ConsoleBot, mona: Mona) -> None:
    made = bot.run("/task new-board Villa --columns Idea,Booked,Played")
    assert made.text == "Board Villa made: Idea, Booked, Played."
    assert not bot.run("/task add Rooftop set --board villa").error
    text = bot.run("/task board Villa").plain_text()
    assert "Idea (1)" in text and "Played (0)" in text
    with mona.db.uow() as uow:
        assert [b.name for b in uow.session.scalars(select(kanban.Board))] == ["Villa"]


def test_on_discord_the_board_has_a_move_menu_per_card_and_picking_a_column_moves_it(mona: Mona, settings) -> None:
    import dataclasses

    from bot.app import bootstrap
    from tests.discord_gateway_stub import ADMIN_ID, GUILD_ID, LiveDiscord, components_of
    from tests.test_discord import embed_of

    discord_mona = bootstrap(dataclasses.replace(settings, admins=settings.admins | {f"discord:{ADMIN_ID}"},
                                                 discord_guild_ids=(int(GUILD_ID),)), migrate=False, db=mona.db)
    with LiveDiscord(discord_mona) as live:
        added = live.command("task add", {"title": "Book the villa"})
        assert embed_of(added.body["data"])["description"] == "Added task #1 Book the villa to Team."
        board = live.message(live.command("task board", {}))
        [menu] = [c for c in components_of(board) if c["type"] == 3]
        assert [o["label"] for o in menu["options"]] == ["Doing", "Done"]
        doing = next(o["value"] for o in menu["options"] if o["label"] == "Doing")
        moved = live.click(board, menu["custom_id"], values=(doing,))
        assert "Task #1 Book the villa: To do → Doing." in str(moved.body)
    assert [e["column"] for e in moved_events(mona)] == ["Doing"]
