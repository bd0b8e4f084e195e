"""Studio Live benchmark: scene switches from chat against a real OBS, and reconnection after a crash.

Starts real headless OBS Studios with the specs' harness (``tests/obs_harness.RealOBS``: Xvfb, the
scenes Intro, Live, BRB, "Écran de fin", a 320x180 canvas) and mona bootstrapped against them
(OBS_HOST / OBS_PORT / OBS_PASSWORD) on a database of its own (mona_bench_studio: created if
missing, emptied, migrated). Prints in one run:

1. **Scene switch, chat command to OBS's confirmation.** mona's path: a console ``Invocation``
   ``/stream scene X`` through ``mona.dispatcher`` (identify, permission, parse, one transaction,
   the handler's ``GetSceneList`` then ``SetCurrentProgramScene`` through ``ObsStudio``, commit,
   reply). Bare: ``ReqClient.set_current_program_scene(X)`` on a client of its own. Both are timed
   from the call until a separate ``EventClient`` (the same listener for both) hears
   ``CurrentProgramSceneChanged`` for that scene, and also until the call returns ("request only").
   The transition is set to Cut first: with Fade, OBS sends the event when the transition ends, so
   it waits for the transition (a few Fade switches are measured to show it). Scenes alternate,
   mona and bare are interleaved (a random order within each pair), after a warm-up, with a random
   pause before each switch (up to one frame) so that switches land anywhere in OBS's frame.
   OBS confirms a switch on a video frame: the event waits for the next frame after the request,
   so OBS's frame rate bounds what any client sees. The harness's canvas runs at 5 fps (cheap for
   the specs: up to 200 ms to the event); a streaming canvas runs at 30 or 60 fps. The switch is
   measured at each rate of MONA_BENCH_FPS (default 5, 30 and 60, one OBS each; 5 is the harness as
   it is, the others change only its profile's FPSInt). Then a profile of mona's path (untimed
   pass): its OBS requests by type, its SQL statements, and the rest, against the bare requests.
   Goals (issue 10): within 1.5x of bare (p50 and p99), p99 under 50 ms.
2. **Reconnection after a crash.** mona's supervised ``ObsStudio``: OBS is SIGKILLed
   (``RealOBS.kill()``), restarted at once (``restart()``, which returns when OBS listens again),
   and the time to ``studio.health().state == "connected"`` is measured from ``restart()``
   returning and from the kill, 5 times; then, this script's own check (not the issue's figure),
   3 times with OBS left down for MONA_BENCH_OUTAGE seconds (default 12, long enough for the
   supervisor's backoff to reach its most) and restarted just after one of its attempts failed: the
   worst phase, its longest wait still ahead. Goal (issue 10): under 5 s.

A table at the end gives each figure, its goal and whether it is met.
Run: `make bench-studio` (MONA_BENCH_STUDIO_DATABASE_URL overrides the database; MONA_BENCH_N the
number of switches per path and frame rate, at least 200).
"""

from __future__ import annotations

import contextlib
import cProfile
import dataclasses
import logging
import os
import pstats
import random
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import pct, prepare_database, print_table  # noqa: E402
from bot.app import Mona, bootstrap  # noqa: E402
from bot.console import ConsoleBot  # noqa: E402
from core import obs as core_obs  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import Database  # noqa: E402
from core.obs import ObsStudio, wait_connected  # noqa: E402
from tests.obs_harness import SCENES, RealOBS  # noqa: E402

URL = os.environ.get("MONA_BENCH_STUDIO_DATABASE_URL",
                     "postgresql+psycopg://postgres@127.0.0.1:5432/mona_bench_studio")
N = max(200, int(os.environ.get("MONA_BENCH_N", "300")))
FPS = [int(f) for f in os.environ.get("MONA_BENCH_FPS", "5,30,60").split(",") if f.strip()]
OUTAGE = float(os.environ.get("MONA_BENCH_OUTAGE", "12"))
WARM = 20
FADES = 10
PROFILED = 100
RESTARTS, LONG_RESTARTS = 5, 3
GOAL_RATIO, GOAL_P99_MS, GOAL_RECONNECT_S = 1.5, 50.0, 5.0
CONFIRM_TIMEOUT = 5.0


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


class ObsAt(RealOBS):
    """The harness's OBS with its canvas at ``fps`` frames per second (the harness's own is 5)."""

    def __init__(self, fps: int) -> None:
        super().__init__()
        self.fps = fps

    def _write_config(self) -> None:
        super()._write_config()
        profile = self.home / ".config" / "obs-studio" / "basic" / "profiles" / "Untitled" / "basic.ini"
        text = profile.read_text()
        assert "FPSInt=5\n" in text, "the harness's profile changed: update ObsAt"
        profile.write_text(text.replace("FPSInt=5\n", f"FPSInt={self.fps}\n"))


class Confirmations:
    """One event client of its own: when OBS says the program scene became ``expect``'s scene."""

    def __init__(self, obs: RealOBS) -> None:
        self._scene: str | None = None
        self._at = 0.0
        self._done = threading.Event()
        self._client = obs.events()
        self._client.callback.register(self.on_current_program_scene_changed)

    def on_current_program_scene_changed(self, data: Any) -> None:
        if data.scene_name == self._scene and not self._done.is_set():
            self._at = time.perf_counter()
            self._done.set()

    def expect(self, scene: str) -> None:
        self._done.clear()
        self._scene = scene

    def wait(self) -> float:
        """When the expected event arrived (``perf_counter``); raises after ``CONFIRM_TIMEOUT``."""
        if not self._done.wait(CONFIRM_TIMEOUT):
            raise RuntimeError(f"OBS did not announce the switch to {self._scene!r}")
        return self._at

    def close(self) -> None:
        self._client.disconnect()


@dataclasses.dataclass
class SwitchPath:
    """One way of switching a scene: ``switch(scene)`` returns once the request is answered."""

    name: str
    switch: Callable[[str], None]
    event_ms: list[float] = dataclasses.field(default_factory=list)
    request_ms: list[float] = dataclasses.field(default_factory=list)


def summary(values: list[float]) -> str:
    return (f"p50 {statistics.median(values):7.2f}  p95 {pct(values, 95):7.2f}  p99 {pct(values, 99):7.2f}  "
            f"max {max(values):7.2f} ms")


def mona_for(db: Database, obs: RealOBS) -> Mona:
    settings = Settings(database_url=URL, log_level="WARNING", obs_host=obs.host, obs_port=obs.port,
                        obs_password=obs.password)
    mona = bootstrap(settings, migrate=False, db=db)
    studio = mona.app.services.studio
    assert isinstance(studio, ObsStudio) and wait_connected(studio, 10), "mona did not connect to OBS"
    return mona


# ------------------------------------------------------------------------------------ 1. scene switch


def switch_paths(mona: Mona, obs: RealOBS) -> tuple[SwitchPath, SwitchPath, Any]:
    bot = ConsoleBot(mona.dispatcher, user_name="bench")

    def by_mona(scene: str) -> None:
        reply = bot.run(f"/stream scene {scene}")
        assert not reply.error and reply.text == f"On air: {scene}.", reply.text

    bare_client = obs.client()

    def bare(scene: str) -> None:
        bare_client.set_current_program_scene(scene)

    return SwitchPath("mona /stream scene", by_mona), SwitchPath("bare set_current_program_scene", bare), bare_client


def run_switches(paths: list[SwitchPath], confirm: Confirmations, n: int, *, frame_s: float, rnd: random.Random,
                 start: str, record: bool = True) -> str:
    """``n`` switches per path, interleaved (a random order in each pair), each to the scene after
    the one on air; returns the scene on air at the end."""
    cycle = list(SCENES)
    on_air = start
    for _ in range(n):
        for path in rnd.sample(paths, len(paths)):
            scene = cycle[(cycle.index(on_air) + 1) % len(cycle)]
            time.sleep(0.005 + rnd.uniform(0, frame_s))  # lands anywhere in OBS's frame
            confirm.expect(scene)
            t0 = time.perf_counter()
            path.switch(scene)
            t1 = time.perf_counter()
            at = confirm.wait()
            on_air = scene
            if record:
                path.request_ms.append((t1 - t0) * 1000)
                path.event_ms.append((at - t0) * 1000)
    return on_air


def fade_switches(bare: SwitchPath, confirm: Confirmations, client: Any, on_air: str, rnd: random.Random) -> tuple[
        list[float], str]:
    client.set_current_scene_transition("Fade")
    client.set_current_scene_transition_duration(300)
    probe = SwitchPath("fade", bare.switch)
    try:
        on_air = run_switches([probe], confirm, FADES, frame_s=0.05, rnd=rnd, start=on_air)
    finally:
        client.set_current_scene_transition("Cut")
    return probe.event_ms, on_air


@contextlib.contextmanager
def profiled(mona: Mona, studio: ObsStudio) -> Iterator[dict[str, list[float]]]:
    """Times, per dispatch, of mona's OBS requests (by type) and of its SQL statements (this
    thread's only: mona's event thread writes the outbox at the same time)."""
    spans: dict[str, list[float]] = defaultdict(list)
    me = threading.get_ident()
    started: dict[int, float] = {}
    real_call = studio._call

    def timed_call(request: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            return real_call(request, data)
        finally:
            spans[f"OBS {request}"].append((time.perf_counter() - t0) * 1000)

    def before(conn: Any, cursor: Any, statement: str, *_a: object) -> None:
        if threading.get_ident() == me:
            started[id(cursor)] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_a: object) -> None:
        if threading.get_ident() == me and id(cursor) in started:
            spans["SQL statements"].append((time.perf_counter() - started.pop(id(cursor))) * 1000)

    studio._call = timed_call  # type: ignore[method-assign]  # an instance attribute, this pass only
    event.listen(mona.db.engine, "before_cursor_execute", before)
    event.listen(mona.db.engine, "after_cursor_execute", after)
    try:
        yield spans
    finally:
        del studio._call
        event.remove(mona.db.engine, "before_cursor_execute", before)
        event.remove(mona.db.engine, "after_cursor_execute", after)


def profile_mona(mona: Mona, studio: ObsStudio, paths: tuple[SwitchPath, SwitchPath], client: Any, confirm: Confirmations,
                 on_air: str, rnd: random.Random) -> tuple[dict[str, float], str]:
    """Where mona's request time goes (a pass of its own, not in the figures above), per dispatch."""
    ours, bare = paths
    probe = SwitchPath("profiled", ours.switch)
    with profiled(mona, studio) as spans:
        on_air = run_switches([probe], confirm, PROFILED, frame_s=0.0, rnd=rnd, start=on_air)
    per: dict[str, float] = {k: sum(v) / PROFILED for k, v in spans.items()}
    per["dispatch (request only)"] = statistics.mean(probe.request_ms)
    counts = {k: len(v) / PROFILED for k, v in spans.items()}
    bare_list = []
    for _ in range(PROFILED):
        t0 = time.perf_counter()
        client.send("GetSceneList", raw=True)
        bare_list.append((time.perf_counter() - t0) * 1000)
    per["bare GetSceneList"] = statistics.mean(bare_list)
    per["bare SetCurrentProgramScene"] = statistics.mean(bare.request_ms)
    obs_ms = sum(v for k, v in per.items() if k.startswith("OBS "))
    rest = per["dispatch (request only)"] - obs_ms - per.get("SQL statements", 0.0)
    print(f"profile of {PROFILED} more /stream scene dispatches (untimed pass; means per dispatch):")
    for k in sorted(spans):
        print(f"  {k:34} {counts[k]:4.1f} x  {per[k]:6.2f} ms")
    print(f"  {'the rest (parse, permission, match, transaction, reply)':58} {rest:6.2f} ms")
    print(f"  {'= dispatch until it returns':58} {per['dispatch (request only)']:6.2f} ms")
    print(f"  bare, for scale: GetSceneList {per['bare GetSceneList']:.2f} ms, SetCurrentProgramScene "
          f"{per['bare SetCurrentProgramScene']:.2f} ms (means)")
    extra = per["dispatch (request only)"] - per.get("OBS SetCurrentProgramScene", 0.0)
    per["extra"] = extra
    print(f"  mona's extra around the switch request itself: {extra:.2f} ms = a second OBS request (GetSceneList, "
          f"to match the name and see what is on air: 2 requests where bare makes 1) "
          f"{per.get('OBS GetSceneList', 0.0):.2f} ms + SQL {per.get('SQL statements', 0.0):.2f} ms "
          f"({counts.get('SQL statements', 0.0):.0f} statement: identify; COMMIT is in the rest) + the rest {rest:.2f} ms")
    per["rest"] = rest
    on_air = profile_by_code(ours, confirm, on_air, rnd)
    return per, on_air


def code_of(file: str, name: str) -> str:
    """Whose code a profiled function is, for ``profile_by_code``."""
    if file == "~":  # built-ins: the socket waits are what the servers take to answer
        if "recv" in name or "send" in name:
            return "socket recv/send (waiting for OBS's answers)"
        return "built-ins (other)"
    parts = Path(file).parts
    if "sqlalchemy" in parts:
        return "SQLAlchemy"
    if any(p.startswith("psycopg") for p in parts):
        return "psycopg (its waits for PostgreSQL included)"
    if "websocket" in parts or "obsws_python" in parts or "json" in parts:
        return "obsws-python, websocket-client, json"
    if "babel" in parts or "gettext.py" in parts:
        return "i18n (babel, gettext)"
    root = Path(__file__).resolve().parent.parent
    if file.startswith(str(root)) and ".venv" not in parts:
        return f"mona's own code ({parts[len(root.parts)]}/)" if len(parts) > len(root.parts) else "mona"
    return "other Python (stdlib, libraries)"


def profile_by_code(ours: SwitchPath, confirm: Confirmations, on_air: str, rnd: random.Random) -> str:
    """cProfile (this thread) of the dispatches only, their own time summed by whose code it is."""
    profiler = cProfile.Profile()

    def switch(scene: str) -> None:
        profiler.enable()
        try:
            ours.switch(scene)
        finally:
            profiler.disable()

    probe = SwitchPath("cProfiled", switch)
    on_air = run_switches([probe], confirm, PROFILED, frame_s=0.0, rnd=rnd, start=on_air)
    groups: dict[str, float] = defaultdict(float)
    for (file, _line, name), (_cc, _nc, own, _cum, _callers) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        groups[code_of(file, name)] += own
    total = sum(groups.values())
    print(f"  under cProfile ({PROFILED} more dispatches, {1000 * total / PROFILED:.2f} ms each with the profiler's "
          f"overhead, which inflates Python code), own time by code:")
    for name, own in sorted(groups.items(), key=lambda g: -g[1]):
        print(f"    {name:44} {1000 * own / PROFILED:6.2f} ms  {100 * own / total:4.0f} %")
    return on_air


def scene_switch(db: Database, fps: int, table: list[tuple[str, str, str, str]]) -> None:
    print(f"\n== 1. scene switch at {fps} fps ({'the harness canvas' if fps == 5 else 'a streaming frame rate'}; "
          f"a frame is {1000 / fps:.0f} ms): {N} switches per path after {WARM} warm-up, interleaved")
    rnd = random.Random(10 + fps)
    with (RealOBS() if fps == 5 else ObsAt(fps)) as obs:
        mona = mona_for(db, obs)
        studio = mona.app.services.studio
        assert isinstance(studio, ObsStudio)
        confirm = Confirmations(obs)
        ours, bare, client = switch_paths(mona, obs)
        try:
            fades, on_air = fade_switches(bare, confirm, client, "Intro", rnd)
            print(f"with Fade 300 ms (OBS's default), {FADES} bare switches: the event comes when the transition ends, "
                  f"{summary(fades)}; Cut from here on")
            frame_s = 1 / fps
            on_air = run_switches([ours, bare], confirm, WARM, frame_s=frame_s, rnd=rnd, start=on_air, record=False)
            on_air = run_switches([ours, bare], confirm, N, frame_s=frame_s, rnd=rnd, start=on_air)
            print(f"{'until OBS confirms (CurrentProgramSceneChanged)':50}")
            for p in (ours, bare):
                print(f"  {p.name:32} {summary(p.event_ms)}")
            print(f"{'until the call returns (request only)':50}")
            for p in (ours, bare):
                print(f"  {p.name:32} {summary(p.request_ms)}")
            r50 = statistics.median(ours.event_ms) / statistics.median(bare.event_ms)
            r99 = pct(ours.event_ms, 99) / pct(bare.event_ms, 99)
            q50 = statistics.median(ours.request_ms) / statistics.median(bare.request_ms)
            q99 = pct(ours.request_ms, 99) / pct(bare.request_ms, 99)
            wait = statistics.median(bare.event_ms) - statistics.median(bare.request_ms)
            print(f"mona/bare until confirmed: p50 {r50:.2f}x, p99 {r99:.2f}x   request only: p50 {q50:.2f}x, "
                  f"p99 {q99:.2f}x")
            print(f"OBS's own wait from answering the request to its event (bare, p50): {wait:.1f} ms "
                  f"({100 * wait / statistics.median(bare.event_ms):.0f} % of the bare figure)")
            p99 = pct(ours.event_ms, 99)
            print(f"goals: within {GOAL_RATIO}x of bare: {verdict(max(r50, r99) <= GOAL_RATIO)}; p99 < {GOAL_P99_MS:g} "
                  f"ms: {verdict(p99 < GOAL_P99_MS)}")
            table.append((f"{fps} fps: mona/bare until confirmed", f"p50 {r50:.2f}x, p99 {r99:.2f}x",
                          f"<= {GOAL_RATIO}x", verdict(max(r50, r99) <= GOAL_RATIO)))
            table.append((f"{fps} fps: mona p99 until confirmed", f"{p99:.1f} ms (bare {pct(bare.event_ms, 99):.1f})",
                          f"< {GOAL_P99_MS:g} ms", verdict(p99 < GOAL_P99_MS)))
            table.append((f"{fps} fps: request only p50 mona / bare",
                          f"{statistics.median(ours.request_ms):.2f} / {statistics.median(bare.request_ms):.2f} ms "
                          f"({q50:.2f}x)", "—", "—"))
            if fps == FPS[-1]:
                per, on_air = profile_mona(mona, studio, (ours, bare), client, confirm, on_air, rnd)
                table.append((f"{fps} fps: mona's extra request time (profiled mean)", f"{per['extra']:.2f} ms (GetSceneList "
                              f"{per.get('OBS GetSceneList', 0.0):.2f})", "—", "—"))
        finally:
            confirm.close()
            client.disconnect()
            studio.close()


# ------------------------------------------------------------------------------------ 2. reconnection


def until(check: Callable[[], bool], timeout: float) -> float:
    """``perf_counter`` when ``check()`` first holds (polled every 5 ms)."""
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise RuntimeError("not within the time")
        time.sleep(0.005)
    return time.perf_counter()


def reconnection(db: Database, table: list[tuple[str, str, str, str]]) -> None:
    print(f"\n== 2. reconnection: OBS SIGKILLed and restarted, until mona's ObsStudio says connected "
          f"(backoff {core_obs.BACKOFF_FIRST:g} s doubling to {core_obs.BACKOFF_MOST:g} s, x U(0.5, 1))")
    logging.getLogger("mona.obs").setLevel(logging.ERROR)  # "connection lost; reconnecting" at each kill
    with RealOBS() as obs:
        mona = mona_for(db, obs)
        studio = mona.app.services.studio
        assert isinstance(studio, ObsStudio)
        attempts: list[tuple[float, float, bool]] = []  # the supervisor's: (began, took, connected)
        real_try = studio._try_connect

        def counted() -> bool:
            t0 = time.perf_counter()
            ok = real_try()
            attempts.append((t0, time.perf_counter() - t0, ok))
            return ok

        studio._try_connect = counted  # type: ignore[method-assign]  # an instance attribute: counts attempts

        def connected() -> bool:
            return studio.health().state == "connected"

        worst = f"down {OUTAGE:g} s, worst phase"
        rows: dict[str, list[float]] = {"at once": [], worst: []}
        try:
            print(f"{'run':>24} {'noticed':>9} {'restart()':>10} {'after restart() returned':>25} {'after the kill':>15} "
                  f"{'attempts':>9} {'last wait':>10} {'last try':>9}")
            for label, reps in (("at once", RESTARTS), (worst, LONG_RESTARTS)):
                for i in range(reps):
                    attempts.clear()
                    t_kill = time.perf_counter()
                    obs.kill()
                    t_noticed = until(lambda: not connected(), 10)
                    if label == worst:  # OUTAGE seconds down, then restarted just after a failed attempt
                        time.sleep(max(0.0, OUTAGE - (time.perf_counter() - t_kill)))
                        failed = len(attempts)

                        def another_failed(n: int = failed) -> bool:
                            return len(attempts) > n

                        until(another_failed, 10)
                    t_restart = time.perf_counter()
                    obs.restart()
                    t_up = time.perf_counter()
                    t_connected = until(connected, 30)
                    until(lambda: bool(attempts) and attempts[-1][2], 5)  # its re-read of OBS's state is done
                    rows[label].append(t_connected - t_up)
                    last_wait = attempts[-1][0] - (attempts[-2][0] + attempts[-2][1]) if len(attempts) > 1 else 0.0
                    print(f"{label + f' #{i + 1}':>24} {1000 * (t_noticed - t_kill):6.0f} ms {t_up - t_restart:8.2f} s "
                          f"{t_connected - t_up:23.2f} s {t_connected - t_kill:13.2f} s {len(attempts):9d} "
                          f"{last_wait:8.2f} s {1000 * attempts[-1][1]:6.0f} ms")
                    time.sleep(0.5)
            fast, slow = rows["at once"], rows[worst]
            print("(noticed: until health() left connected; restart(): until OBS listened again; last wait: the "
                  "supervisor's backoff before the attempt that connected; last try: that attempt, both clients' "
                  "handshakes and the re-read of OBS's state)")
            print(f"restarted at once: max {max(fast):.2f} s after restart() returned (goal < {GOAL_RECONNECT_S:g} s: "
                  f"{verdict(max(fast) < GOAL_RECONNECT_S)})")
            print(f"{worst} (restarted just after a failed attempt, the backoff at its most): max {max(slow):.2f} s; "
                  f"the supervisor then waits {core_obs.BACKOFF_MOST / 2:g}-{core_obs.BACKOFF_MOST:g} s between attempts, "
                  f"so the bound is {core_obs.BACKOFF_MOST:g} s + one attempt, less the time OBS takes to start")
            table.append(("reconnect after restart (restarted at once)", f"max {max(fast):.2f} s of {len(fast)}",
                          f"< {GOAL_RECONNECT_S:g} s", verdict(max(fast) < GOAL_RECONNECT_S)))
            table.append((f"reconnect after restart ({worst})*", f"max {max(slow):.2f} s of {len(slow)}",
                          f"< {GOAL_RECONNECT_S:g} s", verdict(max(slow) < GOAL_RECONNECT_S)))
        finally:
            del studio._try_connect
            studio.close()


# ------------------------------------------------------------------------------------ main


def main() -> None:
    for name in ("mona.app", "mona.dispatch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("obsws_python").setLevel(logging.CRITICAL)  # its connection log carries the password
    table: list[tuple[str, str, str, str]] = []
    db = prepare_database(URL)
    for fps in FPS:
        scene_switch(db, fps, table)
    reconnection(db, table)
    print_table(table, (50, 40, 10))
    print("* this script's own check, not the issue's figure: OBS left down long enough for the backoff to reach "
          "its most, and restarted just after one of the supervisor's attempts failed (the longest wait ahead).")


if __name__ == "__main__":
    main()
