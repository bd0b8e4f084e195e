"""Slack, end to end: signed requests to the real WSGI app (waitress + Bolt), real PostgreSQL, and a
local stand-in of Slack's Web API that records what mona sent back."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import Mona
from bot.console import ConsoleBot
from bot.slack import SocketMode, build_app, wsgi_app
from core import artists as crm
from core.db import Database
from tests.conftest import ADMIN
from tests.slack_stub import (
    APP_TOKEN,
    BOT_TOKEN,
    SlackRequests,
    SocketModeStub,
    WebApiStub,
    WsgiServer,
    http,
    payload,
    signed_headers,
)

VIEWER = "UVIEWER01"
CHANNEL = "C0CRM0001"


@pytest.fixture
def slack(slack_mona: Mona, web_api: WebApiStub) -> Iterator[SlackRequests]:
    app = build_app(slack_mona)
    with WsgiServer(wsgi_app(slack_mona, app)) as server:
        yield SlackRequests(server.url, web_api)


def artists(mona: Mona) -> list[crm.Artist]:
    with mona.db.uow() as uow:
        return list(uow.session.scalars(select(crm.Artist).order_by(crm.Artist.id)))


def count(mona: Mona, model: type[Any]) -> int:
    with mona.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def elements(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


def element(message: dict[str, Any], label: str) -> dict[str, Any]:
    """The button labelled ``label``, or the menu whose placeholder it is."""
    for e in elements(message):
        text = e["text"]["text"] if e["type"] == "button" else e["placeholder"]["text"]
        if text == label:
            return e
    raise LookupError(f"no {label!r} among {[e.get('text', e.get('placeholder')) for e in elements(message)]}")


def shown(message: dict[str, Any]) -> str:
    """Every text a person reads in the message's blocks."""
    out: list[str] = []
    for b in message.get("blocks", []):
        if "text" in b:
            out.append(b["text"]["text"])
        out += [f["text"] for f in b.get("fields", [])]
        out += [e["text"] for e in b.get("elements", []) if b["type"] == "context"]
    return "\n".join(out)


def add_alex(slack: SlackRequests) -> dict[str, Any]:
    r = slack.command("add Alex --genre pop")
    assert r.status == 200, r.body
    return slack.command("show Alex").json


# ------------------------------------------------------------------------------------ commands


def test_an_admin_adds_an_artist_and_the_answer_comes_in_the_acknowledgement(slack: SlackRequests, slack_mona: Mona,
                                                                              web_api: WebApiStub) -> None:
    r = slack.command("add Alex --genre pop")

    assert r.status == 200
    assert r.content_type.startswith("application/json")
    message = r.json
    assert message["response_type"] == "in_channel"
    assert "Alex" in shown(message) and "Alex" in message["text"]
    [alex] = artists(slack_mona)
    assert (alex.name, alex.genre) == ("Alex", "pop")
    # One round trip: nothing was posted through the Web API or a response_url.
    assert web_api.methods() == ["auth.test"]
    assert web_api.calls_to("auth.test")[0].token == BOT_TOKEN


def test_the_artist_card_offers_the_move_menu_and_its_buttons_with_unique_action_ids(slack: SlackRequests) -> None:
    card = add_alex(slack)

    assert card["response_type"] == "ephemeral"
    assert "*Alex (#1)*" in shown(card)
    assert element(card, "Move to…")["type"] == "static_select"
    for label in ("Log interaction", "Add deal", "Archive"):
        assert element(card, label)["type"] == "button"
    ids = [e["action_id"] for e in elements(card)]
    assert len(ids) == len(set(ids))
    assert {i.rsplit("#", 1)[0] for i in ids} == {"artist.move", "artist.note_form", "artist.deal_form", "artist.archive"}
    assert all(i.rsplit("#", 1)[1].isdigit() for i in ids)


def test_a_viewer_running_an_editing_command_is_told_about_roles_and_nothing_is_stored(
        slack: SlackRequests, slack_mona: Mona) -> None:
    r = slack.command("add X", user=VIEWER)

    assert r.status == 200
    assert r.json["response_type"] == "ephemeral"
    assert "role" in r.json["text"]
    assert "viewer" in shown(r.json)
    assert artists(slack_mona) == []


def test_an_unknown_subcommand_is_answered_privately_with_the_closest_one(slack: SlackRequests) -> None:
    r = slack.command("shwo Alex")

    assert r.json["response_type"] == "ephemeral"
    assert "Did you mean /artist show?" in shown(r.json)


def test_other_commands_have_their_own_slash_command(slack: SlackRequests) -> None:
    assert "Pipeline" in shown(slack.command("", command="/pipeline").json)
    assert "/artist" in shown(slack.command("help", command="/mona").json)


def test_an_artist_named_like_a_channel_ping_pings_nobody(slack: SlackRequests, slack_mona: Mona) -> None:
    # Slack sends the & < > a person types as entities: they are stored as typed...
    assert slack.command("add &lt;!channel&gt;").status == 200
    assert slack.command("add Tom &amp; &lt;b&gt;").status == 200
    assert [a.name for a in artists(slack_mona)] == ["<!channel>", "Tom & <b>"]

    # ...and shown escaped everywhere in the message, so Slack displays them and pings nobody.
    for answer in (slack.command("show #1").json, slack.command("list").json):
        raw = json.dumps(answer)
        assert "<!channel>" not in raw and "<b>" not in raw
    card = slack.command("show #1").json
    assert "*&lt;!channel&gt; (#1)*" in shown(card)
    assert "&lt;!channel&gt;" in card["text"]


def test_what_slack_rewrites_in_a_command_is_read_as_the_person_typed_it(slack: SlackRequests,
                                                                          slack_mona: Mona) -> None:
    # Typed: /artist add @channel --email alex@example.com --city #paris --owner @sam
    r = slack.command("add <!channel> --email <mailto:alex@example.com|alex@example.com> --city <#C0CITY001|paris> "
                      "--owner <@U0SAM0001|sam>")

    assert r.status == 200 and not r.json["text"].startswith("Something"), r.json
    [artist] = artists(slack_mona)
    assert (artist.name, artist.email, artist.city) == ("@channel", "alex@example.com", "#paris")
    assert "*Owner*\nsam" in shown(r.json)


# ------------------------------------------------------------------------------ interactions


def test_choosing_a_stage_in_the_move_menu_moves_the_artist_and_refreshes_the_card(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    card = add_alex(slack)
    before = artists(slack_mona)[0].stage
    menu = element(card, "Move to…")
    option = menu["options"][0]

    r, response_url = slack.click(menu, option=option)

    assert r.status == 200
    after = artists(slack_mona)[0].stage
    assert after != before and option["value"].endswith(after)
    [posted] = web_api.posted_to(response_url)
    assert posted.body["replace_original"] is True
    assert f"lina moved Alex from {before} (MONA) to {after} (MONA)." in shown(posted.body)
    assert "*Alex (#1)*" in shown(posted.body)
    # The refreshed card carries the new version: the old menu is now out of date.
    assert element(posted.body, "Move to…")["options"] != menu["options"]


def test_log_interaction_opens_a_form_and_submitting_it_logs_the_interaction(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    card = add_alex(slack)

    r, _ = slack.click(element(card, "Log interaction"))

    assert r.status == 200
    [opened] = web_api.calls_to("views.open")
    assert opened.body["trigger_id"] == payload("block_actions")["trigger_id"]
    view = opened.body["view"]
    assert view["type"] == "modal" and view["callback_id"] == "artist.note"
    assert [b["block_id"] for b in view["blocks"]] == ["kind", "text"]
    kind, text = (b["element"] for b in view["blocks"])
    assert kind["type"] == "static_select" and kind["initial_option"]["value"] == "call"
    assert text["type"] == "plain_text_input" and text["multiline"] is True

    r = slack.submit(view, {"kind": "meeting", "text": "Talked about the EP & the tour"})

    assert r.status == 200 and r.body == b""
    with slack_mona.db.uow() as uow:
        [logged] = uow.session.scalars(select(crm.Interaction))
        assert (logged.kind, logged.text) == ("meeting", "Talked about the EP & the tour")
    [posted] = web_api.calls_to("chat.postEphemeral")
    assert (posted.body["channel"], posted.body["user"]) == (CHANNEL, ADMIN)
    assert "Logged with Alex." in shown(posted.body)
    assert "Talked about the EP &amp; the tour" in shown(posted.body)


def test_a_deal_form_with_a_bad_amount_is_answered_beside_the_amount_field(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    card = add_alex(slack)
    slack.click(element(card, "Add deal"))
    [opened] = web_api.calls_to("views.open")
    view = opened.body["view"]
    assert view["callback_id"] == "artist.deal"
    optional = {b["block_id"]: b["optional"] for b in view["blocks"]}
    assert optional == {"title": False, "amount": False, "currency": False, "close": True}

    r = slack.submit(view, {"title": "Summer tour", "amount": "abc", "currency": "EUR"})

    assert r.status == 200
    assert r.json["response_action"] == "errors"
    assert list(r.json["errors"]) == ["amount"]
    assert count(slack_mona, crm.Opportunity) == 0
    assert not web_api.calls_to("chat.postMessage") and not web_api.calls_to("chat.postEphemeral")

    r = slack.submit(view, {"title": "Summer tour", "amount": "1500", "currency": "EUR"})

    assert r.status == 200 and r.body == b""
    assert count(slack_mona, crm.Opportunity) == 1


def test_turning_pages_runs_the_command_again_and_replaces_the_list(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    console = ConsoleBot(slack_mona.dispatcher)
    for n in range(12):
        assert not console.run(f"/artist add Artist {n:02}").error
    first = slack.command("list").json
    assert "page 1/2" in shown(first)

    r, response_url = slack.click(element(first, "Next"))

    assert r.status == 200
    [posted] = web_api.posted_to(response_url)
    assert posted.body["replace_original"] is True
    assert "page 2/2" in shown(posted.body)
    assert element(posted.body, "Previous")["action_id"].startswith("cmd.run#")


def test_a_viewer_clicking_an_editing_button_gets_a_private_answer_and_the_message_stays(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    card = add_alex(slack)

    _, response_url = slack.click(element(card, "Archive"), user=VIEWER)

    [posted] = web_api.posted_to(response_url)
    assert posted.body["response_type"] == "ephemeral"
    assert posted.body["replace_original"] is False
    assert "role" in posted.body["text"]
    assert artists(slack_mona)[0].archived_at is None


def test_a_form_result_goes_to_the_persons_dm_when_the_bot_cannot_post_in_the_channel(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    card = add_alex(slack)
    slack.click(element(card, "Log interaction"))
    view = web_api.calls_to("views.open")[0].body["view"]
    web_api.errors["chat.postEphemeral"] = "channel_not_found"

    assert slack.submit(view, {"kind": "call", "text": "Called"}).status == 200

    [dm] = web_api.calls_to("chat.postMessage")
    assert dm.body["channel"] == ADMIN
    assert count(slack_mona, crm.Interaction) == 1


# ------------------------------------------------------------------------- request signing


@pytest.mark.parametrize("headers", [
    pytest.param(lambda body: {}, id="unsigned"),
    pytest.param(lambda body: signed_headers(body, secret="not-the-secret"), id="wrong-secret"),
    pytest.param(lambda body: signed_headers(body, timestamp=int(time.time()) - 6 * 60), id="older-than-5-minutes"),
])
def test_requests_not_signed_by_slack_are_refused_and_change_nothing(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub, headers: Any) -> None:
    body = slack.command_body("add Mallory")

    r = slack.post(body, "application/x-www-form-urlencoded", headers=headers(body))

    assert r.status == 401
    assert artists(slack_mona) == []
    assert count(slack_mona, crm.Interaction) == 0
    assert web_api.methods() == ["auth.test"]


def test_a_signed_request_with_a_tampered_body_is_refused(slack: SlackRequests, slack_mona: Mona) -> None:
    body = slack.command_body("show Alex")
    headers = signed_headers(body)

    r = slack.post(body.replace(b"show", b"add"), "application/x-www-form-urlencoded", headers=headers)

    assert r.status == 401
    assert artists(slack_mona) == []


# ----------------------------------------------------------------------------- health check


def test_the_health_check_answers_ok_while_the_database_answers(slack: SlackRequests) -> None:
    base = slack.events_url.removesuffix("/slack/events")

    r = http("GET", f"{base}/healthz")

    assert (r.status, r.body) == (200, b"ok")
    assert http("GET", f"{base}/nowhere").status == 404
    assert http("GET", f"{base}/slack/events").status == 404


def test_the_health_check_answers_503_when_the_database_is_down(slack_mona: Mona) -> None:
    down = Database("postgresql+psycopg://postgres@127.0.0.1:1/mona_down", connect_args={"connect_timeout": 2})
    broken = dataclasses.replace(slack_mona, db=down)
    try:
        with WsgiServer(wsgi_app(broken, build_app(broken))) as server:
            r = http("GET", f"{server.url}/healthz")
    finally:
        down.engine.dispose()

    assert r.status == 503


def test_serving_over_http_refuses_to_start_without_a_signing_secret(slack_mona: Mona) -> None:
    unsigned = dataclasses.replace(slack_mona, settings=dataclasses.replace(slack_mona.settings, slack_signing_secret=None))

    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        wsgi_app(unsigned, build_app(unsigned))


# ------------------------------------------------------------------------------ Socket Mode


def test_socket_mode_answers_a_slash_command_in_the_envelope_ack(slack_mona: Mona, web_api: WebApiStub) -> None:
    threads_before = set(threading.enumerate())
    with SocketModeStub() as applink:
        web_api.socket_url = applink.url
        handler = SocketMode(slack_mona, app_token=APP_TOKEN)
        try:
            handler.connect()
            assert web_api.calls_to("apps.connections.open")[0].token == APP_TOKEN
            command = payload("slash_command")
            command.update(command="/pipeline", text="mona", response_url=web_api.response_url())
            envelope_id = str(uuid.uuid4())

            applink.send({"envelope_id": envelope_id, "type": "slash_commands", "accepts_response_payload": True,
                          "payload": command})
            ack = applink.ack_for(envelope_id)
        finally:
            applink.hang_up()
            handler.close()

    assert ack["envelope_id"] == envelope_id
    assert ack["payload"]["response_type"] == "ephemeral"
    assert "MONA: 0 artists" in shown(ack["payload"])
    assert ack["payload"]["blocks"]
    for thread in set(threading.enumerate()) - threads_before:
        # e.g. the stand-in's handler of a connection the client just closed (it may be starting still)
        deadline = time.monotonic() + 2
        while thread.ident is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if thread.ident is not None:
            thread.join(timeout=2)
    left = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert left == [], left


def test_without_an_http_server_of_its_own_mona_still_serves_the_health_check(slack_mona: Mona) -> None:
    import dataclasses
    import socket
    import time
    import urllib.request

    from bot.health import serve_in_background

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mona = dataclasses.replace(slack_mona, settings=dataclasses.replace(slack_mona.settings, http_host="127.0.0.1",
                                                                        http_port=port))
    serve_in_background(mona)
    for _ in range(50):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                assert (r.status, r.read()) == (200, b"ok")
                break
        except OSError:
            time.sleep(0.05)
    else:
        raise AssertionError("the health check never answered")
