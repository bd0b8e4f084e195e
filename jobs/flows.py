"""Workflow runs on the workers: each step in order, its outcome and timing kept on the run.

``run_flow(run_id)`` claims the run (a row lock, skipping a run another worker holds), then does its
steps from ``next_step``, committing after each, so a worker that dies loses at most the step under
way (and a post or DM is a delivery with an idempotency key: it goes out once even then):

- ``command``: the command line, templated with the trigger's fields, run through the application's
  one entry point as the workflow's owner (their permissions; ``Caller.depth`` one deeper than the
  run, so the events it records cannot start an endless chain: ``core.workflows.MAX_DEPTH``);
- ``post`` / ``dm_owner``: a delivery to a channel, or to the artist's owner by DM;
- ``webhook``: a JSON POST (5 s timeout);
- ``delay``: the run waits (``wake_at``) and a job is scheduled for then (the ticker wakes it too);
- ``approval``: Approve / Reject buttons are posted and the run waits for a click or its timeout.

A failing step is tried again with backoff (2 s, then 4 s) up to ``STEP_ATTEMPTS`` times in all; then the run
is failed, the owner is told, and the workflow's ``on_error`` workflow runs with what went wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core import notify
from core import workflows as flows
from core.app import Caller
from core.db import UnitOfWork, utcnow
from core.errors import UserError
from core.i18n import _, use_language
from core.notifier import Action, Message
from core.outbox import CommittedEvent
from core.team import Identity, Member
from jobs import tasks
from jobs.queue import QueueUnavailable
from jobs.relay import enqueue_deliveries
from jobs.runtime import Runtime, current

log = logging.getLogger("mona.flows")
STEP_ATTEMPTS = 3
#: Runs handed to one job when a relay batch made several.
RUNS_PER_JOB = 20
#: The first retry of a failing step waits this long, the next twice as long.
RETRY_BASE_S = 2.0
WEBHOOK_TIMEOUT_S = 5.0
APPROVE, REJECT = flows.APPROVE, flows.REJECT
#: ``Session.info`` key: deliveries a step created, enqueued after its commit.
POSTED = "mona.flows.posted"


def run_flow(run_id: int) -> str:
    return execute(current(), run_id)


def job_id(run_id: int, attempt: int = 0) -> str:
    return f"flow-{run_id}-{attempt}"


def run_flows(run_ids: list[int]) -> list[str]:
    """Several runs one after the other (what one relay batch made): RQ's own cost per job is shared."""
    rt = current()
    return [execute(rt, run_id) for run_id in run_ids]


def start(rt: Runtime, run_ids: list[int], *, delay: float = 0.0) -> None:
    """Enqueue the runs, one job each, or ``RUNS_PER_JOB`` a job when a batch of events made many
    (a slow step then holds up the others of its job a little; retries and delays go one by one);
    the ticker enqueues a queued run again if Redis was down."""
    chunks = [run_ids] if len(run_ids) <= 1 else [run_ids[i:i + RUNS_PER_JOB] for i in range(0, len(run_ids), RUNS_PER_JOB)]
    for chunk in chunks:
        if not chunk:
            continue
        try:
            if len(chunk) == 1:
                rt.queue.enqueue(run_flow, chunk[0], queue="default", delay=delay, job_id=job_id(chunk[0]))
            else:
                rt.queue.enqueue(run_flows, chunk, queue="default", delay=delay, job_id=f"flows-{chunk[0]}-{chunk[-1]}")
        except QueueUnavailable:
            log.warning("workflow runs %s are saved but not enqueued; the ticker will", chunk)


def execute(rt: Runtime, run_id: int) -> str:
    with use_language(rt.settings.lang):
        return _execute(rt, run_id)


def _execute(rt: Runtime, run_id: int) -> str:
    while True:
        with rt.db.uow() as uow:
            run = uow.session.scalars(select(flows.WorkflowRun).where(flows.WorkflowRun.id == run_id)
                                      .with_for_update(skip_locked=True)).one_or_none()
            if run is not None and run.status == "waiting" and run.wake_at is not None and run.wake_at <= utcnow():
                run.status = "queued"  # a delay is over, or an approval timed out
            if run is None or run.status not in ("queued", "running"):
                return "skipped"
            w = uow.session.get(flows.Workflow, run.workflow_id)
            assert w is not None
            d = flows.definition_of(uow, w, run.version)
            if run.next_step >= len(d.steps):
                _finish(run, "done")
                uow.commit()
                return "done"
            run.status, run.started_at = "running", run.started_at or utcnow()
            step = d.steps[run.next_step]
            started = time.perf_counter()
            try:
                outcome = _do(rt, uow, w, run, step)
            except StepFailed as e:
                outcome = StepResult("failed", e.detail)
            ms = round((time.perf_counter() - started) * 1000, 1)
            result = _record(run, d, step, outcome, ms)
            posted = uow.session.info.pop(POSTED, [])
            uow.commit()
            status = run.status
            wake = run.wake_at
        for delivery_id in posted:  # sent here, by this worker, not as a job of its own (it keeps its claim and retries)
            tasks.deliver(delivery_id)
        if result == "next":
            continue
        if result == "retry":
            start_at(rt, run_id, delay=RETRY_BASE_S * 2 ** (run.attempts - 1))
        elif result == "wait" and wake is not None:
            start_at(rt, run_id, delay=max((wake - utcnow()).total_seconds(), 0.0))
        elif result == "failed":
            _after_failure(rt, run_id)
        return status


def start_at(rt: Runtime, run_id: int, *, delay: float) -> None:
    try:
        rt.queue.enqueue(run_flow, run_id, queue="default", delay=delay)
    except QueueUnavailable:
        log.warning("workflow run %s could not be scheduled; the ticker will wake it", run_id)


class StepFailed(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class StepResult:
    def __init__(self, status: str, detail: str = "", *, wait_until: dt.datetime | None = None) -> None:
        self.status, self.detail, self.wait_until = status, detail, wait_until


def _fields(run: flows.WorkflowRun) -> dict[str, Any]:
    return dict(run.trigger)


def _do(rt: Runtime, uow: UnitOfWork, w: flows.Workflow, run: flows.WorkflowRun, step: flows.Step) -> StepResult:
    fields = _fields(run)
    key = f"flow-run:{run.id}:step:{run.next_step}"
    try:
        if step.kind == "command":
            done = _command(rt, uow, w, run, flows.render(step.args["text"], fields))
            if step.args.get("to"):
                _deliver(rt, uow, key, step.args.get("platform") or "console", str(step.args["to"]), Message(done.detail))
            return done
        if step.kind == "post":
            platform, target = step.args.get("platform") or "console", str(step.args["to"])
            _deliver(rt, uow, key, platform, target, Message(flows.render(step.args["text"], fields)))
            return StepResult("done", _("posted in {to}", to=target))
        if step.kind == "dm_owner":
            owner = _owner_of(uow, w, fields)
            identity = notify.owner_identity(uow, owner, preferred=("slack", "discord", "console"))
            if identity is None:
                raise StepFailed(_("the owner has no chat account to write to"))
            _deliver(rt, uow, key, identity.platform, f"user:{identity.external_id}",
                     Message(flows.render(step.args["text"], fields)))
            return StepResult("done", _("sent to the owner"))
        if step.kind == "webhook":
            return _webhook(str(flows.render(step.args["url"], fields)), flows.render(step.args.get("body") or fields, fields))
        if step.kind == "delay":
            if run.wake_at is not None and run.wake_at <= utcnow():
                return StepResult("done", _("waited {s} s", s=step.args["seconds"]))
            return StepResult("wait", wait_until=utcnow() + dt.timedelta(seconds=step.args["seconds"]))
        return _approval(rt, uow, w, run, step, key, fields)
    except UserError as e:  # a template naming a field this run lacks, a command refused
        raise StepFailed(e.message) from None


def _owner_of(uow: UnitOfWork, w: flows.Workflow, fields: dict[str, Any]) -> int | None:
    """The artist's owner when the trigger names an artist, else the workflow's owner."""
    from core.artists import Artist

    artist = uow.session.get(Artist, fields["artist_id"]) if isinstance(fields.get("artist_id"), int) else None
    return artist.owner_id if artist is not None and artist.owner_id else w.owner_id


def _deliver(rt: Runtime, uow: UnitOfWork, key: str, platform: str, target: str, message: Message) -> None:
    """A post as a delivery (its key makes it go out once), enqueued once the step is committed."""
    ids = notify.add_deliveries(uow, [notify.NewDelivery(key, platform, target, message)])
    uow.session.info.setdefault(POSTED, []).extend(ids)


def _command(rt: Runtime, uow: UnitOfWork, w: flows.Workflow, run: flows.WorkflowRun, line: str) -> StepResult:
    if rt.run_command is None:
        raise StepFailed(_("commands cannot run in this process"))
    member = uow.session.get(Member, w.owner_id)
    identity = uow.session.scalars(select(Identity).where(Identity.member_id == w.owner_id)
                                   .order_by(Identity.id).limit(1)).one_or_none()
    if member is None or identity is None:
        raise StepFailed(_("the workflow's owner is no longer a member"))
    caller = Caller(platform=identity.platform, user_id=identity.external_id, user_name=member.display_name,
                    via="workflow", depth=run.depth + 1)
    ok, text = rt.run_command(caller, line)
    if not ok:
        raise StepFailed(text)
    return StepResult("done", text[:3000])


def _webhook(url: str, body: Any) -> StepResult:
    data = json.dumps(body, ensure_ascii=False, default=str).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "mona-workflows"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:  # noqa: S310 (http(s) only, checked on save)
            return StepResult("done", f"HTTP {response.status}")
    except urllib.error.HTTPError as e:
        raise StepFailed(_("the webhook answered HTTP {status}", status=e.code)) from None
    except (urllib.error.URLError, OSError) as e:
        raise StepFailed(_("the webhook could not be reached ({why})", why=type(e).__name__)) from None


def _approval(rt: Runtime, uow: UnitOfWork, w: flows.Workflow, run: flows.WorkflowRun, step: flows.Step, key: str,
              fields: dict[str, Any]) -> StepResult:
    state = next((s for s in run.steps if s.get("step") == run.next_step and s.get("status") in ("approved", "rejected")),
                 None)
    if state is not None:
        return StepResult(state["status"], state.get("detail", ""))
    if run.wake_at is not None and run.wake_at <= utcnow():
        return StepResult("rejected", _("no answer in time"))
    if run.wake_at is None:
        text = flows.render(step.args.get("text") or _("{name} asks for an approval to go on.", name=w.name), fields)
        who = step.args.get("approver")
        if who:
            text += "\n" + _("Only {who} may answer.", who=who)
        message = Message(text, title=_("Workflow {name}: approval", name=w.name),
                          actions=(Action(_("Approve"), APPROVE, str(run.id)), Action(_("Reject"), REJECT, str(run.id))))
        _deliver(rt, uow, key, step.args.get("platform") or "console", str(step.args["to"]), message)
    return StepResult("wait", wait_until=run.wake_at or utcnow() + dt.timedelta(seconds=step.args["timeout"]))


def _record(run: flows.WorkflowRun, d: flows.Definition, step: flows.Step, outcome: StepResult, ms: float) -> str:
    """Keep the step's outcome on the run; what comes next: "next", "wait", "retry", "failed", "done"."""
    entry = {"step": run.next_step, "kind": step.kind, "status": outcome.status, "ms": ms, "detail": outcome.detail[:300],
             "at": utcnow().isoformat()}
    if outcome.status == "wait":
        run.status, run.wake_at = "waiting", outcome.wait_until
        return "wait"
    if outcome.status == "failed" and run.attempts + 1 < STEP_ATTEMPTS:
        run.attempts += 1
        run.steps = [*run.steps, {**entry, "status": "retrying", "attempt": run.attempts}]
        return "retry"
    run.steps = [s for s in run.steps if not (s.get("step") == run.next_step and s.get("status") in ("approved", "rejected"))]
    run.steps = [*run.steps, entry]
    if outcome.status in ("failed", "rejected"):
        run.error = (outcome.detail or outcome.status)[:500]
        _finish(run, "failed" if outcome.status == "failed" else "rejected")
        return "failed" if outcome.status == "failed" else "done"
    run.next_step += 1
    run.attempts, run.wake_at = 0, None
    if run.next_step >= len(d.steps):
        _finish(run, "done")
        return "done"
    return "next"


def _finish(run: flows.WorkflowRun, status: str) -> None:
    run.status, run.finished_at, run.wake_at = status, utcnow(), None


def _after_failure(rt: Runtime, run_id: int) -> None:
    """Tell the owner, and run the workflow's error workflow with what went wrong."""
    new_runs: list[int] = []
    told: list[int] = []
    with rt.db.uow() as uow:
        run = uow.session.get(flows.WorkflowRun, run_id)
        assert run is not None
        w = uow.session.get(flows.Workflow, run.workflow_id)
        assert w is not None
        d = flows.definition_of(uow, w, run.version)
        identity = notify.owner_identity(uow, w.owner_id, preferred=("slack", "discord", "console"))
        if identity is not None:
            told = notify.add_deliveries(uow, [notify.NewDelivery(
                f"flow-run:{run.id}:failed", identity.platform, f"user:{identity.external_id}",
                Message(_("Run #{id} of {name} failed at step {n}: {why}", id=run.id, name=w.name, n=run.next_step + 1,
                          why=run.error), title=_("Workflow failed")))])
        if d.on_error:
            try:
                handler = flows.by_name(uow, d.on_error)
            except UserError:
                handler = None
            if handler is not None and handler.enabled and run.depth + 1 < flows.MAX_DEPTH:
                new_runs.append(flows.new_run(uow, handler, {"workflow": w.name, "run_id": run.id, "step": run.next_step + 1,
                                                             "error": run.error}, depth=run.depth + 1).id)
        uow.commit()
    start(rt, new_runs)
    enqueue_deliveries(rt, told)


# ---------------------------------------------------------------- what makes runs


class WorkflowSubscriber:
    """Committed events → runs of the enabled workflows they fire (``core.workflows.Matcher``), one
    run per workflow and event (a unique key: an event handed twice runs once). An event a chain of
    workflows caused at ``MAX_DEPTH`` makes no run but a failed one that says so."""

    name = "workflows"
    types: frozenset[str] | None = None

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.matcher = flows.Matcher()

    def handle(self, uow: UnitOfWork, events: Sequence[CommittedEvent]) -> Callable[[], None] | None:
        self.matcher.refresh(uow)
        fired = [(e, wid, version) for e in events for wid, version in self.matcher.match(e.id, e.type, e.payload)]
        if not fired:
            return None
        known = set(uow.session.execute(select(flows.WorkflowRun.workflow_id, flows.WorkflowRun.event_id).where(
            flows.WorkflowRun.event_id.in_({e.id for e, _w, _v in fired}))).all())
        created: list[int] = []
        for e, wid, version in fired:
            if (wid, e.id) in known:
                continue
            run = flows.WorkflowRun(workflow_id=wid, version=version, event_id=e.id, trigger={**e.payload, "event": e.type},
                                    depth=e.depth, by_id=e.payload.get("by") if isinstance(e.payload.get("by"), int) else None,
                                    steps=[])
            if e.depth >= flows.MAX_DEPTH:
                run.status, run.finished_at = "failed", utcnow()
                with use_language(self.rt.settings.lang):
                    run.error = _("Stopped: {n} workflows in a row triggered each other (the limit is {n}).",
                                  n=flows.MAX_DEPTH)
            uow.session.add(run)
            uow.session.flush()
            if run.status == "queued":
                created.append(run.id)
        rt = self.rt

        def enqueue() -> None:
            start(rt, created)

        return enqueue


def flows_once(rt: Runtime, *, now: dt.datetime | None = None) -> int:
    """The ticker's part: cron workflows whose time came get a run; waiting runs whose delay or
    approval timed out, and queued runs whose job was lost, are enqueued again. Returns the cron runs made."""
    now = now or utcnow()
    local = now.astimezone(ZoneInfo(rt.settings.timezone))
    started: list[int] = []
    with rt.db.uow() as uow:
        for w in uow.session.scalars(select(flows.Workflow).where(flows.Workflow.enabled.is_(True),
                                                                   flows.Workflow.trigger == "cron")
                                     .with_for_update(skip_locked=True)):
            d = flows.definition_of(uow, w)
            if w.cron_at is None:
                w.cron_at = now  # from now on: no catching up with the past
                continue
            due = flows.cron_due(w.cron_at, d.trigger, local)
            if due is None:
                continue
            w.cron_at = now
            started.append(flows.new_run(uow, w, flows.cron_fields(due)).id)
        made = len(started)
        stale = now - dt.timedelta(seconds=30)
        started += list(uow.session.scalars(select(flows.WorkflowRun.id).where(
            ((flows.WorkflowRun.status == "waiting") & (flows.WorkflowRun.wake_at <= now))
            | ((flows.WorkflowRun.status == "queued") & (flows.WorkflowRun.created_at <= stale)
               & (flows.WorkflowRun.started_at.is_(None)))).limit(200)))
        uow.commit()
    for run_id in dict.fromkeys(started):
        start_at(rt, run_id, delay=0.0)
    return made


def prune_once(rt: Runtime, *, now: dt.datetime | None = None) -> int:
    """Run history kept: none older than ``MONA_FLOW_KEEP_DAYS``, at most ``KEEP_RUNS`` per workflow."""
    now = now or utcnow()
    with rt.db.uow() as uow:
        n = flows.prune(uow, older_than=now - dt.timedelta(days=rt.settings.flow_keep_days))
        uow.commit()
    return n
