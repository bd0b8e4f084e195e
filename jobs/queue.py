"""The one place that enqueues jobs: RQ on Redis when ``REDIS_URL`` is set, in-process otherwise.

Job functions are plain functions of ``jobs.tasks`` taking ids; the database row they act on is
the truth, so a job enqueued twice, or lost with Redis, is harmless: the ticker enqueues again
whatever is still due.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("mona.jobs")

QUEUES = ("high", "default", "low")
#: Jobs still waiting to run. A "started" job is not counted: the sweep only asks again for a
#: delivery whose lease ran out, i.e. whose worker died while the job was started.
_LIVE = {"queued", "scheduled", "deferred"}


class QueueUnavailable(Exception):
    """Redis cannot be reached; what was to be enqueued stays due in the database."""


class JobQueue(Protocol):
    def enqueue(self, fn: Callable[..., Any], *args: Any, queue: str = "default", delay: float = 0.0,
                job_id: str | None = None) -> None: ...

    def enqueue_many(self, fn: Callable[..., Any], calls: list[tuple[str, tuple[Any, ...]]], *,
                     queue: str = "default") -> None:
        """Enqueue ``fn(*args)`` for each ``(job_id, args)``, skipping ids whose job is still
        waiting or running (so a sweep never piles up duplicates)."""
        ...

    def sizes(self) -> dict[str, int] | None:
        """Jobs waiting per queue, or None when that cannot be known."""
        ...


class RedisQueue:
    """RQ queues ``high``, ``default``, ``low``. Unexpected crashes of a job are retried by RQ with
    backoff; deliveries classify their own failures (see ``jobs.tasks.deliver``)."""

    def __init__(self, url: str) -> None:
        from redis import Redis
        from rq import Queue

        self.redis_url = url
        self.redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self.queues = {name: Queue(name, connection=self.redis) for name in QUEUES}

    def enqueue(self, fn: Callable[..., Any], *args: Any, queue: str = "default", delay: float = 0.0,
                job_id: str | None = None) -> None:
        from redis.exceptions import RedisError
        from rq import Retry

        q = self.queues[queue]
        retry = Retry(max=3, interval=[5, 30, 120])
        try:
            if delay > 0:
                q.enqueue_in(dt.timedelta(seconds=delay), fn, *args, retry=retry, job_id=job_id)
            else:
                q.enqueue(fn, *args, retry=retry, job_id=job_id)
        except RedisError as e:
            raise QueueUnavailable(str(e)) from e

    def enqueue_many(self, fn: Callable[..., Any], calls: list[tuple[str, tuple[Any, ...]]], *,
                     queue: str = "default") -> None:
        from redis.exceptions import RedisError
        from rq import Queue, Retry
        from rq.job import Job

        if not calls:
            return
        q = self.queues[queue]
        try:
            existing = Job.fetch_many([job_id for job_id, _ in calls], connection=self.redis)
            live = {job.id for job in existing if job is not None and job.get_status(refresh=False) in _LIVE}
            retry = Retry(max=3, interval=[5, 30, 120])
            todo = [Queue.prepare_data(fn, args=args, job_id=job_id, retry=retry) for job_id, args in calls
                    if job_id not in live]
            if todo:
                with self.redis.pipeline() as pipe:
                    q.enqueue_many(todo, pipeline=pipe)
                    pipe.execute()
        except RedisError as e:
            raise QueueUnavailable(str(e)) from e

    def sizes(self) -> dict[str, int] | None:
        from redis.exceptions import RedisError

        try:
            return {name: q.count for name, q in self.queues.items()}
        except RedisError:
            return None


class LocalQueue:
    """Jobs in this process: on one background thread (``start()``), or only when ``drain()`` is
    called (scripts and tests). Same job functions as on RQ."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[..., Any], tuple[Any, ...], str | None]] = []
        self._pending: set[str] = set()
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def enqueue(self, fn: Callable[..., Any], *args: Any, queue: str = "default", delay: float = 0.0,
                job_id: str | None = None) -> None:
        with self._cv:
            if job_id is not None:
                if job_id in self._pending:
                    return
                self._pending.add(job_id)
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), fn, args, job_id))
            self._cv.notify()

    def enqueue_many(self, fn: Callable[..., Any], calls: list[tuple[str, tuple[Any, ...]]], *,
                     queue: str = "default") -> None:
        for job_id, args in calls:
            self.enqueue(fn, *args, queue=queue, job_id=job_id)

    def sizes(self) -> dict[str, int] | None:
        with self._cv:
            return {"in-process": len(self._heap)}

    def _pop_due(self) -> tuple[Callable[..., Any], tuple[Any, ...]] | None:
        with self._cv:
            if self._heap and self._heap[0][0] <= time.monotonic():
                _due, _n, fn, args, job_id = heapq.heappop(self._heap)
                self._pending.discard(job_id or "")
                return fn, args
            return None

    def drain(self) -> int:
        """Run every job that is due now (including ones they enqueue without delay)."""
        ran = 0
        while (job := self._pop_due()) is not None:
            _run(*job)
            ran += 1
        return ran

    @property
    def running(self) -> bool:
        """Whether a background thread runs the jobs (else only ``drain`` does)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mona-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cv.wait(timeout)
                if self._stopping:
                    return
            self.drain()


def _run(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("in-process job %s%r failed", getattr(fn, "__name__", fn), args)
