"""The studio specs' machinery: a real OBS Studio, headless, that the real obsws-python client drives.

Timings are printed (run with ``-s`` to see them); the only ones asserted are the bounds a spec of
the studio relies on (an event within 2 s, a refused password within 2 s).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import obsws_python
import pytest

from tests.obs_harness import BANNER, JINGLE, SCENES, RealOBS

pytest_plugins = ["tests.obs_fixtures"]


def scene_names(client: obsws_python.ReqClient) -> set[str]:
    return {s["sceneName"] for s in client.send("GetSceneList", raw=True)["scenes"]}


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def live_members(groups: list[int]) -> list[str]:
    """Processes (zombies aside) still in one of these process groups, as 'pid name'."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, _ppid, pgid = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgid) in groups and state != "Z":
            found.append(f"{entry.name} {name}")
    return found


def test_the_real_client_connects_and_lists_the_studio_scenes_with_intro_on_program(obs: RealOBS) -> None:
    with obs.client() as client:
        version = client.get_version()
        assert version.obs_web_socket_version.startswith("5.")
        assert scene_names(client) == set(SCENES)
        assert client.get_current_program_scene().current_program_scene_name == "Intro"
        inputs = {i["inputName"]: i["unversionedInputKind"] for i in client.send("GetInputList", raw=True)["inputs"]}
    assert inputs == {BANNER: "color_source", JINGLE: "ffmpeg_source"}


def test_switching_the_program_scene_is_announced_by_an_event_within_two_seconds(obs: RealOBS) -> None:
    announced: list[str] = []
    arrived = threading.Event()

    def on_current_program_scene_changed(data: object) -> None:
        announced.append(data.scene_name)  # type: ignore[attr-defined]
        arrived.set()

    events = obs.events()
    try:
        events.callback.register(on_current_program_scene_changed)
        with obs.client() as client:
            began = time.monotonic()
            client.set_current_program_scene("Écran de fin")
            assert arrived.wait(2.0), "no CurrentProgramSceneChanged within 2 s"
            print(f"\nCurrentProgramSceneChanged arrived after {time.monotonic() - began:.3f} s")
            assert client.get_current_program_scene().current_program_scene_name == "Écran de fin"
    finally:
        events.disconnect()
    assert announced == ["Écran de fin"]


def test_a_wrong_password_is_refused_at_once_and_the_right_one_still_works(obs: RealOBS) -> None:
    began = time.monotonic()
    with pytest.raises(obsws_python.error.OBSSDKError, match="failed to identify client"):
        obsws_python.ReqClient(host=obs.host, port=obs.port, password="not-" + obs.password, timeout=5)
    refused_in = time.monotonic() - began
    print(f"\nwrong password refused in {refused_in:.3f} s")
    assert refused_in < 2.0
    with obs.client() as client:
        assert scene_names(client) == set(SCENES)


def test_the_jingle_can_be_muted_and_the_banner_cannot(obs: RealOBS) -> None:
    with obs.client() as client:
        client.set_input_mute(JINGLE, True)
        assert client.get_input_mute(JINGLE).input_muted is True
        with pytest.raises(obsws_python.error.OBSSDKRequestError) as refused:
            client.set_input_mute(BANNER, True)
    assert refused.value.code == 604  # InvalidResourceState: "does not support audio"


def wait_until(condition: Callable[[], bool], *, within: float, what: str) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < within, f"{what} not within {within} s"
        time.sleep(0.02)
    return time.monotonic() - began


def test_a_started_stream_goes_live_at_the_local_sink_and_stops_on_request(obs: RealOBS) -> None:
    assert obs.stream_sink is not None
    publishes = obs.stream_sink.publishes
    with obs.client() as client:
        client.start_stream()
        live_in = wait_until(lambda: client.get_stream_status().output_active, within=5, what="the stream going live")
        wait_until(lambda: obs.stream_sink.bytes_received > 0, within=5, what="media at the sink")  # type: ignore[union-attr]
        wait_until(lambda: client.get_stream_status().output_duration > 0, within=5, what="a stream duration")
        client.stop_stream()
        stopped_in = wait_until(
            lambda: not client.get_stream_status().output_active, within=5, what="the stream stopping"
        )
    print(f"\nstream live after {live_in:.2f} s, stopped after {stopped_in:.2f} s")
    assert obs.stream_sink.publishes == publishes + 1


def test_a_stream_whose_connection_drops_is_reported_reconnecting_then_reconnected(obs: RealOBS) -> None:
    assert obs.stream_sink is not None
    states: list[str] = []

    def on_stream_state_changed(data: object) -> None:
        states.append(data.output_state)  # type: ignore[attr-defined]

    events = obs.events(subs=obsws_python.Subs.OUTPUTS)
    try:
        events.callback.register(on_stream_state_changed)
        with obs.client() as client:
            client.start_stream()
            wait_until(lambda: "OBS_WEBSOCKET_OUTPUT_STARTED" in states, within=5, what="StreamStateChanged started")
            obs.stream_sink.drop()
            wait_until(lambda: "OBS_WEBSOCKET_OUTPUT_RECONNECTING" in states, within=5, what="reconnecting")
            back_in = wait_until(lambda: "OBS_WEBSOCKET_OUTPUT_RECONNECTED" in states, within=10, what="reconnected")
            print(f"\nstream reconnected {back_in:.2f} s after it was reported reconnecting")
            assert client.get_stream_status().output_active is True
    finally:
        events.disconnect()


def test_each_spec_starts_from_intro_with_nothing_live_even_after_a_spec_changed_everything(obs: RealOBS) -> None:
    with obs.client() as client:
        client.start_record()
        client.start_stream()
        wait_until(lambda: client.get_record_status().output_active, within=5, what="the recording starting")
        wait_until(lambda: client.get_stream_status().output_active, within=5, what="the stream going live")
        client.set_current_program_scene("BRB")
        client.create_scene("Pause café")
        client.set_input_mute(JINGLE, True)
        client.set_studio_mode_enabled(True)

    began = time.monotonic()
    obs.reset()
    print(f"\nreset with a stream and a recording to stop took {time.monotonic() - began:.2f} s")

    with obs.client() as client:
        assert client.get_record_status().output_active is False
        assert client.get_stream_status().output_active is False
        assert client.get_current_program_scene().current_program_scene_name == "Intro"
        assert scene_names(client) == set(SCENES)
        assert client.get_input_mute(JINGLE).input_muted is False
        assert client.get_studio_mode_enabled().studio_mode_enabled is False
    assert list((obs.home / "recordings").glob("*.mkv")), "the recording wrote no file"


def test_after_a_crash_a_restart_brings_the_websocket_back_with_the_same_scenes(obs: RealOBS) -> None:
    with obs.client() as client:
        client.set_current_program_scene("Live")
    obs.kill()
    assert not port_accepts(obs.host, obs.port)

    began = time.monotonic()
    obs.restart()
    print(
        f"\nrestart: port accepting after {obs.started_in:.2f} s, restart() returned after {time.monotonic() - began:.2f} s"
    )

    with obs.client() as client:
        assert scene_names(client) == set(SCENES)
        # The scenes are saved as they change; the program scene is not: a crash may lose the last switch.
        back_on = client.get_current_program_scene().current_program_scene_name
        print(f"after the crash OBS came back on {back_on!r} (was 'Live')")
        assert back_on in SCENES
        assert {i["inputName"] for i in client.send("GetInputList", raw=True)["inputs"]} == {BANNER, JINGLE}


def test_stopping_leaves_no_obs_or_xvfb_process_behind() -> None:
    began = time.monotonic()
    with RealOBS() as studio:
        print(
            f"\nOBS started (Xvfb, OBS, scenes) in {time.monotonic() - began:.2f} s, port accepting after {studio.started_in:.2f} s"
        )
        studio.kill()
        studio.restart()
        groups = list(studio.process_groups)
        home, display, port = studio.home, studio.display, studio.port
        assert len(live_members(groups)) >= 2  # at least Xvfb and OBS
    assert live_members(groups) == []
    assert not port_accepts(studio.host, port)
    assert not home.exists()
    assert not os.path.exists(f"/tmp/.X11-unix/X{display.lstrip(':')}")
