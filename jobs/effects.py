"""The job that carries out a moderation action on its platform (``core.effects``).

It claims the row (so two workers never ban twice), asks the platform's gateway, and records what
happened; a platform that cannot be reached is tried again with backoff, a few times.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from core.db import UnitOfWork
from core.effects import PLATFORM_NAMES, EffectResult, PlatformEffect, record_result, relay_modlog, routed_elsewhere
from core.i18n import _, use_language
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
        relayed = None if result.retry else _relay(rt, uow, effect, result)
        uow.commit()
        status = effect.status
        relay_id = relayed.id if relayed is not None else None
    if result.retry:
        rt.queue.enqueue(apply_effect, effect_id, queue="high", delay=float(2 ** min(effect.attempts, 6)))
    if relay_id is not None:
        start(rt, relay_id)
    return status


def _relay(rt: Runtime, uow: UnitOfWork, effect: PlatformEffect, result: EffectResult) -> PlatformEffect | None:
    """A case whose mod-log is on another platform (a Twitch case in a Discord channel): its post goes
    there as an effect of its own once the action is settled, with what the platform refused."""
    if routed_elsewhere(effect.modlog_channel, effect.platform) is None or effect.modlog_channel is None:
        return None
    with use_language(rt.settings.lang):
        where = PLATFORM_NAMES.get(effect.platform, effect.platform)
        problems = [] if result.status == "done" else [
            _("{platform} did not carry out {action} for {user}: {why}.", platform=where, action=effect.kind,
              user=effect.user_name or effect.user_id, why=result.detail.rstrip("."))]
        return relay_modlog(uow, source=effect.platform, route=effect.modlog_channel, title=effect.modlog_title,
                            text=effect.modlog_text, undo=effect.undo_action, case_id=effect.case_id, problems=problems)


def start(rt: Runtime, effect_id: int) -> None:
    """Enqueue the effect's job (one job per effect; the sweep enqueues it again if Redis was down);
    embedded with no background thread (scripts, tests), carry it out now."""
    from jobs.queue import LocalQueue

    if isinstance(rt.queue, LocalQueue) and not rt.queue.running:
        carry_out(rt, effect_id)
        return
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
