"""Workflows (issue 11): a trigger, conditions and steps written in YAML from chat, run on the job
workers against PostgreSQL, with their history, dry runs, replays and approvals.

The console adapter drives them here; events come from real commands (a deal won, an artist added),
and what a run posts arrives through the console notifier (``out``).
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import jobs.flows
from bot.app import Mona
from bot.console import ConsoleBot
from core import workflows as flows
from core.db import utcnow
from core.workflows import Workflow, WorkflowRun
from jobs.flows import flows_once, prune_once

WINS = """name: Wins
trigger: deal.won
when:
  - value >= 5000
steps:
  - post: {to: "#wins", text: "Deal #{deal_id} won: {value} {currency}"}
  - command: "/artist note #{artist_id} Deal won (#{deal_id})"
"""


def runs(mona: Mona) -> list[WorkflowRun]:
    with mona.db.uow() as uow:
        found = list(uow.session.scalars(select(WorkflowRun).order_by(WorkflowRun.id)))
        for r in found:
            uow.session.expunge(r)
    return found


def press(bot: ConsoleBot, action: str, value: str) -> Any:
    """A click on a button mona posted (an approval's Approve), as the console sends it."""
    return bot.dispatcher.dispatch(bot._inv(kind="action", name=action, value=value))


def win(bot: ConsoleBot, artist: str, amount: int, title: str = "Showcase") -> None:
    assert not bot.run(f"/artist add {artist}").error
    deal = bot.run(f"/artist deal {artist} {amount} {title}")
    assert not deal.error, deal.text
    deal_id = deal.text.split("#", 1)[1].split()[0].rstrip(":.")
    assert not bot.run(f"/artist deal-status {deal_id} won").error


def test_a_won_deal_over_the_threshold_runs_the_workflow_and_its_steps_post_and_act(bot: ConsoleBot, mona: Mona,
                                                                                    out: io.StringIO) -> None:
    saved = bot.run("/flow add " + WINS)
    assert saved.text == "Workflow Wins is saved and enabled: it runs on deal.won from now on.", saved.text
    win(bot, "Alex Blue", 2000, "Small gig")  # under the threshold: no run
    win(bot, "Noé", 8000)
    mona.run_pending_jobs()
    [run] = runs(mona)
    assert run.status == "done" and run.version == 1 and run.trigger["deal_id"] == 2
    assert [s["status"] for s in run.steps] == ["done", "done"]
    assert f"[#wins] Deal #2 won: {run.trigger['value']} EUR" in out.getvalue()
    card = bot.run("/artist show Noé").plain_text()
    assert "Deal won (#2)" in card
    listed = bot.run("/flow runs Wins").text
    assert listed.startswith(f"#{run.id} done v1")


def test_a_new_workflow_sees_only_events_after_it_was_enabled(bot: ConsoleBot, mona: Mona) -> None:
    win(bot, "Noé", 8000)  # before the workflow exists
    assert not bot.run("/flow add " + WINS).error
    mona.run_pending_jobs()
    assert runs(mona) == []
    assert bot.run("/flow disable Wins").text == "Wins is disabled."
    win(bot, "Alex", 9000)
    mona.run_pending_jobs()
    assert runs(mona) == []
    assert not bot.run("/flow enable Wins").error
    mona.run_pending_jobs()
    assert runs(mona) == []  # what happened while it was off is not run now


@pytest.mark.parametrize(("source", "message"), [
    ("name: X\ntrigger: deal.won\nsteps:\n  - post: {to: '#a', text: 'hi'\n",
     "The YAML does not parse at line 4, column"),
    ("name: X\ntrigger: {cron: '0 25 * * *'}\nsteps:\n  - command: /artist list\n",
     "In the cron schedule 0 25 * * *, the hour field 25 is not valid."),
    ("name: X\ntrigger: deal.won\nwhen: [genre == pop]\nsteps:\n  - command: /artist list\n",
     "The trigger deal.won has no field genre; it has "),
    ("name: X\ntrigger: deal.won\nsteps:\n  - command: /artst list\n", "Unknown command /artst."),
    # Unquoted, YAML reads " #…" as a comment: the command left has no artist, and says so.
    ("name: X\ntrigger: deal.won\nsteps:\n  - command: /artist note #{artist_id} won\n",
     "Something is missing. Usage: /artist note ARTIST TEXT"),
    ("name: X\ntrigger: deal.won\nsteps:\n  - post: {to: '#wins', text: 'won by {genre}'}\n",
     "Step 1 uses {genre}, which the trigger deal.won does not give; it has "),
    ("name: X\ntrigger: deal.lots\nsteps:\n  - command: /artist list\n", "trigger is an event"),
    ("name: X\ntrigger: deal.won\nsteps:\n  - wait: 5m\n", "Step 1 is one of command, post, dm_owner"),
    ("name: X\ntrigger: deal.won\nwhen: [value >= lots]\nsteps:\n  - command: /artist list\n",
     ">= compares numbers: value >= lots"),
])
def test_a_definition_that_is_wrong_says_where_and_stores_nothing(bot: ConsoleBot, mona: Mona, source: str,
                                                                   message: str) -> None:
    r = bot.run("/flow add " + source)
    assert r.error and message in r.text, r.text
    with mona.db.uow() as uow:
        assert uow.session.scalars(select(Workflow)).first() is None


def test_every_edit_is_a_new_version_and_a_run_keeps_the_version_it_ran(bot: ConsoleBot, mona: Mona) -> None:
    assert not bot.run("/flow add " + WINS).error
    win(bot, "Noé", 8000)
    mona.run_pending_jobs()
    edited = bot.run("/flow add " + WINS.replace("value >= 5000", "value >= 100"))
    assert edited.text == "Workflow Wins is now at version 2."
    [run] = runs(mona)
    assert run.version == 1
    offer = bot.run(f"/flow replay {run.id}")
    assert [b.value for b in offer.buttons] == [f"/flow replay {run.id} --version ran",
                                                 f"/flow replay {run.id} --version current"]
    again = bot.run(f"/flow replay {run.id} --version current --from-step 2")
    assert again.text == f"Run #{run.id + 1} replays #{run.id} with version 2 from step 2."
    mona.run_pending_jobs()
    replayed = runs(mona)[-1]
    assert replayed.status == "done" and replayed.replay_of == run.id and [s["step"] for s in replayed.steps] == [1]


def test_a_dry_run_says_which_conditions_hold_and_what_each_step_would_do_and_changes_nothing(
        bot: ConsoleBot, mona: Mona, out: io.StringIO) -> None:
    assert not bot.run("/flow add " + WINS).error
    r = bot.run('/flow test Wins --event {"value": 9000, "currency": "EUR", "deal_id": 7, "artist_id": 3}')
    text = r.plain_text()
    assert r.text == "It would run."
    assert "✓ value >= 5000" in text
    assert "1. would post in wins: Deal #7 won: 9000 EUR" in text
    assert "2. would run /artist note #3 Deal won (#7)" in text
    low = bot.run('/flow test Wins --event {"value": "10"}')
    assert low.text == "It would not run: a condition does not hold." and "✗ value >= 5000" in low.plain_text()
    assert runs(mona) == [] and out.getvalue() == ""
    bad = bot.run("/flow test Wins --event [1, 2")
    assert bad.error and bad.text.startswith("--event is a JSON object")


def test_a_failing_step_is_retried_then_the_run_fails_the_owner_is_told_and_the_error_workflow_runs(
        bot: ConsoleBot, mona: Mona, out: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs.flows, "RETRY_BASE_S", 0.0)  # the retries are due at once
    assert not bot.run("/flow add name: Oops\ntrigger: manual\nsteps:\n  - post: {to: '#ops', text: '{workflow} failed: {error}'}\n").error
    assert not bot.run("/flow add name: Breaks\ntrigger: manual\non_error: Oops\nsteps:\n"
                       "  - command: /artist show Nobody At All\n").error
    queued = bot.run("/flow run Breaks")
    assert queued.text.startswith("Run #1 of Breaks is queued")
    mona.run_pending_jobs(rounds=40)
    first, handler = runs(mona)
    assert first.status == "failed" and "Nobody At All" in first.error
    assert [s["status"] for s in first.steps] == ["retrying", "retrying", "failed"]
    assert handler.workflow_id != first.workflow_id and handler.status == "done"
    told = out.getvalue()
    assert "Run #1 of Breaks failed at step 1" in told
    assert "[#ops] Breaks failed: " in told


def test_an_approval_waits_for_someone_else_and_goes_on_when_approved(bot: ConsoleBot, mona: Mona,
                                                                     out: io.StringIO) -> None:
    assert not bot.run("/flow add name: Big spend\ntrigger: manual\nsteps:\n"
                       "  - approval: {to: '#approvals', timeout: 1h, text: 'Spend it?'}\n"
                       "  - post: {to: '#ops', text: 'approved and done'}\n").error
    bot.run("/flow run Big spend")
    mona.run_pending_jobs()
    [run] = runs(mona)
    assert run.status == "waiting" and "Spend it?" in out.getvalue()
    self_approved = press(bot, "flow.approve", str(run.id))
    assert self_approved.error and self_approved.text == "You triggered this run: someone else approves it."
    sam = bot.as_user("USAM", "Sam")
    bot.run("/mona role @Sam manager")
    approved = press(sam, "flow.approve", str(run.id))
    assert approved.text == f"Approved by Sam: run #{run.id} goes on.", approved.text
    mona.run_pending_jobs()
    [run] = runs(mona)
    assert run.status == "done" and "[#ops] approved and done" in out.getvalue()


def test_an_approval_nobody_answers_times_out_and_the_run_is_rejected(bot: ConsoleBot, mona: Mona) -> None:
    assert not bot.run("/flow add name: Wait\ntrigger: manual\nsteps:\n  - approval: {to: '#a', timeout: 1m}\n").error
    bot.run("/flow run Wait")
    mona.run_pending_jobs()
    with mona.db.uow() as uow:
        run = uow.session.scalars(select(WorkflowRun)).one()
        run.wake_at = utcnow() - dt.timedelta(seconds=1)
        uow.commit()
    flows_once(mona.runtime)
    mona.run_pending_jobs()
    [run] = runs(mona)
    assert run.status == "rejected" and run.error == "no answer in time"


def test_workflows_triggering_each_other_stop_at_the_depth_limit_and_say_so(bot: ConsoleBot, mona: Mona) -> None:
    # Each new artist makes another: an endless chain without the limit.
    assert not bot.run("/flow add name: Echo\ntrigger: artist.created\nsteps:\n  - command: /artist add {name} again\n").error
    bot.run("/artist add Seed")
    mona.run_pending_jobs(rounds=60)
    found = runs(mona)
    assert [r.depth for r in found] == list(range(flows.MAX_DEPTH + 1))
    assert found[-1].status == "failed" and found[-1].error.startswith("Stopped: 5 workflows in a row")
    assert all(r.status == "done" for r in found[:-1])


def test_a_cron_workflow_runs_once_each_time_it_falls_due(bot: ConsoleBot, mona: Mona, out: io.StringIO) -> None:
    assert not bot.run("/flow add name: Monday\ntrigger: {cron: '0 9 * * 1'}\nsteps:\n"
                       "  - post: {to: '#team', text: 'Week of {date}'}\n").error
    paris = ZoneInfo("Europe/Paris")
    monday = dt.datetime(2026, 12, 7, 8, 59, tzinfo=paris).astimezone(dt.UTC)
    assert flows_once(mona.runtime, now=monday) == 0  # the first look only notes the time
    assert flows_once(mona.runtime, now=monday + dt.timedelta(minutes=2)) == 1
    assert flows_once(mona.runtime, now=monday + dt.timedelta(minutes=3)) == 0
    mona.run_pending_jobs()
    assert "[#team] Week of 2026-12-07" in out.getvalue()


def test_run_history_is_pruned_by_age(bot: ConsoleBot, mona: Mona) -> None:
    assert not bot.run("/flow add name: Ping\ntrigger: manual\nsteps:\n  - post: {to: '#a', text: 'ping'}\n").error
    for _ in range(3):
        bot.run("/flow run Ping")
    mona.run_pending_jobs()
    with mona.db.uow() as uow:
        for r in uow.session.scalars(select(WorkflowRun).limit(2)):
            r.created_at = utcnow() - dt.timedelta(days=31)
        uow.commit()
    assert prune_once(mona.runtime) == 2
    assert len(runs(mona)) == 1


def test_stats_count_runs_success_and_errors(bot: ConsoleBot, mona: Mona) -> None:
    assert not bot.run("/flow add name: Ping\ntrigger: manual\nsteps:\n  - post: {to: '#a', text: 'ping'}\n").error
    bot.run("/flow run Ping")
    mona.run_pending_jobs()
    stats = bot.run("/flow stats").plain_text()
    assert "Ping" in stats and "Success: 100 %" in stats


def test_the_list_show_and_templates(bot: ConsoleBot, mona: Mona) -> None:
    assert bot.run("/flow list").text.startswith("No workflow yet")
    assert not bot.run("/flow add --template wins").error
    listed = bot.run("/flow list").text
    assert listed.startswith("● Congratulate won deals · deal.won · v1")
    shown = bot.run("/flow show congratulate won deals").plain_text()
    assert "Trigger: deal.won" in shown and "Conditions: value >= 1000" in shown
    assert "1. post in wins: Deal #{deal_id} won: {value} {currency}" in shown
    missing = bot.run("/flow show Nope")
    assert missing.error and missing.text.startswith("No workflow is called Nope.")
    assert "welcome" in bot.run("/flow templates").plain_text()


def test_a_viewer_cannot_add_workflows(mona: Mona) -> None:
    viewer = ConsoleBot(mona.dispatcher, user_id="V1", user_name="Vic")
    r = viewer.run("/flow add " + WINS)
    assert r.error and "Your role is viewer" in r.text


# ---------------------------------------------------------------- through Discord and the HTTP server


def test_on_discord_flow_add_opens_a_form_whose_yaml_is_saved_with_the_channel_picked(mona: Mona) -> None:
    import dataclasses

    from bot.app import bootstrap
    from tests.discord_gateway_stub import ADMIN_ID, CHANNEL_ID, GUILD_ID, LiveDiscord, components_of
    from tests.test_discord import embed_of, embed_text

    settings = dataclasses.replace(mona.settings, admins=mona.settings.admins | {f"discord:{ADMIN_ID}"},
                                   discord_guild_ids=(int(GUILD_ID),))
    with LiveDiscord(bootstrap(settings, migrate=False, db=mona.db)) as live:
        guided = live.command("flow add", {})
        assert guided.body["type"] == 9
        assert [c["component"]["custom_id"] for c in guided.body["data"]["components"]] == ["name", "trigger", "when",
                                                                                          "steps"]
        refused = live.submit(guided.body["data"]["custom_id"], {"name": "Live", "trigger": "stream.started",
                                                                 "when": "", "steps": "post #live We are live!"})
        assert embed_of(refused.body["data"])["description"].startswith(
            "⚠️ Steps, one a line: Step 1: on Discord, give the channel as a link")
        assert [c["label"] for c in components_of(refused.body["data"])] == ["Open the form again"]
        opened = live.command("flow add", {"template": "wins"})
        assert opened.body["type"] == 9, opened.body
        form = opened.body["data"]
        [field] = [c["component"] for c in form["components"]]
        assert field["style"] == 2 and "trigger: deal.won" in field["value"]
        wrong = live.submit(form["custom_id"], {"definition": field["value"]})  # "#wins" is no Discord channel
        assert "on Discord, give the channel as a link" in embed_text(embed_of(wrong.body["data"]))
        fixed = field["value"].replace('"#wins"', f'"<#{CHANNEL_ID}>"')
        saved = live.submit(form["custom_id"], {"definition": fixed})
        assert "Workflow Congratulate won deals is saved and enabled" in embed_text(embed_of(saved.body["data"]))
    with mona.db.uow() as uow:
        w = uow.session.scalars(select(Workflow)).one()
        d = flows.definition_of(uow, w)
        assert d.steps[0].args["to"] == CHANNEL_ID and d.steps[0].args["platform"] == "discord"


def test_a_signed_webhook_call_runs_its_workflow_and_bad_calls_get_a_4xx(bot: ConsoleBot, mona: Mona,
                                                                       out: io.StringIO) -> None:
    import json
    import urllib.error
    import urllib.request

    from bot import health
    from tests.slack_stub import WsgiServer

    assert not bot.run("/flow add name: Form lead\ntrigger: webhook\nsteps:\n"
                       "  - post: {to: '#leads', text: 'New lead: {artist}'}\n").error
    with mona.db.uow() as uow:
        secret = uow.session.scalars(select(Workflow)).one().secret

    def app(environ: Any, start_response: Any) -> Any:
        return health.answer(mona, environ, start_response)

    def post(path: str, body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"} | ({"X-Mona-Signature": signature} if signature else {})
        request = urllib.request.Request(server.url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    body = json.dumps({"artist": "Alex Blue"}).encode()
    with WsgiServer(app, max_request_body_size=health.MAX_BODY) as server:
        assert post("/hooks/form-lead", body, flows.signature(secret, body)) == (202, {"run": 1})
        assert post("/hooks/form-lead", body, "sha256=" + "0" * 64)[0] == 401
        assert post("/hooks/form-lead", body, None)[0] == 401
        assert post("/hooks/nope", body, flows.signature(secret, body))[0] == 404
        assert post("/hooks/form-lead", b"[1]", flows.signature(secret, b"[1]"))[0] == 400
        big = b'{"x": "' + b"a" * (flows.MAX_HOOK_BODY + 10) + b'"}'
        assert post("/hooks/form-lead", big, flows.signature(secret, big))[0] == 413
    mona.run_pending_jobs()
    assert [r.status for r in runs(mona)] == ["done"]
    assert "[#leads] New lead: Alex Blue" in out.getvalue()


def test_a_moderation_case_triggers_a_workflow_with_its_fields(bot: ConsoleBot, mona: Mona, out: io.StringIO) -> None:
    assert not bot.run("/flow add name: Bans\ntrigger: case.created\nwhen: {all: [action == ban, automatic == false]}\n"
                       "steps:\n  - post: {to: '#mods', text: '{user_name} banned on {platform}'}\n").error
    assert not bot.run("/mod warn @spammy calm down --in twitch:123").error
    assert not bot.run("/mod ban @spammy raid --in twitch:123").error
    mona.run_pending_jobs()
    assert [r.trigger["action"] for r in runs(mona)] == ["ban"]
    assert "[#mods] spammy banned on twitch" in out.getvalue()


def test_the_stuck_template_writes_to_the_owner_once_an_artist_has_spent_14_days_in_a_stage(
        bot: ConsoleBot, mona: Mona, out: io.StringIO) -> None:
    from core.artists import StageStay
    from jobs.ticker import stuck_once

    assert not bot.run("/flow add --template stuck").error
    assert not bot.run("/artist add Alex Blue").error
    with mona.db.uow() as uow:
        stay = uow.session.scalars(select(StageStay)).one()
        stay.entered_at = utcnow() - dt.timedelta(days=8)
        uow.commit()
    assert stuck_once(mona.runtime) == 1  # 7 days: told, but the workflow waits for 14
    assert stuck_once(mona.runtime) == 0
    mona.run_pending_jobs()
    assert runs(mona) == []
    assert stuck_once(mona.runtime, now=utcnow() + dt.timedelta(days=7)) == 1
    mona.run_pending_jobs()
    [run] = runs(mona)
    assert run.status == "done" and run.trigger["days"] == 14
    assert "Alex Blue has been in Prospection for 14 days: time for a follow-up?" in out.getvalue()


def test_the_guided_form_builds_the_yaml_and_puts_each_error_beside_its_field(bot: ConsoleBot, mona: Mona) -> None:
    form = bot.run("/flow add").modal
    assert form is not None and [i.name for i in form.inputs] == ["name", "trigger", "when", "steps"]
    values = {"name": "Wins", "trigger": "deal.won", "when": "value >= 5000",
              "steps": "post #wins Deal #{deal_id} won\ndelay 10m\napproval #approvals 1h Invoice it?"}
    bad_trigger = bot.submit(form, values | {"trigger": "cron 0 25 * * *"})
    assert bad_trigger.field_errors == {"trigger": "In the cron schedule 0 25 * * *, the hour field 25 is not valid."}
    bad_when = bot.submit(form, values | {"when": "genre == pop"})
    assert list(bad_when.field_errors) == ["when"] and "has no field genre" in bad_when.field_errors["when"]
    bad_step = bot.submit(form, values | {"steps": "shout #wins hello"})
    assert list(bad_step.field_errors) == ["steps"] and bad_step.field_errors["steps"].startswith("Line 1: a step")
    saved = bot.submit(form, values)
    assert saved.text == "Workflow Wins is saved and enabled: it runs on deal.won from now on."
    shown = bot.run("/flow show Wins").plain_text()
    assert "1. post in wins: Deal #{deal_id} won" in shown and "3. ask approvals for an approval (within 3600 s)" in shown


def test_on_slack_an_approval_is_posted_with_buttons_and_someone_elses_click_lets_the_run_go_on(
        slack_mona: Mona, web_api: Any) -> None:
    from bot.notify_slack import slack_notifier
    from bot.slack import build_app, wsgi_app
    from tests.slack_stub import SlackRequests, WsgiServer
    from tests.test_slack import element, shown

    slack_mona.runtime.notifiers["slack"] = slack_notifier(slack_mona.settings)
    source = ("name: Invoice\ntrigger: manual\nsteps:\n  - approval: {to: '#approvals', timeout: 1h, text: 'Send it?'}\n"
              "  - post: {to: '#ops', text: 'invoice sent'}\n")
    with WsgiServer(wsgi_app(slack_mona, build_app(slack_mona))) as server:
        slack = SlackRequests(server.url, web_api)
        saved = slack.command("add " + source, command="/flow")
        assert "Workflow Invoice is saved and enabled" in shown(saved.json)
        assert "queued" in shown(slack.command("run Invoice", command="/flow").json)
        slack_mona.run_pending_jobs()
        [asked] = [c.body for c in web_api.calls_to("chat.postMessage") if c.body.get("channel") == "approvals"]
        assert "Send it?" in shown(asked)
        _ack, url = slack.click(element(asked, "Approve"))  # the person who ran it: answered by the response URL
        assert "You triggered this run: someone else approves it." in str([c.body for c in web_api.posted_to(url)])
        slack.command("role <@UMANAGER|maya> manager", command="/mona")
        slack.click(element(asked, "Approve"), user="UMANAGER")
        slack_mona.run_pending_jobs()
    [run] = runs(slack_mona)
    assert run.status == "done"
    assert [c.body["text"] for c in web_api.calls_to("chat.postMessage") if c.body.get("channel") == "ops"] == [
        "invoice sent"]
