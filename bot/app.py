"""The composition root: settings in, a ready ``Mona`` (database, dispatcher, jobs) out.

Adapters receive the dispatcher; nothing else in mona creates engines, queues or clients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import handlers  # noqa: F401  (registers every command)
from core.config import Settings
from core.db import Database
from handlers.moderation import Guard
from handlers.registry import Dispatcher
from jobs import runtime as job_runtime
from jobs.queue import JobQueue, LocalQueue
from jobs.ticker import Ticker, tick


@dataclass
class Mona:
    settings: Settings
    db: Database
    dispatcher: Dispatcher
    runtime: job_runtime.Runtime
    guard: Guard

    def start_background(self) -> Ticker | None:
        """Embedded mode (no ``REDIS_URL``): run jobs and the ticker in this process."""
        if not isinstance(self.runtime.queue, LocalQueue):
            return None
        self.runtime.queue.start()
        return Ticker(self.runtime, interval=0.5).start()

    def run_pending_jobs(self, *, rounds: int = 20) -> None:
        """Run what is due now, synchronously (``mona exec``, tests): relay, reminders, deliveries."""
        queue = self.runtime.queue
        for _ in range(rounds):
            tick(self.runtime)
            if not isinstance(queue, LocalQueue) or queue.drain() == 0:
                return


class RuntimeJobs:
    """What handlers see of the job system (``handlers.registry.Jobs``)."""

    def __init__(self, rt: job_runtime.Runtime) -> None:
        self.rt = rt

    def start(self, run_id: int) -> None:
        from jobs.longjobs import run_job

        self.rt.queue.enqueue(run_job, run_id, queue="low")

    def sizes(self) -> dict[str, int] | None:
        return self.rt.queue.sizes()


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def bootstrap(settings: Settings, *, migrate: bool = True, db: Database | None = None,
              queue: JobQueue | None = None) -> Mona:
    db = db or Database(settings.database_url)
    if migrate:
        db.upgrade()
    rt = job_runtime.build(settings, db=db, queue=queue)
    job_runtime.configure(rt)
    guard = Guard(db, settings)
    return Mona(settings, db, Dispatcher(db, settings, jobs=RuntimeJobs(rt), guard=guard), rt, guard)
