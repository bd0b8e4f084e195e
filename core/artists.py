"""Artists CRM: artists, their stage history, interactions and opportunities (deals).

Services are plain functions taking a ``UnitOfWork`` and the acting ``Member``; they validate,
change rows, record domain events in the outbox, and leave the commit to the caller (one command,
one transaction).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import list_currencies
from rapidfuzz import fuzz, process
from sqlalchemy import BigInteger, Date, ForeignKey, Index, Numeric, String, Text, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship
from sqlalchemy.orm.exc import StaleDataError

from core import outbox
from core.db import Base, UnitOfWork, add_to_counter, savepoint, utcnow
from core.errors import Ambiguous, Candidate, ConcurrentChange, InvalidInput, NotFound
from core.i18n import _
from core.pipelines import Pipeline, StageRef, find_stage, first_stage, parse_pipeline
from core.team import Member, audit
from core.text import clean, fold

INTERACTION_KINDS = ("call", "email", "meeting", "dm", "note")
DEAL_STATUSES = ("open", "won", "lost")
HANDLES = ("instagram", "tiktok", "youtube", "spotify", "twitch")
MAX_AMOUNT = Decimal("1000000000")
CURRENCIES = frozenset(list_currencies())
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HANDLE = re.compile(r"^[\w.\-]{1,100}$")


class Artist(Base):
    __tablename__ = "artists"
    __table_args__ = (
        # Partial indexes over live (not archived) artists serve /pipeline's aggregates and stuck list.
        Index("ix_artists_live_stage", "pipeline", "stage", "stage_entered_at",
              postgresql_where=text("archived_at IS NULL"), sqlite_where=text("archived_at IS NULL")),
        Index("ix_artists_live_entered", "pipeline", "stage_entered_at",
              postgresql_where=text("archived_at IS NULL"), sqlite_where=text("archived_at IS NULL")),
        # Two live artists never share a folded name, even when added at the same instant.
        Index("uq_artists_live_name", "name_key", unique=True,
              postgresql_where=text("archived_at IS NULL"), sqlite_where=text("archived_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), index=True)
    genre: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    instagram: Mapped[str | None] = mapped_column(String(100))
    tiktok: Mapped[str | None] = mapped_column(String(100))
    youtube: Mapped[str | None] = mapped_column(String(100))
    spotify: Mapped[str | None] = mapped_column(String(100))
    twitch: Mapped[str | None] = mapped_column(String(100))
    followers: Mapped[int | None] = mapped_column(BigInteger)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)
    pipeline: Mapped[str] = mapped_column(String(10))
    stage: Mapped[str] = mapped_column(String(40))
    stage_entered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(default=1)

    owner: Mapped[Member | None] = relationship(foreign_keys=[owner_id], lazy="raise")
    updated_by: Mapped[Member | None] = relationship(foreign_keys=[updated_by_id], lazy="raise")

    __mapper_args__ = {"version_id_col": version}

    @property
    def pipeline_enum(self) -> Pipeline:
        return Pipeline(self.pipeline)


class StageStay(Base):
    """One period an artist spent in one stage; ``left_at`` is empty for the current stage."""

    __tablename__ = "stage_stays"
    __table_args__ = (Index("ix_stage_stays_pipeline_stage", "pipeline", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"), index=True)
    pipeline: Mapped[str] = mapped_column(String(10))
    stage: Mapped[str] = mapped_column(String(40))
    entered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    left_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    moved_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(String(1000))
    #: The last of ``STUCK_MARKS`` announced as ``artist.stuck`` for this stay (0: none yet).
    stuck_told: Mapped[int] = mapped_column(default=0, server_default="0")


#: Days in one stage at which ``artist.stuck`` is recorded (once each per stay).
STUCK_MARKS = (7, 14, 30, 60, 90)


def announce_stuck(uow: UnitOfWork, now: dt.datetime) -> int:
    """Record ``artist.stuck`` for each artist whose current stage stay crossed one of ``STUCK_MARKS``
    days since it was last told (the highest mark crossed; a mark is told once per stay)."""
    rows = uow.session.execute(select(StageStay, Artist.name).join(Artist, Artist.id == StageStay.artist_id).where(
        StageStay.left_at.is_(None), Artist.archived_at.is_(None),
        StageStay.entered_at <= now - dt.timedelta(days=STUCK_MARKS[0])).with_for_update(of=StageStay, skip_locked=True)).all()
    told = 0
    for stay, name in rows:
        days = (now - stay.entered_at).days
        mark = max((m for m in STUCK_MARKS if m <= days), default=0)
        if mark > stay.stuck_told:
            stay.stuck_told = mark
            outbox.record(uow, "artist.stuck", artist_id=stay.artist_id, name=name, pipeline=stay.pipeline,
                          stage=stay.stage, days=mark)
            told += 1
    return told


class StageDuration(Base):
    """How many finished stays in a stage lasted a given number of whole days: a small histogram,
    kept up to date as artists move, so that medians need no scan of the whole history."""

    __tablename__ = "stage_durations"

    pipeline: Mapped[str] = mapped_column(String(10), primary_key=True)
    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    days: Mapped[int] = mapped_column(primary_key=True)
    stays: Mapped[int] = mapped_column(default=0)


class Interaction(Base):
    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_artist_at", "artist_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    author: Mapped[Member | None] = relationship(lazy="raise")


class Opportunity(Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        Index("ix_opportunities_artist_status", "artist_id", "status"),
        Index("ix_opportunities_open", "artist_id", postgresql_include=["currency", "value"],
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    value: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    status: Mapped[str] = mapped_column(String(10), default="open")
    expected_close: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: Who marked it won or lost: a close that lost the race to another is told who won it.
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    artist: Mapped[Artist] = relationship(lazy="raise")


# ---------------------------------------------------------------- input checks


def parse_amount(text: str) -> Decimal:
    """``1500``, ``1 500``, ``1,500.50`` or ``1500,50`` → Decimal; negative or absurd amounts refused."""
    raw = text.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    if re.fullmatch(r"-\S*", raw):
        raise InvalidInput(_("The amount must not be negative: {text}.", text=text))
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d{1,2})?", raw):
        raw = raw.replace(",", "")
    elif re.fullmatch(r"\d+,\d{1,2}", raw):
        raw = raw.replace(",", ".")
    if not re.fullmatch(r"\d+(\.\d{1,2})?", raw):
        raise InvalidInput(_("{text} is not an amount; write it like 1500 or 1500.50.", text=text))
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise InvalidInput(_("{text} is not an amount; write it like 1500 or 1500.50.", text=text)) from None
    if amount > MAX_AMOUNT:
        raise InvalidInput(_("{text} is more than the largest amount mona keeps (1,000,000,000).", text=text))
    return amount


def parse_currency(text: str) -> str:
    code = text.strip().upper()
    if code == "€":
        code = "EUR"
    if code not in CURRENCIES:
        raise InvalidInput(_("Unknown currency {code}; use an ISO 4217 code such as EUR, USD or GBP.", code=text))
    return code


def _check_email(value: str) -> str:
    value = clean(value, what="email", max_len=254, allow_newlines=False)
    if not _EMAIL.match(value):
        raise InvalidInput(_("{value} is not an email address.", value=value))
    return value


def _check_handle(field: str, value: str) -> str:
    value = clean(value, what=field, max_len=100, allow_newlines=False).lstrip("@")
    if not _HANDLE.match(value):
        raise InvalidInput(_("{value} is not a valid {field} handle (letters, digits, . _ -).", value=value, field=field))
    return value


def _check_followers(value: int | str) -> int:
    try:
        n = int(str(value).replace(",", "").replace(" ", ""))
    except ValueError:
        raise InvalidInput(_("Followers must be a whole number, not {value}.", value=value)) from None
    if n < 0:
        raise InvalidInput(_("Followers must not be negative."))
    return n


EDITABLE = ("name", "genre", "city", "email", *HANDLES, "followers", "owner")


def _checked_fields(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key == "name":
            out["name"] = clean(str(value), what=_("name"), max_len=200, allow_newlines=False)
            if not out["name"]:
                raise InvalidInput(_("The artist's name must not be empty."))
            out["name_key"] = fold(out["name"])
        elif key in ("genre", "city"):
            out[key] = clean(str(value), what=key, max_len=100, allow_newlines=False) or None
        elif key == "email":
            out[key] = _check_email(str(value))
        elif key in HANDLES:
            out[key] = _check_handle(key, str(value))
        elif key == "followers":
            out[key] = _check_followers(value)
        elif key == "owner":
            out["owner_id"] = value.id if isinstance(value, Member) else None
        else:
            raise InvalidInput(_("Unknown field {field}. Fields: {fields}.", field=key, fields=", ".join(EDITABLE)))
    return out


# ---------------------------------------------------------------- finding artists


def _ref_id(ref: str) -> int | None:
    m = re.fullmatch(r"#?(\d{1,9})", ref.strip())
    return int(m.group(1)) if m else None


def find(uow: UnitOfWork, ref: str, *, include_archived: bool = False) -> Artist:
    """The artist named (or numbered, ``#12``) by ``ref``, case- and accent-insensitively.

    Several matches raise ``Ambiguous`` with the candidates; none raises ``NotFound`` with the
    closest names.
    """
    session = uow.session
    ref = ref.strip()
    if not ref:
        raise InvalidInput(_("Say which artist: a name or an id like #12."))
    artist_id = _ref_id(ref)
    if artist_id is not None:
        artist = session.get(Artist, artist_id, options=[joinedload(Artist.owner)])
        if artist is None or (artist.archived_at and not include_archived):
            raise NotFound(_("No artist has the id #{id}.", id=artist_id))
        return artist
    key = fold(ref)
    live = Artist.archived_at.is_(None) if not include_archived else Artist.id.is_not(None)
    exact = session.scalars(
        select(Artist).options(joinedload(Artist.owner)).where(Artist.name_key == key, live).limit(10)
    ).all()
    if len(exact) == 1:
        return exact[0]
    matches = exact or session.scalars(
        select(Artist).options(joinedload(Artist.owner))
        .where(Artist.name_key.contains(key, autoescape=True), live).order_by(Artist.name_key).limit(10)
    ).all()
    if len(matches) == 1:
        return matches[0]
    if matches:
        total = len(matches)
        if total == 10:  # the first ten of perhaps many: say how many match in all
            field = Artist.name_key == key if exact else Artist.name_key.contains(key, autoescape=True)
            total = int(session.scalar(select(func.count()).select_from(Artist).where(field, live)) or total)
        raise Ambiguous(
            _("Several artists match {ref}; pick one:", ref=ref),
            [Candidate(a.id, f"{a.name} (#{a.id}, {a.stage})") for a in matches],
            ref, total=total,
        )
    names = session.execute(select(Artist.name_key, Artist.name).where(live)).all()
    close = process.extract(key, {n: k for k, n in names}, scorer=fuzz.WRatio, limit=3, score_cutoff=80)
    hint = " " + _("Did you mean {names}?", names=", ".join(c[2] for c in close)) if close else ""
    raise NotFound(_("No artist is called {ref}.", ref=ref) + hint)


def split_leading_artist(uow: UnitOfWork, words: Sequence[str]) -> tuple[str, list[str]]:
    """Split ``Alex Blue called about the EP`` into the longest leading artist name and the rest,
    with one query; with no full-name match, the first word is the name."""
    words = list(words)
    if not words:
        return "", []
    prefixes = {fold(" ".join(words[:n])): n for n in range(1, min(len(words), 8) + 1)}
    found = uow.session.scalars(
        select(Artist.name_key).where(Artist.name_key.in_(prefixes), Artist.archived_at.is_(None))
    ).all()
    n = max((prefixes[k] for k in found), default=1)
    return " ".join(words[:n]), words[n:]


# ---------------------------------------------------------------- changing artists


def _touch(artist: Artist, actor: Member) -> None:
    artist.updated_at = utcnow()
    artist.updated_by_id = actor.id


def _expect_version(uow: UnitOfWork, artist: Artist, expected: int | None) -> None:
    if expected is not None and artist.version != expected:
        raise _changed_meanwhile(uow, artist.id)


def _changed_meanwhile(uow: UnitOfWork, artist_id: int) -> ConcurrentChange:
    row = uow.session.execute(
        select(Artist.name, Member.display_name)
        .outerjoin(Member, Member.id == Artist.updated_by_id)
        .where(Artist.id == artist_id)
    ).one_or_none()
    name, by = row if row else ("?", None)
    return ConcurrentChange(
        _("{name} was changed by {who} meanwhile; nothing was saved. Look at the card again and retry.",
          name=name, who=by or _("someone else"))
    )


def save(uow: UnitOfWork, artist: Artist) -> None:
    """Flush an artist change, turning a lost-update race into a clear ``ConcurrentChange``."""
    try:
        uow.session.flush()
    except StaleDataError:
        uow.rollback()
        raise _changed_meanwhile(uow, artist.id) from None


def _is_live_name_clash(e: IntegrityError) -> bool:
    """The database refused a second live artist with the same folded name (``uq_artists_live_name``)."""
    message = str(e.orig)
    return "uq_artists_live_name" in message or "artists.name_key" in message  # PostgreSQL, SQLite


def _live_namesake(uow: UnitOfWork, name_key: str, *, besides: int | None = None) -> Artist | None:
    """The live artist called ``name_key``, other than the artist ``besides``."""
    q = select(Artist).where(Artist.name_key == name_key, Artist.archived_at.is_(None))
    if besides is not None:
        q = q.where(Artist.id != besides)
    return uow.session.scalars(q).first()


class ArtistExists(InvalidInput):
    """A live artist already has that name; ``artist_id`` says which, so a reply can show their card."""

    def __init__(self, message: str, artist_id: int) -> None:
        super().__init__(message, show=f"/artist show #{artist_id}")
        self.artist_id = artist_id


def _already_exists(artist: Artist) -> ArtistExists:
    return ArtistExists(_("{name} already exists (#{id}); edit their card instead.", name=artist.name, id=artist.id),
                        artist.id)


def _name_taken(name: str, artist_id: int) -> ArtistExists:
    return ArtistExists(_("Another artist is already called {name} (#{id}).", name=name, id=artist_id), artist_id)


@contextlib.contextmanager
def _changing(uow: UnitOfWork, artist: Artist) -> Iterator[None]:
    """Change ``artist`` inside the block, in a savepoint flushed at its end.

    Two races become the user errors they are, and leave the rest of the transaction usable:
    someone changed the artist meanwhile (its version moved: ``ConcurrentChange``, as ``save``),
    or another live artist took the name meanwhile (the database's unique index refused it)."""
    artist_id, name_key = artist.id, artist.name_key
    try:
        with savepoint(uow.session):
            yield
            name_key = artist.name_key  # read before the flush: a refused flush expires the artist
    except StaleDataError:
        uow.rollback()
        raise _changed_meanwhile(uow, artist_id) from None
    except IntegrityError as e:
        if not _is_live_name_clash(e):
            raise
        clash = _live_namesake(uow, name_key, besides=artist_id)
        if clash is None:
            raise
        raise _name_taken(clash.name, clash.id) from None


def add_artist(uow: UnitOfWork, actor: Member, *, name: str, pipeline: str | None = None, **fields: Any) -> Artist:
    """A new live artist; a name a live artist already has (even one added at the same instant,
    which the database's unique index refuses) is an ``ArtistExists`` naming that artist."""
    checked = _checked_fields({"name": name, **fields})
    pipe = parse_pipeline(pipeline) if pipeline else Pipeline.MONA
    existing = _live_namesake(uow, checked["name_key"])
    if existing:
        raise _already_exists(existing)
    if "owner_id" not in checked:
        checked["owner_id"] = actor.id
    now = utcnow()
    artist = Artist(pipeline=pipe.value, stage=first_stage(pipe), stage_entered_at=now, created_at=now,
                    updated_at=now, updated_by_id=actor.id, **checked)
    try:
        with savepoint(uow.session):  # the insert alone: a clash rolls back to here, not the whole command
            uow.session.add(artist)
    except IntegrityError as e:
        existing = _live_namesake(uow, checked["name_key"]) if _is_live_name_clash(e) else None
        if existing is None:
            raise
        raise _already_exists(existing) from None
    uow.session.add(StageStay(artist_id=artist.id, pipeline=artist.pipeline, stage=artist.stage, entered_at=now, moved_by_id=actor.id))
    outbox.record(uow, "artist.created", artist_id=artist.id, name=artist.name, pipeline=artist.pipeline,
                  stage=artist.stage, by=actor.id)
    return artist


def edit_artist(uow: UnitOfWork, actor: Member, artist: Artist, changes: dict[str, Any]) -> list[str]:
    if not changes:
        raise InvalidInput(_("Say what to change, e.g. --city Lyon. Fields: {fields}.", fields=", ".join(EDITABLE)))
    checked = _checked_fields(changes)
    if "name_key" in checked and checked["name_key"] != artist.name_key:
        clash = _live_namesake(uow, checked["name_key"], besides=artist.id)
        if clash:
            raise _name_taken(checked["name"], clash.id)
    changed = [k for k, v in checked.items() if k != "name_key" and getattr(artist, k) != v]
    if not changed:
        return changed
    with _changing(uow, artist):
        for key, value in checked.items():
            setattr(artist, key, value)
        _touch(artist, actor)
    outbox.record(uow, "artist.updated", artist_id=artist.id, fields=changed, by=actor.id)
    return changed


def move_stage(uow: UnitOfWork, actor: Member, artist: Artist, stage_text: str, *, reason: str | None = None,
               expected_version: int | None = None) -> tuple[StageRef, StageRef]:
    """Move ``artist`` to the stage named ``stage_text``; returns (from, to).

    Moving a MONA artist out of Fidélisation into Qualification switches them to SPARK.
    ``expected_version`` (from a card's buttons) refuses the move if the artist changed since.
    """
    _expect_version(uow, artist, expected_version)
    if artist.archived_at:
        raise InvalidInput(_("{name} is archived; restore them first.", name=artist.name))
    target = find_stage(artist.pipeline_enum, artist.stage, stage_text)
    before = StageRef(artist.pipeline_enum, artist.stage)
    if target == before:
        raise InvalidInput(_("{name} is already in {stage}.", name=artist.name, stage=artist.stage))
    reason = clean(reason, what=_("reason"), max_len=1000) if reason else None
    now = utcnow()
    current = uow.session.scalars(
        select(StageStay).where(StageStay.artist_id == artist.id, StageStay.left_at.is_(None))
    ).all()
    for stay in current:
        stay.left_at = now
        add_to_counter(uow.session, StageDuration.__table__, {"pipeline": stay.pipeline, "stage": stay.stage,
                       "days": max(0, (now - stay.entered_at).days)}, "stays")
    uow.session.add(StageStay(artist_id=artist.id, pipeline=target.pipeline.value, stage=target.stage,
                              entered_at=now, moved_by_id=actor.id, reason=reason))
    artist.pipeline, artist.stage, artist.stage_entered_at = target.pipeline.value, target.stage, now
    _touch(artist, actor)
    save(uow, artist)
    outbox.record(uow, "artist.stage_changed", artist_id=artist.id, name=artist.name,
                  from_pipeline=before.pipeline.value, from_stage=before.stage,
                  pipeline=target.pipeline.value, stage=target.stage, reason=reason, by=actor.id)
    return before, target


def log_interaction(uow: UnitOfWork, actor: Member, artist: Artist, kind: str, text: str) -> Interaction:
    kind = (kind or "note").lower()
    if kind not in INTERACTION_KINDS:
        raise InvalidInput(_("Unknown interaction type {kind}. Types: {kinds}.", kind=kind, kinds=", ".join(INTERACTION_KINDS)))
    text = clean(text, what=_("note"))
    if not text:
        raise InvalidInput(_("Say what happened, e.g. called about the EP."))
    item = Interaction(artist_id=artist.id, kind=kind, text=text, author_id=actor.id, at=utcnow())
    uow.session.add(item)
    uow.session.flush()
    outbox.record(uow, "interaction.logged", artist_id=artist.id, interaction_id=item.id, kind=kind, by=actor.id)
    return item


def add_deal(uow: UnitOfWork, actor: Member, artist: Artist, *, amount: Decimal, title: str, currency: str = "EUR",
             expected_close: dt.date | None = None) -> Opportunity:
    if amount < 0:
        raise InvalidInput(_("The amount must not be negative: {text}.", text=amount))
    if amount > MAX_AMOUNT:
        raise InvalidInput(_("{text} is more than the largest amount mona keeps (1,000,000,000).", text=amount))
    value = amount.quantize(Decimal("0.01"))
    code = parse_currency(currency)
    title = clean(title, what=_("title"), max_len=300, allow_newlines=False)
    if not title:
        raise InvalidInput(_("Give the deal a title, e.g. Summer tour."))
    deal = Opportunity(artist_id=artist.id, title=title, value=value, currency=code, status="open",
                       expected_close=expected_close, author_id=actor.id, created_at=utcnow())
    uow.session.add(deal)
    uow.session.flush()
    outbox.record(uow, "deal.created", artist_id=artist.id, deal_id=deal.id, value=str(value), currency=code, by=actor.id)
    return deal


def set_deal_status(uow: UnitOfWork, actor: Member, deal_id: int, status: str) -> Opportunity:
    """Close an open deal as won or lost, once: of closes racing each other (a double click, two
    people at once) one wins and records the event; the others are told who closed it."""
    status = status.lower()
    if status not in ("won", "lost"):
        raise InvalidInput(_("A deal's status can be set to won or lost, not {status}.", status=status))
    deal = uow.session.scalars(
        select(Opportunity).options(joinedload(Opportunity.artist)).where(Opportunity.id == deal_id)
    ).one_or_none()
    if deal is None:
        raise NotFound(_("No deal has the id #{id}.", id=deal_id))
    if deal.status != "open":
        raise _already_closed(uow, deal)
    # Conditional: a close committed since the read above leaves no open row to update (PostgreSQL
    # makes this update wait for a concurrent close to commit, then finds the row closed).
    closed = uow.session.scalars(
        update(Opportunity).where(Opportunity.id == deal.id, Opportunity.status == "open")
        .values(status=status, closed_at=utcnow(), closed_by_id=actor.id)
        .returning(Opportunity)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()
    if closed is None:
        uow.session.refresh(deal)
        raise _already_closed(uow, deal)
    outbox.record(uow, f"deal.{status}", artist_id=deal.artist_id, deal_id=deal.id, value=str(deal.value),
                  currency=deal.currency, by=actor.id)
    return deal


def _already_closed(uow: UnitOfWork, deal: Opportunity) -> ConcurrentChange:
    message = _("Deal #{id} is already {status}.", id=deal.id, status=_(deal.status))
    who = uow.session.scalar(select(Member.display_name).where(Member.id == deal.closed_by_id)) if deal.closed_by_id else None
    if who:
        message += " " + _("{who} closed it.", who=who)
    return ConcurrentChange(message)


def archive(uow: UnitOfWork, actor: Member, artist: Artist, *, restore: bool = False,
            expected_version: int | None = None) -> None:
    _expect_version(uow, artist, expected_version)
    if restore != bool(artist.archived_at):
        state = _("archived") if artist.archived_at else _("active")
        raise InvalidInput(_("{name} is already {state}.", name=artist.name, state=state))
    with _changing(uow, artist):  # a restored artist's name may have been given to another since
        artist.archived_at = None if restore else utcnow()
        _touch(artist, actor)
    audit(uow, actor, "artist.restore" if restore else "artist.archive", f"#{artist.id} {artist.name}")
    outbox.record(uow, "artist.restored" if restore else "artist.archived", artist_id=artist.id, by=actor.id)


# ---------------------------------------------------------------- reading artists


@dataclass(frozen=True)
class Card:
    artist: Artist
    owner_name: str | None
    days_in_stage: int
    interactions: list[tuple[Interaction, str | None]]
    interaction_count: int
    open_deals: list[Opportunity]
    open_totals: dict[str, Decimal]


def card(uow: UnitOfWork, artist: Artist, *, recent: int = 5) -> Card:
    """Everything the artist card shows, in a fixed number of queries whatever the history's size."""
    session = uow.session
    # find() joins the owner in, so this is an identity-map hit, not a query.
    owner = session.get(Member, artist.owner_id) if artist.owner_id else None
    total = func.count().over().label("total")
    recent_rows = session.execute(
        select(Interaction, Member.display_name, total)
        .outerjoin(Member, Member.id == Interaction.author_id)
        .where(Interaction.artist_id == artist.id)
        .order_by(Interaction.at.desc(), Interaction.id.desc())
        .limit(recent)
    ).all()
    deals = session.scalars(
        select(Opportunity).where(Opportunity.artist_id == artist.id, Opportunity.status == "open").order_by(Opportunity.id)
    ).all()
    totals: dict[str, Decimal] = {}
    for d in deals:
        totals[d.currency] = totals.get(d.currency, Decimal(0)) + d.value
    days = max(0, (utcnow() - artist.stage_entered_at).days)
    count = recent_rows[0][2] if recent_rows else 0
    return Card(artist, owner.display_name if owner else None, days, [(i, n) for i, n, _t in recent_rows], count,
                list(deals), totals)


@dataclass(frozen=True)
class ListFilter:
    pipeline: Pipeline | None = None
    stage: str | None = None
    owner_id: int | None = None
    search: str | None = None
    archived: bool = False


@dataclass(frozen=True)
class ArtistRow:
    id: int
    name: str
    pipeline: str
    stage: str
    owner: str | None
    days_in_stage: int


def list_artists(uow: UnitOfWork, flt: ListFilter, *, page: int, page_size: int) -> tuple[list[ArtistRow], int]:
    """One page of artists (1-based ``page``) and the total count matching ``flt``."""
    conds: list[Any] = [Artist.archived_at.is_not(None) if flt.archived else Artist.archived_at.is_(None)]
    if flt.pipeline:
        conds.append(Artist.pipeline == flt.pipeline.value)
    if flt.stage:
        conds.append(Artist.stage == flt.stage)
    if flt.owner_id is not None:
        conds.append(Artist.owner_id == flt.owner_id)
    if flt.search:
        key = fold(flt.search)
        conds.append(or_(Artist.name_key.contains(key, autoescape=True),
                         func.lower(Artist.genre).contains(key, autoescape=True),
                         func.lower(Artist.city).contains(key, autoescape=True)))
    total = uow.session.scalar(select(func.count()).select_from(Artist).where(*conds)) or 0
    rows = uow.session.execute(
        select(Artist.id, Artist.name, Artist.pipeline, Artist.stage, Member.display_name, Artist.stage_entered_at)
        .outerjoin(Member, Member.id == Artist.owner_id)
        .where(*conds)
        .order_by(Artist.name_key, Artist.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    now = utcnow()
    return [ArtistRow(r[0], r[1], r[2], r[3], r[4], max(0, (now - r[5]).days)) for r in rows], total

