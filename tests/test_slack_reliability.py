"""Slack under replays, malformed requests and a flaky network (issue 15): the real Bolt app and the
real Slack SDK against the stand-ins of tests/slack_stub.py, on real PostgreSQL.

- Over HTTP, the same signed request sent again (a proxy retry, ``X-Slack-Retry-Num``, a replay
  inside the signature's 5 minutes) acts once and is answered with the first answer.
- Whatever arrives malformed gets a 4xx, never a traceback; an unsigned request is read no further
  than its signature, is never logged, and its body is capped.
- Over Socket Mode, a connection that dies without a close frame is replaced, an envelope arriving
  while Slack refreshes the connection is still acknowledged in time, and an envelope delivered
  twice runs once, through the same mechanism as HTTP replays.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select

from bot.app import Mona
from bot.slack import MAX_BODY, SERVER_OPTIONS, SocketMode, build_app, wsgi_app
from core import artists as crm
from core.db import utcnow
from core.outbox import OutboxEvent
from core.replays import HandledRequest
from tests.conftest import PG_URL
from tests.slack_stub import (
    APP_TOKEN,
    Response,
    SlackRequests,
    SocketModeStub,
    WebApiStub,
    WsgiServer,
    payload,
    signed_headers,
)
from tests.test_slack import element, shown

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def slack(slack_mona: Mona, web_api: WebApiStub) -> Iterator[SlackRequests]:
    """mona's Events API served as ``serve_http`` serves it (waitress with ``SERVER_OPTIONS``);
    a repeat waits 0.3 s for the first arrival's answer."""
    with WsgiServer(wsgi_app(slack_mona, build_app(slack_mona), replay_wait=0.3), **SERVER_OPTIONS) as server:
        yield SlackRequests(server.url, web_api)


def count(mona: Mona, model: type[Any]) -> int:
    with mona.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def events(mona: Mona, type_: str) -> int:
    with mona.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == type_)) or 0


def artist_names(mona: Mona) -> list[str]:
    with mona.db.uow() as uow:
        return list(uow.session.scalars(select(crm.Artist.name).order_by(crm.Artist.id)))


def resend(slack: SlackRequests, body: bytes, headers: dict[str, str], **extra: str) -> Response:
    """The same signed request again, exactly as first sent (plus, say, Slack's retry headers)."""
    return slack.post(body, FORM, headers={**headers, **extra})


def signed_form(slack: SlackRequests, data: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = urllib.parse.urlencode({"payload": json.dumps(data)}).encode()
    return body, signed_headers(body)


# ---------------------------------------------------------------------------------- HTTP replays


@pytest.mark.probe("slack http: the same signed request twice acts once")
def test_a_slash_command_sent_again_adds_one_artist_and_the_retry_gets_the_first_answer(
        slack: SlackRequests, slack_mona: Mona) -> None:
    body = slack.command_body("add Alex --genre pop")
    headers = signed_headers(body)

    first = resend(slack, body, headers)
    retried = resend(slack, body, headers, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    replayed = resend(slack, body, headers)  # a replay inside the signature's 5 minutes

    assert first.status == 200 and "Alex" in shown(first.json)
    assert (retried.status, retried.body) == (first.status, first.body)
    assert (replayed.status, replayed.body) == (first.status, first.body)
    assert artist_names(slack_mona) == ["Alex"]
    assert events(slack_mona, "artist.created") == 1


@pytest.mark.probe("slack http: the same signed request twice acts once")
def test_a_form_submitted_twice_logs_one_interaction_and_posts_one_reply(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    assert slack.command("add Alex").status == 200
    card = slack.command("show Alex").json
    slack.click(element(card, "Log interaction"))
    view = web_api.calls_to("views.open")[0].body["view"]
    body, headers = signed_form(slack, slack.submission(view, {"kind": "call", "text": "Talked about the EP"}))

    answers = [resend(slack, body, headers) for _ in range(3)]

    assert [(a.status, a.body) for a in answers] == [(200, b"")] * 3
    assert count(slack_mona, crm.Interaction) == 1
    assert len(web_api.calls_to("chat.postEphemeral")) == 1


@pytest.mark.probe("slack http: the same signed request twice acts once")
def test_a_click_sent_twice_moves_the_artist_once_and_updates_the_card_once(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    assert slack.command("add Alex").status == 200
    menu = element(slack.command("show Alex").json, "Move to…")
    data = slack.click_payload(menu, option=menu["options"][0])
    body, headers = signed_form(slack, data)

    assert resend(slack, body, headers).status == 200
    assert resend(slack, body, headers, **{"X-Slack-Retry-Num": "1"}).status == 200

    [posted] = web_api.posted_to(data["response_url"])  # no second post, no "the card was out of date"
    assert "moved Alex" in shown(posted.body)
    assert events(slack_mona, "artist.stage_changed") == 1


@pytest.mark.probe("slack http: the same signed request twice acts once")
def test_ten_copies_of_one_request_arriving_together_act_once_and_get_one_answer(
        slack: SlackRequests, slack_mona: Mona) -> None:
    body = slack.command_body("add Alex")
    headers = signed_headers(body)

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: resend(slack, body, headers), range(10)))

    assert artist_names(slack_mona) == ["Alex"]
    assert {a.status for a in answers} == {200}
    bodies = {a.body for a in answers}
    # Each copy got the first answer, or (if it came while the first was still running) was told so.
    assert len(bodies - {busy_answer()}) == 1, bodies


def wait_until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def busy_answer() -> bytes:
    return json.dumps({"response_type": "ephemeral", "text": "This request is still being handled."}).encode()


@pytest.mark.probe("slack http: the same signed request twice acts once")
def test_a_repeat_while_the_first_is_still_running_is_told_so_and_a_later_one_gets_the_answer(
        slack: SlackRequests, slack_mona: Mona) -> None:
    body = slack.command_body("add Alex")
    headers = signed_headers(body)
    dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    first: list[Response] = []
    running = threading.Thread(target=lambda: first.append(resend(slack, body, headers)))
    with psycopg.connect(dsn) as blocker:
        try:
            blocker.execute("LOCK TABLE artists IN ACCESS EXCLUSIVE MODE")  # the first arrival waits on it
            running.start()
            claimed = wait_until(lambda: count(slack_mona, HandledRequest) > 0)

            repeat = resend(slack, body, headers)
        finally:
            blocker.rollback()
    running.join(10)

    assert claimed, "the first arrival claims the request before it runs"

    assert repeat.status == 200 and repeat.json["text"] == "This request is still being handled."
    assert repeat.json["response_type"] == "ephemeral"
    [done] = first
    assert "Alex" in shown(done.json)
    later = resend(slack, body, headers)
    assert later.body == done.body
    assert artist_names(slack_mona) == ["Alex"]


def test_the_same_command_typed_again_is_a_new_request_not_a_repeat(slack: SlackRequests, slack_mona: Mona) -> None:
    first = slack.command("archive Alex")  # each request Slack sends has its own response_url and trigger_id
    again = slack.command("archive Alex")

    assert first.json["text"] == again.json["text"]  # both ran: neither found Alex
    assert count(slack_mona, HandledRequest) == 2


def test_answers_older_than_a_day_are_forgotten(slack: SlackRequests, slack_mona: Mona) -> None:
    with slack_mona.db.uow() as uow:
        uow.session.add(HandledRequest(key="slack:http:old", answer=b"{}", created_at=utcnow() - dt.timedelta(days=2)))
        uow.session.add(HandledRequest(key="slack:http:recent", answer=b"{}", created_at=utcnow() - dt.timedelta(hours=2)))
        uow.commit()

    assert slack.command("add Alex").status == 200

    with slack_mona.db.uow() as uow:
        keys = set(uow.session.scalars(select(HandledRequest.key)))
    assert "slack:http:old" not in keys and "slack:http:recent" in keys


def test_a_slash_command_whose_text_says_payload_is_read_as_typed(slack: SlackRequests, slack_mona: Mona) -> None:
    # Bolt's own parser reads any form containing the word "payload" as an empty request.
    r = slack.command("add The payload")

    assert r.status == 200
    assert artist_names(slack_mona) == ["The payload"]


# ------------------------------------------------------------------------- malformed requests


def _form(data: dict[str, Any]) -> bytes:
    return urllib.parse.urlencode(data).encode()


def _without_user() -> bytes:
    command = payload("slash_command")
    del command["user_id"]
    return _form(command)


MALFORMED: dict[str, bytes] = {
    "payload that is not JSON": b"payload=%7Bnot-json",
    "payload null": _form({"payload": "null"}),
    "payload a list": _form({"payload": "[1, 2]"}),
    "payload a string": _form({"payload": '"block_actions"'}),
    "actions not a list": _form({"payload": json.dumps({**payload("block_actions"), "actions": "artist.archive"})}),
    "actions of strings": _form({"payload": json.dumps({**payload("block_actions"), "actions": ["artist.archive"]})}),
    "user an integer": _form({"payload": json.dumps({**payload("block_actions"), "user": 7})}),
    "view state not objects": _form({"payload": json.dumps({**payload("view_submission"),
                                                            "view": {**payload("view_submission")["view"],
                                                                     "state": {"values": {"text": "x"}}}})}),
    "a chosen option that is a string": _form({"payload": json.dumps({
        **payload("view_submission"), "view": {**payload("view_submission")["view"], "state": {"values": {
            "kind": {"kind": {"type": "static_select", "selected_option": "call"}}}}}})}),
    "slash command without user_id": _without_user(),
    "a raw 0xFF byte": b"command=%2Fartist&text=add+\xff&user_id=UADMIN01",
}
JSON_MALFORMED: dict[str, bytes] = {
    "JSON that is a list": b"[1]",
    "JSON that is not JSON": b"{nope",
    "an event that is a string": json.dumps({"type": "event_callback", "event": "app_mention"}).encode(),
}


@pytest.mark.probe("slack http: malformed requests get a 4xx")
@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_signed_by_slack_gets_a_400(slack: SlackRequests, slack_mona: Mona, body: bytes,
                                                      web_api: WebApiStub) -> None:
    r = slack.post(body, FORM)

    assert r.status == 400
    assert artist_names(slack_mona) == [] and count(slack_mona, HandledRequest) == 0
    assert web_api.methods() == ["auth.test"]


@pytest.mark.probe("slack http: malformed requests get a 4xx")
@pytest.mark.parametrize("body", JSON_MALFORMED.values(), ids=JSON_MALFORMED.keys())
def test_a_malformed_json_request_signed_by_slack_gets_a_400(slack: SlackRequests, slack_mona: Mona, body: bytes,
                                                           web_api: WebApiStub) -> None:
    r = slack.post(body, "application/json")

    assert r.status == 400
    assert artist_names(slack_mona) == [] and count(slack_mona, HandledRequest) == 0
    assert web_api.methods() == ["auth.test"]


@pytest.mark.probe("slack http: malformed requests get a 4xx")
@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_not_signed_is_refused_at_the_signature(slack: SlackRequests, slack_mona: Mona,
                                                                     body: bytes) -> None:
    r = slack.post(body, FORM, headers={"X-Slack-Request-Timestamp": str(int(time.time())),
                                        "X-Slack-Signature": "v0=" + "0" * 64})

    assert r.status == 401
    assert count(slack_mona, HandledRequest) == 0  # nothing read past the signature, not even a claim


@pytest.mark.probe("slack http: malformed requests get a 4xx")
@pytest.mark.parametrize("headers", [
    pytest.param({"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"}, id="non-numeric-timestamp"),
    pytest.param({"X-Slack-Request-Timestamp": str(int(time.time()))[:-1] + "²", "X-Slack-Signature": "v0=00"},
                 id="superscript-digit"),
    pytest.param({"X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=00"}, id="huge-timestamp"),
    pytest.param({"X-Slack-Signature": "v0=00"}, id="no-timestamp"),
    pytest.param({"X-Slack-Request-Timestamp": "1700000000"}, id="no-signature"),
    pytest.param({"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=é"}, id="non-ascii-signature"),
])
def test_broken_signature_headers_are_refused_with_401(slack: SlackRequests, headers: dict[str, str]) -> None:
    r = slack.post(slack.command_body("add Mallory"), FORM, headers=headers)

    assert r.status == 401


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path of a payload, one level into lists and objects."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            if len(prefix) < 2:
                yield from _paths(value, (*prefix, key))
    elif isinstance(data, list) and data and len(prefix) < 2:
        yield from _paths(data[0], (*prefix, 0))


def _replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = json.loads(json.dumps(data))
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


WRONG_VALUES = [None, 7, "x", [], {}, ["x"], [7], {"id": 7}]


@pytest.mark.probe("slack http: malformed requests get a 4xx")
@pytest.mark.parametrize("kind", ["block_actions", "view_submission"])
def test_no_signed_interaction_however_shaped_crashes_the_endpoint(slack: SlackRequests, kind: str) -> None:
    base = payload(kind)
    if "response_url" in base:
        base["response_url"] = slack.next_response_url()
    statuses: dict[str, int] = {}
    for path in _paths(base):
        for value in WRONG_VALUES:
            body = _form({"payload": json.dumps(_replaced(base, path, value))})
            statuses[f"{'.'.join(map(str, path))}={value!r}"] = slack.post(body, FORM).status

    assert {case: status for case, status in statuses.items() if status >= 500} == {}
    assert {status for status in statuses.values()} <= {200, 400, 404}


@pytest.mark.probe("slack http: malformed requests get a 4xx")
def test_no_signed_slash_command_however_shaped_crashes_the_endpoint(slack: SlackRequests) -> None:
    base = {**payload("slash_command"), "response_url": slack.next_response_url()}
    statuses: dict[str, int] = {}
    for key in base:
        for value in (None, "", "x", "%", "\x00", "/", "payload"):
            form = {k: v for k, v in base.items() if k != key or value is not None}
            if value is not None:
                form[key] = value
            statuses[f"{key}={value!r}"] = slack.post(_form(form), FORM).status

    assert {case: status for case, status in statuses.items() if status >= 500} == {}


# --------------------------------------------------------- unsigned bodies: capped, never logged


@pytest.mark.probe("slack http: unsigned bodies capped and never logged")
def test_an_unsigned_request_leaves_nothing_of_what_it_sent_in_the_logs(
        slack: SlackRequests, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = _form({**payload("slash_command"), "text": "add MALLORY-WAS-HERE"})

    r = slack.post(body, FORM, headers={"X-Slack-Request-Timestamp": str(int(time.time())),
                                        "X-Slack-Signature": "v0=" + "0" * 64})

    assert r.status == 401
    assert caplog.records, "the refusal is logged"
    assert not [rec for rec in caplog.records if "MALLORY" in rec.getMessage()]


@pytest.mark.probe("slack http: unsigned bodies capped and never logged")
def test_a_body_past_the_cap_is_refused_with_413_and_not_logged(
        slack: SlackRequests, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = urllib.parse.urlsplit(slack.events_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    conn.putrequest("POST", url.path)
    conn.putheader("Content-Type", FORM)
    conn.putheader("Content-Length", str(5 * 1024 * 1024))  # a 5 MB POST: refused on its headers
    conn.endheaders(b"text=" + b"x" * 1000)
    r = conn.getresponse()
    conn.close()

    assert r.status == 413
    assert max((len(rec.getMessage()) for rec in caplog.records), default=0) < 1000


@pytest.mark.probe("slack http: unsigned bodies capped and never logged")
def test_the_app_itself_refuses_a_body_past_the_cap_whatever_server_runs_it(
        slack_mona: Mona, web_api: WebApiStub) -> None:
    with WsgiServer(wsgi_app(slack_mona, build_app(slack_mona))) as bare:  # waitress's own limit is 1 GB
        requests = SlackRequests(bare.url, web_api)
        too_big = b"text=" + b"x" * MAX_BODY
        assert requests.post(too_big, FORM).status == 413
        assert requests.post(too_big, FORM, headers={}).status == 413
        assert requests.command("add Alex").status == 200  # a normal request still passes


# ---------------------------------------------------------------------------------- Socket Mode


class Link:
    """A connected Socket Mode session: mona's ``SocketMode`` against the stand-ins."""

    def __init__(self, applink: SocketModeStub, web_api: WebApiStub, requests: SlackRequests) -> None:
        self.applink = applink
        self.web_api = web_api
        self.requests = requests

    def envelope(self, kind: str, body: dict[str, Any], *, envelope_id: str | None = None,
                 on: int | None = None, **extra: Any) -> tuple[str, float]:
        envelope_id = envelope_id or str(uuid.uuid4())
        sent_at = self.applink.send({"envelope_id": envelope_id, "type": kind, "payload": body,
                                     "accepts_response_payload": kind != "events_api", **extra}, on=on)
        return envelope_id, sent_at

    def command(self, text: str, *, on: int | None = None) -> tuple[str, float]:
        body = payload("slash_command")
        body.update(command="/artist", text=text, response_url=self.requests.next_response_url(),
                    trigger_id=str(uuid.uuid4()))
        return self.envelope("slash_commands", body, on=on)

    def answer(self, envelope: tuple[str, float], *, nth: int = 1) -> dict[str, Any]:
        envelope_id, sent_at = envelope
        return self.applink.ack_for(envelope_id, sent_at=sent_at, nth=nth)


@pytest.fixture
def link(slack_mona: Mona, web_api: WebApiStub) -> Iterator[Link]:
    with SocketModeStub() as applink:
        web_api.socket_url = applink.url
        socket_mode = SocketMode(slack_mona, app_token=APP_TOKEN)
        socket_mode.connect()
        try:
            yield Link(applink, web_api, SlackRequests("http://127.0.0.1:9", web_api))
        finally:
            socket_mode.close()


@pytest.mark.probe("slack socket mode: an envelope delivered twice runs once")
def test_a_form_submission_delivered_three_times_stores_one_note(link: Link, slack_mona: Mona,
                                                                 web_api: WebApiStub) -> None:
    link.answer(link.command("add Alex"))
    card = link.answer(link.command("show Alex"))["payload"]
    link.answer(link.envelope("interactive", link.requests.click_payload(element(card, "Log interaction"))))
    view = web_api.wait_for("views.open")[0].body["view"]
    submission = link.requests.submission(view, {"kind": "call", "text": "Talked about the EP"})

    first = link.envelope("interactive", submission)
    same = link.envelope("interactive", submission, envelope_id=first[0])  # the same envelope again
    retry = link.envelope("interactive", submission, retry_attempt=1, retry_reason="timeout")  # a new one

    for sent, nth in ((first, 1), (same, 2), (retry, 1)):
        assert "payload" not in link.answer(sent, nth=nth)  # each is acknowledged (an empty ack closes the modal)
    web_api.wait_for("chat.postEphemeral")
    assert count(slack_mona, crm.Interaction) == 1
    assert len(web_api.calls_to("chat.postEphemeral")) == 1


@pytest.mark.probe("slack socket mode: an envelope delivered twice runs once")
def test_a_click_delivered_twice_moves_once_and_posts_no_warning(link: Link, slack_mona: Mona,
                                                                 web_api: WebApiStub) -> None:
    link.answer(link.command("add Alex"))
    menu = element(link.answer(link.command("show Alex"))["payload"], "Move to…")
    click = link.requests.click_payload(menu, option=menu["options"][0])

    first = link.envelope("interactive", click)
    again = link.envelope("interactive", click, envelope_id=first[0])
    link.answer(first), link.answer(again, nth=2)

    web_api.wait_for(click["response_url"].removeprefix(web_api.url + "/"))
    assert events(slack_mona, "artist.stage_changed") == 1
    assert len(web_api.posted_to(click["response_url"])) == 1


@pytest.mark.probe("slack socket mode: an envelope delivered twice runs once")
def test_a_slash_command_delivered_twice_adds_one_artist_and_both_get_the_same_answer(
        link: Link, slack_mona: Mona) -> None:
    body = payload("slash_command")
    body.update(command="/artist", text="add Alex", trigger_id=str(uuid.uuid4()))

    first = link.answer(link.envelope("slash_commands", body))
    second = link.answer(link.envelope("slash_commands", body, retry_attempt=1, retry_reason="timeout"))

    assert first["payload"] == second["payload"] and "Alex" in shown(first["payload"])
    assert artist_names(slack_mona) == ["Alex"]


@pytest.mark.probe("slack socket mode: a connection dropped without a close frame")
def test_a_connection_that_goes_silent_is_replaced_within_ten_seconds(link: Link, web_api: WebApiStub) -> None:
    link.answer(link.command("list"))
    link.applink.go_silent()  # no close frame, no answer to pings: a dropped TCP connection

    link.applink.wait_connections(2, timeout=10)  # mona asked Slack for a new one, and connected

    assert len(web_api.calls_to("apps.connections.open")) == 2
    assert "Alex" in shown(link.answer(link.command("add Alex"))["payload"])


@pytest.mark.probe("slack socket mode: acknowledgements during a refresh")
def test_envelopes_arriving_while_slack_refreshes_the_connection_are_acknowledged_in_time(
        link: Link, slack_mona: Mona) -> None:
    link.applink.refresh()
    on_old = [link.command(f"add Old {n}", on=1) for n in range(3)]  # Slack still delivers on the old one
    link.applink.wait_connections(2)
    on_new = [link.command(f"add New {n}", on=2) for n in range(2)]

    answers = [link.answer(sent) for sent in on_old + on_new]  # each within Slack's 3 seconds

    assert all("payload" in a for a in answers)
    assert sorted(artist_names(slack_mona)) == ["New 0", "New 1", "Old 0", "Old 1", "Old 2"]


def test_socket_mode_refuses_to_start_without_an_app_token(slack_mona: Mona) -> None:
    with pytest.raises(ValueError, match="SLACK_APP_TOKEN"):
        SocketMode(slack_mona)
