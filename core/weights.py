"""Adaptive Market Fit weights: refit from the outcomes the team records, versioned.

Outcomes (``outcomes``): an artist entering SPARK (positive) or archived from MONA without reaching
it (negative); a deal won or lost; a marketplace request delivered or closed (positive) or declined
or cancelled (negative). Each is paired with the artist's factor positions as of that day (the
metrics observed by then, aged to then).

A refit (``retrain``) happens only with at least ``MIN_EACH`` positive and ``MIN_EACH`` negative
outcomes. It is a logistic regression of the outcome on the factor positions whose weights are
non-negative and penalised toward the current defaults (``PENALTY``), solved by SciPy's L-BFGS-B.
It is trained on the oldest 75 % of outcomes and judged on the newest 25 % (a time split): the area
under the ROC curve (AUC) of the new weights and of the version in force on those same outcomes.
The fitted weights are blended toward the expert defaults by sample size (``n / (n + BLEND_N)``),
and each weight moves at most ±20 % from the version in force (``MAX_STEP``). A refit that does
worse than the version in force on the held-out outcomes is not kept.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats
from sqlalchemy import Date, Float, String, cast, func, select
from sqlalchemy.orm import Mapped, mapped_column

from core.artists import Artist, Opportunity, StageStay
from core.db import Base, UnitOfWork, utcnow
from core.i18n import _
from core.marketplace import MarketRequest, RequestTransition
from core.metrics import MetricValue
from core.scoring import (
    DEFAULT_WEIGHTS,
    FACTOR_KEYS,
    METRIC_NAMES,
    CohortView,
    Raw,
    ScoreModel,
    career_of,
    cohort_for,
    current_model,
    genre_key,
    measures,
    positions,
)
from core.team import Member

OutcomeKind = str  # "spark", "deal" or "request"
KINDS: tuple[OutcomeKind, ...] = ("spark", "deal", "request")
MIN_EACH = 40
#: The number of outcomes at which the fit counts as much as the expert defaults.
BLEND_N = 200
#: How far a weight may move from the version in force, per refit.
MAX_STEP = 0.20
#: Strength of the pull toward the defaults (on the sum of the outcomes' log-losses). Chosen on the
#: benchmark's synthetic outcomes (benchmarks/bench_scoring.py): 4.0 left the fit near the defaults
#: (rank correlation with the hidden weights 0.58 at 1,000 outcomes), 1.0 gave 0.79, 0.25 gave 0.81
#: and the best figures at 100 and 300 outcomes too; 0.05 no better.
PENALTY = 0.25
HELD_OUT = 0.25
#: A refit may do at most this much worse than the version in force on the held-out outcomes.
AUC_TOLERANCE = 0.02
#: The hour of the night (team's timezone) the weights are refit.
REFIT_HOUR = 3


class ScoreRefit(Base):
    """The nightly refit, once a day: the primary key makes it so, whatever worker gets there first
    (``jobs.ticker.refit_once`` queues it as a job run at ``REFIT_HOUR``)."""

    __tablename__ = "score_refits"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(500), default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class Outcome:
    artist_id: int
    kind: OutcomeKind
    positive: bool
    at: dt.datetime


def outcomes(uow: UnitOfWork) -> list[Outcome]:
    """Every outcome the team recorded, oldest first."""
    s = uow.session
    out: list[Outcome] = []
    spark = dict(s.execute(select(StageStay.artist_id, func.min(StageStay.entered_at))
                           .where(StageStay.pipeline == "spark").group_by(StageStay.artist_id)).all())
    out += [Outcome(a, "spark", True, at) for a, at in spark.items()]
    for a, at in s.execute(select(Artist.id, Artist.archived_at).where(Artist.archived_at.is_not(None),
                                                                        Artist.pipeline == "mona")):
        if a not in spark and at is not None:
            out.append(Outcome(a, "spark", False, at))
    for a, status, at in s.execute(select(Opportunity.artist_id, Opportunity.status, Opportunity.closed_at)
                                   .where(Opportunity.status.in_(("won", "lost")))):
        out.append(Outcome(a, "deal", status == "won", at or utcnow()))
    last_move = (select(RequestTransition.request_id, func.max(RequestTransition.at).label("at"))
                 .group_by(RequestTransition.request_id).subquery())
    for a, status, at in s.execute(
            select(MarketRequest.artist_id, MarketRequest.status, last_move.c.at)
            .join(last_move, last_move.c.request_id == MarketRequest.id)
            .where(MarketRequest.status.in_(("delivered", "closed", "declined", "cancelled")))):
        out.append(Outcome(a, "request", status in ("delivered", "closed"), at))
    out.sort(key=lambda o: (o.at, o.artist_id, o.kind))
    return out


def positions_at(uow: UnitOfWork, outs: Sequence[Outcome], today: dt.date) -> np.ndarray:
    """The factor positions of each outcome's artist as of the outcome's day (rows × ``FACTOR_KEYS``).

    Values observed by that day count, aged to that day; peers are the artist's cohort as it is now."""
    ids = sorted({o.artist_id for o in outs})
    history: dict[int, list[tuple[str, float, dt.date]]] = defaultdict(list)
    for start in range(0, len(ids), 2000):
        chunk = ids[start:start + 2000]
        for a, metric, value, on in uow.session.execute(
                select(MetricValue.artist_id, MetricValue.metric, cast(MetricValue.value, Float), MetricValue.observed_on)
                .where(MetricValue.artist_id.in_(chunk)).order_by(MetricValue.observed_on, MetricValue.id)):
            history[a].append((metric, value, on))
    index = {m: j for j, m in enumerate(METRIC_NAMES)}
    raw = Raw.empty(list(range(len(outs))))
    for i, o in enumerate(outs):
        day = o.at.date()
        for metric, value, on in history.get(o.artist_id, ()):
            if on > day:
                break
            j = index.get(metric)
            if j is not None:
                raw.values[i, j] = value
                raw.ages[i, j] = (day - on).days
    m = measures(raw)
    artists = {a.id: a for a in uow.session.scalars(select(Artist).where(Artist.id.in_(ids)))} if ids else {}
    views: dict[tuple[str, str], CohortView] = {}
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, o in enumerate(outs):
        artist = artists[o.artist_id]
        key = (genre_key(artist.genre), career_of(artist.pipeline, artist.stage))
        if key not in views:
            views[key] = cohort_for(uow, artist, today)
        groups[key].append(i)
    x = np.zeros((len(outs), len(FACTOR_KEYS)))
    for key, rows in groups.items():
        pos = positions(m, np.asarray(rows), views[key])
        for j, k in enumerate(FACTOR_KEYS):
            x[rows, j] = pos.x[k]
    return x


def fit(x: np.ndarray, y: np.ndarray, defaults: np.ndarray, *, penalty: float = PENALTY) -> np.ndarray:
    """Non-negative logistic-regression weights of ``x`` for ``y``, pulled toward a multiple of ``defaults``.

    Minimises the summed log-loss of ``a + x·β`` plus ``penalty · ‖β − c·defaults‖²`` over the
    intercept ``a``, the scale ``c ≥ 0`` and ``β ≥ 0`` (SciPy's L-BFGS-B); returns ``β``, summing to 1."""
    k = x.shape[1]
    d = defaults / defaults.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, c, beta = theta[0], theta[1], theta[2:]
        z = a + x @ beta
        p = 1.0 / (1.0 + np.exp(-z))
        nll = float(np.sum(np.logaddexp(0.0, z) - y * z))
        gap = beta - c * d
        value = nll + penalty * float(gap @ gap)
        r = p - y
        grad = np.concatenate(([r.sum()], [-2 * penalty * float(gap @ d)], x.T @ r + 2 * penalty * gap))
        return value, grad

    start = np.concatenate(([0.0, 1.0], d))
    bounds = [(None, None), (0.0, None)] + [(0.0, None)] * k
    result = optimize.minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    beta: np.ndarray = np.maximum(np.asarray(result.x[2:], dtype=float), 0.0)
    total = float(beta.sum())
    return beta / total if total > 0 else d


def auc(scores: np.ndarray, y: np.ndarray) -> float | None:
    """Area under the ROC curve: the chance a positive outcome scores above a negative one."""
    pos, neg = scores[y == 1], scores[y == 0]
    if not len(pos) or not len(neg):
        return None
    return float(stats.mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def step(previous: dict[str, float], fitted: dict[str, float], n: int) -> dict[str, float]:
    """Blend ``fitted`` toward the defaults by sample size, then keep each weight within ±20 % of ``previous``."""
    total = sum(previous.values())
    default_total = sum(DEFAULT_WEIGHTS.values())
    share = n / (n + BLEND_N)
    out = {}
    for k in FACTOR_KEYS:
        blended = (share * fitted[k] + (1 - share) * DEFAULT_WEIGHTS[k] / default_total) * total
        out[k] = float(min(max(blended, previous[k] * (1 - MAX_STEP)), previous[k] * (1 + MAX_STEP)))
    return out


@dataclass(frozen=True)
class Refit:
    kept: bool
    #: What to tell people: the new version, or why there is none.
    text: str
    model: ScoreModel | None = None


def counts(outs: Sequence[Outcome]) -> dict[str, list[int]]:
    by_kind = {k: [0, 0] for k in KINDS}
    for o in outs:
        by_kind[o.kind][0 if o.positive else 1] += 1
    return by_kind


def enough(by_kind: dict[str, list[int]]) -> bool:
    return (sum(p for p, _n in by_kind.values()) >= MIN_EACH and sum(n for _p, n in by_kind.values()) >= MIN_EACH)


def retrain(uow: UnitOfWork, actor: Member | None, *, today: dt.date) -> Refit:
    """Refit the weights from every outcome recorded; a new version when it is kept."""
    model = current_model(uow)
    outs = outcomes(uow)
    by_kind = counts(outs)
    positives = sum(p for p, _n in by_kind.values())
    negatives = sum(n for _p, n in by_kind.values())
    if not enough(by_kind):
        return Refit(False, _("Not enough outcomes to refit yet: {pos} positive and {neg} negative, {need} of each "
                              "needed (artists reaching SPARK, deals won or lost, requests delivered or declined). "
                              "Version {version} stays.", pos=positives, neg=negatives, need=MIN_EACH,
                              version=model.version))
    x = positions_at(uow, outs, today)
    y = np.array([1.0 if o.positive else 0.0 for o in outs])
    cut = int(len(outs) * (1 - HELD_OUT))
    defaults = np.array([DEFAULT_WEIGHTS[k] for k in FACTOR_KEYS])
    fitted = fit(x[:cut], y[:cut], defaults)
    new = step(model.weights, dict(zip(FACTOR_KEYS, fitted.tolist(), strict=True)), cut)
    held_x, held_y = x[cut:], y[cut:]
    new_auc = auc(held_x @ np.array([new[k] for k in FACTOR_KEYS]), held_y)
    old_auc = auc(held_x @ np.array([model.weights[k] for k in FACTOR_KEYS]), held_y)
    if new_auc is None or old_auc is None:
        return Refit(False, _("The newest {n} outcomes are all of one kind, so a refit cannot be judged; "
                              "version {version} stays.", n=len(outs) - cut, version=model.version))
    if new_auc < old_auc - AUC_TOLERANCE:
        return Refit(False, _("The refit did worse than version {version} on the newest {n} outcomes "
                              "(AUC {new} against {old}); version {version} stays.", version=model.version,
                              n=len(outs) - cut, new=f"{new_auc:.2f}", old=f"{old_auc:.2f}"))
    version = model.version + 1
    row = ScoreModel(version=version, weights=new, auc=new_auc, previous_auc=old_auc, created_by_id=actor.id if actor else None,
                     trained={"positives": positives, "negatives": negatives, "kinds": by_kind, "train": cut,
                              "held_out": len(outs) - cut},
                     note=f"Refit from {len(outs)} outcomes", created_at=utcnow())
    uow.session.add(row)
    uow.session.flush()
    return Refit(True, _("Version {version} is in force: refit from {n} outcomes ({pos} positive, {neg} negative); "
                         "AUC on the newest {held} outcomes {new} (version {previous}: {old}).", version=version,
                         n=len(outs), pos=positives, neg=negatives, held=len(outs) - cut, new=f"{new_auc:.2f}",
                         previous=model.version, old=f"{old_auc:.2f}"), row)


def versions(uow: UnitOfWork, limit: int = 2) -> list[ScoreModel]:
    current_model(uow)
    return list(uow.session.scalars(select(ScoreModel).order_by(ScoreModel.version.desc()).limit(limit)))
