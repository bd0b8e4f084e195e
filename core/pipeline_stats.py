"""Pipeline figures: count and open deal value per stage, conversion, median days, stuck artists.

Four aggregate queries whatever the number of artists or pipelines asked for. Medians combine the
histogram of finished stays (``stage_durations``, kept as artists move) with the current artists'
days in stage, so no query walks the whole stage history.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import and_, func, literal, select, union_all

from core.artists import Artist, Opportunity, StageDuration
from core.db import UnitOfWork, utcnow, whole_days
from core.pipelines import STAGES, Pipeline


@dataclass
class StageFigures:
    stage: str
    count: int = 0
    value: dict[str, Decimal] = field(default_factory=dict)
    entered: int = 0  # stays in this stage, finished or ongoing
    conversion: float | None = None  # entries into the next stage per entry into this one
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


def weighted_median(histogram: dict[int, int]) -> float | None:
    """Median of a histogram {value: how many}; the mean of the two middle values when even."""
    total = sum(histogram.values())
    if total == 0:
        return None
    lo_rank, hi_rank = (total + 1) // 2, (total + 2) // 2
    seen, lo = 0, None
    for value in sorted(histogram):
        seen += histogram[value]
        if lo is None and seen >= lo_rank:
            lo = value
        if seen >= hi_rank:
            return (lo + value) / 2 if lo is not None else float(value)
    raise AssertionError("unreachable")


def pipeline_figures(uow: UnitOfWork, pipelines: Sequence[Pipeline], *, stuck_days: int,
                     stuck_limit: int = 10) -> list[PipelineFigures]:
    session = uow.session
    now = utcnow()
    names = [p.value for p in pipelines]
    live = and_(Artist.pipeline.in_(names), Artist.archived_at.is_(None))
    figures = {(p.value, s): StageFigures(s) for p in pipelines for s in STAGES[p]}
    histograms: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    stuck_totals: dict[str, int] = defaultdict(int)

    days = whole_days(literal(now, type_=Artist.stage_entered_at.type), Artist.stage_entered_at)
    for pipe, stage, d, n in session.execute(
        select(Artist.pipeline, Artist.stage, days, func.count()).where(live).group_by(Artist.pipeline, Artist.stage, days)
    ):
        if (pipe, stage) in figures:
            figures[pipe, stage].count += n
            histograms[pipe, stage][max(0, d)] += n
            if d >= stuck_days:
                stuck_totals[pipe] += n

    for pipe, stage, days_, n in session.execute(
        select(StageDuration.pipeline, StageDuration.stage, StageDuration.days, StageDuration.stays)
        .where(StageDuration.pipeline.in_(names))
    ):
        if (pipe, stage) in figures:
            histograms[pipe, stage][days_] += n

    for pipe, stage, currency, total in session.execute(
        select(Artist.pipeline, Artist.stage, Opportunity.currency, func.sum(Opportunity.value))
        .join(Opportunity, Opportunity.artist_id == Artist.id)
        .where(live, Opportunity.status == "open")
        .group_by(Artist.pipeline, Artist.stage, Opportunity.currency)
    ):
        if (pipe, stage) in figures:
            figures[pipe, stage].value[currency] = Decimal(total)

    # Per pipeline, the longest-waiting live artists: an index range scan each, in one round trip.
    threshold = now - dt.timedelta(days=stuck_days)
    per_pipeline = [
        select(Artist.id, Artist.name, Artist.pipeline, Artist.stage, Artist.stage_entered_at)
        .where(Artist.pipeline == name, Artist.archived_at.is_(None), Artist.stage_entered_at < threshold)
        .order_by(Artist.stage_entered_at, Artist.id)
        .limit(stuck_limit)
        .subquery()
        .select()
        for name in names
    ]
    stuck: dict[str, list[StuckArtist]] = defaultdict(list)
    for id_, name, pipe, stage, entered in session.execute(union_all(*per_pipeline)):
        stuck[pipe].append(StuckArtist(id_, name, stage, (now - entered).days))
    for rows in stuck.values():
        rows.sort(key=lambda a: (-a.days, a.id))

    out = []
    for p in pipelines:
        ordered = [figures[p.value, s] for s in STAGES[p]]
        for fig in ordered:
            hist = histograms.get((p.value, fig.stage), {})
            fig.entered = sum(hist.values())
            fig.median_days = weighted_median(hist)
        for here, nxt in zip(ordered, ordered[1:], strict=False):
            if here.entered:
                here.conversion = min(1.0, nxt.entered / here.entered)
        out.append(PipelineFigures(p, ordered, stuck[p.value], stuck_totals[p.value], stuck_days))
    return out
