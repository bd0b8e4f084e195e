"""``Studio`` over the real obsws-python client: one supervised connection to one OBS.

- Requests go through one ``obsws_python.ReqClient`` under a lock (the client reads the answer of
  the request it sent, so two threads must not share it at once), each with ``TIMEOUT`` seconds.
- Events come through an ``obsws_python.EventClient``; the ones mona cares about (program scene,
  stream and record state) are handed to ``on_event`` (the bootstrap writes them to the outbox).
- A supervisor thread notices a lost connection (the event thread ends, a request fails), reports
  "reconnecting since …", and connects again with jittered exponential backoff; after each
  reconnect it re-reads OBS's state (scene, stream, record) instead of trusting what events said,
  and tells ``on_event`` what changed meanwhile. A wrong password is a state of its own and is
  retried slowly (someone may fix it in OBS).
- The password is never logged: obsws-python logs its connection parameters, so its logger is
  kept at WARNING, and errors are reduced to their kind before they are logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import obsws_python as obs
from obsws_python.error import OBSSDKError, OBSSDKRequestError, OBSSDKTimeoutError

from core.i18n import _
from core.studio import Health, HealthState, Status, StudioUnavailable, refused

log = logging.getLogger("mona.obs")
# obsws-python logs "Connecting with parameters: … password='…'" at INFO, and tracebacks of refused
# connections at ERROR: mona says what happened in its own words instead.
logging.getLogger("obsws_python").setLevel(logging.CRITICAL)

TIMEOUT = 3.0
BACKOFF_FIRST, BACKOFF_MOST = 0.25, 2.0
WRONG_PASSWORD_RETRY = 30.0
#: How long a start or stop OBS accepted counts as under way when OBS has not yet said it happened
#: (OBS accepts a second StartRecord while the first is still starting the output).
PENDING_FOR = 10.0

#: What ``on_event`` receives: an event type of the catalogue and its fields.
EventSink = Callable[[str, dict[str, Any]], None]


@dataclass
class _State:
    scene: str | None = None
    live: bool | None = None
    recording: bool | None = None


@dataclass
class ObsStudio:
    host: str
    port: int
    password: str = field(repr=False, default="")
    on_event: EventSink | None = None
    timeout: float = TIMEOUT

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._req: obs.ReqClient | None = None
        self._events: obs.EventClient | None = None
        self._state = _State()
        self._pending: dict[str, tuple[bool, float]] = {}  # "stream"/"record" -> (asked to run, when)
        self._health: Health = Health("reconnecting", self.address, dt.datetime.now(dt.UTC), None)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------------ life

    def start(self) -> ObsStudio:
        """Connect now (once) and supervise the connection from then on."""
        self._try_connect()
        self._thread = threading.Thread(target=self._supervise, name="obs-supervisor", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._drop()

    def health(self) -> Health:
        return self._health

    def _supervise(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stop.is_set():
            if self._connected():
                delay = BACKOFF_FIRST
                self._wake.wait(0.1)
                self._wake.clear()
                continue
            if self._health.state == "connected":
                self._lost(_("the connection was lost"))
            wait = WRONG_PASSWORD_RETRY if self._health.state == "wrong_password" else delay * random.uniform(0.5, 1.0)
            if self._stop.wait(wait):
                return
            if not self._try_connect():
                delay = min(BACKOFF_MOST, delay * 2)

    def _connected(self) -> bool:
        events = self._events
        return self._req is not None and events is not None and events.worker.is_alive()

    def _lost(self, reason: str) -> None:
        log.warning("OBS at %s: %s; reconnecting", self.address, reason)
        self._drop()
        self._health = Health("reconnecting", self.address, dt.datetime.now(dt.UTC), reason)

    def _drop(self) -> None:
        with self._lock:
            for client in (self._req, self._events):
                if client is not None:
                    with contextlib.suppress(Exception):  # closing a broken socket
                        client.disconnect()
            self._req = self._events = None

    def _reachable(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout):
                return True
        except OSError:
            return False

    def _try_connect(self) -> bool:
        """One attempt: both clients, then OBS's state re-read; ``True`` when connected."""
        if not self._reachable():  # no websocket handshake (nor its logged traceback) against a closed port
            self._set_failed("reconnecting", _("OBS is not reachable at {address}", address=self.address))
            return False
        try:
            req = obs.ReqClient(host=self.host, port=self.port, password=self.password, timeout=self.timeout)
            events = obs.EventClient(host=self.host, port=self.port, password=self.password, timeout=self.timeout)
        except OBSSDKError as e:
            wrong = "identify" in str(e) or "password" in str(e) or "authentication" in str(e)
            self._set_failed("wrong_password" if wrong else "reconnecting",
                             _("OBS rejected the password") if wrong else _("OBS did not answer at {address}",
                                                                             address=self.address))
            return False
        except (OSError, ValueError) as e:
            self._set_failed("reconnecting", _("OBS is not reachable at {address}", address=self.address))
            log.debug("OBS at %s: %s", self.address, type(e).__name__)
            return False
        events.callback.register([self.on_current_program_scene_changed, self.on_stream_state_changed,
                                  self.on_record_state_changed])
        with self._lock:
            self._req, self._events = req, events
        self._health = Health("connected", self.address, dt.datetime.now(dt.UTC))
        log.info("OBS at %s: connected", self.address)
        self._reread()
        return True

    def _set_failed(self, state: HealthState, reason: str) -> None:
        since = self._health.since if self._health.state == state and self._health.since else dt.datetime.now(dt.UTC)
        self._health = Health(state, self.address, since, reason)

    def _reread(self) -> None:
        """OBS's state as it is now; what changed while mona was away is told as events."""
        try:
            scene = self._call("GetCurrentProgramScene")["currentProgramSceneName"]
            live = bool(self._call("GetStreamStatus")["outputActive"])
            recording = bool(self._call("GetRecordStatus")["outputActive"])
        except StudioUnavailable:
            return
        before = self._state
        self._state = _State(scene, live, recording)
        self._pending.clear()  # whatever was under way before the reconnect is what OBS says now
        if before.scene is not None and before.scene != scene:
            self._emit("stream.scene_changed", {"scene": scene})
        if before.live is not None and before.live != live:
            self._emit("stream.started" if live else "stream.stopped", {})
        if before.recording is not None and before.recording != recording:
            self._emit("stream.recording_started" if recording else "stream.recording_stopped", {})

    # ------------------------------------------------------------------ events

    def on_current_program_scene_changed(self, data: Any) -> None:
        self._state.scene = data.scene_name
        self._emit("stream.scene_changed", {"scene": data.scene_name})

    def on_stream_state_changed(self, data: Any) -> None:
        if data.output_state in ("OBS_WEBSOCKET_OUTPUT_STARTED", "OBS_WEBSOCKET_OUTPUT_STOPPED"):
            live = data.output_state == "OBS_WEBSOCKET_OUTPUT_STARTED"
            self._pending.pop("stream", None)
            if live != self._state.live:
                self._state.live = live
                self._emit("stream.started" if live else "stream.stopped", {})

    def on_record_state_changed(self, data: Any) -> None:
        if data.output_state in ("OBS_WEBSOCKET_OUTPUT_STARTED", "OBS_WEBSOCKET_OUTPUT_STOPPED"):
            recording = data.output_state == "OBS_WEBSOCKET_OUTPUT_STARTED"
            self._pending.pop("record", None)
            if recording != self._state.recording:
                self._state.recording = recording
                self._emit("stream.recording_started" if recording else "stream.recording_stopped", {})

    def _emit(self, type_: str, payload: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(type_, payload)
        except Exception:  # the event thread must live on; the outbox write failed, which is logged
            log.exception("OBS event %s could not be recorded", type_)

    # ------------------------------------------------------------------ requests

    def _call(self, request: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._lock:
            req = self._req
            if req is None:
                raise self._unavailable()
            try:
                answer = req.send(request, data, raw=True)
            except OBSSDKRequestError as e:
                raise refused(request, e.code, str(e).split("With message: ", 1)[-1] if "With message" in str(e)
                              else None) from None
            except (OBSSDKTimeoutError, OSError, OBSSDKError) as e:
                log.debug("OBS at %s: %s on %s", self.address, type(e).__name__, request)
                self._lost(_("OBS stopped answering"))
                self._wake.set()
                raise self._unavailable() from None
        return answer or {}

    def _unavailable(self) -> StudioUnavailable:
        h = self._health
        if h.state == "wrong_password":
            return StudioUnavailable(_("OBS rejected the password: check OBS_PASSWORD against OBS's WebSocket Server "
                                       "Settings."))
        return StudioUnavailable(_("OBS is not reachable at {address}.", address=self.address))

    def status(self) -> Status:
        stream = self._call("GetStreamStatus")
        record = self._call("GetRecordStatus")
        stats = self._call("GetStats")
        scene = self._call("GetCurrentProgramScene")["currentProgramSceneName"]
        live = self._settled("stream", bool(stream.get("outputActive")))
        return Status(live=live, uptime_s=(stream.get("outputDuration") or 0) / 1000 if live else None,
                      recording=self._settled("record", bool(record.get("outputActive"))), scene=scene,
                      dropped_frames=int(stream.get("outputSkippedFrames") or 0),
                      total_frames=int(stream.get("outputTotalFrames") or 0),
                      cpu_percent=float(stats.get("cpuUsage") or 0.0), fps=float(stats.get("activeFps") or 0.0))

    def scenes(self) -> tuple[list[str], str]:
        answer = self._call("GetSceneList")
        names = [s["sceneName"] for s in reversed(answer.get("scenes", []))]  # OBS lists them bottom-up
        return names, answer.get("currentProgramSceneName", "")

    def switch_scene(self, scene: str, *, transition: str | None = None, duration_ms: int | None = None) -> None:
        if transition is not None:
            self.set_transition(transition, duration_ms)
        elif duration_ms is not None:
            self._call("SetCurrentSceneTransitionDuration", {"transitionDuration": duration_ms})
        self._call("SetCurrentProgramScene", {"sceneName": scene})

    def sources(self, scene: str) -> list[tuple[int, str, bool]]:
        items = self._call("GetSceneItemList", {"sceneName": scene}).get("sceneItems", [])
        return [(int(i["sceneItemId"]), i["sourceName"], bool(i["sceneItemEnabled"])) for i in items]

    def set_source(self, scene: str, item_id: int, visible: bool) -> None:
        self._call("SetSceneItemEnabled", {"sceneName": scene, "sceneItemId": item_id, "sceneItemEnabled": visible})

    def transitions(self) -> tuple[list[str], str]:
        answer = self._call("GetSceneTransitionList")
        return [t["transitionName"] for t in answer.get("transitions", [])], answer.get("currentSceneTransitionName") or ""

    def set_transition(self, name: str, duration_ms: int | None = None) -> None:
        self._call("SetCurrentSceneTransition", {"transitionName": name})
        if duration_ms is not None:
            self._call("SetCurrentSceneTransitionDuration", {"transitionDuration": duration_ms})

    def inputs(self) -> list[str]:
        return [i["inputName"] for i in self._call("GetInputList").get("inputs", [])]

    def set_mute(self, name: str, muted: bool) -> None:
        self._call("SetInputMute", {"inputName": name, "inputMuted": muted})

    def _settled(self, output: str, active: bool) -> bool:
        """Whether ``output`` runs, counting a start or stop OBS accepted but has not finished."""
        pending = self._pending.get(output)
        if pending is None or pending[0] == active or time.monotonic() - pending[1] > PENDING_FOR:
            self._pending.pop(output, None)
            return active
        return pending[0]

    def stream(self, start: bool) -> None:
        self._call("StartStream" if start else "StopStream")
        self._pending["stream"] = (start, time.monotonic())

    def record(self, start: bool) -> None:
        self._call("StartRecord" if start else "StopRecord")
        self._pending["record"] = (start, time.monotonic())


def wait_connected(studio: ObsStudio, timeout: float) -> bool:
    """Until the supervisor says connected (tests, benchmarks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if studio.health().state == "connected":
            return True
        time.sleep(0.02)
    return False
