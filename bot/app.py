"""The composition root: settings in, a ready ``Mona`` (database, application, dispatcher, jobs) out.

``bootstrap`` is the one place that builds the database, the queue, the notifiers and the services
commands use (``core.app.Services``); adapters receive the dispatcher (chat) or the application
(anything that builds typed commands itself). Nothing else in mona creates engines, queues or clients.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

import handlers  # noqa: F401  (registers every command)
from core import outbox
from core.app import Application, Caller, Services
from core.config import Settings
from core.db import Database
from core.effects import ModerationGateway, PlatformEffect, relay_modlog
from core.errors import UserError
from core.i18n import use_language
from core.notifier import Notifier
from core.obs import ObsStudio
from handlers.chat import ModLogPost
from handlers.guard import Guard
from handlers.registry import Dispatcher
from handlers.reply import Reply
from jobs import runtime as job_runtime
from jobs.flows import WorkflowSubscriber
from jobs.queue import JobQueue, LocalQueue
from jobs.relay import NotificationSubscriber, StreamModeSubscriber, StreamSessionSubscriber
from jobs.ticker import Ticker, tick


@dataclass
class Mona:
    settings: Settings
    db: Database
    app: Application
    dispatcher: Dispatcher
    runtime: job_runtime.Runtime
    guard: Guard

    def relay_modlog(self, source: str, post: ModLogPost, problems: list[str]) -> None:
        """Post a case of ``source`` (Twitch) in its mod-log on another platform (a Discord channel
        named ``discord:ID``), as an effect of its own: the guard's cases come here from the adapter."""
        from jobs import effects as effect_jobs

        case_id = int(post.undo_value) if post.undo_value.isdecimal() else None
        with self.db.uow() as uow:
            effect = relay_modlog(uow, source=source, route=post.channel_id, title=post.title, text=post.text,
                                  undo=post.undo_action_id, case_id=case_id, problems=problems)
            uow.commit()
            effect_id = effect.id
        effect_jobs.start(self.runtime, effect_id)

    def use_moderator(self, gateway: ModerationGateway) -> ModerationGateway | None:
        """Carry out this platform's moderation through ``gateway`` (a connected adapter's client)
        from now on; returns the one it replaces, for ``restore_moderator``."""
        previous = self.runtime.moderators.get(gateway.platform)
        self.runtime.moderators[gateway.platform] = gateway
        return previous

    def restore_moderator(self, platform: str, gateway: ModerationGateway | None) -> None:
        if gateway is None:
            self.runtime.moderators.pop(platform, None)
        else:
            self.runtime.moderators[platform] = gateway

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
    """What commands see of the job system (``core.app.LongJobs``)."""

    def __init__(self, rt: job_runtime.Runtime) -> None:
        self.rt = rt

    def start(self, run_id: int) -> None:
        from jobs import longjobs

        # One job id per run: the sweep never adds a second job while this one waits.
        self.rt.queue.enqueue(longjobs.run_job, run_id, queue="low", job_id=longjobs.job_id(run_id))

    def sizes(self) -> dict[str, int] | None:
        return self.rt.queue.sizes()


class RuntimeEffects:
    """What commands see of platform effects (``core.effects.EffectRunner``): a job per effect,
    and a short wait for its outcome so the reply can say done or refused."""

    def __init__(self, rt: job_runtime.Runtime) -> None:
        self.rt = rt

    def start(self, effect_id: int) -> None:
        from jobs import effects

        effects.start(self.rt, effect_id)

    def outcome(self, effect_id: int, *, wait_s: float) -> PlatformEffect | None:
        deadline = time.monotonic() + wait_s
        while True:
            with self.rt.db.uow() as uow:
                effect = uow.session.get(PlatformEffect, effect_id)
                if effect is not None:
                    uow.session.expunge(effect)
            if effect is None or effect.status != "queued" or time.monotonic() >= deadline:
                return effect
            time.sleep(0.05)


def notifiers_for(settings: Settings, *, out: TextIO | None = None) -> dict[str, Notifier]:
    """The chat clients deliveries go through: the console always, Slack and Discord when configured."""
    from bot.notify_console import ConsoleNotifier

    found: dict[str, Notifier] = {"console": ConsoleNotifier(out or sys.stdout)}
    if settings.slack_bot_token:
        from bot.notify_slack import slack_notifier

        found["slack"] = slack_notifier(settings)
    if settings.discord_token:
        from bot.notify_discord import discord_notifier

        found["discord"] = discord_notifier(settings.discord_token, settings.discord_api_url)
    return found


def moderators_for(settings: Settings) -> dict[str, ModerationGateway]:
    """Moderation over each platform's REST API, where mona has the credentials."""
    found: dict[str, ModerationGateway] = {}
    if settings.discord_token:
        from bot.discord_moderation import DiscordModeration

        found["discord"] = DiscordModeration(settings.discord_token, settings.discord_api_url, settings.lang)
    if settings.twitch_client_id and settings.twitch_bot_id and settings.twitch_refresh_token:
        from bot.twitch_moderation import TwitchModeration

        found["twitch"] = TwitchModeration(
            client_id=settings.twitch_client_id, client_secret=settings.twitch_client_secret, bot_id=settings.twitch_bot_id,
            bot_token=settings.twitch_bot_token, refresh_token=settings.twitch_refresh_token,
            api_url=settings.twitch_api_url, auth_url=settings.twitch_auth_url)
    return found


def studio_for(settings: Settings, db: Database) -> ObsStudio | None:
    """The supervised OBS connection when ``OBS_HOST`` is set."""
    if not settings.obs_host:
        return None
    return studio_at(db, settings.obs_host, settings.obs_port, settings.obs_password or "")


def studio_at(db: Database, host: str, port: int, password: str) -> ObsStudio:
    """A supervised connection to the OBS at ``host:port``; its events go to the outbox."""
    address = f"{host}:{port}"

    def record(type_: str, payload: dict[str, Any]) -> None:
        with db.uow() as uow:
            outbox.record(uow, type_, studio=address, **payload)
            uow.commit()

    return ObsStudio(host, port, password, on_event=record).start()


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def bootstrap(settings: Settings, *, migrate: bool = True, db: Database | None = None,
              queue: JobQueue | None = None) -> Mona:
    db = db or Database(settings.database_url)
    if migrate:
        db.upgrade()
    rt = job_runtime.build(settings, db=db, queue=queue, notifiers=notifiers_for(settings),
                             moderators=moderators_for(settings))
    rt.subscribers.append(NotificationSubscriber(rt))  # the first subscriber of committed events
    rt.subscribers.append(StreamModeSubscriber())
    rt.subscribers.append(StreamSessionSubscriber())
    rt.subscribers.append(WorkflowSubscriber(rt))
    job_runtime.configure(rt)
    guard = Guard(db, settings)
    services = Services(jobs=RuntimeJobs(rt), rules=guard, effects=RuntimeEffects(rt), studio=studio_for(settings, db),
                        connect_studio=lambda host, port, password: studio_at(db, host, port, password),
                        flows=RuntimeFlows(rt))
    app = Application(db, settings, services)
    dispatcher = Dispatcher(app)
    rt.run_command = functools.partial(run_command, dispatcher)
    return Mona(settings, db, app, dispatcher, rt, guard)


def run_command(dispatcher: Dispatcher, caller: Caller, line: str) -> tuple[bool, str]:
    """A workflow's command step: the line parsed like a person's, executed as ``caller`` (the
    workflow's owner) through the one entry point; (done, what it answered, as text)."""
    with use_language(dispatcher.app.settings.lang):
        try:
            command = dispatcher.parse(line)
        except UserError as e:
            return False, e.message
        outcome = dispatcher.app.execute(caller, command)
        if outcome.error is not None:
            return False, outcome.error.message
        value = outcome.value
        return True, value.plain_text() if isinstance(value, Reply) else str(value or "")


class RuntimeFlows:
    """``core.app.FlowRunner``: runs go to the workers; embedded with no background thread (scripts,
    tests), they run now."""

    def __init__(self, rt: job_runtime.Runtime) -> None:
        self.rt = rt

    def start(self, run_ids: list[int]) -> None:
        from jobs import flows

        queue = self.rt.queue
        if isinstance(queue, LocalQueue) and not queue.running:
            for run_id in run_ids:
                flows.execute(self.rt, run_id)
            return
        flows.start(self.rt, run_ids)
