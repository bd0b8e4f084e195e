"""Artist metrics with their history: each value kept with the day it was observed and its source.

The catalogue (``METRICS``) declares every metric once: what it measures, its kind and the range a
real value falls in. A value outside the range is refused with a message saying why (engagement over
100 %, a growth of +10,000 % in 28 days, a percentage written as a fraction), so the scores built on
these values (Mona Market Fit) never see absurd input. Nothing is overwritten: a new value is a new
row, and the latest one per metric is what the artist has now.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from sqlalchemy import Date, ForeignKey, Index, Numeric, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from core.artists import Artist
from core.db import Base, UnitOfWork, utcnow
from core.errors import InvalidInput
from core.i18n import _
from core.team import Member
from core.text import clean

MetricKind = Literal["count", "percent", "growth", "money"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: MetricKind
    description: str
    #: The largest value a real artist could have (counts, money); percentages have their own bounds.
    most: Decimal = Decimal("10000000000")


PLATFORMS = {"instagram": "Instagram", "tiktok": "TikTok", "youtube": "YouTube", "spotify": "Spotify", "twitch": "Twitch"}
#: Growth over 28 days, in percent: -100 (lost everyone) to +1,000 (eleven times the audience).
GROWTH_LEAST, GROWTH_MOST = Decimal(-100), Decimal(1000)

METRICS: dict[str, MetricSpec] = {
    **{f"{p}_followers": MetricSpec(f"{p}_followers", "count", f"Followers on {name}") for p, name in PLATFORMS.items()},
    **{f"{p}_growth_28d": MetricSpec(f"{p}_growth_28d", "growth", f"Growth of {name} followers over 28 days, in %")
       for p, name in PLATFORMS.items()},
    "engagement_rate": MetricSpec("engagement_rate", "percent", "Engagement rate, in % (interactions per follower per post)"),
    "monthly_listeners": MetricSpec("monthly_listeners", "count", "Monthly listeners (Spotify)"),
    "streams": MetricSpec("streams", "count", "Streams in all, across platforms"),
    "releases_12m": MetricSpec("releases_12m", "count", "Releases in the last 12 months", most=Decimal(500)),
    "live_dates_12m": MetricSpec("live_dates_12m", "count", "Live dates in the last 12 months", most=Decimal(1000)),
    "merch_revenue": MetricSpec("merch_revenue", "money", "Merchandise revenue over 12 months, in euros"),
    "sync_revenue": MetricSpec("sync_revenue", "money", "Sync licensing revenue over 12 months, in euros"),
    "booking_revenue": MetricSpec("booking_revenue", "money", "Booking revenue over 12 months, in euros"),
}


class MetricValue(Base):
    """One observed value of one metric of one artist."""

    __tablename__ = "artist_metrics"
    __table_args__ = (Index("ix_artist_metrics_latest", "artist_id", "metric", "observed_on", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(40))
    value: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    observed_on: Mapped[dt.date] = mapped_column(Date)
    #: Where it came from: "slack", "console", "csv:plan.csv" …
    source: Mapped[str] = mapped_column(String(100))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def check_value(name: str, value: Decimal) -> Decimal:
    """``value`` if it can be a real ``name``; otherwise a message saying why not."""
    spec = METRICS[name]
    label = name.replace("_", "-")
    if spec.kind == "growth":
        if not GROWTH_LEAST <= value <= GROWTH_MOST:
            raise InvalidInput(_("--{metric} is a growth over 28 days in %, from -100 to +1000, not {value}.",
                                 metric=label, value=value))
        return value
    if value < 0:
        raise InvalidInput(_("--{metric} cannot be negative.", metric=label))
    if spec.kind == "percent":
        if value > 100:
            raise InvalidInput(_("--{metric} is a percentage: at most 100, not {value}.", metric=label, value=value))
        if 0 < value < 1:
            raise InvalidInput(_("--{metric} looks like a fraction ({value}); write the percentage, e.g. {percent} for {percent} %.",
                                 metric=label, value=value, percent=(value * 100).normalize()))
        return value
    if value > spec.most:
        raise InvalidInput(_("--{metric} cannot be more than {most}.", metric=label, most=f"{spec.most:,}"))
    if spec.kind == "count" and value != value.to_integral_value():
        raise InvalidInput(_("--{metric} is a count: a whole number, not {value}.", metric=label, value=value))
    return value


def record(uow: UnitOfWork, actor: Member, artist: Artist, values: dict[str, Decimal], *, observed_on: dt.date,
           source: str) -> list[MetricValue]:
    """Keep each value as observed on ``observed_on``; refuses the lot if one is impossible."""
    if not values:
        raise InvalidInput(_("Say which metrics to set, e.g. --instagram-followers 12000 --engagement-rate 3.5."))
    if observed_on > utcnow().date() + dt.timedelta(days=1):
        raise InvalidInput(_("{date} is in the future: metrics are what was observed.", date=observed_on.isoformat()))
    source = clean(source, what=_("source"), max_len=100, allow_newlines=False) or "chat"
    rows = [MetricValue(artist_id=artist.id, metric=name, value=check_value(name, value), observed_on=observed_on,
                        source=source, recorded_by_id=actor.id) for name, value in sorted(values.items())]
    uow.session.add_all(rows)
    uow.session.flush()
    return rows


@dataclass(frozen=True)
class Latest:
    metric: str
    value: Decimal
    observed_on: dt.date
    source: str
    #: How many values this metric has had in all (its history).
    history: int


def latest(uow: UnitOfWork, artist: Artist) -> list[Latest]:
    """The artist's current value of each metric (the last observed), with its date and source."""
    ranked = (select(MetricValue.metric, MetricValue.value, MetricValue.observed_on, MetricValue.source,
                     func.row_number().over(partition_by=MetricValue.metric,
                                            order_by=(MetricValue.observed_on.desc(), MetricValue.id.desc())).label("n"),
                     func.count().over(partition_by=MetricValue.metric).label("history"))
              .where(MetricValue.artist_id == artist.id).subquery())
    rows = uow.session.execute(select(ranked).where(ranked.c.n == 1).order_by(ranked.c.metric)).all()
    return [Latest(r.metric, r.value, r.observed_on, r.source, r.history) for r in rows]
