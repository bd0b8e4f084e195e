"""A real OBS Studio, headless, for the studio specs: the real obsws-python client talks to it.

`RealOBS` starts Xvfb on a free display and OBS (Debian's obs-studio, obs-websocket 5.1) with a
temporary HOME whose config enables the websocket server on a free port with a random
password and keeps the canvas at 320x180, 5 fps (a few % of a CPU). On start it builds the
studio every spec can rely on: the scenes in `SCENES` ("Intro" on program), the color source
`BANNER` in "Live" and the media source `JINGLE` (no file: silent, but it has an audio track, so it
can be muted; a color or image source cannot) in "Live". Its stream goes to `RtmpSink`, a loopback
RTMP server that accepts the publish, so `StartStream` really goes live. OBS listens on every
interface (obs-websocket 5.1 cannot bind loopback only); the clients connect on 127.0.0.1.

Whatever happens, nothing it started outlives it: OBS and Xvfb each run in their own process group,
which `stop()` ends (SIGTERM, then SIGKILL) from `__exit__` and from an atexit hook, and each child
is told by the kernel to die with the process that started it (PR_SET_PDEATHSIG, through
util-linux's setpriv), should pytest itself be killed.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import obsws_python

# obsws-python logs every connection's parameters, password included, at INFO.
logging.getLogger("obsws_python").setLevel(logging.WARNING)

SCENES = ("Intro", "Live", "BRB", "Écran de fin")
BANNER = "Banner"
JINGLE = "Jingle"
FIRST_SCENE = "Intro"

_LIVE: set[RealOBS] = set()


class OBSStartError(RuntimeError):
    """OBS or Xvfb did not come up; the message ends with the tail of its log."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _end_group(proc: subprocess.Popen[bytes] | None, *, grace: float) -> None:
    """End `proc`'s whole process group: SIGTERM and `grace` seconds to go (0: SIGKILL at once)."""
    if proc is None:
        return
    sig = signal.SIGTERM if grace > 0 else signal.SIGKILL
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=grace if grace > 0 else 10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # Children OBS may have spawned (muxers) share its group and must not outlive it either.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _amf0(*values: object) -> bytes:
    """AMF0-encode strings, numbers, None and flat dicts: all an RTMP server's replies need."""
    out = bytearray()
    for v in values:
        if isinstance(v, str):
            out += b"\x02" + struct.pack(">H", len(v.encode())) + v.encode()
        elif isinstance(v, int | float):
            out += b"\x00" + struct.pack(">d", float(v))
        elif v is None:
            out += b"\x05"
        elif isinstance(v, dict):
            out += b"\x03"
            for key, item in v.items():
                out += struct.pack(">H", len(key)) + key.encode() + _amf0(item)
            out += b"\x00\x00\x09"
    return bytes(out)


class RtmpSink:
    """A loopback RTMP server that accepts OBS's publish and throws the media away, so that
    `StartStream` really goes live (status, duration, bytes) without reaching any platform.

    `publishes` counts the publish commands received; `bytes_received` the media bytes;
    `drop()` cuts every connection (OBS then reports a reconnecting stream).
    """

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self.url = f"rtmp://127.0.0.1:{self.port}/live"
        self.key = "mona"
        self.publishes = 0
        self.bytes_received = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="rtmp-sink", daemon=True).start()

    def close(self) -> None:
        self._server.close()
        self.drop()

    def drop(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), name="rtmp-sink-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, EOFError), conn:
            c0c1 = self._read(conn, 1 + 1536)
            conn.sendall(b"\x03" + struct.pack(">II", 0, 0) + os.urandom(1528) + c0c1[1:])
            self._read(conn, 1536)
            chunk_size = 128
            headers: dict[int, list[int]] = {}  # chunk stream id -> [length, type, stream id]
            partial: dict[int, bytearray] = {}
            while True:
                first = self._read(conn, 1)[0]
                fmt, csid = first >> 6, first & 0x3F
                if csid == 0:
                    csid = 64 + self._read(conn, 1)[0]
                elif csid == 1:
                    low, high = self._read(conn, 2)
                    csid = 64 + low + 256 * high
                head = self._read(conn, (11, 7, 3, 0)[fmt])
                state = headers.setdefault(csid, [0, 0, 0])
                if fmt <= 1:
                    state[0], state[1] = int.from_bytes(head[3:6], "big"), head[6]
                if fmt == 0:
                    state[2] = int.from_bytes(head[7:11], "little")
                if fmt <= 2 and head[:3] == b"\xff\xff\xff":
                    self._read(conn, 4)  # extended timestamp
                buf = partial.setdefault(csid, bytearray())
                buf += self._read(conn, min(chunk_size, state[0] - len(buf)))
                if len(buf) < state[0]:
                    continue
                message, partial[csid] = bytes(buf), bytearray()
                if state[1] == 1:  # Set Chunk Size
                    chunk_size = int.from_bytes(message[:4], "big") & 0x7FFFFFFF
                elif state[1] == 20:  # AMF0 command
                    self._command(conn, message)
                elif state[1] in (8, 9):
                    self.bytes_received += len(message)

    def _command(self, conn: socket.socket, message: bytes) -> None:
        name = message[3 : 3 + int.from_bytes(message[1:3], "big")].decode()
        (txid,) = struct.unpack(">d", message[4 + len(name) : 12 + len(name)])
        if name == "connect":
            self._send(conn, 2, 1, struct.pack(">I", 4096))  # our chunk size: every reply fits one chunk
            self._send(conn, 2, 5, struct.pack(">I", 2_500_000))
            self._send(conn, 2, 6, struct.pack(">IB", 2_500_000, 2))
            status = {"level": "status", "code": "NetConnection.Connect.Success", "objectEncoding": 0}
            self._send(conn, 3, 20, _amf0("_result", txid, {"fmsVer": "FMS/3,0,1,123", "capabilities": 31}, status))
        elif name == "createStream":
            self._send(conn, 3, 20, _amf0("_result", txid, None, 1))
        elif name == "publish":
            self.publishes += 1
            status = {"level": "status", "code": "NetStream.Publish.Start", "description": "Publishing."}
            self._send(conn, 5, 20, _amf0("onStatus", 0, None, status), stream_id=1)
        elif txid:
            self._send(conn, 3, 20, _amf0("_result", txid, None))

    @staticmethod
    def _send(conn: socket.socket, csid: int, kind: int, payload: bytes, *, stream_id: int = 0) -> None:
        header = bytes([csid]) + b"\x00\x00\x00" + len(payload).to_bytes(3, "big") + bytes([kind])
        conn.sendall(header + stream_id.to_bytes(4, "little") + payload)

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            got = conn.recv(n - len(data))
            if not got:
                raise EOFError
            data += got
        return bytes(data)


class RealOBS:
    """One headless OBS Studio with a websocket server on loopback; see the module docstring."""

    host = "127.0.0.1"

    def __init__(self, *, start_timeout: float = 30.0) -> None:
        self.port = _free_port()
        self.password = secrets.token_urlsafe(12)
        self.start_timeout = start_timeout
        self.started_in: float | None = None  # seconds from spawning OBS to its port accepting
        self.process_groups: list[int] = []  # every group this harness started, for the specs
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._xvfb: subprocess.Popen[bytes] | None = None
        self._obs: subprocess.Popen[bytes] | None = None
        self.display = ""
        self.stream_sink: RtmpSink | None = None  # where OBS streams to; see RtmpSink

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> RealOBS:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def home(self) -> Path:
        assert self._tmp is not None, "RealOBS is not started"
        return Path(self._tmp.name) / "home"

    @property
    def log_path(self) -> Path:
        return self.home.parent / "obs.log"

    @property
    def running(self) -> bool:
        return self._obs is not None and self._obs.poll() is None

    def start(self) -> None:
        """Start Xvfb and OBS, wait for the websocket and build the studio (scenes and sources)."""
        if self._tmp is not None:
            raise RuntimeError("RealOBS is already started")
        for tool in ("obs", "Xvfb"):
            if shutil.which(tool) is None:
                raise OBSStartError(f"{tool} is not installed: `make test` installs obs-studio, xvfb and xauth")
        self._tmp = tempfile.TemporaryDirectory(prefix="mona-obs-")
        _LIVE.add(self)
        try:
            self.stream_sink = RtmpSink()
            self._write_config()
            self._start_xvfb()
            self._start_obs()
            self._build_studio()
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL OBS (a crash): the port stops answering; Xvfb and the config stay for `restart()`."""
        _end_group(self._obs, grace=0)
        self._obs = None

    def restart(self) -> None:
        """Start OBS again, same HOME, port and password; its scene collection is what it last saved."""
        if self._tmp is None:
            raise RuntimeError("RealOBS is not started")
        if self.running:
            _end_group(self._obs, grace=10)
        self._obs = None
        if self._xvfb is None or self._xvfb.poll() is not None:
            self._start_xvfb()
        self._start_obs()

    def stop(self) -> None:
        """End OBS cleanly (SIGTERM), then Xvfb, and remove the temporary HOME. Safe to call twice."""
        try:
            _end_group(self._obs, grace=10)
            _end_group(self._xvfb, grace=5)
        finally:
            self._obs = self._xvfb = None
            if self.stream_sink is not None:
                self.stream_sink.close()
                self.stream_sink = None
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None
            _LIVE.discard(self)

    # -- clients ---------------------------------------------------------------------------------

    def client(self, *, timeout: float = 5.0) -> obsws_python.ReqClient:
        """A new real request client, identified; disconnect it (or use it as a context manager)."""
        return obsws_python.ReqClient(host=self.host, port=self.port, password=self.password, timeout=timeout)

    def events(self, *, timeout: float = 5.0, subs: int = obsws_python.Subs.LOW_VOLUME) -> obsws_python.EventClient:
        """A new real event client; register `on_<event_name>` callbacks on its `.callback`."""
        return obsws_python.EventClient(
            host=self.host, port=self.port, password=self.password, timeout=timeout, subs=subs
        )

    def reset(self) -> None:
        """Back to the studio a spec starts from: OBS up, output stopped, studio mode off, every
        scene and source present, "Intro" on program, the jingle unmuted."""
        if not self.running:
            self.restart()
        with self.client() as c:
            for status, stop in (("GetStreamStatus", "StopStream"), ("GetRecordStatus", "StopRecord")):
                if c.send(status, raw=True)["outputActive"]:
                    c.send(stop)
                deadline = time.monotonic() + 10
                while c.send(status, raw=True)["outputActive"]:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"OBS did not stop ({stop})")
                    time.sleep(0.05)
            if c.send("GetStudioModeEnabled", raw=True)["studioModeEnabled"]:
                c.send("SetStudioModeEnabled", {"studioModeEnabled": False})
        self._build_studio()

    # -- internals -------------------------------------------------------------------------------

    def _write_config(self) -> None:
        config = self.home / ".config" / "obs-studio"
        profile = config / "basic" / "profiles" / "Untitled"
        profile.mkdir(parents=True)
        recordings = self.home / "recordings"
        recordings.mkdir()
        # The websocket flags (--websocket_port/--websocket_password) override port and password but
        # do not turn the server on, so global.ini is the one place that says everything.
        (config / "global.ini").write_text(
            "[General]\nFirstRun=true\n\n"
            "[Basic]\nProfile=Untitled\nProfileDir=Untitled\nSceneCollection=Untitled\nSceneCollectionFile=Untitled\n\n"
            "[OBSWebSocket]\nFirstLoad=false\nServerEnabled=true\n"
            f"ServerPort={self.port}\nAuthRequired=true\nServerPassword={self.password}\nAlertsEnabled=false\n"
        )
        (profile / "basic.ini").write_text(
            "[General]\nName=Untitled\n\n"
            "[Video]\nBaseCX=320\nBaseCY=180\nOutputCX=320\nOutputCY=180\nFPSType=1\nFPSInt=5\n\n"
            f"[SimpleOutput]\nFilePath={recordings}\nRecFormat=mkv\nVBitrate=200\nABitrate=64\n"
            # veryfast x264 holds frames back: stopping a recording took 3.7 s, with these 0.4 s.
            "Preset=ultrafast\nUseAdvanced=true\nx264Settings=tune=zerolatency\n"
        )
        (profile / "service.json").write_text(json.dumps(self._stream_service()))

    def _stream_service(self) -> dict[str, Any]:
        assert self.stream_sink is not None
        settings = {"server": self.stream_sink.url, "key": self.stream_sink.key, "use_auth": False, "bwtest": False}
        return {"type": "rtmp_custom", "settings": settings}

    def _spawn(
        self, argv: list[str], log: Path, *, env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in a process group of its own, told to die with the thread that started it
        (util-linux's setpriv sets PR_SET_PDEATHSIG and execs: fixtures run in pytest's main thread)."""
        if shutil.which("setpriv"):
            argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
                start_new_session=True,
            )
        self.process_groups.append(proc.pid)
        return proc

    def _start_xvfb(self) -> None:
        read, write = os.pipe()
        try:
            log = self.home.parent / "xvfb.log"
            # -displayfd: Xvfb picks a free display itself and writes its number to the pipe.
            argv = ["Xvfb", "-displayfd", str(write), "-screen", "0", "640x480x24", "-nolisten", "tcp"]
            self._xvfb = self._spawn(argv, log, pass_fds=(write,))
            os.close(write)
            write = -1
            with os.fdopen(read, "rb") as pipe:
                read = -1
                number = pipe.readline().strip()
            if not number:
                raise OBSStartError("Xvfb did not start:\n" + log.read_text(errors="replace")[-2000:])
            self.display = ":" + number.decode()
        finally:
            for fd in (read, write):
                if fd >= 0:
                    os.close(fd)

    def _start_obs(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "DISPLAY": self.display,
            "LIBGL_ALWAYS_SOFTWARE": "1",
            "LANG": "C.UTF-8",
        }
        began = time.monotonic()
        argv = ["obs", "--disable-shutdown-check", "--minimize-to-tray", "--multi"]
        self._obs = self._spawn(argv, self.log_path, env=env)
        # Poll the port, not the websocket: obsws-python logs a traceback for each refused connect.
        deadline = began + self.start_timeout
        while True:
            if self._obs.poll() is not None:
                raise OBSStartError(f"OBS exited with {self._obs.returncode}:\n{self._log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise OBSStartError(
                    f"OBS did not listen on {self.port} within {self.start_timeout} s:\n{self._log_tail()}"
                )
            time.sleep(0.05)
        self.started_in = time.monotonic() - began

    def _switch_and_wait(self, c: obsws_python.ReqClient, scene: str) -> None:
        # CurrentProgramSceneChanged comes when the transition ends (about 0.5 s with Fade at 5 fps):
        # wait for it, or the next spec's event client would hear this switch.
        done = threading.Event()

        def on_current_program_scene_changed(data: Any) -> None:
            if data.scene_name == scene:
                done.set()

        events = self.events()
        try:
            events.callback.register(on_current_program_scene_changed)
            c.send("SetCurrentProgramScene", {"sceneName": scene})
            if not done.wait(5):
                raise RuntimeError(f"OBS did not announce the switch to {scene!r}")
        finally:
            events.disconnect()

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def _build_studio(self) -> None:
        """Make the studio exactly `SCENES` and the two sources (creating what is missing, removing
        what a spec added, OBS's default "Scene" included), OBS's default transition (Fade, 300 ms),
        "Intro" on program, the jingle unmuted, the stream going to `stream_sink`."""
        with self.client() as c:
            scenes = {s["sceneName"] for s in c.send("GetSceneList", raw=True)["scenes"]}
            for name in SCENES:
                if name not in scenes:
                    c.send("CreateScene", {"sceneName": name})
            c.send("SetCurrentSceneTransition", {"transitionName": "Fade"})
            c.send("SetCurrentSceneTransitionDuration", {"transitionDuration": 300})
            if c.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"] != FIRST_SCENE:
                self._switch_and_wait(c, FIRST_SCENE)
            for name in scenes - set(SCENES):
                c.send("RemoveScene", {"sceneName": name})
            inputs = {i["inputName"] for i in c.send("GetInputList", raw=True)["inputs"]}
            wanted: dict[str, dict[str, Any]] = {
                BANNER: {
                    "inputKind": "color_source_v3",
                    "inputSettings": {"color": 0xFFCC3366, "width": 320, "height": 40},
                },
                JINGLE: {"inputKind": "ffmpeg_source", "inputSettings": {}},
            }
            for name, spec in wanted.items():
                if name not in inputs:
                    c.send("CreateInput", {"sceneName": "Live", "inputName": name, **spec})
            for name in inputs - set(wanted):
                c.send("RemoveInput", {"inputName": name})
            c.send("SetInputMute", {"inputName": JINGLE, "inputMuted": False})
            service = self._stream_service()
            c.send(
                "SetStreamServiceSettings",
                {"streamServiceType": service["type"], "streamServiceSettings": service["settings"]},
            )


@atexit.register
def _stop_all() -> None:
    for obs in list(_LIVE):
        obs.stop()
