"""Specs of the marketplace: the 10 blocks, requests and their lifecycle, through the console
adapter on real PostgreSQL, then once through Slack (the real Bolt app) and Discord (the real client)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.app import Mona, bootstrap
from bot.console import ConsoleBot
from core import marketplace as market
from core.notify import Delivery
from core.outbox import OutboxEvent
from core.team import AuditEntry
from handlers.reply import Button, Reply
from tests.conftest import ADMIN


def requests(mona: Mona) -> list[market.MarketRequest]:
    with mona.db.uow() as uow:
        return list(uow.session.scalars(select(market.MarketRequest).order_by(market.MarketRequest.id)))


def count(mona: Mona, model: type[Any]) -> int:
    with mona.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def member(bot: ConsoleBot, user_id: str, name: str, role: str = "member") -> ConsoleBot:
    other = bot.as_user(user_id, name)
    other.run("/mona whoami")
    bot.run(f"/mona role @{name} {role}")
    return other


def as_reply(d: Delivery) -> Reply:
    """A posted notification, as a reply whose buttons the console can click."""
    return Reply(text=d.message.text, actions=tuple(Button(a.label, a.action_id, a.value) for a in d.message.actions))


def in_days(n: int) -> str:
    return (dt.date.today() + dt.timedelta(days=n)).isoformat()


# ---------------------------------------------------------------- blocks


def test_the_ten_blocks_are_listed_with_their_range_lead_time_channel_and_a_request_button(bot):
    r = bot.run("/market blocks")
    assert r.title == "Marketplace blocks"
    assert [s.title for s in r.sections] == [
        "Signature & Onboarding (signature)", "Direction Artistique & A&R (ar)", "Production Musicale (production)",
        "Édition/Publishing (publishing)", "Marketing/Image (marketing)", "Distribution (distribution)",
        "Booking/Live (booking)", "Licensing/Synchro (synchro)", "Sortie/Revente (exit)",
        "Direction Stratégique (strategy)"]
    text = r.plain_text()
    assert "Budget: €1,000.00–€25,000.00" in text and "Lead time: 60 days" in text and "Channel: #mkt-booking" in text
    assert len(r.buttons) == 10 and r.buttons[6].label == "Request Booking/Live"


def test_a_block_channel_and_default_assignee_can_be_edited(bot, mona):
    member(bot, "bob", "Bob")
    r = bot.run("/market block edit a&r --channel #ar-team --assignee @Bob")
    assert r.text == "Direction Artistique & A&R: channel #ar-team, default assignee Bob."
    assert "Channel: #ar-team" in bot.run("/market blocks").plain_text()
    with mona.db.uow() as uow:  # a sensitive change: who made it is in the audit log
        [entry] = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "market block edit")).all()
    assert '"block":"a&r"' in entry.target
    assert "Say what to change" in bot.run("/market block edit booking").text
    viewer = bot.as_user("vic", "Vic")
    assert "Your role is viewer" in viewer.run("/market block edit booking --channel #x").text


@pytest.mark.parametrize("typed", ["booking", "BOOKING/live", "live", "Booking/Live"])
def test_blocks_are_matched_by_name_part_or_short_key(bot, mona, typed):
    bot.run("/artist add Alex")
    assert not bot.run(f"/market request Alex {typed} a club tour").error
    assert requests(mona)[0].block_id == 7


def test_blocks_match_without_case_or_accents_and_by_alias(bot, mona):
    bot.run("/artist add Alex Blue")
    for typed, block_id in (("A&R", 2), ("edition", 4), ("synchro", 8), ("direction strategique", 10), ("Sortie", 9)):
        r = bot.run(f"/market request Alex Blue {typed} brief for {typed}")
        assert not r.error, r.text
        assert requests(mona)[-1].block_id == block_id
    assert requests(mona)[0].brief == "brief for A&R"


# ---------------------------------------------------------------- opening


def test_opening_a_request_stores_it_logs_new_and_records_an_event(bot, mona):
    bot.run("/artist add Alex Blue")
    r = bot.run(f"/market request Alex Blue booking Ten club dates in March --budget 5000 --due {in_days(30)}")
    assert not r.error and not r.ephemeral
    assert r.text == "Opened request #1 for Alex Blue: Booking/Live. #mkt-booking is told."
    assert r.title == "Request #1 · Booking/Live"
    [req] = requests(mona)
    assert (req.status, req.brief, req.budget, req.due) == (
        "new", "Ten club dates in March", Decimal("5000.00"), dt.date.fromisoformat(in_days(30)))
    assert [b.label for b in r.buttons] == ["Accept", "Decline", "Cancel request", "Assign…"]
    with mona.db.uow() as uow:
        assert uow.session.scalars(select(OutboxEvent.type)).all() == ["artist.created", "request.created"]


def test_the_request_form_opens_from_the_blocks_button(bot, mona):
    bot.run("/artist add Alex")
    form = bot.click(bot.run("/market blocks"), "Request Booking/Live")
    assert form.modal and form.modal.callback_id == "market.request" and form.modal.private_metadata == "booking"
    bad = bot.submit(form.modal, {"artist": "Nobody", "brief": "x", "budget": "", "due": ""})
    assert bad.field_errors.keys() == {"artist"} and "No artist is called Nobody" in bad.text
    past = bot.submit(form.modal, {"artist": "Alex", "brief": "x", "budget": "", "due": "2020-01-01"})
    assert past.field_errors.keys() == {"due"} and "2020-01-01 is in the past" in past.text
    money = bot.submit(form.modal, {"artist": "Alex", "brief": "x", "budget": "lots", "due": ""})
    assert money.field_errors.keys() == {"budget"}
    empty = bot.submit(form.modal, {"artist": "Alex", "brief": " ", "budget": "", "due": ""})
    assert empty.field_errors.keys() == {"brief"}
    assert requests(mona) == []
    ok = bot.submit(form.modal, {"artist": "Alex", "brief": "A summer tour", "budget": "3000", "due": in_days(60)})
    assert ok.text.startswith("Opened request #1 for Alex: Booking/Live.")
    assert requests(mona)[0].budget == Decimal("3000.00")


def test_an_unknown_block_suggests_the_closest_of_the_ten_and_stores_nothing(bot, mona):
    bot.run("/artist add Alex")
    r = bot.run("/market request Alex bookng a tour")
    assert r.error and r.text.startswith("Unknown block bookng. Did you mean Booking/Live? Blocks: Signature & Onboarding,")
    r = bot.run("/market request Alex synchronisation a film")
    assert "Did you mean Licensing/Synchro?" in r.text
    assert "Did you mean Booking/Live?" in bot.run("/market requests --block bokking").text
    assert requests(mona) == []


def test_a_due_date_in_the_past_is_refused_and_nothing_is_stored(bot, mona):
    bot.run("/artist add Alex")
    r = bot.run("/market request Alex booking a tour --due 2020-01-01")
    assert r.error and r.text == "The due date 2020-01-01 is in the past; give today or a later date."
    assert requests(mona) == [] and count(mona, OutboxEvent) == 1


def test_a_budget_outside_the_blocks_range_asks_to_confirm_and_stores_nothing_until_then(bot, mona):
    bot.run("/artist add Alex")
    r = bot.run('/market request Alex booking a "big" stadium tour --budget 40000')
    assert r.text == "€40,000.00 is outside the usual budget of Booking/Live (€1,000.00–€25,000.00). Open the request anyway?"
    assert r.ephemeral and [b.label for b in r.buttons] == ["Confirm", "Cancel"]
    assert requests(mona) == []
    assert bot.click(r, "Cancel").text == "Nothing was opened."
    assert requests(mona) == []
    confirmed = bot.click(r, "Confirm")
    assert confirmed.text.startswith("Opened request #1 for Alex: Booking/Live.")
    [req] = requests(mona)
    assert (req.budget, req.brief) == (Decimal("40000.00"), "a big stadium tour")


def test_request_words_need_a_block_and_a_brief(bot, mona):
    bot.run("/artist add Alex")
    assert "Say the block and the brief" in bot.run("/market request Alex").text
    assert "Write a brief after the block" in bot.run("/market request Alex booking").text
    assert "No artist is called Nova" in bot.run("/market request Nova booking tour").text
    assert "must not be negative" in bot.run("/market request Alex booking tour --budget -5").text
    assert requests(mona) == []


def test_a_request_is_shown_by_its_number_and_opening_one_needs_a_block_and_a_brief(bot, mona):
    # /market request used to double as "show request": /market request 1 showed request #1.
    bot.run("/artist add Alex")
    bot.run("/market request Alex booking tour")
    shown = bot.run("/market show 1")
    assert not shown.error and shown.title == "Request #1 · Booking/Live"
    assert bot.run("/market show #1").title == shown.title
    r = bot.run("/market request 1")
    assert r.error and r.title is None and r.buttons == []
    assert r.text == ("Say the block and the brief after the artist. Usage: /market request ARTIST BLOCK BRIEF "
                      "[--budget AMOUNT] [--due DATE] [--confirm]; /market show 1 shows request #1.")
    assert "No request has the number #9." in bot.run("/market show 9").text
    assert "Nothing has the number #9999999999." in bot.run("/market show 9999999999").text
    assert "must be a number like 12 or #12" in bot.run("/market show Alex").text
    assert len(requests(mona)) == 1


def test_the_budget_confirmation_keeps_the_whole_brief_and_the_due_date(bot, mona):
    bot.run("/artist add Alex Blue")
    r = bot.run(f'/market request Alex Blue booking "a stadium tour: 3 dates" --budget 30000 --due {in_days(20)}')
    assert [b.label for b in r.buttons] == ["Confirm", "Cancel"]
    assert bot.click(r, "Confirm").text.startswith("Opened request #1 for Alex Blue: Booking/Live.")
    [req] = requests(mona)
    assert (req.brief, req.budget, req.due) == ("a stadium tour: 3 dates", Decimal("30000.00"),
                                                dt.date.fromisoformat(in_days(20)))


def test_a_viewer_can_read_but_not_open_or_move_requests(bot, mona):
    bot.run("/artist add Alex")
    bot.run("/market request Alex booking tour")
    viewer = bot.as_user("vic", "Vic")
    assert viewer.run("/market show 1").title == "Request #1 · Booking/Live"
    assert "Your role is viewer" in viewer.run("/market request Alex booking tour").text
    assert "Your role is viewer" in viewer.run("/market move 1 accepted").text
    assert len(requests(mona)) == 1


# ---------------------------------------------------------------- lifecycle


def test_the_whole_lifecycle_is_logged_in_the_timeline(bot, mona):
    bot.run("/artist add Alex")
    bot.run("/market request Alex booking tour --budget 2000")
    bob = member(bot, "bob", "Bob")
    accepted = bob.click(bot.run("/market show 1"), "Accept")
    assert accepted.text == "Bob moved request #1 from new to accepted."
    assert "Assigned to: Bob" in accepted.plain_text()  # accepting an unassigned request takes it
    started = bob.click(accepted, "Start")
    assert [b.label for b in started.buttons] == ["Deliver", "Cancel request", "Assign…"]
    bob.run("/market move 1 delivered --note setlist and dates sent")
    closed = bot.run("/market move #1 closed")
    assert closed.buttons == []
    shown = bot.run("/market show #1")
    timeline = next(s for s in shown.sections if s.title == "Timeline").text.splitlines()
    assert [line.split(" · ", 1)[1] for line in timeline] == [
        "new · Lina", "new → accepted · Bob", "accepted → in_progress · Bob",
        "in_progress → delivered · Bob · setlist and dates sent", "delivered → closed · Lina"]
    with mona.db.uow() as uow:
        types = uow.session.scalars(select(OutboxEvent.type).where(OutboxEvent.type.like("request.%"))
                                    .order_by(OutboxEvent.id)).all()
    assert types == ["request.created", "request.accepted", "request.in_progress", "request.delivered", "request.closed"]


def test_an_illegal_transition_says_which_are_legal_and_changes_nothing(bot, mona):
    bot.run("/artist add Alex")
    bot.run("/market request Alex booking tour")
    r = bot.run("/market move 1 delivered")
    assert r.error and r.text == "Request #1 is new; from there it can go to accepted, declined, cancelled, not delivered."
    assert "Unknown status shipped. Statuses: new, accepted" in bot.run("/market move 1 shipped").text
    assert "Did you mean accepted?" in bot.run("/market move 1 acepted").text
    bot.run("/market move 1 declined")
    final = bot.run("/market move 1 accepted")
    assert final.text == "Request #1 is declined, which is final: it cannot move any more."
    assert "No request has the number #9." in bot.run("/market move 9 accepted").text
    assert requests(mona)[0].status == "declined"
    assert count(mona, market.RequestTransition) == 2


def test_assigning_from_the_form(bot, mona):
    bot.run("/artist add Alex")
    member(bot, "bob", "Bob")
    shown = bot.run("/market request Alex booking tour")
    form = bot.click(shown, "Assign…")
    assert form.modal and form.modal.callback_id == "market.assign"
    bob_id = next(o.value for o in form.modal.inputs[0].options if o.label == "Bob")
    r = bot.submit(form.modal, {"member": bob_id})
    assert r.text == "Lina assigned request #1 to Bob." and "Assigned to: Bob" in r.plain_text()
    again = bot.submit(form.modal, {"member": bob_id})
    assert again.field_errors == {"member": "Request #1 is already assigned to Bob."}
    assert "assigned to Bob · Lina" in bot.run("/market show 1").plain_text()


def test_two_people_accepting_at_once_one_wins_and_the_other_is_told_who(bot, mona):
    bot.run("/artist add Alex")
    bot.run("/market request Alex booking tour")
    member(bot, "ana", "Ana")
    member(bot, "ben", "Ben")
    from core.team import Identity, Member

    def who(uow: Any, ext: str) -> Member:
        return uow.session.scalars(select(Member).join(Identity).where(Identity.external_id == ext)).one()

    with mona.db.uow() as first, mona.db.uow() as second:
        r1 = market.get(first, 1)
        r2 = market.get(second, 1)
        market.move(second, who(second, "ben"), r2, "accepted")
        second.commit()
        with pytest.raises(market.ConcurrentChange, match=r"Ben moved request #1 to accepted meanwhile; nothing was saved"):
            market.move(first, who(first, "ana"), r1, "accepted")
    [req] = requests(mona)
    assert (req.status, req.version) == ("accepted", 2)
    assert count(mona, market.RequestTransition) == 2
    # Clicking Accept afterwards: told who accepted, nothing changes.
    late = bot.as_user("ana", "Ana").run("/market move 1 accepted")
    assert late.error and late.text == "Request #1 is already accepted (by Ben)."


# ---------------------------------------------------------------- notifications


def test_the_block_channel_is_told_once_with_buttons_that_work(bot, mona, out):
    bot.run("/artist add Alex")
    bob = member(bot, "bob", "Bob")
    bot.run(f"/market request Alex booking Ten club dates --budget 5000 --due {in_days(10)}")
    mona.run_pending_jobs()
    mona.run_pending_jobs()
    channel = [line for line in out.getvalue().splitlines() if line.startswith("[#mkt-booking]")]
    assert channel == [f"[#mkt-booking] New request #1 · Booking/Live — Lina opened request #1 for Alex: Booking/Live. "
                       f"Budget: €5,000.00 · Due: {in_days(10)}"]
    assert "  [Accept]\n  [Decline]\n  [Assign…]\n  [Show request]" in out.getvalue()
    with mona.db.uow() as uow:
        [posted] = uow.session.scalars(select(Delivery)).all()
    assert (posted.target, posted.status) == ("mkt-booking", "sent")
    accepted = bob.click(as_reply(posted), "Accept")
    assert accepted.text == "Bob moved request #1 from new to accepted." and accepted.replace_original
    # The requester (Lina, on the console) is told; Bob, who acted, is not.
    mona.run_pending_jobs()
    dms = [line for line in out.getvalue().splitlines() if line.startswith("[@")]
    assert dms == ["[@local] Bob moved request #1 (Booking/Live, Alex) from new to accepted."]
    # A second Accept on the same notification: told who accepted.
    assert bot.click(as_reply(posted), "Accept").text == "Request #1 is already accepted (by Bob)."
    form = bot.click(as_reply(posted), "Assign…")
    assert form.modal and form.modal.callback_id == "market.assign"


def test_the_show_request_button_of_a_notification_shows_the_request(bot, mona, out):
    bot.run("/artist add Alex")
    bot.run("/market request Alex booking Ten club dates")
    mona.run_pending_jobs()
    with mona.db.uow() as uow:
        [posted] = uow.session.scalars(select(Delivery)).all()
    shown = bot.click(as_reply(posted), "Show request")
    assert not shown.error and shown.title == "Request #1 · Booking/Live"


def test_the_artists_owner_is_told_of_each_move(bot, mona, out):
    member(bot, "sam", "Sam")
    bot.run("/artist add Alex --owner @Sam")
    bot.run("/market request Alex synchro a film placement")
    bot.run("/market move 1 accepted")
    mona.run_pending_jobs()
    sam = [line for line in out.getvalue().splitlines() if line.startswith("[@sam]")]
    assert sam == ["[@sam] New request #1 · Licensing/Synchro — Lina opened request #1 for Alex: Licensing/Synchro.",
                   "[@sam] Lina moved request #1 (Licensing/Synchro, Alex) from new to accepted."]


def test_overdue_requests_appear_in_the_daily_digest(bot, mona):
    bot.run("/artist add Alex")
    bot.run(f"/market request Alex booking tour --due {in_days(1)}")
    bot.run(f"/market request Alex marketing clip --due {in_days(1)}")
    bot.run("/market request Alex distribution single")
    bot.run("/market move 2 cancelled")
    with mona.db.uow() as uow:
        uow.session.execute(update(market.MarketRequest).where(market.MarketRequest.id.in_([1, 2]))
                            .values(due=dt.date.today() - dt.timedelta(days=3)))
        uow.commit()
    digest = bot.run("/mona digest").plain_text()
    assert "Overdue requests: 1 (#1 Booking/Live (Alex))" in digest
    assert "(overdue)" in bot.run("/market requests").text


# ---------------------------------------------------------------- lists and figures


def test_requests_are_listed_filtered_and_paginated(bot, mona):
    bot.run("/artist add Alex")
    bot.run("/artist add Nova")
    bob = member(bot, "bob", "Bob")
    for i in range(12):
        bot.run(f"/market request Alex booking date {i}")
    bob.run("/market request Nova synchro film")
    bob.run("/market move 13 accepted")
    first = bot.run("/market requests")
    assert first.title == "Requests: 13 · page 1/2" and [b.label for b in first.buttons] == ["Next"]
    assert first.text.splitlines()[0] == "#13 · Licensing/Synchro · Nova · accepted · Bob → Bob"
    second = bot.click(first, "Next")
    assert second.title == "Requests: 13 · page 2/2" and second.replace_original
    assert bot.run("/market requests --block synchro").title.startswith("Requests: 1 ")
    assert bot.run("/market requests --status new --artist Alex").title.startswith("Requests: 12 ")
    assert bot.run("/market requests --status accepted").title.startswith("Requests: 1 ")
    assert bob.run("/market requests --mine").title == "Requests: 1 · page 1/1"
    assert bot.run("/market requests --status closed").text == "No request matches."
    assert "must be one of new, accepted" in bot.run("/market requests --status done").text
    assert "only 2 pages" in bot.run("/market requests --page 3").text


def test_stats_give_counts_medians_and_revenue_per_block_per_month(bot, mona):
    bot.run("/artist add Alex")
    bot.run("/market request Alex booking tour --budget 2000")
    bot.run("/market request Alex booking festival --budget 3000")
    bot.run("/market request Alex synchro ad --budget 1500")
    bot.run("/market request Alex marketing clip")
    for rid in (1, 2):
        for status in ("accepted", "in_progress", "delivered"):
            bot.run(f"/market move {rid} {status}")
    bot.run("/market move 3 declined")
    r = bot.run("/market stats")
    text = r.plain_text()
    assert "Booking/Live: delivered 2" in text and "Licensing/Synchro: declined 1" in text
    assert "Marketing/Image: new 1" in text and "Distribution: no request" in text
    assert "All blocks: accept under 1 h, deliver under 1 h" in text
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    assert f"{month} · Booking/Live · €5,000.00 (2)" in text
    assert bot.click(r, "Requests").title.startswith("Requests: 4 ")


def test_stats_aggregates_match_the_requests_they_summarise(bot, mona):
    bot.run("/artist add Alex")
    for block in ("booking", "synchro", "exit"):
        bot.run(f"/market request Alex {block} brief --budget 5000")
    bot.run("/market move 1 accepted")
    bot.run("/market move 2 cancelled")
    with mona.db.uow() as uow:
        counted = {(b, s): n for b, s, n in uow.session.execute(
            select(market.RequestCount.block_id, market.RequestCount.status, market.RequestCount.n)) if n}
        actual = {(b, s): n for b, s, n in uow.session.execute(
            select(market.MarketRequest.block_id, market.MarketRequest.status, func.count())
            .group_by(market.MarketRequest.block_id, market.MarketRequest.status))}
    assert counted == actual == {(7, "accepted"): 1, (8, "cancelled"): 1, (9, "new"): 1}


# ---------------------------------------------------------------- Slack and Discord


@pytest.fixture
def slack_env(mona: Mona) -> Iterator[tuple[Any, Any, Mona]]:
    from bot.slack import build_app, wsgi_app
    from tests.slack_stub import BOT_TOKEN, SIGNING_SECRET, SlackRequests, WebApiStub, WsgiServer

    with WebApiStub() as web_api:
        settings = dataclasses.replace(mona.settings, slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                                       slack_api_url=web_api.api_url)
        slack_mona = dataclasses.replace(mona, settings=settings)
        with WsgiServer(wsgi_app(slack_mona, build_app(slack_mona))) as server:
            yield SlackRequests(server.url, web_api), web_api, slack_mona


def test_on_slack_a_request_is_opened_by_slash_command_and_accepted_by_a_button(slack_env, mona):
    from tests.test_slack import element, elements, shown

    slack, web_api, _m = slack_env
    ConsoleBot(mona.dispatcher, user_name="Lina").run("/artist add Alex")
    r = slack.command("block edit booking --channel <#C0BOOKING|booking>", command="/market")
    assert r.status == 200 and "Booking/Live: channel #booking." in shown(r.json)
    r = slack.command("request Alex booking Ten club dates --budget 5000", command="/market")
    assert r.status == 200 and r.json["response_type"] == "in_channel"
    assert "Opened request #1 for Alex: Booking/Live. #booking is told." in shown(r.json)
    card = slack.command("show 1", command="/market").json
    accept = element(card, "Accept")
    reply, response_url = slack.click(accept, user=ADMIN)
    assert reply.status == 200
    [posted] = web_api.posted_to(response_url)
    assert "moved request #1 from new to accepted." in shown(posted.body)
    assert requests(mona)[0].status == "accepted"
    # The block's channel on Slack was told, once, with the buttons.
    from bot.notify_slack import slack_notifier

    mona.runtime.notifiers["slack"] = slack_notifier(_m.settings)
    mona.run_pending_jobs()
    mona.run_pending_jobs()
    [message] = web_api.messages_in("C0BOOKING")
    assert "opened request #1 for Alex: Booking/Live." in message["text"]
    assert [e["text"]["text"] for e in elements(message)] == ["Accept", "Decline", "Assign…", "Show request"]


def test_on_discord_a_request_is_opened_by_slash_command_and_accepted_by_a_button(mona, settings):
    from bot.discord import MonaDiscord  # noqa: F401  (the client LiveDiscord runs)
    from tests.discord_gateway_stub import ADMIN_ID, GUILD_ID, LiveDiscord, components_of

    discord_mona = bootstrap(dataclasses.replace(settings, admins=settings.admins | {f"discord:{ADMIN_ID}"},
                                                 discord_guild_ids=(int(GUILD_ID),)), migrate=False, db=mona.db)
    ConsoleBot(mona.dispatcher, user_name="Lina").run("/artist add Alex")
    with LiveDiscord(discord_mona) as live:
        # /market request only opens requests (artist, block and brief required); /market show shows one.
        [synced] = live.stand_in.wait_for("PUT", r"/commands$")
        market_group = next(c for c in synced.body if c["name"] == "market")
        subs = {o["name"]: o for o in market_group["options"]}
        assert [(o["name"], bool(o.get("required"))) for o in subs["request"]["options"]] == [
            ("artist", True), ("block", True), ("brief", True), ("budget", False), ("due", False), ("confirm", False)]
        assert [(o["name"], o["type"], o.get("required")) for o in subs["show"]["options"]] == [("request_id", 4, True)]
        callback = live.command("market request", {"artist": "Alex", "block": "booking", "brief": "Ten club dates"})
        data = callback.body["data"]
        assert "Opened request #1 for Alex: Booking/Live." in data["embeds"][0]["description"]
        ids = [c["custom_id"] for c in components_of(data)]
        assert "market.move|1:accepted" in ids
        message = live.message(callback)
        clicked = live.click(message, "market.move|1:accepted")
        assert clicked.body["type"] == 7
        assert "moved request #1 from new to accepted." in clicked.body["data"]["embeds"][0]["description"]
        shown = live.command("market show", {"request_id": 1}).body["data"]
        assert shown["embeds"][0]["title"] == "Request #1 · Booking/Live"
        assert [c["custom_id"] for c in components_of(shown)] == ["market.move|1:in_progress", "market.move|1:cancelled",
                                                                  "market.assign_form|1"]
    assert requests(mona)[0].status == "accepted"
