"""/artist import from Slack, end to end: a CSV file reached through the message shortcut
"Import metrics" or sent to mona in a DM, fetched from the local stand-in of Slack's Web API
(files.info, then the file's download with the bot token), imported on real PostgreSQL through the
same command as on Discord and in the console, and the report sent back to the person."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bot.app import Mona
from bot.console import ConsoleBot
from bot.slack import IMPORT_METRICS, SHORTCUTS, SocketMode, build_app, wsgi_app
from core.metrics import MetricValue
from handlers.args import MAX_UPLOAD
from tests.slack_stub import (
    APP_TOKEN,
    BOT_TOKEN,
    Call,
    SlackRequests,
    SocketModeStub,
    WebApiStub,
    WsgiServer,
    signed_headers,
)
from tests.test_slack import shown

VIEWER = "UVIEWER01"
DM = "D0ADMIN01"
GOOD = "artist,date,instagram_followers,engagement_rate\nAlex,2026-11-02,12000,4.2\nNoé,2026-11-02,5000,3.1\n"
#: Noé's engagement rate is over 100 %: that line is refused whole, followers included.
ONE_BAD = "artist,date,instagram_followers,engagement_rate\nAlex,2026-11-02,12000,4.2\nNoé,2026-11-02,5000,250\n"


@pytest.fixture
def slack_mona(slack_mona: Mona) -> Mona:
    """mona on Slack (``tests.conftest``), with the artists the files name."""
    console = ConsoleBot(slack_mona.dispatcher)
    for name in ("Alex", "Noé"):
        assert not console.run(f"/artist add {name}").error
    return slack_mona


@contextlib.contextmanager
def serve(mona: Mona, web_api: WebApiStub, **options: Any) -> Iterator[SlackRequests]:
    """mona's Events API endpoint (waitress, the real Bolt app built with ``options``)."""
    with WsgiServer(wsgi_app(mona, build_app(mona, **options))) as server:
        yield SlackRequests(server.url, web_api)


@pytest.fixture
def slack(slack_mona: Mona, web_api: WebApiStub) -> Iterator[SlackRequests]:
    with serve(slack_mona, web_api) as requests:
        yield requests


def stored(mona: Mona) -> list[tuple[str, str, Decimal, str]]:
    with mona.db.uow() as uow:
        rows = uow.session.execute(select(MetricValue).order_by(MetricValue.artist_id, MetricValue.metric)).scalars()
        return [(str(r.artist_id), r.metric, r.value, r.source) for r in rows]


def answers(web_api: WebApiStub, response_url: str, count: int = 1) -> list[Call]:
    """What mona posted to a shortcut's response_url, once there are ``count`` posts."""
    return web_api.wait_for(response_url.removeprefix(web_api.url + "/"), count, timeout=10)


def import_with_shortcut(slack: SlackRequests, web_api: WebApiStub, files: list[dict[str, Any]],
                         **kw: Any) -> dict[str, Any]:
    """Choose "Import metrics" on a message holding ``files``: the acknowledgement is empty and
    immediate, the one answer comes through the response_url."""
    r, response_url = slack.shortcut(IMPORT_METRICS.callback_id, files, **kw)
    assert (r.status, r.body) == (200, b"")
    [answer] = answers(web_api, response_url)
    return answer.body


# ----------------------------------------------------------------------- the message shortcut


def test_a_csv_file_imported_with_the_shortcut_reports_each_line_to_the_person_alone(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    file = web_api.share_file("metrics.csv", GOOD.encode())

    report = import_with_shortcut(slack, web_api, [file])

    assert report["response_type"] == "ephemeral" and report["replace_original"] is False
    assert "Imported metrics.csv" in shown(report)
    assert "4 values imported from 2 lines; 0 lines refused." in shown(report)
    assert stored(slack_mona) == [("1", "engagement_rate", Decimal("4.2"), "csv:metrics.csv"),
                                  ("1", "instagram_followers", Decimal(12000), "csv:metrics.csv"),
                                  ("2", "engagement_rate", Decimal("3.1"), "csv:metrics.csv"),
                                  ("2", "instagram_followers", Decimal(5000), "csv:metrics.csv")]
    # The file was looked up and downloaded with the bot token, nothing posted in the channel.
    assert [c.body["file"] for c in web_api.calls_to("files.info")] == [file["id"]]
    assert [c.token for c in web_api.calls_to("files.info") + web_api.calls_to(f"download/{file['id']}")] == [
        BOT_TOKEN, BOT_TOKEN]
    assert not web_api.calls_to("chat.postMessage")


def test_a_refused_line_is_reported_with_its_reason_and_nothing_of_it_is_kept(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    report = import_with_shortcut(slack, web_api, [web_api.share_file("week 45.csv", ONE_BAD.encode())])

    text = shown(report)
    assert "2 values imported from 1 lines; 1 lines refused." in text
    assert "Line 3 (Noé): --engagement-rate is a percentage: at most 100, not 250." in text
    assert [(artist, metric) for artist, metric, _value, _source in stored(slack_mona)] == [
        ("1", "engagement_rate"), ("1", "instagram_followers")]


@pytest.mark.parametrize("told", [True, False], ids=["as-slack-says", "larger-than-slack-said"])
def test_a_file_over_1_mb_is_refused_and_nothing_is_imported(slack: SlackRequests, slack_mona: Mona,
                                                             web_api: WebApiStub, told: bool) -> None:
    big = (GOOD + "Alex,2026-11-01,11000,4.0\n" * (MAX_UPLOAD // 20)).encode()
    assert len(big) > MAX_UPLOAD
    file = web_api.share_file("everything.csv", big, size=None if told else 40_000)

    report = import_with_shortcut(slack, web_api, [file])

    assert report["response_type"] == "ephemeral"
    assert "everything.csv is too large: at most 1 MB." in shown(report)
    assert stored(slack_mona) == []
    # Slack's word on the size spares the download; when it was wrong, no more than the cap was read.
    assert len(web_api.calls_to(f"download/{file['id']}")) == (0 if told else 1)


def test_a_file_that_is_not_csv_is_refused_with_what_to_send_instead(slack: SlackRequests, slack_mona: Mona,
                                                                     web_api: WebApiStub) -> None:
    file = web_api.share_file("chart.png", b"\x89PNG\r\n\x1a\n" + bytes(200))

    report = import_with_shortcut(slack, web_api, [file])

    assert "chart.png is not a CSV file: send the metrics as a .csv file" in shown(report)
    assert stored(slack_mona) == []
    assert not web_api.calls_to(f"download/{file['id']}")


def test_a_member_without_the_right_to_edit_artists_is_refused_and_nothing_is_kept(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    report = import_with_shortcut(slack, web_api, [web_api.share_file("metrics.csv", GOOD.encode())], user=VIEWER)

    assert report["response_type"] == "ephemeral"
    assert "role" in report["text"] and "viewer" in shown(report)
    assert stored(slack_mona) == []


def test_the_shortcut_on_a_message_without_a_file_says_what_it_needs(slack: SlackRequests,
                                                                      web_api: WebApiStub) -> None:
    report = import_with_shortcut(slack, web_api, [])

    assert "This message holds no file: choose Import metrics on a message with the CSV file attached." in shown(report)


@pytest.mark.parametrize(("error", "said"), [
    ("file_not_found", "mona cannot open metrics.csv: invite mona to the channel it was shared in"),
    ("missing_scope", "the app needs the files:read scope"),
    ("internal_error", "Slack would not hand over metrics.csv (internal_error); try again in a moment."),
])
def test_a_file_slack_will_not_hand_over_is_answered_with_what_to_do(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub, error: str, said: str) -> None:
    file = web_api.share_file("metrics.csv", GOOD.encode())
    web_api.errors["files.info"] = error

    report = import_with_shortcut(slack, web_api, [file])

    assert said in shown(report)
    assert stored(slack_mona) == []


def test_the_bot_token_is_never_sent_to_a_file_address_outside_slack(slack: SlackRequests, slack_mona: Mona,
                                                                      web_api: WebApiStub) -> None:
    with WebApiStub() as elsewhere:
        file = web_api.share_file("metrics.csv", GOOD.encode(), download_url=f"{elsewhere.url}/files-pri/x/metrics.csv")

        report = import_with_shortcut(slack, web_api, [file])

        assert elsewhere.calls == []
    assert "Slack would not hand over metrics.csv" in shown(report)
    assert stored(slack_mona) == []


def test_an_import_that_takes_a_while_says_it_is_under_way_before_its_report(
        slack_mona: Mona, web_api: WebApiStub) -> None:
    with serve(slack_mona, web_api, progress_after=0) as slack:
        r, response_url = slack.shortcut(IMPORT_METRICS.callback_id, [web_api.share_file("metrics.csv", GOOD.encode())])
        assert r.status == 200

        under_way, report = answers(web_api, response_url, 2)

    assert shown(under_way.body) == "Importing metrics.csv…"
    assert under_way.body["response_type"] == "ephemeral"
    assert "4 values imported from 2 lines" in shown(report.body)


# ------------------------------------------------------------------------------- a DM with mona


def test_a_csv_file_sent_to_mona_in_a_dm_is_imported_and_answered_in_that_dm(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    file = web_api.share_file("metrics.csv", GOOD.encode())

    r = slack.event(slack.dm_file_share([file]))

    assert r.status == 200
    [answer] = web_api.wait_messages(DM, timeout=10)
    assert "4 values imported from 2 lines; 0 lines refused." in shown(answer)
    assert len(stored(slack_mona)) == 4
    assert web_api.calls_to(f"download/{file['id']}")[0].token == BOT_TOKEN


def test_a_non_csv_file_sent_in_a_dm_is_refused_there(slack: SlackRequests, slack_mona: Mona,
                                                      web_api: WebApiStub) -> None:
    slack.event(slack.dm_file_share([web_api.share_file("chart.png", b"\x89PNG\r\n\x1a\n")]))

    [answer] = web_api.wait_messages(DM, timeout=10)
    assert "chart.png is not a CSV file" in shown(answer)
    assert stored(slack_mona) == []


def test_a_file_sent_once_is_imported_once_even_when_slack_delivers_the_event_again(
        slack: SlackRequests, slack_mona: Mona, web_api: WebApiStub) -> None:
    body = json.dumps(slack.event_body(slack.dm_file_share([web_api.share_file("metrics.csv", GOOD.encode())]))).encode()

    first = slack.post(body, "application/json")
    again = slack.post(body, "application/json", headers={**signed_headers(body), "X-Slack-Retry-Num": "1",
                                                          "X-Slack-Retry-Reason": "http_timeout"})

    assert (first.status, again.status) == (200, 200)
    web_api.wait_messages(DM, timeout=10)
    with pytest.raises(AssertionError):  # no second answer comes
        web_api.wait_messages(DM, 2, timeout=1)
    assert len(stored(slack_mona)) == 4


def test_other_messages_are_acknowledged_and_left_alone(slack: SlackRequests, slack_mona: Mona,
                                                        web_api: WebApiStub) -> None:
    in_a_channel = {**slack.dm_file_share([web_api.share_file("metrics.csv", GOOD.encode())], channel="C0CRM0001"),
                    "channel_type": "channel"}
    typed_in_the_dm = {key: value for key, value in slack.dm_file_share([]).items() if key not in ("subtype", "files")}
    typed_in_the_dm["text"] = "hello"

    for event in (in_a_channel, typed_in_the_dm):
        assert slack.event(event).status == 200

    assert stored(slack_mona) == []
    assert not web_api.calls_to("files.info") and not web_api.calls_to("chat.postMessage")


def test_the_events_address_answers_slacks_check_before_any_event_is_sent(slack: SlackRequests) -> None:
    # Slack checks the manifest's event_subscriptions.request_url (HTTP mode) with a challenge.
    r = slack.post(json.dumps({"token": "gIkuvaNzQIHg97ATvDxqgjtO", "type": "url_verification",
                               "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}).encode(),
                   "application/json")

    assert r.status == 200
    assert r.json == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_over_socket_mode_a_file_in_a_dm_is_acknowledged_at_once_then_imported(
        slack_mona: Mona, web_api: WebApiStub) -> None:
    slack = SlackRequests("http://127.0.0.1:9", web_api)  # only builds payloads here
    with SocketModeStub() as applink:
        web_api.socket_url = applink.url
        handler = SocketMode(slack_mona, app_token=APP_TOKEN)
        try:
            handler.connect()
            envelope_id = str(uuid.uuid4())
            event = slack.dm_file_share([web_api.share_file("metrics.csv", GOOD.encode())])
            applink.send({"envelope_id": envelope_id, "type": "events_api", "accepts_response_payload": False,
                          "retry_attempt": 0, "retry_reason": "", "payload": slack.event_body(event)})

            ack = applink.ack_for(envelope_id)
            [answer] = web_api.wait_messages(DM, timeout=10)
        finally:
            applink.hang_up()
            handler.close()

    assert ack["envelope_id"] == envelope_id
    assert "4 values imported from 2 lines" in shown(answer)
    assert len(stored(slack_mona)) == 4


# --------------------------------------------------------------- typed, and in the manifest


@pytest.mark.parametrize("typed", ["import", "import metrics.csv"])
def test_artist_import_typed_in_slack_says_to_use_the_shortcut_or_a_dm(slack: SlackRequests, slack_mona: Mona,
                                                                       typed: str) -> None:
    r = slack.command(typed)

    assert r.status == 200
    assert r.json["response_type"] == "ephemeral"
    text = shown(r.json)
    assert "Slack commands cannot carry a file, so /artist import starts from the file itself" in text
    assert "choose Import metrics" in text and "send the file to mona in a direct message" in text
    assert "a line of column names" in text  # what the file holds, from the command's help
    assert stored(slack_mona) == []


def test_artist_import_typed_elsewhere_keeps_saying_to_attach_the_file(bot: ConsoleBot) -> None:
    r = bot.run("/artist import metrics.csv")

    assert r.error and "attach it to the command on Discord, or run mona import FILE" in r.text
    assert "Import metrics" not in r.text


def test_the_manifest_declares_the_shortcut_the_scope_and_the_dm_events_the_import_needs() -> None:
    manifest = yaml.safe_load((Path(__file__).resolve().parent.parent / "slack-manifest.yml").read_text())

    declared = {s["callback_id"]: s for s in manifest["features"]["shortcuts"]}
    for shortcut in SHORTCUTS:
        assert declared[shortcut.callback_id]["type"] == "message"
        assert declared[shortcut.callback_id]["name"] == shortcut.name
    assert {"files:read", "im:history", "chat:write"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    assert "message.im" in manifest["settings"]["event_subscriptions"]["bot_events"]
    # People can write to mona in its Messages tab.
    assert manifest["features"]["app_home"] == {"messages_tab_enabled": True, "messages_tab_read_only_enabled": False}
