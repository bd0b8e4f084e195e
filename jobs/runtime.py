"""What jobs run with: settings, the database, the queue and the notifiers of each platform.

RQ calls job functions with ids only, so each worker process holds one ``Runtime``, set by the
process that starts it (``mona worker``, the bot in embedded mode, a test) with ``configure``.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from typing import TextIO

from core.config import Settings
from core.db import Database
from core.notifier import Notifier
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


_current: Runtime | None = None


def configure(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        configure(build(Settings.from_env()))
    assert _current is not None
    return _current


def notifiers_for(settings: Settings, *, out: TextIO | None = None) -> dict[str, Notifier]:
    from bot.notify_console import ConsoleNotifier

    found: dict[str, Notifier] = {"console": ConsoleNotifier(out or sys.stdout)}
    if settings.slack_bot_token:
        from bot.notify_slack import slack_notifier

        found["slack"] = slack_notifier(settings)
    if settings.discord_token:
        from bot.notify_discord import discord_notifier

        found["discord"] = discord_notifier(settings.discord_token, settings.discord_api_url)
    return found


def build(settings: Settings, *, db: Database | None = None, queue: JobQueue | None = None) -> Runtime:
    db = db or Database(settings.database_url)
    if queue is None:
        queue = RedisQueue(settings.redis_url) if settings.redis_url else LocalQueue()
    return Runtime(settings, db, queue, notifiers_for(settings),
                   lease=dt.timedelta(seconds=settings.delivery_lease_seconds),
                   requeue_after=dt.timedelta(seconds=settings.requeue_after_seconds))
