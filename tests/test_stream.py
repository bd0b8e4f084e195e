"""Studio Live: OBS Studio from chat through the real obsws-python client against a real OBS (headless,
started by the test session), its events in the outbox, and moderation's stream mode following them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Mona, bootstrap
from bot.console import ConsoleBot
from bot.notify_console import ConsoleNotifier
from core import outbox
from core.config import Settings
from core.db import utcnow
from core.errors import Ambiguous, NotFound
from core.moderation import service as moderation
from core.moderation.store import Community
from core.obs import ObsStudio, wait_connected
from core.outbox import OutboxEvent
from core.studio import match_name
from tests.obs_fixtures import obs, real_obs  # noqa: F401  (the real OBS of the test session)
from tests.obs_harness import RealOBS


def wait_until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError("not within the time")


def events(mona: Mona, type_: str) -> list[dict[str, Any]]:
    with mona.db.uow() as uow:
        return [
            e.payload
            for e in uow.session.scalars(select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.id))
        ]


@pytest.fixture
def studio_mona(mona: Mona, settings: Settings, obs: RealOBS) -> Iterator[Mona]:  # noqa: F811
    """mona with OBS_HOST / OBS_PORT / OBS_PASSWORD pointing at the real OBS."""
    configured = dataclasses.replace(settings, obs_host=obs.host, obs_port=obs.port, obs_password=obs.password)
    studio_mona = bootstrap(configured, migrate=False, db=mona.db)
    assert isinstance(studio_mona.app.services.studio, ObsStudio)
    assert wait_connected(studio_mona.app.services.studio, 10)
    yield studio_mona
    studio_mona.app.services.studio.close()


@pytest.fixture
def desk(studio_mona: Mona) -> ConsoleBot:
    return ConsoleBot(studio_mona.dispatcher, user_name="Lina")


# ---------------------------------------------------------------- names


def test_names_are_matched_without_case_or_accents_by_a_unique_part() -> None:
    names = ["Intro", "Live", "Live Q&A", "BRB", "Écran de fin"]
    assert match_name("brb", names, what="scene") == "BRB"
    assert match_name("ecran", names, what="scene") == "Écran de fin"
    assert match_name("live", names, what="scene") == "Live"  # the exact one, though "Live Q&A" contains it
    with pytest.raises(Ambiguous) as many:
        match_name("li", names, what="scene")
    assert [c.label for c in many.value.candidates] == ["Live", "Live Q&A"]
    assert [c.typed for c in many.value.candidates] == ["Live", '"Live Q&A"']
    with pytest.raises(NotFound) as none:
        match_name("Lobby", names, what="scene")
    assert str(none.value).startswith("OBS has no scene called Lobby.")


# ---------------------------------------------------------------- real OBS


def test_status_says_connected_with_the_scene_on_air(desk: ConsoleBot) -> None:
    r = desk.run("/stream status")
    assert not r.error, r.text
    assert r.title.endswith(": connected")
    text = r.plain_text()
    assert "Live: no" in text and "Scene: Intro" in text and "Recording: no" in text and "CPU:" in text


def test_scenes_are_listed_with_the_one_on_air_and_a_button_that_switches(desk: ConsoleBot, studio_mona: Mona, obs: RealOBS) -> None:  # noqa: F811
    r = desk.run("/stream scenes")
    assert "▶ Intro" in r.text and "• BRB" in r.text and "• Écran de fin" in r.text
    switched = desk.click(r, "BRB")
    assert switched.text == "On air: BRB."
    assert obs.client().get_current_program_scene().current_program_scene_name == "BRB"
    [event] = wait_until(lambda: events(studio_mona, "stream.scene_changed"))
    assert event == {"scene": "BRB", "studio": f"{obs.host}:{obs.port}"}


def test_a_scene_is_named_like_an_artist_and_an_unknown_one_lists_the_close_ones(desk: ConsoleBot, obs: RealOBS) -> None:  # noqa: F811
    assert desk.run("/stream scene ecran de FIN").text == "On air: Écran de fin."
    assert desk.run("/stream scene écran").text == "Écran de fin is already on air."
    r = desk.run("/stream scene Lvie")
    assert r.error and r.text.startswith("OBS has no scene called Lvie. Close ones: Live")
    assert obs.client().get_current_program_scene().current_program_scene_name == "Écran de fin"


def test_a_source_is_shown_and_hidden_in_a_scene(desk: ConsoleBot, obs: RealOBS) -> None:  # noqa: F811
    assert desk.run("/stream source live banner off").text == "Banner is hidden in Live."
    client = obs.client()
    item = client.get_scene_item_id("Live", "Banner").scene_item_id
    assert client.get_scene_item_enabled("Live", item).scene_item_enabled is False
    assert desk.run("/stream source Live Banner on").text == "Banner is shown in Live."
    assert client.get_scene_item_enabled("Live", item).scene_item_enabled is True
    assert desk.run("/stream source Live Nothing on").text.startswith("OBS has no source called Nothing.")


def test_recording_starts_and_stops_and_each_is_an_event(desk: ConsoleBot, studio_mona: Mona) -> None:
    assert desk.run("/stream record start").text == "OBS is recording."
    assert desk.run("/stream record start").text == "OBS is already recording."
    wait_until(lambda: events(studio_mona, "stream.recording_started"), timeout=15)
    assert wait_until(lambda: desk.run("/stream status").plain_text().count("Recording: yes"), timeout=15)
    assert desk.run("/stream record stop").text == "OBS stopped recording."
    assert desk.run("/stream record stop").text == "OBS is not recording."  # while OBS is still stopping it
    wait_until(lambda: events(studio_mona, "stream.recording_stopped"), timeout=15)


def test_stopping_a_stream_that_is_not_live_says_so(desk: ConsoleBot) -> None:
    r = desk.run("/stream stop")
    assert r.error and r.text == "The stream is not live."


def test_a_wrong_password_says_obs_rejected_it(mona: Mona, settings: Settings, obs: RealOBS) -> None:  # noqa: F811
    wrong = bootstrap(
        dataclasses.replace(settings, obs_host=obs.host, obs_port=obs.port, obs_password="not-it"),
        migrate=False,
        db=mona.db,
    )
    try:
        assert wrong.app.services.studio.health().state == "wrong_password"
        r = ConsoleBot(wrong.dispatcher, user_name="Lina").run("/stream status")
        assert r.error and r.text.startswith("OBS rejected the password")
        assert "not-it" not in r.text
    finally:
        wrong.app.services.studio.close()


def test_an_obs_that_is_not_there_is_said_within_3_seconds(mona: Mona, settings: Settings) -> None:
    from tests.obs_harness import _free_port

    port = _free_port()
    started = time.monotonic()
    absent = bootstrap(
        dataclasses.replace(settings, obs_host="127.0.0.1", obs_port=port, obs_password="x"), migrate=False, db=mona.db
    )
    try:
        r = ConsoleBot(absent.dispatcher, user_name="Lina").run("/stream scenes")
        assert r.error and r.text == f"OBS is not reachable at 127.0.0.1:{port}."
        assert time.monotonic() - started < 3
    finally:
        absent.app.services.studio.close()


def test_when_obs_restarts_mona_reconnects_by_itself_and_rereads_its_state(desk: ConsoleBot, studio_mona: Mona, obs: RealOBS) -> None:  # noqa: F811
    studio = studio_mona.app.services.studio
    obs.kill()
    wait_until(lambda: studio.health().state == "reconnecting", timeout=5)
    r = desk.run("/stream status")
    assert r.error and r.text == f"OBS is not reachable at {obs.host}:{obs.port}."
    obs.restart()
    obs.client().set_current_program_scene("Live")  # changed while mona was away
    started = time.monotonic()
    assert wait_connected(studio, 10)
    print(f"reconnected {time.monotonic() - started:.2f} s after OBS answered again")
    assert "Scene: Live" in desk.run("/stream status").plain_text()


def test_without_obs_configured_the_stream_commands_say_how_to_connect_one(bot: ConsoleBot) -> None:
    r = bot.run("/stream scenes")
    assert r.error and r.text.startswith("No OBS is connected: set OBS_HOST, OBS_PORT and OBS_PASSWORD")


def test_a_viewer_may_look_but_not_switch(desk: ConsoleBot) -> None:
    viewer = desk.as_user("UVIEW1", "Vee")
    assert not viewer.run("/stream scenes").error
    r = viewer.run("/stream scene BRB")
    assert r.error and "You need one of these roles" in r.text


# ---------------------------------------------------------------- the stream's events


def test_a_stream_going_live_switches_moderation_to_stream_mode_and_its_end_switches_it_back(mona: Mona) -> None:
    with mona.db.uow() as uow:
        moderation.community(uow, "discord", "G1")
        moderation.community(uow, "twitch", "T1")
        outbox.record(uow, "stream.started", studio="127.0.0.1:4455")
        uow.commit()
    mona.run_pending_jobs()
    with mona.db.uow() as uow:
        assert [moderation.rules_of(c).stream_mode for c in uow.session.scalars(select(Community))] == [True, True]
        outbox.record(uow, "stream.stopped", studio="127.0.0.1:4455")
        uow.commit()
    mona.run_pending_jobs()
    with mona.db.uow() as uow:
        assert [moderation.rules_of(c).stream_mode for c in uow.session.scalars(select(Community))] == [False, False]


def test_live_now_is_announced_where_the_team_routed_it(bot: ConsoleBot, mona: Mona, out: Any) -> None:
    bot.run("/mona notify add stream.started #live")
    with mona.db.uow() as uow:
        outbox.record(uow, "stream.started", studio="127.0.0.1:4455")
        uow.commit()
    mona.run_pending_jobs()
    assert "[#live] Live now! The stream started in OBS (127.0.0.1:4455)." in out.getvalue()


def test_on_twitch_a_moderator_switches_the_scene_with_scene_and_a_viewer_cannot(mona: Mona, settings: Settings,
                                                                               obs: RealOBS) -> None:  # noqa: F811
    from tests.twitch_stub import (
        BOT_ID,
        BOT_REFRESH,
        BOT_TOKEN,
        BROADCASTER_ID,
        CLIENT_ID,
        CLIENT_SECRET,
        MOD_ID,
        VIEWER_ID,
        LiveTwitch,
    )

    configured = dataclasses.replace(
        settings, twitch_client_id=CLIENT_ID, twitch_client_secret=CLIENT_SECRET, twitch_bot_id=BOT_ID,
        twitch_bot_token=BOT_TOKEN, twitch_refresh_token=BOT_REFRESH, twitch_channel_id=BROADCASTER_ID,
        obs_host=obs.host, obs_port=obs.port, obs_password=obs.password)
    twitch_mona = bootstrap(configured, migrate=False, db=mona.db)
    try:
        assert wait_connected(twitch_mona.app.services.studio, 10)
        with LiveTwitch(twitch_mona) as live:
            answer = live.answer_to(live.say("!scene brb", by=MOD_ID))
            assert answer["message"] == "On air: BRB."
            assert obs.client().get_current_program_scene().current_program_scene_name == "BRB"
            refused = live.answer_to(live.say("!scene live", by=VIEWER_ID))
            assert refused["message"] == "Only the channel's moderators can use !scene."
        assert obs.client().get_current_program_scene().current_program_scene_name == "BRB"
    finally:
        twitch_mona.app.services.studio.close()


def test_on_slack_the_scenes_come_with_buttons_that_switch(slack_mona: Mona, settings: Settings, web_api: Any,
                                                          obs: RealOBS) -> None:  # noqa: F811
    from bot.slack import build_app, wsgi_app
    from tests.slack_stub import SlackRequests, WsgiServer
    from tests.test_slack import element, shown

    configured = dataclasses.replace(slack_mona.settings, obs_host=obs.host, obs_port=obs.port,
                                     obs_password=obs.password)
    slack_studio = bootstrap(configured, migrate=False, db=slack_mona.db)
    try:
        assert wait_connected(slack_studio.app.services.studio, 10)
        with WsgiServer(wsgi_app(slack_studio, build_app(slack_studio))) as server:
            slack = SlackRequests(server.url, web_api)
            r = slack.command("scenes", command="/stream")
            assert r.status == 200 and "▶ Intro" in shown(r.json)
            reply, response_url = slack.click(element(r.json, "Live"))
            assert reply.status == 200
            [posted] = web_api.posted_to(response_url)
            assert "On air: Live." in shown(posted.body)
        assert obs.client().get_current_program_scene().current_program_scene_name == "Live"
    finally:
        slack_studio.app.services.studio.close()


def test_connecting_an_obs_from_chat_asks_the_password_in_a_form_and_never_shows_or_keeps_it(
        bot: ConsoleBot, mona: Mona, obs: RealOBS, caplog: Any) -> None:  # noqa: F811
    from core.team import AuditEntry

    caplog.set_level("DEBUG")
    form = bot.run(f"/stream connect {obs.host} {obs.port}").modal
    assert form is not None and [i.name for i in form.inputs] == ["password"]
    wrong = bot.submit(form, {"password": "not-the-password"})
    assert wrong.error and wrong.text == "Not connected: OBS rejected the password. The OBS in use is unchanged."
    assert bot.run("/stream status").text.startswith("No OBS is connected")
    done = bot.submit(form, {"password": obs.password})
    assert done.text.startswith(f"Connected to OBS at {obs.host}:{obs.port}. The password is kept in memory only")
    try:
        assert "Scene: Intro" in bot.run("/stream status").plain_text()
        with mona.db.uow() as uow:
            targets = [a.target for a in uow.session.scalars(select(AuditEntry))]
        assert f"{obs.host}:{obs.port}" in targets and not any(obs.password in t for t in targets)
        assert obs.password not in caplog.text and "not-the-password" not in caplog.text
    finally:
        mona.app.services.studio.close()


# ---------------------------------------------------------------- live presets


def test_a_preset_switches_scene_source_and_stream_mode_in_one_action_and_can_be_undone(
        desk: ConsoleBot, studio_mona: Mona, obs: RealOBS) -> None:  # noqa: F811
    out = io.StringIO()
    studio_mona.runtime.notifiers["console"] = ConsoleNotifier(out)
    with studio_mona.db.uow() as uow:
        moderation.community(uow, "discord", "G1")
        uow.commit()
    desk.run("/mona notify add stream.preset_applied #live")
    saved = desk.run('/stream preset add Go live --scene live --hide banner --stream-mode on --say "We are live!"')
    assert saved.text == "Saved the preset Go live: scene Live, hide Banner, stream mode on, say “We are live!” (queue)."
    r = desk.click(saved, "Run Go live")
    assert r.text == "Go live: on air: Live, Banner hidden, stream mode on."
    client = obs.client()
    assert client.get_current_program_scene().current_program_scene_name == "Live"
    item = client.get_scene_item_id("Live", "Banner").scene_item_id
    assert client.get_scene_item_enabled("Live", item).scene_item_enabled is False
    with studio_mona.db.uow() as uow:
        assert [moderation.rules_of(c).stream_mode for c in uow.session.scalars(select(Community))] == [True]
    studio_mona.run_pending_jobs()
    assert "[#live] Lina ran the preset Go live. We are live!" in out.getvalue()
    undone = desk.click(r, "Undo")
    assert undone.text == "Undone: on air: Intro, Banner as it was, stream mode as it was."
    assert client.get_current_program_scene().current_program_scene_name == "Intro"
    assert client.get_scene_item_enabled("Live", item).scene_item_enabled is True
    with studio_mona.db.uow() as uow:
        assert [moderation.rules_of(c).stream_mode for c in uow.session.scalars(select(Community))] == [False]
    assert desk.click(r, "Undo").text == "That preset run was undone already."


def test_a_preset_that_would_interrupt_the_live_stream_asks_first(desk: ConsoleBot, obs: RealOBS) -> None:  # noqa: F811
    desk.run("/stream preset add End --scene Écran de fin --stream stop")
    obs.client().start_stream()
    wait_until(lambda: obs.client().get_stream_status().output_active, timeout=10)
    ask = desk.run("/stream preset end")
    assert ask.text.startswith("The stream is live: run End anyway (")
    assert obs.client().get_current_program_scene().current_program_scene_name == "Intro"
    done = desk.click(ask, "Run End")
    assert done.text == "End: on air: Écran de fin, stream ending."
    wait_until(lambda: not obs.client().get_stream_status().output_active, timeout=10)


def test_bad_presets_are_refused_with_the_reason(desk: ConsoleBot, obs: RealOBS) -> None:  # noqa: F811
    assert desk.run("/stream preset add Lobby --scene Lobby").text.startswith("OBS has no scene called Lobby.")
    assert desk.run("/stream preset add Nothing").text.startswith("Say what the preset does")
    assert desk.run("/stream preset add X --hide Banner").text.startswith("--show and --hide name a source")
    desk.run("/stream preset add Pause --scene BRB")
    assert desk.run("/stream preset add pause --scene Live").text.startswith("There is already a preset called pause")
    obs.client().create_scene("Temp")
    desk.run("/stream preset add Temp --scene Temp")
    obs.client().remove_scene("Temp")
    r = desk.run("/stream preset temp")
    assert r.error and r.text.startswith("The preset Temp switches to Temp, which OBS no longer has")
    assert [b.label for b in desk.run("/stream presets").buttons] == ["Pause", "Temp"]


# ---------------------------------------------------------------- stream sessions


def test_a_planned_stream_has_a_reminder_refuses_overlaps_and_the_past(bot: ConsoleBot, mona: Mona) -> None:
    from core.notify import Reminder

    bot.run("/artist add Alex Blue")
    r = bot.run('/stream plan Alex Blue 2099-01-10 20:00 --duration 1h30m --title "Villa live #1"')
    assert not r.error, r.text
    assert r.text.startswith("Planned session #1: Villa live #1, ") and "a reminder 30 minutes before" in r.text
    with mona.db.uow() as uow:
        [reminder] = uow.session.scalars(select(Reminder))
        assert "Villa live #1" in reminder.text and reminder.due_at.strftime("%H:%M") == "18:30"  # 19:30 Paris
    clash = bot.run("/stream plan Alex Blue 2099-01-10 21:00")
    assert clash.error and clash.text.startswith("It overlaps session #1 (Villa live #1)")
    past = bot.run("/stream plan Alex Blue 2020-01-01 20:00")
    assert past.error and "in the past" in past.text
    assert "#1 Villa live #1" in bot.run("/stream sessions").text


def test_a_stream_run_in_obs_attaches_to_the_planned_session_and_is_reported(bot: ConsoleBot, mona: Mona) -> None:
    from core.sessions import StreamSession

    bot.run("/artist add Alex")
    with mona.db.uow() as uow:  # planned to start now
        artist_id = uow.session.scalar(select(crm_artist_id()))
        uow.session.add(StreamSession(artist_id=artist_id, title="Tonight", planned_start=utcnow(),
                                      planned_end=utcnow() + dt.timedelta(hours=2)))
        outbox.record(uow, "stream.scene_changed", studio="obs", scene="Intro")
        uow.commit()
    for type_, extra in (("stream.started", {}), ("stream.scene_changed", {"scene": "Live"}), ("stream.stopped", {})):
        time.sleep(0.2)
        with mona.db.uow() as uow:
            outbox.record(uow, type_, studio="obs", **extra)
            uow.commit()
        mona.run_pending_jobs()
    r = bot.run("/stream report")
    assert r.title == "Stream report #1: Tonight"
    text = r.plain_text()
    assert "Intro: 0:00:0" in text and "Live: 0:00:0" in text and "Moderation actions: none" in text
    [chart] = r.files
    assert chart.title == "Chart of stream #1" and chart.path.name == "stream-session-1.png"
    assert chart.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def crm_artist_id() -> Any:
    from core.artists import Artist

    return Artist.id
