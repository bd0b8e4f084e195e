"""``mona worker``: an RQ worker on the queues high, default and low, with RQ's scheduler (delayed
retries), and the ticker (relay, sweep, reminders, digest) on a thread beside it.

Worker class: ``SimpleWorker``, deliberately. mona's jobs are short and I/O-bound (an HTTP call, a
few queries); forking a process per job (RQ's default ``Worker``) costs a fork plus new database
connections each time, and runs about 80 no-op jobs/s here against about 270/s. What forking buys
— surviving a job that crashes the interpreter — mona gets from its database instead: a delivery
whose worker died is leased, and the ticker enqueues it again once the lease runs out. Run more
``mona worker`` processes for more throughput; they share the relay through a database lock.
"""

from __future__ import annotations

import logging
import sys

from jobs.queue import RedisQueue
from jobs.runtime import Runtime
from jobs.ticker import Ticker

log = logging.getLogger("mona.worker")


def run_worker(rt: Runtime, *, burst: bool = False) -> int:
    if not isinstance(rt.queue, RedisQueue):
        print("mona worker needs REDIS_URL; without it jobs already run inside `mona run`.", file=sys.stderr)
        return 2
    from rq import SimpleWorker

    ticker = Ticker(rt).start()
    try:
        worker = SimpleWorker(list(rt.queue.queues.values()), connection=rt.queue.redis)
        worker.work(with_scheduler=True, burst=burst, logging_level=rt.settings.log_level)
    finally:
        ticker.stop()
    return 0
