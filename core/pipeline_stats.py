"""Pipeline figures: count and open deal value per stage, conversion, median days, stuck artists.

A fixed number of aggregate queries whatever the number of artists, each served by an index.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import and_, func, literal, select

from core.artists import Artist, Opportunity, StageStay
from core.db import UnitOfWork, epoch_seconds, utcnow
from core.pipelines import STAGES, Pipeline


@dataclass
class StageFigures:
    stage: str
    count: int = 0
    value: dict[str, Decimal] = field(default_factory=dict)
    entered: int = 0
    conversion: float | None = None  # share of those who entered this stage that reached the next
    median_days: float | None = None


@dataclass(frozen=True)
class StuckArtist:
    id: int
    name: str
    stage: str
    days: int


@dataclass(frozen=True)
class PipelineFigures:
    pipeline: Pipeline
    stages: list[StageFigures]
    stuck: list[StuckArtist]
    stuck_total: int
    stuck_days: int

    @property
    def total(self) -> int:
        return sum(s.count for s in self.stages)


def pipeline_figures(uow: UnitOfWork, pipeline: Pipeline, *, stuck_days: int, stuck_limit: int = 10) -> PipelineFigures:
    session = uow.session
    now = utcnow()
    live = and_(Artist.pipeline == pipeline.value, Artist.archived_at.is_(None))
    figures = {s: StageFigures(s) for s in STAGES[pipeline]}

    for stage, count in session.execute(select(Artist.stage, func.count()).where(live).group_by(Artist.stage)):
        if stage in figures:
            figures[stage].count = count

    value_rows = session.execute(
        select(Artist.stage, Opportunity.currency, func.sum(Opportunity.value))
        .join(Opportunity, Opportunity.artist_id == Artist.id)
        .where(live, Opportunity.status == "open")
        .group_by(Artist.stage, Opportunity.currency)
    )
    for stage, currency, total in value_rows:
        if stage in figures:
            figures[stage].value[currency] = Decimal(total)

    in_pipe = StageStay.pipeline == pipeline.value
    for stage, entered in session.execute(
        select(StageStay.stage, func.count(func.distinct(StageStay.artist_id))).where(in_pipe).group_by(StageStay.stage)
    ):
        if stage in figures:
            figures[stage].entered = entered

    # Median over every stay in the stage (finished ones, and ongoing ones up to now), computed
    # with window functions so that PostgreSQL and SQLite run the same SQL.
    now_lit = literal(now, type_=StageStay.entered_at.type)
    seconds = epoch_seconds(func.coalesce(StageStay.left_at, now_lit)) - epoch_seconds(StageStay.entered_at)
    ranked = (
        select(
            StageStay.stage.label("stage"),
            seconds.label("secs"),
            func.row_number().over(partition_by=StageStay.stage, order_by=seconds).label("rn"),
            func.count().over(partition_by=StageStay.stage).label("n"),
        )
        .where(in_pipe)
        .subquery()
    )
    medians = session.execute(
        select(ranked.c.stage, func.avg(ranked.c.secs))
        .where(ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2]))
        .group_by(ranked.c.stage)
    )
    for stage, secs in medians:
        if stage in figures and secs is not None:
            figures[stage].median_days = float(secs) / 86400.0

    ordered = [figures[s] for s in STAGES[pipeline]]
    for here, nxt in zip(ordered, ordered[1:], strict=False):
        if here.entered:
            here.conversion = min(1.0, nxt.entered / here.entered)

    threshold = now - dt.timedelta(days=stuck_days)
    stuck_cond = and_(live, Artist.stage_entered_at < threshold)
    stuck_total = session.scalar(select(func.count()).select_from(Artist).where(stuck_cond)) or 0
    stuck_rows = session.execute(
        select(Artist.id, Artist.name, Artist.stage, Artist.stage_entered_at)
        .where(stuck_cond)
        .order_by(Artist.stage_entered_at, Artist.id)
        .limit(stuck_limit)
    ).all()
    stuck = [StuckArtist(r[0], r[1], r[2], (now - r[3]).days) for r in stuck_rows]
    return PipelineFigures(pipeline, ordered, stuck, stuck_total, stuck_days)
