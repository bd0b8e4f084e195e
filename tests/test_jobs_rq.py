"""Jobs on the real stack: private Redis servers, PostgreSQL, real `mona worker` processes (RQ
SimpleWorker with its scheduler, and the ticker thread) and the Slack Web API stub.

Each test starts its own redis-server on a free port (so the shared one is never touched) and its
workers in their own process groups; teardown kills every process it started. Short leases
(``MONA_DELIVERY_LEASE_SECONDS=2``, ``MONA_REQUEUE_AFTER_SECONDS=2``) keep the sweep quick.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from slack_sdk import WebClient
from sqlalchemy import func, select, update

from bot.app import Mona, bootstrap
from bot.console import ConsoleBot
from bot.slack import build_app, wsgi_app
from core import outbox
from core.config import Settings
from core.db import Database, utcnow
from core.notify import Delivery, JobRun, Reminder
from core.outbox import OutboxEvent
from tests.conftest import ADMIN, PG_URL, empty
from tests.slack_stub import BOT_TOKEN, SIGNING_SECRET, SlackRequests, WebApiStub, WsgiServer
from tests.test_notifiers import PagedWebApi

REPO = Path(__file__).resolve().parent.parent
CHANNEL = "C0CRM"
SLACK_CHANNEL = f"<#{CHANNEL}|crm>"
STARTUP = 10.0  # seconds a worker may take to register with Redis


# ------------------------------------------------------------------------------------ processes


def _own_group() -> None:
    """In a child before exec: a process group of its own (so teardown can kill the worker with RQ's
    scheduler process), and SIGKILL should pytest itself die without a teardown."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A private redis-server on a fixed free port, without persistence; stop and start it again
    on the same port at will."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        return Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=2, socket_timeout=5)

    def start(self) -> RedisServer:
        assert self.proc is None, "already running"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_own_group)
        deadline = time.monotonic() + 5
        while True:
            try:
                if self.client().ping():
                    return self
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@dataclasses.dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def log(self) -> str:
        return self.err.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        """Signal the worker's process group: the worker and RQ's scheduler process."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(5)

    def stop(self) -> int:
        """A warm shutdown, as on a deploy (SIGTERM)."""
        self.signal(signal.SIGTERM)
        return self.proc.wait(10)


class Workers:
    """Starts `mona worker` processes with an environment; kills them all at teardown."""

    def __init__(self, tmp: Path, redis: RedisServer, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.redis = redis
        self.env = env
        self.started: list[Worker] = []

    def start(self, *, wait: bool = True) -> Worker:
        n = len(self.started) + 1
        out, err = self.tmp / f"worker{n}.out", self.tmp / f"worker{n}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=self.env, cwd=REPO,
                                    stdout=o, stderr=e, preexec_fn=_own_group)
        worker = Worker(proc, out, err)
        self.started.append(worker)
        if wait:
            self.wait_registered(worker)
        return worker

    def wait_registered(self, worker: Worker) -> None:
        """Until RQ lists a worker of this process (it listens on its queues then)."""
        from rq import Worker as RqWorker

        deadline = time.monotonic() + STARTUP
        while True:
            with contextlib.suppress(Exception):
                if any(w.pid == worker.pid for w in RqWorker.all(connection=self.redis.client())):
                    return
            if worker.proc.poll() is not None:
                raise AssertionError(f"worker exited with {worker.proc.returncode}:\n{worker.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not registered after {STARTUP}s:\n{worker.log()}")
            time.sleep(0.05)

    def close(self) -> None:
        for w in self.started:
            w.signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.proc.wait(5)
        for n, w in enumerate(self.started, 1):  # shown by pytest when the test failed
            print(f"----- worker {n} (pid {w.pid}) stderr -----\n{w.log()[-6000:]}")


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def web_api() -> Iterator[WebApiStub]:
    with PagedWebApi() as stub:  # conversations.history by time and a page at a time, as Slack's
        yield stub


@pytest.fixture
def worker_env(redis_server: RedisServer, web_api: WebApiStub) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONA_", "SLACK_", "DISCORD_", "REDIS_"))}
    env.update(DATABASE_URL=PG_URL, REDIS_URL=redis_server.url, SLACK_BOT_TOKEN=BOT_TOKEN,
               SLACK_API_URL=web_api.api_url, MONA_DELIVERY_LEASE_SECONDS="2", MONA_REQUEUE_AFTER_SECONDS="2",
               MONA_LOG_LEVEL="INFO", MONA_LANG="en", MONA_TZ="Europe/Paris", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def workers(tmp_path: Path, redis_server: RedisServer, worker_env: dict[str, str]) -> Iterator[Workers]:
    started = Workers(tmp_path, redis_server, worker_env)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def rq_mona(pg_database: Database, settings: Settings, redis_server: RedisServer, web_api: WebApiStub) -> Mona:
    """The bot process: same database, its queue on the private Redis, Slack pointed at the stub.
    It never runs jobs itself here; the workers do."""
    empty(pg_database)
    configured = dataclasses.replace(settings, redis_url=redis_server.url, slack_bot_token=BOT_TOKEN,
                                     slack_signing_secret=SIGNING_SECRET, slack_api_url=web_api.api_url)
    return bootstrap(configured, migrate=False, db=pg_database)


@pytest.fixture
def slack(rq_mona: Mona, web_api: WebApiStub) -> Iterator[SlackRequests]:
    app = build_app(rq_mona)
    with WsgiServer(wsgi_app(rq_mona, app)) as server:
        yield SlackRequests(server.url, web_api)


@pytest.fixture
def slack_admin(rq_mona: Mona) -> ConsoleBot:
    """The Slack admin, driving the dispatcher directly (setting up rules without HTTP)."""
    return ConsoleBot(rq_mona.dispatcher, user_id=ADMIN, user_name="Lina", platform="slack")


@pytest.fixture
def console(rq_mona: Mona) -> ConsoleBot:
    return ConsoleBot(rq_mona.dispatcher, user_name="Lina")


# ------------------------------------------------------------------------------------ helpers


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout}s")
        time.sleep(every)


def deliveries(db: Database) -> list[Delivery]:
    with db.uow() as uow:
        return list(uow.session.scalars(select(Delivery).order_by(Delivery.id)))


def delivery_status(db: Database, status: str, count: int = 1) -> Callable[[], list[Delivery] | None]:
    def check() -> list[Delivery] | None:
        rows = deliveries(db)
        return rows if len(rows) == count and all(d.status == status for d in rows) else None

    return check


def key_of(message: dict[str, Any]) -> str:
    metadata = message.get("metadata") or {}
    assert metadata.get("event_type") == "mona_delivery", message
    return str(metadata["event_payload"]["key"])


def route_to_slack(admin: ConsoleBot) -> None:
    r = admin.run(f"/mona notify add artist.created {SLACK_CHANNEL}")
    assert not r.error, r.text
    assert r.text == "Rule 1: artist.created now goes to #crm."


def add_alex(admin: ConsoleBot) -> None:
    r = admin.run("/artist add Alex")
    assert not r.error, r.text


QUEUED = "Notification queued for #crm."


def says_queued(reply: dict[str, Any]) -> bool:
    """Whether a Slack reply tells where its notification went (in its context block)."""
    return any(e.get("text") == QUEUED for b in reply.get("blocks", []) if b["type"] == "context"
               for e in b.get("elements", []))


# ------------------------------------------------------------------------------------ 1. Slack end to end


def test_a_slack_command_is_notified_once_by_a_worker(slack: SlackRequests, rq_mona: Mona, web_api: WebApiStub,
                                                      workers: Workers) -> None:
    rule = slack.command(f"notify add artist.created {SLACK_CHANNEL}", command="/mona")
    assert rule.status == 200
    assert "Rule 1: artist.created now goes to #crm." in json.dumps(rule.json)

    added = slack.command("add Alex")
    assert added.status == 200 and "Alex" in added.json["text"]
    assert web_api.calls_to("chat.postMessage") == []  # the bot process posts nothing itself

    workers.start()
    [posted] = web_api.wait_messages(CHANNEL, timeout=10)
    [delivery] = wait_until(delivery_status(rq_mona.db, "sent"), timeout=5, what="sent")

    [call] = web_api.calls_to("chat.postMessage")
    assert call.body["channel"] == CHANNEL and call.token == BOT_TOKEN
    assert "Alex" in posted["text"]
    with rq_mona.db.uow() as uow:
        event_id = uow.session.scalar(select(OutboxEvent.id).where(OutboxEvent.type == "artist.created"))
    assert key_of(posted) == delivery.key == f"event:{event_id}:rule:1"
    assert (delivery.platform, delivery.target, delivery.attempts) == ("slack", CHANNEL, 1)
    assert delivery.ref == f"{CHANNEL}:{posted['ts']}"
    time.sleep(1.2)  # a sweep later: still one message
    assert len(web_api.messages_in(CHANNEL)) == 1
    assert says_queued(added.json), added.json  # checked last: the delivery above is the larger half


# ------------------------------------------------------------------------------------ 2. Redis down


def test_a_command_while_redis_is_down_is_delivered_once_redis_is_back(slack: SlackRequests, rq_mona: Mona,
                                                                      redis_server: RedisServer, web_api: WebApiStub,
                                                                      workers: Workers, console: ConsoleBot) -> None:
    redis_server.stop()

    rule = slack.command(f"notify add artist.created {SLACK_CHANNEL}", command="/mona")
    assert "Rule 1" in json.dumps(rule.json)
    added = slack.command("add Alex")
    assert added.status == 200 and "Alex" in added.json["text"]
    assert "Something went wrong" not in json.dumps(added.json)
    assert "Redis unreachable" in console.run("/mona jobs").plain_text()
    with rq_mona.db.uow() as uow:  # the event is committed and waits in the outbox
        assert uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.relayed_at.is_(None))) == 1

    redis_server.start()  # same port
    workers.start()
    [posted] = web_api.wait_messages(CHANNEL, timeout=10)
    [delivery] = wait_until(delivery_status(rq_mona.db, "sent"), timeout=5, what="sent")
    assert "Alex" in posted["text"] and key_of(posted) == delivery.key
    time.sleep(1.2)
    assert len(web_api.messages_in(CHANNEL)) == 1
    assert len(web_api.calls_to("chat.postMessage")) == 1
    assert says_queued(added.json), added.json  # checked last: the delivery above is the larger half


# ------------------------------------------------------------------------------------ 3. worker killed mid-send


def test_a_worker_killed_while_posting_is_replaced_and_the_message_exists_once(rq_mona: Mona, slack_admin: ConsoleBot,
                                                                              web_api: WebApiStub,
                                                                              workers: Workers) -> None:
    web_api.hold("chat.postMessage", 4.0)
    route_to_slack(slack_admin)
    add_alex(slack_admin)

    first = workers.start()
    [posted] = web_api.wait_messages(CHANNEL, timeout=10)  # Slack has it; the worker waits for the answer
    first.kill()
    [d] = deliveries(rq_mona.db)
    assert (d.status, d.attempts, d.ref) == ("in_flight", 1, None)

    workers.start()
    [delivery] = wait_until(delivery_status(rq_mona.db, "sent"), timeout=10, what="sent by the second worker")
    assert delivery.attempts == 2 and delivery.uncertain
    assert delivery.ref == f"{CHANNEL}:{posted['ts']}"  # the message found, not a new one
    assert len(web_api.calls_to("conversations.history")) >= 1
    time.sleep(1.2)
    assert len(web_api.messages_in(CHANNEL)) == 1
    assert len(web_api.calls_to("chat.postMessage")) == 1


@pytest.mark.probe("jobs: exactly once on a busy channel")
def test_a_worker_killed_while_posting_in_a_busy_channel_is_replaced_and_the_message_exists_once(
        rq_mona: Mona, slack_admin: ConsoleBot, web_api: WebApiStub, workers: Workers) -> None:
    web_api.hold("chat.postMessage", 4.0)
    route_to_slack(slack_admin)
    add_alex(slack_admin)

    first = workers.start()
    [posted] = web_api.wait_messages(CHANNEL, timeout=10)  # Slack has it; the worker waits for the answer
    first.kill()
    people = WebClient(token="xoxp-people", base_url=web_api.api_url)
    for i in range(192):  # the channel is busy meanwhile
        people.chat_postMessage(channel=CHANNEL, text=f"message {i}")

    workers.start()
    [delivery] = wait_until(delivery_status(rq_mona.db, "sent"), timeout=10, what="sent by the second worker")
    assert delivery.attempts == 2 and delivery.uncertain
    assert delivery.ref == f"{CHANNEL}:{posted['ts']}"  # the message found behind 192 others, not a new one
    assert len(web_api.calls_to("conversations.history")) >= 2  # page after page
    time.sleep(1.2)
    ours = [m for m in web_api.messages_in(CHANNEL) if m.get("metadata")]
    assert [key_of(m) for m in ours] == [delivery.key]
    assert len(web_api.messages_in(CHANNEL)) == 193


# ------------------------------------------------------------------------------------ 4. two relays


def test_two_workers_relay_300_events_into_exactly_300_messages(rq_mona: Mona, slack_admin: ConsoleBot,
                                                                 web_api: WebApiStub, workers: Workers) -> None:
    route_to_slack(slack_admin)
    first, second = workers.start(wait=False), workers.start(wait=False)
    workers.wait_registered(first)
    workers.wait_registered(second)

    for batch in range(30):  # committed while both relays poll
        with rq_mona.db.uow() as uow:
            for n in range(10):
                i = batch * 10 + n + 1
                outbox.record(uow, "artist.created", artist_id=i, name=f"Artist {i:03d}", pipeline="mona",
                              stage="Prospection")
            uow.commit()

    web_api.wait_messages(CHANNEL, 300, timeout=12)
    time.sleep(1.5)  # room for a duplicate to show
    posted = web_api.messages_in(CHANNEL)
    keys = Counter(key_of(m) for m in posted)
    with rq_mona.db.uow() as uow:
        event_ids = list(uow.session.scalars(select(OutboxEvent.id).order_by(OutboxEvent.id)))
    assert len(event_ids) == 300
    assert [k for k, n in keys.items() if n > 1] == []
    assert set(keys) == {f"event:{i}:rule:1" for i in event_ids}
    assert len(posted) == 300
    rows = deliveries(rq_mona.db)
    assert len(rows) == 300 and {d.status for d in rows} == {"sent"}
    assert {f"Artist {i:03d}" for i in range(1, 301)} == {m["text"].split(" added ")[1].split(" to ")[0] for m in posted}


# ------------------------------------------------------------------------------------ 5. Slack failures


def test_a_429_is_retried_after_retry_after_and_delivered_once(rq_mona: Mona, slack_admin: ConsoleBot,
                                                               web_api: WebApiStub, workers: Workers) -> None:
    web_api.fail("chat.postMessage", 429, retry_after=1)
    route_to_slack(slack_admin)
    add_alex(slack_admin)
    workers.start()

    web_api.wait_messages(CHANNEL, timeout=10)
    [delivery] = wait_until(delivery_status(rq_mona.db, "sent"), timeout=5, what="sent")
    refused, accepted = web_api.calls_to("chat.postMessage")
    assert accepted.at - refused.at >= 1.0
    assert delivery.attempts == 2 and delivery.last_error is None
    time.sleep(1.2)
    assert len(web_api.messages_in(CHANNEL)) == 1 and len(web_api.calls_to("chat.postMessage")) == 2


def test_an_http_500_is_retried_and_delivered_once(rq_mona: Mona, slack_admin: ConsoleBot, web_api: WebApiStub,
                                                   workers: Workers) -> None:
    web_api.fail("chat.postMessage", 500)
    route_to_slack(slack_admin)
    add_alex(slack_admin)
    workers.start()

    web_api.wait_messages(CHANNEL, timeout=10)
    [delivery] = wait_until(delivery_status(rq_mona.db, "sent"), timeout=5, what="sent")
    assert delivery.attempts == 2
    time.sleep(1.2)
    assert len(web_api.messages_in(CHANNEL)) == 1 and len(web_api.calls_to("chat.postMessage")) == 2


@pytest.mark.probe("jobs: exactly once on a busy channel")
def test_an_answer_lost_after_slack_posted_is_retried_without_a_second_post(rq_mona: Mona, slack_admin: ConsoleBot,
                                                                           web_api: WebApiStub, workers: Workers) -> None:
    web_api.drop_response("chat.postMessage")  # Slack posts it, then the connection drops: a network error
    route_to_slack(slack_admin)
    add_alex(slack_admin)
    workers.start()

    [posted] = web_api.wait_messages(CHANNEL, timeout=10)
    [delivery] = wait_until(delivery_status(rq_mona.db, "sent"), timeout=10, what="sent")
    assert delivery.attempts == 2 and delivery.ref == f"{CHANNEL}:{posted['ts']}"  # found, not posted again
    time.sleep(1.2)
    assert len(web_api.messages_in(CHANNEL)) == 1 and len(web_api.calls_to("chat.postMessage")) == 1


def test_channel_not_found_is_dead_listed_in_jobs_and_retried_from_its_button(rq_mona: Mona, slack_admin: ConsoleBot,
                                                                              console: ConsoleBot, web_api: WebApiStub,
                                                                              workers: Workers) -> None:
    web_api.errors["chat.postMessage"] = "channel_not_found"
    route_to_slack(slack_admin)
    add_alex(slack_admin)
    workers.start()

    [dead] = wait_until(delivery_status(rq_mona.db, "dead"), timeout=10, what="dead")
    assert dead.last_error == "channel_not_found: the channel does not exist or the bot cannot see it"
    assert dead.attempts == 1 and len(web_api.calls_to("chat.postMessage")) == 1

    jobs = console.run("/mona jobs")
    text = jobs.plain_text()
    assert "Failed: 1" in text and "channel_not_found" in text
    assert "high: 0" in text  # the queue sizes come from the real Redis
    del web_api.errors["chat.postMessage"]  # the bot was invited meanwhile
    again = console.click(jobs, f"Retry {dead.id}")
    assert again.text == f"Delivery {dead.id} is queued again."

    [posted] = web_api.wait_messages(CHANNEL, timeout=10)  # the worker's sweep picks it up
    [delivery] = wait_until(delivery_status(rq_mona.db, "sent"), timeout=5, what="sent after the retry")
    assert key_of(posted) == delivery.key and delivery.ref == f"{CHANNEL}:{posted['ts']}"
    assert "Failed: 0" in console.run("/mona jobs").plain_text()


# ------------------------------------------------------------------------------------ 6. reminders


def test_a_reminder_survives_a_worker_restart_and_is_delivered_once(rq_mona: Mona, console: ConsoleBot,
                                                                     workers: Workers) -> None:
    r = console.run("/remind #crm in 1h call Alex back")
    assert not r.error, r.text
    first = workers.start()
    time.sleep(1.2)  # at least one slow round of its ticker: nothing is due
    assert first.stop() == 0
    with rq_mona.db.uow() as uow:
        [reminder] = uow.session.scalars(select(Reminder))
        assert reminder.status == "scheduled"
        uow.session.execute(update(Reminder).values(due_at=utcnow()))
        uow.commit()
    assert deliveries(rq_mona.db) == []

    second = workers.start()
    [delivery] = wait_until(delivery_status(rq_mona.db, "sent"), timeout=10, what="sent")
    assert delivery.key == f"reminder:{reminder.id}" and (delivery.platform, delivery.target) == ("console", "crm")
    time.sleep(1.2)
    lines = [line for line in second.output().splitlines() if line.startswith("[#crm]")]
    assert lines == ["[#crm] Reminder from Lina — call Alex back"]
    assert "[#crm]" not in first.output()
    with rq_mona.db.uow() as uow:
        assert uow.session.scalars(select(Reminder.status)).all() == ["sent"]


# ------------------------------------------------------------------------------------ 7. Redis drops mid-job


@pytest.mark.probe("jobs: a worker rides out a Redis outage")
def test_a_worker_rides_out_redis_going_away_mid_job_and_delivers_what_comes_after(rq_mona: Mona,
                                                                                   slack_admin: ConsoleBot,
                                                                                   web_api: WebApiStub,
                                                                                   redis_server: RedisServer,
                                                                                   workers: Workers) -> None:
    web_api.hold("chat.postMessage", 1.5)  # time to take Redis away while the job runs
    route_to_slack(slack_admin)
    add_alex(slack_admin)
    worker = workers.start()
    web_api.wait_messages(CHANNEL, timeout=10)  # the job is under way: Slack has it, its answer is held
    redis_server.stop()
    wait_until(delivery_status(rq_mona.db, "sent"), timeout=10, what="recorded in PostgreSQL")
    wait_until(lambda: "Connection refused" in worker.log() or worker.proc.poll() is not None, timeout=15,
               what="noticed by the worker")

    redis_server.start()  # same port, and empty: what was queued is gone
    r = slack_admin.run("/artist add Nova")
    assert not r.error, r.text

    posted = web_api.wait_messages(CHANNEL, 2, timeout=20)
    assert worker.proc.poll() is None, "the worker quit"
    workers.wait_registered(worker)  # listening on its queues again
    rows = wait_until(delivery_status(rq_mona.db, "sent", 2), timeout=5, what="both sent")
    assert sorted(key_of(m) for m in posted) == sorted(d.key for d in rows)
    assert ["Alex" in posted[0]["text"], "Nova" in posted[1]["text"]] == [True, True]
    time.sleep(1.2)  # a sweep later: still two
    assert len(web_api.messages_in(CHANNEL)) == 2

    redis_server.stop()  # a deploy during an outage: SIGTERM still stops it, cleanly
    assert worker.stop() == 0


# ------------------------------------------------------------------------------------ 8. a long job while Redis is down


@pytest.mark.probe("jobs: an after-commit step that fails says what was saved")
def test_a_long_job_started_while_redis_is_down_is_saved_queued_and_run_once_redis_is_back(
        rq_mona: Mona, console: ConsoleBot, redis_server: RedisServer, workers: Workers) -> None:
    redis_server.stop()
    r = console.run("/mona rebuild-stats")
    assert not r.error, r.text
    assert r.text == "Job 1 is queued; its progress will show in this channel."
    assert r.footer == "The queue is unreachable right now: job 1 is saved and will start as soon as it is back."
    with rq_mona.db.uow() as uow:
        assert uow.session.get(JobRun, 1).status == "queued"

    redis_server.start()  # empty: the job was never handed over
    worker = workers.start()
    wait_until(lambda: job_run_status(rq_mona.db, 1) == "done", timeout=15, what="run by the worker")
    time.sleep(1.2)  # a sweep later: it ran once
    assert worker.output().count("Rebuilt the stage statistics of 0 artists") == 1


def job_run_status(db: Database, run_id: int) -> str | None:
    with db.uow() as uow:
        run = uow.session.get(JobRun, run_id)
        return run.status if run else None


@pytest.mark.probe("jobs: a worker rides out a Redis outage")
def test_compose_restarts_the_services_that_exit() -> None:
    """With a worker that rides out Redis outages, a restart policy brings back whatever else ends one."""
    import yaml

    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert {name: svc.get("restart") for name, svc in services.items() if name in ("bot", "worker")} == {
        "bot": "unless-stopped", "worker": "unless-stopped"}
