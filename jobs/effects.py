"""The job that carries out a moderation action on its platform (``core.effects``).

It claims the row (so two workers never ban twice), asks the platform's gateway, and records what
happened; a platform that cannot be reached is tried again with backoff, a few times.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from core.effects import EffectResult, PlatformEffect, record_result
from jobs.runtime import Runtime, current

log = logging.getLogger("mona.effects")
MAX_ATTEMPTS = 5


def apply_effect(effect_id: int) -> str:
    return carry_out(current(), effect_id)


def carry_out(rt: Runtime, effect_id: int) -> str:
    with rt.db.uow() as uow:
        effect = uow.session.scalars(select(PlatformEffect).where(PlatformEffect.id == effect_id)
                                     .with_for_update(skip_locked=True)).one_or_none()
        if effect is None or effect.status != "queued":
            return "skipped"
        gateway = rt.moderators.get(effect.platform)
        if gateway is None:
            result = EffectResult("failed", f"mona has no {effect.platform} credentials configured")
        else:
            try:
                result = gateway.carry_out(effect)
            except Exception as e:  # a bug or an unexpected answer: keep the row, say so
                log.exception("carrying out effect %s failed", effect_id)
                result = EffectResult("failed", type(e).__name__, retry=True)
        if result.retry and effect.attempts + 1 >= MAX_ATTEMPTS:
            result = EffectResult("failed", result.detail)
        record_result(effect, result)
        uow.commit()
        status = effect.status
    if result.retry:
        rt.queue.enqueue(apply_effect, effect_id, queue="high", delay=float(2 ** min(effect.attempts, 6)))
    return status


def start(rt: Runtime, effect_id: int) -> None:
    """Enqueue the effect's job (one job per effect; the sweep enqueues it again if Redis was down)."""
    rt.queue.enqueue(apply_effect, effect_id, queue="high", job_id=f"effect-{effect_id}")


def sweep_effects_once(rt: Runtime, *, older_than_s: float = 30.0) -> int:
    """Queued effects whose job was lost (Redis down at commit, a worker died) are enqueued again."""
    from datetime import timedelta

    from core.db import utcnow
    from jobs.queue import QueueUnavailable

    with rt.db.uow() as uow:
        ids = list(uow.session.scalars(select(PlatformEffect.id).where(
            PlatformEffect.status == "queued", PlatformEffect.created_at < utcnow() - timedelta(seconds=older_than_s))
            .order_by(PlatformEffect.id).limit(100)))
    try:
        rt.queue.enqueue_many(apply_effect, [(f"effect-{i}", (i,)) for i in ids], queue="high")
    except QueueUnavailable:
        return 0
    return len(ids)
