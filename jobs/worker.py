"""``mona worker``: an RQ worker on the queues high, default and low, with RQ's scheduler (delayed
retries), and the ticker (relay, sweep, reminders, digest) on a thread beside it.

Worker class: ``SimpleWorker``, deliberately. mona's jobs are short and I/O-bound (an HTTP call, a
few queries); forking a process per job (RQ's default ``Worker``) costs a fork plus new database
connections each time, and runs about 80 no-op jobs/s here against about 270/s. What forking buys
— surviving a job that crashes the interpreter — mona gets from its database instead: a delivery
whose worker died is leased, and the ticker enqueues it again once the lease runs out. Run more
``mona worker`` processes for more throughput; they share the relay through a database lock.

Redis going away: RQ's work loop waits for Redis while it listens, but quits when Redis drops
while a job runs (the heartbeat after the job, or recording its result, raises). ``run_worker``
then waits for Redis with backoff (1 s, 2 s, … up to 30 s) and starts a new work loop, so the
process rides out the outage; it ends only when asked to (SIGTERM, SIGINT) or in burst mode.
Nothing is lost meanwhile: what a job did is in PostgreSQL, and the ticker enqueues again whatever
is still due once Redis is back (its jobs were in the Redis that went away).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.worker import WorkerStatus

from jobs.queue import RedisQueue
from jobs.runtime import Runtime
from jobs.ticker import Ticker

log = logging.getLogger("mona.worker")

#: Waits between attempts to reach Redis again: doubling from the first to the last.
FIRST_WAIT_S = 1.0
MAX_WAIT_S = 30.0
#: A work loop that lasted this long starts the next outage's waits from the first again.
STEADY_S = 60.0


class MonaWorker(SimpleWorker):
    """``SimpleWorker`` that notes a stop request in ``stopping``, so that ``run_worker`` tells a
    stop (end) from a work loop that ended because Redis went away (start again)."""

    #: While it listens, RQ itself waits for Redis, doubling up to this (its default: 60 s).
    max_connection_wait_time = MAX_WAIT_S

    def __init__(self, *args: Any, stopping: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopping = stopping

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()
        try:
            super().request_stop(signum, frame)  # type: ignore[no-untyped-call]
        except RedisError:  # it records the request in Redis; stop all the same (after the job, if one runs)
            if self.get_state() != WorkerStatus.BUSY:
                raise StopRequested() from None


def run_worker(rt: Runtime, *, burst: bool = False) -> int:
    if not isinstance(rt.queue, RedisQueue):
        print("mona worker needs REDIS_URL; without it jobs already run inside `mona run`.", file=sys.stderr)
        return 2
    queue = rt.queue
    stopping = threading.Event()
    ticker = Ticker(rt).start()
    wait = FIRST_WAIT_S
    try:
        while not stopping.is_set():
            worker = MonaWorker(list(queue.queues.values()), connection=queue.redis, stopping=stopping)
            began = time.monotonic()
            try:
                worker.work(with_scheduler=True, burst=burst, logging_level=rt.settings.log_level)
            except RedisError as e:  # its teardown could not tell Redis it stopped
                log.warning("worker %s: Redis went away (%s)", worker.name, e)
                _let_go(worker)
            if burst or stopping.is_set():
                break
            if time.monotonic() - began >= STEADY_S:
                wait = FIRST_WAIT_S
            log.warning("worker %s: its work loop ended (Redis went away?); starting again once Redis answers",
                        worker.name)
            wait_for_redis(queue.redis_url, stopping, first=wait)
            wait = min(MAX_WAIT_S, wait * 2)
    finally:
        ticker.stop()
    return 0


def _let_go(worker: SimpleWorker) -> None:
    """What RQ's teardown did not get to once Redis failed: its pubsub thread."""
    thread = worker.pubsub_thread
    if thread is not None:
        thread.stop()


def wait_for_redis(url: str, stopping: threading.Event, *, first: float = FIRST_WAIT_S,
                   cap: float = MAX_WAIT_S) -> bool:
    """Until Redis answers a PING (True), waiting ``first`` seconds, then twice as long each time up
    to ``cap``; False once SIGTERM or SIGINT sets ``stopping`` (the handlers are this function's
    while it waits, and stay until the next work loop installs RQ's)."""

    def stop_waiting(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop_waiting)
    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        delay = first
        while _sleep(delay, stopping):
            try:
                client.ping()
            except RedisError as e:
                delay = min(cap, delay * 2)
                log.warning("Redis still unreachable (%s); trying again in %g s", e, delay)
                continue
            log.info("Redis answers again")
            return True
        return False
    finally:
        with contextlib.suppress(RedisError):
            client.close()


def _sleep(seconds: float, stopping: threading.Event) -> bool:
    """Sleep, a tenth of a second at a time; False as soon as ``stopping`` is set. (Not
    ``stopping.wait``: the signal handler that sets it runs on this same thread.)"""
    deadline = time.monotonic() + seconds
    while not stopping.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(0.1, left))
    return False
