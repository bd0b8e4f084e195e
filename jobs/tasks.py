"""RQ tasks: thin functions that load a row, call the core, and record the outcome."""

from __future__ import annotations

import logging

from core import notify
from core.notifier import PermanentFailure, RetryLater
from jobs.queue import QueueUnavailable
from jobs.runtime import current

log = logging.getLogger("mona.jobs")


def deliver_many(delivery_ids: list[int]) -> dict[str, int]:
    """Deliver several, one after the other, each on its own terms (claim, send, record)."""
    outcomes: dict[str, int] = {}
    for delivery_id in delivery_ids:
        outcome = deliver(delivery_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def deliver(delivery_id: int) -> str:
    """Post one delivery, at most once per key: claim it with a lease, send, record the result."""
    rt = current()
    with rt.db.uow() as uow:
        d = notify.claim(uow, delivery_id, lease=rt.lease)
        uow.commit()
        if d is None:
            return "skipped"
        notifier = rt.notifiers.get(d.platform)
        if notifier is None:
            notify.mark_dead(uow, d, f"no {d.platform} connection is configured")
            uow.commit()
            return "dead"
        try:
            ref = notifier.send(d.target, d.message, key=d.key,
                                possibly_sent_since=notify.posted_since(d) if d.uncertain else None)
        except RetryLater as e:
            # A refusal with a time to wait (429) posted nothing; a network error or a 5xx may have
            # come after the platform posted (the answer lost on the way back): look first next time.
            delay = notify.mark_retry(uow, d, e.reason, e.retry_after, maybe_sent=e.retry_after is None)
            if delay is not None:
                d.enqueued_at = d.next_attempt_at  # a job is scheduled for then
            uow.commit()
            if delay is not None:
                try:
                    rt.queue.enqueue(deliver, delivery_id, queue="high", delay=delay,
                                     job_id=f"deliver-{delivery_id}-retry{d.attempts}")
                except QueueUnavailable:
                    log.warning("could not schedule the retry of delivery %s; the ticker will", delivery_id)
            log.info("delivery %s: %s; retry in %s s", delivery_id, e.reason, delay)
            return "retry" if delay is not None else "dead"
        except PermanentFailure as e:
            notify.mark_dead(uow, d, e.reason)
            uow.commit()
            log.warning("delivery %s failed for good: %s", delivery_id, e.reason)
            return "dead"
        except Exception as e:  # a bug or a payload that cannot be sent: counted like a passing failure
            log.exception("delivery %s: unexpected error", delivery_id)
            uow.rollback()
            d = uow.session.get(notify.Delivery, delivery_id, populate_existing=True) or d
            notify.mark_retry(uow, d, f"unexpected error: {e!r}", None, maybe_sent=True)
            uow.commit()
            return "retry" if d.status == "pending" else "dead"
        notify.mark_sent(uow, d, ref)
        uow.commit()
        return "sent"
