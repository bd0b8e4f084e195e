"""What jobs run with: settings, the database, the queue and the notifiers of each platform.

RQ calls job functions with ids only, so each worker process holds one ``Runtime``, set by the
process that starts it (``mona worker``, the bot in embedded mode, a test) with ``configure``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from core.app import Caller
from core.config import Settings
from core.db import Database
from core.effects import ModerationGateway
from core.notifier import Notifier
from core.outbox import Subscriber
from jobs.queue import JobQueue, LocalQueue, RedisQueue


@dataclass
class Runtime:
    settings: Settings
    db: Database
    queue: JobQueue
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    #: How long one delivery attempt may take before another worker may assume it died.
    lease: dt.timedelta = dt.timedelta(seconds=60)
    #: How long an enqueued delivery may wait before the ticker enqueues it again.
    requeue_after: dt.timedelta = dt.timedelta(seconds=30)
    #: Moderation on each platform over its REST API, for actions decided anywhere (``core.effects``).
    moderators: dict[str, ModerationGateway] = field(default_factory=dict)
    #: Who the relay hands committed events to, in this order (notifications first).
    subscribers: list[Subscriber] = field(default_factory=list)
    #: Runs a command line as someone (a workflow's step): (done, what it answered). Set by the
    #: composition root, which holds the parser (jobs do not import handlers).
    run_command: Callable[[Caller, str], tuple[bool, str]] | None = None


_current: Runtime | None = None


def configure(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    """The runtime ``bot.app.bootstrap`` configured for this process (``mona worker``, the bot, a test)."""
    if _current is None:
        raise RuntimeError("no job runtime: jobs run in a process started by bot.app.bootstrap (mona worker)")
    return _current


def build(settings: Settings, *, db: Database | None = None, queue: JobQueue | None = None,
          notifiers: dict[str, Notifier] | None = None,
          moderators: dict[str, ModerationGateway] | None = None) -> Runtime:
    """The runtime of a process; its notifiers (the platforms' chat clients) come from the
    composition root, ``bot.app.bootstrap``: jobs never import adapters."""
    db = db or Database(settings.database_url)
    if queue is None:
        queue = RedisQueue(settings.redis_url) if settings.redis_url else LocalQueue()
    rt = Runtime(settings, db, queue, dict(notifiers or {}), moderators=dict(moderators or {}),
                 lease=dt.timedelta(seconds=settings.delivery_lease_seconds),
                 requeue_after=dt.timedelta(seconds=settings.requeue_after_seconds))
    return rt
