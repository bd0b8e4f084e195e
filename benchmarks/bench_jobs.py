"""Jobs benchmark: RQ's ceiling against mona's notification path, and commit-to-delivery latency.

One run, on a private redis-server the script starts (and stops) and its own PostgreSQL database
(``mona_bench_jobs``, emptied and migrated with ``Database(url).upgrade()``):
  (a) N bare no-op RQ jobs processed by W ``SimpleWorker`` processes, from the first enqueue until
      all are finished → jobs/s;
  (b) N notifications through the real path: N outbox events (``core.outbox.record`` in a few big
      transactions, one routing rule to a Slack channel) → W ``mona worker`` processes (relay +
      ``deliver``) → a local Slack Web API stub recording ``chat.postMessage`` → jobs/s from the
      first commit until the stub has N messages; the ratio (b)/(a) (goal ≥ 0.5);
  (c) p50 / p99 from commit to delivery at RATE events/s for S seconds, each event committed in its
      own transaction, its commit time recorded beside its id, matched by delivery key with the
      stub's arrival time (goal p99 < 1 s).
Both (a) and (b) use RQ's ``SimpleWorker`` (``mona worker`` does). Workers log at WARNING in both.

Run: ``.venv/bin/python benchmarks/bench_jobs.py [--workers 2] [--jobs 10000] [--rate 100] [--seconds 20]``
(``--requeue-after`` sets the workers' ``MONA_REQUEUE_AFTER_SECONDS``);
``MONA_BENCH_JOBS_DATABASE_URL`` overrides the database. Everything started is stopped on exit,
Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common import QuietHandler, prepare_database  # noqa: E402

URL = os.environ.get("MONA_BENCH_JOBS_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mona_bench_jobs")
CHANNEL = "C0BENCH"
BOT_TOKEN = "xoxb-bench"
BARE_QUEUE = "bench"


def noop() -> None:
    """The bare job of (a)."""


# ---------------------------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """In a child before exec: its own session (Ctrl-C in the terminal is ours to handle) and
    SIGKILL if this script dies without cleaning up."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Processes:
    """Every child process the benchmark starts, each in its own process group; ``stop_all`` ends
    them (SIGTERM, then SIGKILL) whatever happened."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)
        log.close()
        self.started.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # RQ's scheduler process, if it outlived the worker
            os.killpg(proc.pid, signal.SIGKILL)
        self.started = [(n, p) for n, p in self.started if p is not proc]

    def stop_all(self) -> None:
        for _name, proc in reversed(list(self.started)):
            self.stop(proc)

    def check_alive(self) -> None:
        for name, proc in self.started:
            if proc.poll() is not None and name.startswith(("rq-", "mona-")):
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(procs: Processes, workdir: Path) -> str:
    from redis import Redis

    port = free_port()
    procs.start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(workdir)])
    deadline = time.monotonic() + 10
    while True:
        try:
            Redis(port=port, socket_connect_timeout=1).ping()
            return f"redis://127.0.0.1:{port}/0"
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def wait_workers(redis_url: str, count: int, procs: Processes, timeout: float = 30) -> None:
    from redis import Redis
    from rq import Worker

    redis = Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while len(Worker.all(connection=redis)) < count:
        procs.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} workers registered after {timeout}s")
        time.sleep(0.05)


def run_bare_worker(redis_url: str) -> None:
    """The worker of (a): a plain ``SimpleWorker`` on the bench queue (``--rq-worker``)."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    redis = Redis.from_url(redis_url)
    worker = SimpleWorker([Queue(BARE_QUEUE, connection=redis)], connection=redis)
    worker.work(logging_level="WARNING")


# ---------------------------------------------------------------------------------- Slack stub


class SlackStub:
    """``chat.postMessage`` (recording the arrival time of each delivery key) and
    ``conversations.history`` (the last messages with their metadata), on a threaded http.server."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.duplicates = 0
        self.posts = 0
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def start(self) -> SlackStub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self, keys: set[str] | None = None) -> int:
        with self.lock:
            return len(self.arrivals) if keys is None else sum(1 for k in keys if k in self.arrivals)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        metadata = body.get("metadata")
        metadata = json.loads(metadata) if isinstance(metadata, str) else metadata or {}
        key = str((metadata.get("event_payload") or {}).get("key"))
        with self.lock:
            self.posts += 1
            if key in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[key] = now
            ts = f"{int(now)}.{self.posts:06d}"
            self.messages.append({"type": "message", "ts": ts, "text": body.get("text"), "metadata": metadata,
                                  "channel": body.get("channel")})
        return {"ok": True, "channel": body.get("channel"), "ts": ts}

    def _history(self, body: dict[str, Any]) -> dict[str, Any]:
        limit = int(body.get("limit") or 100)
        with self.lock:
            found = [m for m in reversed(self.messages) if m["channel"] == body.get("channel")][:limit]
        return {"ok": True, "messages": found, "has_more": False}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(QuietHandler):
            disable_nagle_algorithm = True  # headers and body leave at once, as from Slack

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self._read_body()
                method = self.path.split("?", 1)[0].removeprefix("/api/")
                if method == "chat.postMessage":
                    answer = stub._post(body)
                elif method == "conversations.history":
                    answer = stub._history(body)
                else:
                    answer = {"ok": False, "error": "unknown_method"}
                self._send(200, json.dumps(answer).encode(), "application/json; charset=utf-8")

        return Handler


# ---------------------------------------------------------------------------------- database


def add_rule(db: Any) -> int:
    from core.notify import NotificationRule

    with db.uow() as uow:
        rule = NotificationRule(event_type="artist.created", platform="slack", target=CHANNEL, label="#bench")
        uow.session.add(rule)
        uow.commit()
        return int(rule.id)


def event_payload(i: int) -> dict[str, Any]:
    return {"artist_id": i, "name": f"Artist {i}", "pipeline": "mona", "stage": "Prospection"}


# ---------------------------------------------------------------------------------- the three runs


def wait_for(done: Callable[[], bool], procs: Processes, timeout: float, what: str,
             progress: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    next_report = time.monotonic() + 5
    while not done():
        procs.check_alive()
        now = time.monotonic()
        if now > deadline:
            raise RuntimeError(f"{what}: not done after {timeout:.0f}s" + (f" ({progress()})" if progress else ""))
        if progress and now >= next_report:
            print(f"  … {progress()}", file=sys.stderr, flush=True)
            next_report = now + 5
        time.sleep(0.01)


def bench_bare(procs: Processes, redis_url: str, n: int, workers: int) -> float:
    from redis import Redis
    from rq import Queue

    redis = Redis.from_url(redis_url)
    queue = Queue(BARE_QUEUE, connection=redis)
    bare = [procs.start(f"rq-{i}", [sys.executable, __file__, "--rq-worker", redis_url]) for i in range(workers)]
    wait_workers(redis_url, workers, procs)
    registry = queue.finished_job_registry
    started = time.perf_counter()
    for _ in range(n):
        queue.enqueue("benchmarks.bench_jobs.noop")
    enqueued = time.perf_counter() - started
    wait_for(lambda: registry.count >= n, procs, 600, "bare RQ jobs", lambda: f"{registry.count}/{n} finished")
    elapsed = time.perf_counter() - started
    failed = queue.failed_job_registry.count
    for proc in bare:
        procs.stop(proc)
    print(f"(a) bare RQ: {n:,} no-op jobs by {workers} SimpleWorker(s) in {elapsed:.2f} s "
          f"(enqueueing took {enqueued:.2f} s; {failed} failed) → {n / elapsed:,.0f} jobs/s")
    return n / elapsed


def start_mona_workers(procs: Processes, redis_url: str, stub: SlackStub, workers: int,
                       requeue_after: float | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONA_", "SLACK_", "DISCORD_", "REDIS_"))}
    env.update(DATABASE_URL=URL, REDIS_URL=redis_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=stub.api_url,
               MONA_LOG_LEVEL="WARNING")
    if requeue_after is not None:
        env["MONA_REQUEUE_AFTER_SECONDS"] = f"{requeue_after:g}"
    for i in range(workers):
        procs.start(f"mona-{i}", [sys.executable, "-m", "bot.cli", "worker"], env=env)
    wait_workers(redis_url, workers, procs)


def bench_mona(procs: Processes, redis_url: str, db: Any, stub: SlackStub, rule_id: int, n: int,
               transactions: int) -> float:
    from redis import Redis
    from rq import Queue

    from core import outbox

    per = -(-n // transactions)
    first_commit: float | None = None
    for start in range(0, n, per):
        with db.uow() as uow:
            for i in range(start, min(n, start + per)):
                outbox.record(uow, "artist.created", **event_payload(i + 1))
            uow.commit()
            first_commit = first_commit or time.time()
    assert first_commit is not None
    committed = time.time() - first_commit
    wait_for(lambda: stub.count() >= n, procs, 900, "notifications", lambda: f"{stub.count():,}/{n:,} at the stub")
    with stub.lock:
        last = max(stub.arrivals.values())
    elapsed = last - first_commit
    print(f"(b) mona: {n:,} notifications (outbox → relay → deliver → Slack stub) in {elapsed:.2f} s "
          f"(committed in {transactions} transactions, the last {committed:.2f} s after the first; "
          f"{stub.duplicates} duplicates) → {n / elapsed:,.0f} jobs/s", flush=True)
    # Deliveries that waited in the queue longer than MONA_REQUEUE_AFTER_SECONDS were enqueued again
    # by the sweep; those jobs find their row sent and skip. Let them drain before (c).
    high = Queue("high", connection=Redis.from_url(redis_url))
    drained = time.time()
    wait_for(lambda: high.count == 0 and high.started_job_registry.count == 0, procs, 600, "queue drain",
             lambda: f"{high.count:,} jobs still queued")
    ran = high.finished_job_registry.count
    # The relay hands up to jobs.relay.DELIVERIES_PER_JOB deliveries to one job.
    print(f"    RQ ran {ran:,} deliver jobs for {n:,} deliveries ({n / max(ran, 1):.1f} deliveries per job); "
          f"the queue drained {time.time() - drained:.1f} s after the last message", flush=True)
    return n / elapsed


def bench_latency(procs: Processes, db: Any, stub: SlackStub, rule_id: int, rate: float, seconds: float,
                  first_id: int) -> tuple[float, float]:
    from core import outbox
    from core.outbox import OutboxEvent

    total = int(rate * seconds)
    committed: dict[str, float] = {}
    lag = 0.0
    t0 = time.monotonic()
    for k in range(total):
        due = t0 + k / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            lag = max(lag, -pause)
        with db.uow() as uow:
            outbox.record(uow, "artist.created", **event_payload(first_id + k))
            [event] = [o for o in uow.session.new if isinstance(o, OutboxEvent)]
            uow.commit()
            committed[f"event:{event.id}:rule:{rule_id}"] = time.time()
    keys = set(committed)
    wait_for(lambda: stub.count(keys) >= total, procs, 120, "latency run",
             lambda: f"{stub.count(keys)}/{total} delivered")
    with stub.lock:
        latencies = sorted(stub.arrivals[key] - at for key, at in committed.items())
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"(c) latency: {total:,} events at {rate:g}/s for {seconds:g} s, one transaction each "
          f"(the producer fell behind by {lag * 1000:.0f} ms at most): commit → Slack "
          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    return p50, p99


# ---------------------------------------------------------------------------------- main


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Ctrl-C (SIGINT, even if a shell started us with it ignored) and SIGTERM both interrupt."""
    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes in (a) and (b) (default 2)")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in (a) and notifications in (b)")
    parser.add_argument("--transactions", type=int, default=5, help="transactions committing (b)'s events")
    parser.add_argument("--rate", type=float, default=100.0, help="events per second in (c)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of (c)")
    parser.add_argument("--requeue-after", type=float, metavar="SECONDS",
                        help="MONA_REQUEUE_AFTER_SECONDS of the mona workers (default: mona's own, 30)")
    parser.add_argument("--rq-worker", metavar="REDIS_URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rq_worker:
        run_bare_worker(args.rq_worker)
        return 0

    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    print(f"machine: {cores} cores ({usable} usable); workers: {args.workers} (SimpleWorker in (a) and (b)); "
          f"Python {sys.version.split()[0]}", flush=True)
    if args.requeue_after is not None:
        print(f"MONA_REQUEUE_AFTER_SECONDS={args.requeue_after:g} for the mona workers", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="mona-bench-jobs-"))
    procs = Processes(tmp)
    stub: SlackStub | None = None
    try:
        with interrupt_on_sigterm():
            import rq

            print(f"rq {rq.__version__}; redis-server private in {tmp}; database {URL}", flush=True)
            redis_url = start_redis(procs, tmp)
            db = prepare_database(URL)
            rule_id = add_rule(db)

            bare = bench_bare(procs, redis_url, args.jobs, args.workers)

            stub = SlackStub().start()
            start_mona_workers(procs, redis_url, stub, args.workers, args.requeue_after)
            real = bench_mona(procs, redis_url, db, stub, rule_id, args.jobs, args.transactions)
            ratio = real / bare
            print(f"ratio (b)/(a): {ratio:.2f} (goal ≥ 0.5: {'met' if ratio >= 0.5 else 'NOT met'})", flush=True)

            _p50, p99 = bench_latency(procs, db, stub, rule_id, args.rate, args.seconds, args.jobs + 1)
            print(f"p99 commit → delivery: {p99 * 1000:.0f} ms (goal < 1000 ms: {'met' if p99 < 1 else 'NOT met'})")
            db.engine.dispose()
        return 0
    except KeyboardInterrupt:
        print("interrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C or SIGTERM must not cut the cleanup short.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            procs.stop_all()
            if stub is not None:
                stub.stop()
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


if __name__ == "__main__":
    raise SystemExit(main())
