"""Mona Market Fit: four dimension scores 0–100 from an artist's metrics, explained factor by factor.

How a score is made (the numbers are documented in README.md, "How Market Fit scores"):

1. **Measures.** From the artist's latest metrics (``core.metrics``): followers across platforms
   (their sum), the best 28-day growth of any platform, engagement, monthly listeners, streams,
   releases and live dates in 12 months, and merch / sync / booking revenue. Each is non-decreasing
   in every metric it reads, so more of anything never lowers a score.
2. **Factors.** Each factor turns one measure into a position ``x`` from 0 to 1: on a reference
   band (log or linear, ``FACTORS``) for the first three dimensions; for Competitive Positioning,
   as a percentile among the artist's peers (same genre and career stage, ``COHORT_MIN`` of them at
   least), else on the reference band of their career stage (``CAREER_BANDS``), which it says.
3. **Staleness.** A value ``age`` days old counts ``0.5 ** (age / half_life)`` of itself and the
   rest comes from the cohort's average position (the factor's ``typical`` position when the
   cohort is too small); a missing value is all cohort average. Confidence is the share of the
   weight that was actually observed, fresh.
4. **Points.** Factor ``f`` of dimension ``d`` gives ``100 · w_f · x_f / W_d`` points, where
   ``W_d`` is the sum of the dimension's weights; a dimension's score is the sum of its factors'
   points, exactly, and ``100 − score`` the points they missed. The overall is the dimension
   scores weighted by ``W_d``: ``100 · Σ w_f x_f / Σ w_f``.

The weights come from the model version in force (``ScoreModel``; version 1 holds the expert
defaults, ``core.weights`` refits them from outcomes). Every stored score keeps the version that
made it and the positions ``x_f`` it used, so a later score can say whether it moved because the
data changed or because the weights did.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy import (
    JSON,
    ColumnElement,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    and_,
    cast,
    false,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Mapped, mapped_column

from core import outbox
from core.artists import Artist
from core.db import Base, UnitOfWork, utcnow
from core.i18n import _, number
from core.marketplace import blocks as all_blocks
from core.metrics import METRICS, PLATFORMS, MetricValue
from core.pipelines import STAGES, Pipeline
from core.team import Member
from core.text import fold

Dimension = Literal["audience", "market", "monetization", "competitive"]
DIMENSIONS: tuple[Dimension, ...] = ("audience", "market", "monetization", "competitive")


def dimension_label(d: str) -> str:
    return {"audience": _("Audience Alignment"), "market": _("Market Opportunity"),
            "monetization": _("Monetization Readiness"), "competitive": _("Competitive Positioning")}.get(d, d)


# ---------------------------------------------------------------- measures

#: The measures factors read, each from the metrics named; ``sum`` and ``max`` are over the platforms.
MEASURES: dict[str, tuple[str, ...]] = {
    "followers": tuple(f"{p}_followers" for p in PLATFORMS),
    "growth": tuple(f"{p}_growth_28d" for p in PLATFORMS),
    "engagement": ("engagement_rate",),
    "listeners": ("monthly_listeners",),
    "streams": ("streams",),
    "releases": ("releases_12m",),
    "live": ("live_dates_12m",),
    "merch": ("merch_revenue",),
    "sync": ("sync_revenue",),
    "booking": ("booking_revenue",),
}
MEASURE_NAMES = tuple(MEASURES)
METRIC_NAMES = tuple(METRICS)
_METRIC_INDEX = {m: i for i, m in enumerate(METRIC_NAMES)}


@dataclass(frozen=True)
class Factor:
    key: str
    dimension: Dimension
    measure: str
    #: The expert default weight (model version 1).
    weight: float
    #: Days after which a value counts half.
    half_life: float
    scale: Literal["log", "linear"] = "linear"
    #: The reference band: ``low`` is position 0, ``high`` position 1.
    low: float = 0.0
    high: float = 1.0
    #: The position of a typical artist, used for missing or stale values when the cohort is too small.
    typical: float = 0.3
    #: Competitive Positioning: a percentile among peers instead of a reference band.
    relative: bool = False

    @property
    def label(self) -> str:
        return factor_label(self.key)


def factor_label(key: str) -> str:
    return {
        "engagement": _("Engagement"), "audience_size": _("Audience size"), "listeners": _("Monthly listeners"),
        "momentum": _("Growth"), "streams": _("Streams"), "releases": _("Releases"),
        "live": _("Live dates"), "booking": _("Booking revenue"), "merch": _("Merch revenue"),
        "sync": _("Sync revenue"), "audience_rank": _("Audience among peers"),
        "listeners_rank": _("Listeners among peers"), "engagement_rank": _("Engagement among peers"),
        "momentum_rank": _("Growth among peers"),
    }[key]


FACTORS: tuple[Factor, ...] = (
    # Audience Alignment: is there an engaged audience?
    Factor("engagement", "audience", "engagement", 0.12, 90, "linear", 0, 10, 0.3),
    Factor("audience_size", "audience", "followers", 0.10, 90, "log", 1_000, 5_000_000, 0.3),
    Factor("listeners", "audience", "listeners", 0.08, 90, "log", 500, 2_000_000, 0.3),
    # Market Opportunity: is it moving, and is there music out?
    Factor("momentum", "market", "growth", 0.10, 30, "linear", -10, 50, 0.25),
    Factor("streams", "market", "streams", 0.08, 90, "log", 10_000, 500_000_000, 0.3),
    Factor("releases", "market", "releases", 0.07, 180, "linear", 0, 12, 0.25),
    # Monetization Readiness: does it already earn, on stage and off it?
    Factor("live", "monetization", "live", 0.07, 180, "linear", 0, 60, 0.15),
    Factor("booking", "monetization", "booking", 0.07, 180, "log", 0, 500_000, 0.2),
    Factor("merch", "monetization", "merch", 0.06, 180, "log", 0, 200_000, 0.15),
    Factor("sync", "monetization", "sync", 0.05, 180, "log", 0, 200_000, 0.1),
    # Competitive Positioning: where the artist stands among peers of the same genre and career stage.
    Factor("audience_rank", "competitive", "followers", 0.06, 90, "log", relative=True, typical=0.5),
    Factor("listeners_rank", "competitive", "listeners", 0.05, 90, "log", relative=True, typical=0.5),
    Factor("engagement_rank", "competitive", "engagement", 0.05, 90, "linear", relative=True, typical=0.5),
    Factor("momentum_rank", "competitive", "growth", 0.04, 30, "linear", relative=True, typical=0.5),
)
FACTOR_KEYS = tuple(f.key for f in FACTORS)
FACTOR_BY_KEY = {f.key: f for f in FACTORS}
DEFAULT_WEIGHTS: dict[str, float] = {f.key: f.weight for f in FACTORS}

#: Career stages group the pipeline stages; peers share a genre and a career stage.
CAREER: dict[tuple[str, str], str] = {
    **{("mona", s): "early" for s in ("Prospection", "Check-up")},
    **{("mona", s): "developing" for s in ("Prescription", "Exécution")},
    ("mona", "Fidélisation"): "established",
    ("spark", "Qualification"): "early",
    **{("spark", s): "developing" for s in ("Villa Prep", "Live Stream")},
    **{("spark", s): "established" for s in ("Content Prod", "Showcase", "Monétisation")},
}
CAREERS = ("early", "developing", "established")


def career_label(career: str) -> str:
    return {"early": _("early career"), "developing": _("developing"), "established": _("established")}[career]


#: Reference bands of Competitive Positioning when the cohort has fewer than ``COHORT_MIN`` artists:
#: the measure of a bottom-10 % and a top-10 % artist of each career stage.
CAREER_BANDS: dict[str, dict[str, tuple[float, float]]] = {
    "early": {"followers": (500, 50_000), "listeners": (200, 20_000), "engagement": (1, 8), "growth": (-5, 30)},
    "developing": {"followers": (5_000, 500_000), "listeners": (2_000, 200_000), "engagement": (1, 7), "growth": (-5, 25)},
    "established": {"followers": (50_000, 5_000_000), "listeners": (20_000, 2_000_000), "engagement": (0.5, 6),
                    "growth": (-5, 20)},
}
COHORT_MIN = 20
#: Quantiles kept per cohort and measure (0 %, 1 %, …, 100 %).
QUANTILES = 101
#: Cohort figures older than this are recomputed when an artist of the cohort is scored.
COHORT_MAX_AGE = dt.timedelta(hours=24)


def career_of(pipeline: str, stage: str) -> str:
    return CAREER.get((pipeline, stage), "early")


def genre_key(genre: str | None) -> str:
    return fold(genre or "")[:100]


# ---------------------------------------------------------------- storage


class ScoreModel(Base):
    """One version of the weights: version 1 holds the expert defaults; each refit adds one."""

    __tablename__ = "score_models"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    weights: Mapped[dict[str, float]] = mapped_column(JSON)
    #: Outcomes it was trained on: {"positives": n, "negatives": n, "kinds": {kind: [pos, neg]}}.
    trained: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Held-out accuracy (area under the ROC curve) on the newest outcomes; none for the defaults.
    auc: Mapped[float | None] = mapped_column(Float)
    #: The previous version's AUC on the same held-out outcomes, to compare.
    previous_auc: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))


class ArtistScore(Base):
    """One score of one artist: the four dimensions, the overall, the positions it used, its version."""

    __tablename__ = "artist_scores"
    __table_args__ = (Index("ix_artist_scores_artist", "artist_id", "id"),
                      Index("ix_artist_scores_created", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"))
    model_version: Mapped[int] = mapped_column(ForeignKey("score_models.version"))
    overall: Mapped[float] = mapped_column(Float)
    audience: Mapped[float] = mapped_column(Float)
    market: Mapped[float] = mapped_column(Float)
    monetization: Mapped[float] = mapped_column(Float)
    competitive: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    #: The position ``x_f`` of each factor, after staleness: what the weights multiplied.
    inputs: Mapped[dict[str, float]] = mapped_column(JSON)
    #: Where it was asked: "slack", "console", "batch" …
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ScoreCohort(Base):
    """Figures of one cohort (genre × career stage): its size and, per measure, how many artists
    have it, the average position per factor and the quantiles of the measure."""

    __tablename__ = "score_cohorts"

    genre_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    career: Mapped[str] = mapped_column(String(20), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    #: {"mean": {factor: average x}, "quantiles": {measure: [QUANTILES values]}}
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def current_model(uow: UnitOfWork) -> ScoreModel:
    model = uow.session.scalar(select(ScoreModel).order_by(ScoreModel.version.desc()).limit(1))
    if model is None:  # the migration seeds version 1; a database made from the models has it added here
        model = ScoreModel(version=1, weights=dict(DEFAULT_WEIGHTS), trained={},
                           note="Expert defaults")
        uow.session.add(model)
        uow.session.flush()
    return model


# ---------------------------------------------------------------- reading metrics


@dataclass
class Raw:
    """Latest metric values of a set of artists, as arrays (``nan`` where a metric was never set)."""

    artist_ids: np.ndarray
    values: np.ndarray  # (n, metrics)
    ages: np.ndarray  # (n, metrics) days since observed

    @classmethod
    def empty(cls, ids: Sequence[int]) -> Raw:
        n = len(ids)
        return cls(np.asarray(ids, dtype=np.int64), np.full((n, len(METRIC_NAMES)), np.nan),
                   np.full((n, len(METRIC_NAMES)), np.nan))


def read_latest_rows(uow: UnitOfWork, *, first_id: int | None = None, last_id: int | None = None,
                     ids: Sequence[int] | None = None,
                     as_of: dt.date | None = None) -> Iterable[tuple[int, str, float, dt.date]]:
    """(artist_id, metric, value, observed_on) of the latest value of each metric of the artists
    ``ids``, or with ids from ``first_id`` to ``last_id``; ``as_of`` ignores later observations."""
    mv = MetricValue
    where: list[ColumnElement[bool]] = (
        [mv.artist_id.in_(ids)] if ids is not None else [mv.artist_id >= (first_id or 0), mv.artist_id <= (last_id or 0)])
    if as_of is not None:
        where.append(mv.observed_on <= as_of)
    if uow.session.bind is not None and uow.session.bind.dialect.name == "postgresql":
        q = (select(mv.artist_id, mv.metric, cast(mv.value, Float), mv.observed_on).where(*where)
             .ext(distinct_on(mv.artist_id, mv.metric))
             .order_by(mv.artist_id, mv.metric, mv.observed_on.desc(), mv.id.desc()))
        return uow.session.execute(q)
    ranked = (select(mv.artist_id, mv.metric, cast(mv.value, Float).label("value"), mv.observed_on,
                     func.row_number().over(partition_by=(mv.artist_id, mv.metric),
                                            order_by=(mv.observed_on.desc(), mv.id.desc())).label("n"))
              .where(*where).subquery())
    return uow.session.execute(select(ranked.c.artist_id, ranked.c.metric, ranked.c.value, ranked.c.observed_on)
                               .where(ranked.c.n == 1))


def raw_from_rows(ids: Sequence[int], rows: Iterable[tuple[int, str, float, dt.date]], today: dt.date) -> Raw:
    raw = Raw.empty(ids)
    row_of = {a: i for i, a in enumerate(ids)}
    ordinal = today.toordinal()
    values, ages = raw.values, raw.ages
    for artist_id, metric, value, observed_on in rows:
        i = row_of.get(artist_id)
        j = _METRIC_INDEX.get(metric)
        if i is None or j is None:
            continue
        values[i, j] = value
        ages[i, j] = max(0, ordinal - observed_on.toordinal())
    return raw


def read_raw(uow: UnitOfWork, ids: Sequence[int], today: dt.date, *, as_of: dt.date | None = None) -> Raw:
    if not ids:
        return Raw.empty(ids)
    rows: list[tuple[int, str, float, dt.date]] = []
    for start in range(0, len(ids), 2000):
        rows.extend(read_latest_rows(uow, ids=ids[start:start + 2000], as_of=as_of))
    return raw_from_rows(ids, rows, today)


# ---------------------------------------------------------------- measures and positions


@dataclass
class Measures:
    """Per measure: the value (``nan`` when unknown), its age in days, and a detail for the label."""

    value: dict[str, np.ndarray]
    age: dict[str, np.ndarray]
    #: For "growth": the index of the platform with the best growth; for "followers": platforms known.
    detail: dict[str, np.ndarray]


def measures(raw: Raw) -> Measures:
    value: dict[str, np.ndarray] = {}
    age: dict[str, np.ndarray] = {}
    detail: dict[str, np.ndarray] = {}
    n = raw.values.shape[0]
    for name, metrics in MEASURES.items():
        cols = [_METRIC_INDEX[m] for m in metrics]
        v = raw.values[:, cols]
        a = raw.ages[:, cols]
        known = ~np.isnan(v)
        any_known = known.any(axis=1)
        if name == "followers":
            value[name] = np.where(any_known, np.nansum(np.where(known, v, 0.0), axis=1), np.nan)
            # the sum is as old as its oldest part
            age[name] = np.where(any_known, np.max(np.where(known, a, -1.0), axis=1), np.nan)
            detail[name] = known.sum(axis=1)
        elif name == "growth":
            filled = np.where(known, v, -np.inf)
            best = np.argmax(filled, axis=1) if n else np.zeros(0, dtype=np.int64)
            rows = np.arange(n)
            value[name] = np.where(any_known, filled[rows, best], np.nan)
            age[name] = np.where(any_known, a[rows, best], np.nan)
            detail[name] = best
        else:
            value[name] = v[:, 0]
            age[name] = a[:, 0]
            detail[name] = np.zeros(n, dtype=np.int64)
    return Measures(value, age, detail)


def _band(values: np.ndarray, scale: str, low: float, high: float) -> np.ndarray:
    if scale == "log":
        lo, hi = math.log10(1 + max(low, 0)), math.log10(1 + high)
        x = (np.log10(1 + np.maximum(values, 0)) - lo) / (hi - lo)
    else:
        x = (values - low) / (high - low)
    clipped: np.ndarray = np.clip(x, 0.0, 1.0)
    return clipped


def _percentile(values: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Mid-rank position of each value among the cohort's quantiles: 0 below all, 1 above all."""
    q = np.asarray(quantiles, dtype=float)
    below = np.searchsorted(q, values, side="left")
    at_or_below = np.searchsorted(q, values, side="right")
    return (below + at_or_below) / (2.0 * len(q))


@dataclass
class CohortView:
    """What scoring needs of one cohort."""

    genre_key: str
    career: str
    size: int
    means: dict[str, float] = field(default_factory=dict)
    quantiles: dict[str, list[float]] = field(default_factory=dict)

    @property
    def enough(self) -> bool:
        return self.size >= COHORT_MIN


def observed_positions(m: Measures, rows: np.ndarray, cohort: CohortView) -> dict[str, np.ndarray]:
    """The position ``x`` of each factor from its measure alone (``nan`` where unknown), for the
    artists ``rows`` of ``m`` that share ``cohort``."""
    out: dict[str, np.ndarray] = {}
    for f in FACTORS:
        v = m.value[f.measure][rows]
        if not f.relative:
            x = _band(v, f.scale, f.low, f.high)
        elif cohort.enough and f.measure in cohort.quantiles:
            x = _percentile(v, cohort.quantiles[f.measure])
        else:
            low, high = CAREER_BANDS[cohort.career][f.measure]
            x = _band(v, f.scale, low, high)
        out[f.key] = np.where(np.isnan(v), np.nan, x)
    return out


def priors(cohort: CohortView) -> dict[str, float]:
    """Where a missing or stale value is pulled: the cohort's average position, or the factor's typical one."""
    return {f.key: (cohort.means.get(f.key, f.typical) if cohort.enough else f.typical) for f in FACTORS}


@dataclass
class Positions:
    """Per factor: the position used (after staleness) and how much of it was observed (0–1)."""

    x: dict[str, np.ndarray]
    observed: dict[str, np.ndarray]
    x_observed: dict[str, np.ndarray]


def positions(m: Measures, rows: np.ndarray, cohort: CohortView) -> Positions:
    seen = observed_positions(m, rows, cohort)
    prior = priors(cohort)
    x, kept = {}, {}
    for f in FACTORS:
        age = m.age[f.measure][rows]
        decay = np.where(np.isnan(age), 0.0, np.power(0.5, np.nan_to_num(age) / f.half_life))
        obs = np.nan_to_num(seen[f.key], nan=0.0)
        x[f.key] = decay * obs + (1.0 - decay) * prior[f.key]
        kept[f.key] = decay
    return Positions(x, kept, seen)


def dimension_weights(weights: Mapping[str, float]) -> dict[str, float]:
    return {d: sum(weights[f.key] for f in FACTORS if f.dimension == d) for d in DIMENSIONS}


def combine(x: Mapping[str, np.ndarray | float], weights: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Dimension scores and the overall from positions: the sums the explanations add up to."""
    totals = dimension_weights(weights)
    out: dict[str, np.ndarray] = {}
    for d in DIMENSIONS:
        out[d] = sum((100.0 * weights[f.key] * np.asarray(x[f.key], dtype=float) / totals[d]
                      for f in FACTORS if f.dimension == d), np.zeros(1))
    everything = sum(totals.values())
    out["overall"] = sum((totals[d] / everything * out[d] for d in DIMENSIONS), np.zeros(1))
    return out


def confidence(observed: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    total = sum(weights.values())
    return sum((weights[k] * observed[k] for k in FACTOR_KEYS), np.zeros(1)) / total


# ---------------------------------------------------------------- cohorts


def _cohort_figures(m: Measures, rows: np.ndarray, genre: str, career: str) -> CohortView:
    view = CohortView(genre, career, size=len(rows))
    for name in ("followers", "listeners", "engagement", "growth"):
        v = m.value[name][rows]
        v = v[~np.isnan(v)]
        if len(v):
            view.quantiles[name] = [float(q) for q in np.quantile(v, np.linspace(0, 1, QUANTILES))]
    seen = observed_positions(m, rows, view)
    for f in FACTORS:
        x = seen[f.key]
        x = x[~np.isnan(x)]
        view.means[f.key] = float(x.mean()) if len(x) else f.typical
    return view


def _save_cohort(uow: UnitOfWork, view: CohortView) -> None:
    figures = {"mean": view.means, "quantiles": view.quantiles}
    row = uow.session.get(ScoreCohort, (view.genre_key, view.career))
    if row is None:
        uow.session.add(ScoreCohort(genre_key=view.genre_key, career=view.career, size=view.size, figures=figures,
                                    computed_at=utcnow()))
    else:
        row.size, row.figures, row.computed_at = view.size, figures, utcnow()


def _view(row: ScoreCohort) -> CohortView:
    return CohortView(row.genre_key, row.career, row.size, dict(row.figures.get("mean", {})),
                      dict(row.figures.get("quantiles", {})))


def _stages_of(career: str) -> list[tuple[str, str]]:
    return [k for k, c in CAREER.items() if c == career]


def _cohort_members(uow: UnitOfWork, g: str, career: str) -> list[int]:
    """Ids of the live artists of a genre (folded) and career stage."""
    spellings = [s for s in uow.session.scalars(select(Artist.genre).distinct()) if genre_key(s) == g]
    genre_match: ColumnElement[bool] = Artist.genre.in_(spellings) if spellings else false()
    if not g:
        genre_match = or_(Artist.genre.is_(None), genre_match)
    stages = or_(*(and_(Artist.pipeline == p, Artist.stage == s) for p, s in _stages_of(career)))
    return list(uow.session.scalars(select(Artist.id).where(Artist.archived_at.is_(None), genre_match, stages)
                                    .order_by(Artist.id)))


def cohort_for(uow: UnitOfWork, artist: Artist, today: dt.date) -> CohortView:
    """The artist's cohort figures: kept ones when fresh, else recomputed from its members now."""
    return cohort_of(uow, genre_key(artist.genre), career_of(artist.pipeline, artist.stage), today, artist.id)


def cohort_of(uow: UnitOfWork, g: str, career: str, today: dt.date, artist_id: int | None = None) -> CohortView:
    row = uow.session.get(ScoreCohort, (g, career))
    if row is not None and utcnow() - row.computed_at < COHORT_MAX_AGE:
        return _view(row)
    members = _cohort_members(uow, g, career)
    if artist_id is not None and artist_id not in members:  # an archived artist is scored among the peers they had
        members = sorted([*members, artist_id])
    raw = read_raw(uow, members, today)
    view = _cohort_figures(measures(raw), np.arange(len(members)), g, career)
    _save_cohort(uow, view)
    return view


def refresh_cohorts(uow: UnitOfWork, cohorts: Sequence[tuple[str, str]], m: Measures) -> dict[tuple[str, str], CohortView]:
    """Cohort figures from measures already read for every live artist (the batch), saved."""
    out: dict[tuple[str, str], CohortView] = {}
    keys = np.array([f"{g}\x00{c}" for g, c in cohorts], dtype=object)
    for key in sorted(set(keys.tolist())):
        g, c = key.split("\x00")
        view = _cohort_figures(m, np.flatnonzero(keys == key), g, c)
        _save_cohort(uow, view)
        out[g, c] = view
    return out


# ---------------------------------------------------------------- one artist's score, explained


@dataclass(frozen=True)
class FactorView:
    key: str
    dimension: str
    #: "TikTok growth +18 % in 28 days", with the number behind the factor.
    label: str
    points: float
    #: The most this factor could give (its share of the dimension).
    share: float
    position: float
    #: How much of the value was observed, fresh (0: missing; under 1: stale).
    observed: float
    #: Days since the value was observed (``None``: never).
    age: int | None

    @property
    def missed(self) -> float:
        return self.share - self.points


@dataclass(frozen=True)
class Change:
    previous: float
    previous_at: dt.datetime
    #: The part of the change the data made (new values, values getting older) …
    data: float
    #: … and the part the weights made (a new model version).
    weights: float
    previous_version: int


@dataclass(frozen=True)
class Block:
    key: str
    name: str
    dimension: str
    gain: float


@dataclass(frozen=True)
class Score:
    artist_id: int
    artist_name: str
    overall: float
    dimensions: dict[str, float]
    factors: tuple[FactorView, ...]
    confidence: float
    model_version: int
    cohort: CohortView
    recommended: tuple[str, str]
    blocks: tuple[Block, ...]
    change: Change | None
    score_id: int | None
    inputs: dict[str, float]

    def of(self, dimension: str) -> list[FactorView]:
        return [f for f in self.factors if f.dimension == dimension]

    @property
    def weakest(self) -> str:
        return min(DIMENSIONS, key=lambda d: (self.dimensions[d], DIMENSIONS.index(d)))

    @property
    def missing(self) -> list[FactorView]:
        return [f for f in self.factors if f.age is None]

    @property
    def stale(self) -> list[FactorView]:
        return [f for f in self.factors if f.age is not None and f.observed < 0.5]


def _money(v: float) -> str:
    return f"€{number(v)}"


def _measure_text(f: Factor, m: Measures, i: int) -> str:
    v = float(m.value[f.measure][i])
    name = f.measure
    if name == "followers":
        return _("{n} followers on {platforms} platforms", n=number(int(v)), platforms=int(m.detail[name][i]))
    if name == "growth":
        platform = list(PLATFORMS.values())[int(m.detail[name][i])]
        return _("{platform} growth {growth} % in 28 days", platform=platform, growth=f"{v:+.0f}")
    if name == "engagement":
        return _("Engagement rate {rate} %", rate=f"{v:.1f}")
    if name == "listeners":
        return _("{n} monthly listeners", n=number(int(v)))
    if name == "streams":
        return _("{n} streams", n=number(int(v)))
    if name == "releases":
        return _("{n} releases in 12 months", n=int(v))
    if name == "live":
        return _("{n} live dates in 12 months", n=int(v))
    return _("{what} {amount} in 12 months", what=f.label, amount=_money(v))


def _label(f: Factor, m: Measures, i: int, cohort: CohortView, position: float) -> str:
    if math.isnan(float(m.value[f.measure][i])):
        return _("{factor} not known", factor=f.label)
    text = _measure_text(f, m, i)
    if not f.relative:
        return text
    if cohort.enough:
        return _("{measure} (ahead of {pct} % of peers)", measure=text, pct=round(100 * position))
    return _("{measure} (against the {career} band)", measure=text, career=career_label(cohort.career))


#: Which funnel step an overall score fits, from the lowest: (up to this score, pipeline, stage).
FUNNEL: tuple[tuple[float, str, str], ...] = (
    (25, "mona", "Prospection"), (40, "mona", "Check-up"), (55, "mona", "Prescription"),
    (70, "mona", "Exécution"), (80, "mona", "Fidélisation"), (math.inf, "spark", "Qualification"),
)

#: The factors each marketplace block raises (blocks with none are not recommended from a score).
BLOCK_FACTORS: dict[str, tuple[str, ...]] = {
    "ar": ("releases", "engagement"),
    "production": ("releases", "streams"),
    "publishing": ("sync",),
    "marketing": ("engagement", "audience_size", "momentum", "audience_rank", "engagement_rank", "momentum_rank"),
    "distribution": ("streams", "listeners", "listeners_rank"),
    "booking": ("live", "booking"),
    "synchro": ("sync",),
    "strategy": ("merch", "momentum"),
}


def recommended_step(overall: float) -> tuple[str, str]:
    for up_to, pipeline, stage in FUNNEL:
        if overall < up_to:
            return pipeline, stage
    return FUNNEL[-1][1], FUNNEL[-1][2]


def recommend_blocks(uow: UnitOfWork, factors: Sequence[FactorView], dimension: str, *, limit: int = 3) -> tuple[Block, ...]:
    """The 1–3 blocks whose factors could add the most points to ``dimension`` (what they missed)."""
    missed = {f.key: f.missed for f in factors if f.dimension == dimension}
    gains = []
    for b in all_blocks(uow):
        gain = sum(missed.get(k, 0.0) for k in BLOCK_FACTORS.get(b.key, ()))
        if gain > 0.5:
            gains.append((-gain, b.id, Block(b.key, b.name, dimension, gain)))
    return tuple(g[2] for g in sorted(gains)[:limit])


def _latest_scores(uow: UnitOfWork, artist_id: int, n: int = 2) -> list[ArtistScore]:
    return list(uow.session.scalars(select(ArtistScore).where(ArtistScore.artist_id == artist_id)
                                    .order_by(ArtistScore.id.desc()).limit(n)))


def _change(previous: ArtistScore | None, overall: float, weights: Mapping[str, float]) -> Change | None:
    if previous is None:
        return None
    old_inputs = {k: float(previous.inputs.get(k, FACTOR_BY_KEY[k].typical)) for k in FACTOR_KEYS}
    old_with_new_weights = float(combine(old_inputs, weights)["overall"][0])
    return Change(previous.overall, previous.created_at, overall - old_with_new_weights,
                  old_with_new_weights - previous.overall, previous.model_version)


def _same(a: ArtistScore, version: int, inputs: Mapping[str, float]) -> bool:
    return a.model_version == version and all(abs(float(a.inputs.get(k, -1)) - inputs[k]) < 1e-9 for k in FACTOR_KEYS)


def score_artist(uow: UnitOfWork, artist: Artist, *, today: dt.date, source: str, drop_points: float,
                 actor: Member | None = None, keep: bool = True) -> Score:
    """Score ``artist`` now and keep the score (unless it equals the last one), explained."""
    model = current_model(uow)
    weights = model.weights
    cohort = cohort_for(uow, artist, today)
    raw = read_raw(uow, [artist.id], today)
    m = measures(raw)
    rows = np.array([0])
    pos = positions(m, rows, cohort)
    x = {k: float(pos.x[k][0]) for k in FACTOR_KEYS}
    sums = combine(x, weights)
    totals = dimension_weights(weights)
    factors = []
    for f in FACTORS:
        share = 100.0 * weights[f.key] / totals[f.dimension]
        age = m.age[f.measure][0]
        seen = pos.x_observed[f.key][0]
        factors.append(FactorView(f.key, f.dimension, _label(f, m, 0, cohort, float(seen)), share * x[f.key], share,
                                  x[f.key], float(pos.observed[f.key][0]), None if math.isnan(age) else int(age)))
    dims: dict[str, float] = {d: float(sums[d][0]) for d in DIMENSIONS}
    overall = float(sums["overall"][0])
    conf = float(confidence({k: pos.observed[k] for k in FACTOR_KEYS}, weights)[0])
    last = _latest_scores(uow, artist.id, 1)
    previous = last[0] if last else None
    if previous is not None and _same(previous, model.version, x):
        score_id: int | None = previous.id  # the same score is not kept twice
    else:
        score_id = None
        if keep:
            row = ArtistScore(artist_id=artist.id, model_version=model.version, overall=overall, confidence=conf,
                              inputs=x, source=source[:20], created_at=utcnow(), **dims)
            uow.session.add(row)
            uow.session.flush()
            score_id = row.id
            if previous is not None and previous.overall - overall > drop_points:
                _dropped(uow, artist.id, artist.name, previous, overall, dims, score_id, actor)
    weakest = min(DIMENSIONS, key=lambda d: (dims[d], DIMENSIONS.index(d)))
    return Score(artist.id, artist.name, overall, dims, tuple(factors), conf, model.version, cohort,
                 recommended_step(overall), recommend_blocks(uow, factors, weakest),
                 _change(previous, overall, weights), score_id, x)


def _dropped(uow: UnitOfWork, artist_id: int, name: str, previous: ArtistScore, overall: float,
             dims: Mapping[str, float], score_id: int, actor: Member | None) -> None:
    worst = max(DIMENSIONS, key=lambda d: (getattr(previous, d) - dims[d], -DIMENSIONS.index(d)))
    outbox.record(uow, "score.dropped", artist_id=artist_id, name=name, score_id=score_id,
                  previous=round(previous.overall, 1), score=round(overall, 1),
                  drop=round(previous.overall - overall, 1), dimension=worst, by=actor.id if actor else None)


def split_points(points: Sequence[float], total: float) -> list[int]:
    """Whole points per factor that add up to the rounded total (largest remainders get the rest)."""
    target = round(total)
    floors = [math.floor(p) for p in points]
    rest = target - sum(floors)
    order = sorted(range(len(points)), key=lambda i: (-(points[i] - floors[i]), i))
    for i in order[:max(0, rest)]:
        floors[i] += 1
    return floors


# ---------------------------------------------------------------- everyone at once (a job on a worker)

Progress = Any  # Callable[[int, int, str], None]: done, total, what is being done
BATCH_CHUNK = 5_000


@dataclass(frozen=True)
class BatchResult:
    scored: int
    dropped: int
    median: float | None
    cohorts: int
    small_cohorts: int
    model_version: int


def _previous_overall(uow: UnitOfWork, first_id: int, last_id: int) -> dict[int, tuple[float, tuple[float, ...]]]:
    s = ArtistScore
    cols = (s.artist_id, s.overall, s.audience, s.market, s.monetization, s.competitive)
    where = (s.artist_id >= first_id, s.artist_id <= last_id)
    if uow.session.bind is not None and uow.session.bind.dialect.name == "postgresql":
        q = select(*cols).where(*where).ext(distinct_on(s.artist_id)).order_by(s.artist_id, s.id.desc())
        rows = uow.session.execute(q)
    else:
        last = select(func.max(s.id)).where(*where).group_by(s.artist_id).scalar_subquery()
        rows = uow.session.execute(select(*cols).where(s.id.in_(last)))
    return {a: (o, (au, ma, mo, co)) for a, o, au, ma, mo, co in rows}


def _worst(before: Sequence[float], row: Mapping[str, Any]) -> int:
    """Which dimension fell most (its index in ``DIMENSIONS``)."""
    falls = [before[j] - float(row[d]) for j, d in enumerate(DIMENSIONS)]
    return falls.index(max(falls))


def score_batch(uow: UnitOfWork, progress: Progress, *, today: dt.date, drop_points: float,
                pipeline: str | None = None) -> BatchResult:
    """Score every live artist (of ``pipeline``) at once: read their latest metrics by chunks of ids,
    refresh the cohorts' figures, compute every score with arrays, and keep them all."""
    model = current_model(uow)
    weights = model.weights
    q = select(Artist.id, Artist.name, Artist.genre, Artist.pipeline, Artist.stage).where(Artist.archived_at.is_(None))
    if pipeline:
        q = q.where(Artist.pipeline == pipeline)
    people = uow.session.execute(q.order_by(Artist.id)).all()
    n = len(people)
    ids = [p.id for p in people]
    progress(0, n, "read")
    parts: list[Raw] = []
    for start in range(0, n, BATCH_CHUNK):
        chunk = ids[start:start + BATCH_CHUNK]
        parts.append(raw_from_rows(chunk, read_latest_rows(uow, first_id=chunk[0], last_id=chunk[-1]), today))
        progress(start + len(chunk), n, "read")
    raw = Raw(np.asarray(ids, dtype=np.int64),
              np.concatenate([r.values for r in parts]) if parts else np.zeros((0, len(METRIC_NAMES))),
              np.concatenate([r.ages for r in parts]) if parts else np.zeros((0, len(METRIC_NAMES))))
    m = measures(raw)
    keys = [(genre_key(p.genre), career_of(p.pipeline, p.stage)) for p in people]
    if pipeline is None:
        views = refresh_cohorts(uow, keys, m)
    else:
        views = {key: cohort_of(uow, key[0], key[1], today) for key in sorted(set(keys))}
    x = {k: np.zeros(n) for k in FACTOR_KEYS}
    seen = {k: np.zeros(n) for k in FACTOR_KEYS}
    group = np.array([f"{g}\x00{c}" for g, c in keys], dtype=object)
    for key, view in views.items():
        rows = np.flatnonzero(group == f"{key[0]}\x00{key[1]}")
        pos = positions(m, rows, view)
        for k in FACTOR_KEYS:
            x[k][rows] = pos.x[k]
            seen[k][rows] = pos.observed[k]
    sums = combine(x, weights)
    conf = confidence(seen, weights)
    now = utcnow()
    dropped, source = 0, "batch"
    for start in range(0, n, BATCH_CHUNK):
        stop = min(n, start + BATCH_CHUNK)
        before = _previous_overall(uow, ids[start], ids[stop - 1]) if stop > start else {}
        batch = []
        for i in range(start, stop):
            dims: dict[str, Any] = {d: float(sums[d][i]) for d in DIMENSIONS}
            overall = float(sums["overall"][i])
            batch.append({"artist_id": ids[i], "model_version": model.version, "overall": overall,
                          "confidence": float(conf[i]), "inputs": {k: float(x[k][i]) for k in FACTOR_KEYS},
                          "source": source, "created_at": now, **dims})
        uow.session.execute(insert(ArtistScore), batch)
        for i, row in enumerate(batch, start=start):
            prev = before.get(ids[i])
            if prev is not None and prev[0] - row["overall"] > drop_points:
                dropped += 1
                worst = _worst(prev[1], row)
                outbox.record(uow, "score.dropped", artist_id=ids[i], name=people[i].name, score_id=None,
                              previous=round(prev[0], 1), score=round(row["overall"], 1),
                              drop=round(prev[0] - row["overall"], 1), dimension=DIMENSIONS[worst], by=None)
        progress(stop, n, "write")
    median = float(np.median(sums["overall"])) if n else None
    return BatchResult(n, dropped, median, len(views), sum(1 for v in views.values() if not v.enough), model.version)


# ---------------------------------------------------------------- across artists


@dataclass(frozen=True)
class StageFigures:
    count: int
    median: float
    p25: float
    p75: float


@dataclass(frozen=True)
class Mover:
    artist_id: int
    name: str
    before: float
    after: float


@dataclass(frozen=True)
class Stats:
    stages: dict[tuple[str, str], StageFigures]
    up: tuple[Mover, ...]
    down: tuple[Mover, ...]


def _last_scores(uow: UnitOfWork, before: dt.datetime | None = None) -> Any:
    s = ArtistScore
    q = select(s.artist_id, func.max(s.id).label("id")).group_by(s.artist_id)
    if before is not None:
        q = q.where(s.created_at <= before)
    return q.subquery()


def stats(uow: UnitOfWork, *, now: dt.datetime, movers: int = 5) -> Stats:
    """The latest score of each live artist per stage, and who moved most against a week ago."""
    last, week = _last_scores(uow), _last_scores(uow, now - dt.timedelta(days=7))
    rows = uow.session.execute(
        select(Artist.id, Artist.name, Artist.pipeline, Artist.stage, ArtistScore.overall)
        .join(last, last.c.artist_id == Artist.id).join(ArtistScore, ArtistScore.id == last.c.id)
        .where(Artist.archived_at.is_(None))).all()
    by_stage: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        by_stage.setdefault((r.pipeline, r.stage), []).append(r.overall)
    order = [(p.value, s) for p in Pipeline for s in STAGES[p]]
    stages = {}
    for key in sorted(by_stage, key=lambda k: order.index(k) if k in order else len(order)):
        v = np.asarray(by_stage[key])
        stages[key] = StageFigures(len(v), float(np.median(v)), float(np.percentile(v, 25)), float(np.percentile(v, 75)))
    earlier: dict[int, float] = dict(uow.session.execute(select(week.c.artist_id, ArtistScore.overall)
                                       .join(ArtistScore, ArtistScore.id == week.c.id)).all())
    moved = [Mover(r.id, r.name, earlier[r.id], r.overall) for r in rows if r.id in earlier
             and abs(r.overall - earlier[r.id]) >= 0.5]
    up = sorted((m for m in moved if m.after > m.before), key=lambda m: (m.before - m.after, m.artist_id))[:movers]
    down = sorted((m for m in moved if m.after < m.before), key=lambda m: (m.after - m.before, m.artist_id))[:movers]
    return Stats(stages, tuple(up), tuple(down))
