"""Artist metrics with their history: each value kept with the day it was observed and its source.

The catalogue (``METRICS``) declares every metric once: what it measures, its kind and the range a
real value falls in. A value outside the range is refused with a message saying why (engagement over
100 %, a growth of +10,000 % in 28 days, a percentage written as a fraction), so the scores built on
these values (Mona Market Fit) never see absurd input. Nothing is overwritten: a new value is a new
row, and the latest one per metric is what the artist has now.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from rapidfuzz import process
from sqlalchemy import Date, ForeignKey, Index, Numeric, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from core.artists import Artist, find
from core.db import Base, UnitOfWork, utcnow
from core.errors import InvalidInput, UserError
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


# ---------------------------------------------------------------- importing a CSV file

#: Columns a file may have besides the metrics; ``artist`` is required.
FILE_COLUMNS = ("artist", "date", "source")
MAX_ROWS = 20_000


@dataclass(frozen=True)
class RowResult:
    line: int
    artist: str
    imported: int
    #: Why the row was refused (``None``: imported).
    refused: str | None = None


@dataclass(frozen=True)
class ImportReport:
    filename: str
    rows: tuple[RowResult, ...]
    #: Said about the file as a whole (its encoding), or why none of it could be read.
    notes: tuple[str, ...] = ()

    @property
    def imported(self) -> int:
        return sum(r.imported for r in self.rows if r.refused is None)

    @property
    def refused(self) -> list[RowResult]:
        return [r for r in self.rows if r.refused is not None]


def _decode(data: bytes) -> tuple[str, tuple[str, ...]]:
    try:
        return data.decode("utf-8-sig"), ()
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), (_("The file is not UTF-8: it was read as Latin-1 (Windows-1252)."),)


def _column(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def import_csv(uow: UnitOfWork, actor: Member, data: bytes, *, filename: str, today: dt.date) -> ImportReport:
    """Import a file of metrics, one row per artist (and day), in the caller's transaction.

    Each row is imported whole or refused whole, with the reason; refusing a row never stops the
    others. A file whose columns cannot be read (no ``artist`` column, an unknown column) imports
    nothing and says why."""
    text, notes = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header:
        raise InvalidInput(_("{file} is empty.", file=filename))
    columns = [_column(h) for h in header]
    if "artist" not in columns:
        raise InvalidInput(_("{file} has no artist column; the first line names the columns: artist, date, source and metrics.",
                             file=filename))
    known = set(METRICS) | set(FILE_COLUMNS)
    for c in columns:
        if c not in known:
            close = process.extractOne(c, sorted(known), score_cutoff=70)
            hint = " " + _("Did you mean {name}?", name=close[0]) if close else ""
            raise InvalidInput(_("{file}: unknown column {column}.", file=filename, column=c) + hint)
    source = f"csv:{filename}"[:100]
    results: list[RowResult] = []
    seen: set[tuple[int, dt.date]] = set()
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(results) >= MAX_ROWS:
            notes += (_("Only the first {n} rows were read.", n=MAX_ROWS),)
            break
        cells = dict(zip(columns, (cell.strip() for cell in row), strict=False))
        name = cells.get("artist", "")
        try:
            if len(row) != len(columns):
                raise InvalidInput(_("it has {n} cells where the header has {m}.", n=len(row), m=len(columns)))
            artist = _find_artist(uow, name)
            day = _day(cells.get("date") or "", today)
            if (artist.id, day) in seen:
                raise InvalidInput(_("{name} appears twice for {date}.", name=artist.name, date=day.isoformat()))
            values = {c: _number(c, v) for c, v in cells.items() if c in METRICS and v}
            with uow.session.begin_nested():
                rows = record(uow, actor, artist, values, observed_on=day, source=cells.get("source") or source)
            seen.add((artist.id, day))
            results.append(RowResult(line, artist.name, len(rows)))
        except UserError as e:
            results.append(RowResult(line, name, 0, e.message))
    return ImportReport(filename, tuple(results), notes)


def _find_artist(uow: UnitOfWork, name: str) -> Artist:
    if not name:
        raise InvalidInput(_("the artist is missing."))
    return find(uow, name)


def _day(text: str, today: dt.date) -> dt.date:
    if not text:
        return today
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(_("{text} is not a date; write it like 2026-12-31.", text=text)) from None


def read_measure(text: str) -> Decimal | None:
    """A metric's value as people write it, in chat or in a CSV cell: ``12000``, ``12,000``,
    ``12 000``, ``3.5``, ``3,5``, ``+18``, ``-4.5`` or ``18%``; ``None`` when it is no such number."""
    clean_text = text.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "").removesuffix("%")
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", clean_text):
        clean_text = clean_text.replace(",", "")
    elif re.fullmatch(r"[+-]?\d+,\d+", clean_text):
        clean_text = clean_text.replace(",", ".")
    if not re.fullmatch(r"[+-]?\d{1,15}(\.\d{1,4})?", clean_text):
        return None
    return Decimal(clean_text)


def _number(metric: str, text: str) -> Decimal:
    value = read_measure(text)
    if value is None:
        raise InvalidInput(_("{metric} is not a number: {text}.", metric=metric, text=text))
    return value
