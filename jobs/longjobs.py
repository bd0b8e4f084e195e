"""Long jobs started from chat: progress shown by editing one message, failure reported in its
thread with a Retry button, the outcome kept in ``job_runs``.

A run is saved as ``queued`` before anything is asked of the queue; the command hands it to the
queue after commit, and when the queue could not take it (Redis down) or lost it, the ticker's
sweep (``sweep_runs_once``) hands it over again. Its job id is the run's, and a worker takes a run
only while it is queued (``core.notify.claim_run``), so a run handed over twice still runs once.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import delete, func, select

from core import notify, prescription, scoring, weights
from core.artists import Artist, StageDuration, StageStay
from core.db import UnitOfWork, utcnow
from core.i18n import _, ngettext, number, use_language
from core.notifier import Action, DeliveryError, Message
from core.notify import JobRun
from core.team import Member
from jobs.queue import QueueUnavailable
from jobs.runtime import Runtime, current

log = logging.getLogger("mona.jobs")

#: Told how far a job is: done, total, and optionally what it is doing.
Progress = Callable[..., None]


def rebuild_stage_durations(uow: UnitOfWork, progress: Progress, *, batch: int = 500) -> str:
    """Recompute the stage-duration histogram from the whole stage history, artist by artist."""
    s = uow.session
    total = s.scalar(select(func.count()).select_from(Artist)) or 0
    histogram: dict[tuple[str, str, int], int] = defaultdict(int)
    done, last_id = 0, 0
    progress(0, total)
    while True:
        ids = list(s.scalars(select(Artist.id).where(Artist.id > last_id).order_by(Artist.id).limit(batch)))
        if not ids:
            break
        for pipeline, stage, entered, left in s.execute(
            select(StageStay.pipeline, StageStay.stage, StageStay.entered_at, StageStay.left_at)
            .where(StageStay.artist_id.in_(ids), StageStay.left_at.is_not(None))
        ):
            if left is not None:
                histogram[pipeline, stage, max(0, (left - entered).days)] += 1
        done += len(ids)
        last_id = ids[-1]
        progress(done, total)
    s.execute(delete(StageDuration))
    s.add_all(StageDuration(pipeline=p, stage=st, days=d, stays=n) for (p, st, d), n in histogram.items())
    return ngettext("Rebuilt the stage statistics of {n} artist from {stays} finished stays.",
                    "Rebuilt the stage statistics of {n} artists from {stays} finished stays.", total,
                    stays=number(sum(histogram.values())))


def score_batch(uow: UnitOfWork, progress: Progress, run: JobRun, rt: Runtime) -> str:
    started = time.monotonic()
    what = {"read": _("Reading metrics"), "write": _("Scoring")}

    def step(done: int, total: int, phase: str) -> None:
        progress(done, total, what[phase])

    result = scoring.score_batch(uow, step, today=utcnow().date(), drop_points=float(run.args.get("drop") or
                                                                                    rt.settings.score_drop),
                                 pipeline=run.args.get("pipeline"))
    text = ngettext("Scored {n} artist in {seconds} s with model v{version}.",
                    "Scored {n} artists in {seconds} s with model v{version}.", result.scored,
                    seconds=f"{time.monotonic() - started:.1f}", version=result.model_version)
    if result.median is not None:
        text += " " + _("Median {median}; {dropped} fell more than {points} points.", median=round(result.median),
                        dropped=number(result.dropped), points=f"{float(run.args.get('drop') or rt.settings.score_drop):g}")
    if result.small_cohorts:
        text += " " + _("{small} of {cohorts} peer groups have fewer than {least} artists and use reference bands.",
                        small=result.small_cohorts, cohorts=result.cohorts, least=scoring.COHORT_MIN)
    return text


def score_retrain(uow: UnitOfWork, progress: Progress, run: JobRun, rt: Runtime) -> str:
    progress(0, 1)
    member = uow.session.get(Member, run.started_by_id) if run.started_by_id else None
    result = weights.retrain(uow, member, today=utcnow().date())
    progress(1, 1)
    return result.text


def prescribe(uow: UnitOfWork, progress: Progress, run: JobRun, rt: Runtime) -> Message:
    progress(0, 1)
    given = dict(run.args["input"])
    data = prescription.PlanInput(**{**given, "factors": tuple(prescription.PlanFactor(**f) for f in given["factors"]),
                                     "blocks": tuple(prescription.PlanBlock(**b) for b in given["blocks"]),
                                     "notes": tuple(given["notes"])})
    plan = prescription.prescribe(data, prescription.writer_from(rt.settings))
    actions = tuple(Action(label, action_id, value) for label, action_id, value in run.args.get("actions", []))
    said = (_("Written by {model}.", model=plan.model) if plan.source == "ai"
            else _("Written from mona's template, not by an AI: {why}.", why=plan.why_template))
    text = f"{plan.text}\n\n{said}"
    return Message(title=str(run.args.get("title") or ""), text=text, actions=actions)


Kind = Callable[[UnitOfWork, Progress, JobRun, Runtime], "str | Message"]
KINDS: dict[str, Kind] = {
    "rebuild_stats": lambda uow, progress, run, rt: rebuild_stage_durations(uow, progress),
    "score_batch": score_batch,
    "score_retrain": score_retrain,
    "prescribe": prescribe,
}


class _Reporter:
    """Posts the progress message once, then edits it at most once a second."""

    def __init__(self, rt: Runtime, run: JobRun) -> None:
        self.rt, self.run = rt, run
        self.notifier = rt.notifiers.get(run.platform)
        self.last = 0.0

    def show(self, message: Message, *, force: bool = False) -> None:
        if self.notifier is None or self.run.channel_id is None:
            return
        now = time.monotonic()
        if not force and now - self.last < 1.0:
            return
        self.last = now
        try:
            if self.run.progress_ref is None:
                self.run.progress_ref = self.notifier.send(self.run.channel_id, message, key=f"jobrun:{self.run.id}:progress")
            else:
                self.notifier.update(self.run.progress_ref, message)
        except DeliveryError as e:  # progress is best effort; the outcome is kept in job_runs
            log.warning("job run %s: could not show progress: %s", self.run.id, e.reason)

    def fail(self, error: str) -> None:
        if self.notifier is None or self.run.channel_id is None:
            return
        message = Message(title=_("Job {id} failed", id=self.run.id), text=error,
                          actions=(Action(_("Retry"), "jobrun.retry", str(self.run.id)),), thread=self.run.progress_ref)
        try:
            self.notifier.send(self.run.channel_id, message, key=f"jobrun:{self.run.id}:failed:{self.run.done}")
        except DeliveryError as e:
            log.warning("job run %s: could not report its failure: %s", self.run.id, e.reason)


def job_id(run_id: int) -> str:
    """The queue's id for a run's job: the sweep never queues a second one while one waits."""
    return f"jobrun-{run_id}"


def sweep_runs_once(rt: Runtime) -> int:
    """Hand the queue the runs still queued ``rt.requeue_after`` after they were saved (the queue
    was unreachable after commit, Redis lost the job); returns how many were handed over."""
    with rt.db.uow() as uow:
        ids = notify.queued_runs(uow, older_than=rt.requeue_after)
    if not ids:
        return 0
    try:
        rt.queue.enqueue_many(run_job, [(job_id(i), (i,)) for i in ids], queue="low")
    except QueueUnavailable:
        return 0
    log.debug("queued job runs handed to the queue again (unless their job waits there): %s", ids)
    return len(ids)


def run_job(run_id: int) -> str:
    rt = current()
    with use_language(rt.settings.lang), rt.db.uow() as uow:
        claimed = notify.claim_run(uow, run_id)
        uow.commit()
        if claimed is None:
            return "skipped"
        run = claimed
        reporter = _Reporter(rt, run)
        title = _("Job {id}: {kind}", id=run.id, kind=run.kind)

        def progress(done: int, total: int, what: str = "") -> None:
            run.done, run.total = done, total
            text = _("{done} / {total}…", done=number(done), total=number(total))
            reporter.show(Message(title=title, text=f"{what} {text}" if what else text), force=done in (0, total))

        try:
            result = KINDS[run.kind](uow, progress, run, rt)
        except Exception as e:  # reported to the person who started it, with a Retry button
            uow.rollback()
            log.exception("job run %s failed", run_id)
            run = uow.session.get(JobRun, run_id, populate_existing=True) or run
            run.status, run.error, run.finished_at = "failed", f"{type(e).__name__}: {e}"[:1000], utcnow()
            uow.commit()
            reporter.run = run
            reporter.fail(run.error)
            return "failed"
        final = result if isinstance(result, Message) else Message(title=title, text=result)
        run.status, run.result, run.finished_at = "done", final.text, utcnow()
        uow.commit()
        reporter.show(Message(title=final.title or title, text=final.text, actions=final.actions), force=True)
        return "done"
