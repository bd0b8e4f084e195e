"""Marketplace: the 10 service blocks and the requests artists' teams open on them.

A request = artist + block + brief + budget + due date. Its lifecycle is
new → accepted → in_progress → delivered → closed, or declined / cancelled; only the moves in
``LEGAL`` are allowed, each one is logged in ``market_transitions`` (who, when, note) and recorded
as an outbox event (``request.<status>``) that tells the requester and the artist's owner.

The marketplace figures come from small aggregates kept up to date as requests move
(``market_request_counts``, ``market_request_durations``, ``market_revenue``), so they cost the
same whatever the number of requests. Services take a ``UnitOfWork``, the acting ``Member`` and
typed values (an ``int`` request id, a ``Decimal`` budget, a ``Status``), and leave the commit to
the caller, like ``core.artists``. Reading those values from chat text is the handlers' job.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, get_args

from rapidfuzz import fuzz, process
from sqlalchemy import Date, ForeignKey, Index, Numeric, String, Text, func, or_, select, text
from sqlalchemy.orm import Mapped, aliased, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from core import outbox
from core.artists import Artist
from core.db import Base, UnitOfWork, add_to_counter, utcnow
from core.errors import ConcurrentChange, InvalidInput, NotFound, UserError
from core.i18n import _, money
from core.pipeline_stats import weighted_median
from core.team import Member
from core.text import clean, fold

#: Where a request stands in its lifecycle.
Status = Literal["new", "accepted", "in_progress", "delivered", "closed", "declined", "cancelled"]
STATUSES: tuple[Status, ...] = get_args(Status)
OPEN: tuple[Status, ...] = ("new", "accepted", "in_progress")
#: The moves allowed from each status; the statuses without moves are final.
LEGAL: dict[str, tuple[Status, ...]] = {
    "new": ("accepted", "declined", "cancelled"),
    "accepted": ("in_progress", "cancelled"),
    "in_progress": ("delivered", "cancelled"),
    "delivered": ("closed",),
    "closed": (),
    "declined": (),
    "cancelled": (),
}
CURRENCY = "EUR"
#: The largest id a row can have (ids are 32-bit integer columns): larger numbers name nothing.
MAX_ID = 2**31 - 1
#: The steps whose time from opening the figures report, by the status that ends them.
STEPS = {"accepted": "accept", "delivered": "deliver"}
_OPEN_SQL = "status IN ('new', 'accepted', 'in_progress')"


class Block(Base):
    """One of the 10 service blocks (seeded by migration 0004); channel and assignee are editable."""

    __tablename__ = "market_blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    #: Other words people use for it, comma-separated ("a&r, ar, da").
    aliases: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text)
    delivers: Mapped[str] = mapped_column(Text)
    budget_min: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    budget_max: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    lead_days: Mapped[int]
    channel_platform: Mapped[str | None] = mapped_column(String(20))
    channel_target: Mapped[str | None] = mapped_column(String(100))
    channel_label: Mapped[str | None] = mapped_column(String(200))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))

    def words(self) -> set[str]:
        """Every folded way to name the block: key, name, its parts, aliases."""
        name = fold(self.name)
        parts = {p.strip() for p in re.split(r"[/&]", name) if p.strip()}
        return {self.key, name, *parts, *(fold(a) for a in self.aliases.split(",") if a.strip())}


class MarketRequest(Base):
    __tablename__ = "market_requests"
    __table_args__ = (
        Index("ix_market_requests_block_status", "block_id", "status", "id"),
        Index("ix_market_requests_status", "status", "id"),
        Index("ix_market_requests_artist", "artist_id", "id"),
        Index("ix_market_requests_requester", "requester_id", "id"),
        Index("ix_market_requests_assignee", "assignee_id", "id"),
        Index("ix_market_requests_open_due", "due", postgresql_where=text(_OPEN_SQL), sqlite_where=text(_OPEN_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"))
    block_id: Mapped[int] = mapped_column(ForeignKey("market_blocks.id"))
    brief: Mapped[str] = mapped_column(Text)
    budget: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default=CURRENCY)
    due: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="new")
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class RequestTransition(Base):
    """One line of a request's timeline: a status move (``kind`` status) or an assignment."""

    __tablename__ = "market_transitions"
    __table_args__ = (Index("ix_market_transitions_request", "request_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("market_requests.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10), default="status")  # status, assign
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(String(1000))


class RequestCount(Base):
    """Requests per block and status, kept as requests open and move."""

    __tablename__ = "market_request_counts"

    block_id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    n: Mapped[int] = mapped_column(default=0)


class RequestDuration(Base):
    """How many requests took a number of whole hours from opening to a step (accept, deliver):
    a histogram per block, so that medians need no scan of the requests."""

    __tablename__ = "market_request_durations"

    block_id: Mapped[int] = mapped_column(primary_key=True)
    step: Mapped[str] = mapped_column(String(10), primary_key=True)
    hours: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(default=0)


class BlockRevenue(Base):
    """Budgets of delivered requests per block and month (of delivery, UTC)."""

    __tablename__ = "market_revenue"

    block_id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    total: Mapped[Decimal] = mapped_column(Numeric(16, 2), default=Decimal(0))
    n: Mapped[int] = mapped_column(default=0)


class BudgetOutOfRange(UserError):
    """The budget is outside the block's usual range: the caller asks the person to confirm."""

    def __init__(self, message: str, budget: Decimal) -> None:
        super().__init__(message)
        self.budget = budget


# ---------------------------------------------------------------- blocks


def blocks(uow: UnitOfWork) -> list[Block]:
    return list(uow.session.scalars(select(Block).order_by(Block.id)))


def split_block(uow: UnitOfWork, words: Sequence[str]) -> tuple[Block, list[str]]:
    """The block named by the leading words (the longest match) and the words after it.

    Unknown: ``NotFound`` naming the closest of the 10 blocks."""
    words = list(words)
    every = blocks(uow)
    names = {w: b for b in every for w in b.words()}
    for n in range(min(len(words), 6), 0, -1):
        found = names.get(fold(" ".join(words[:n])))
        if found is not None:
            return found, words[n:]
    typed = words[0] if words else ""
    raise NotFound(unknown_block(typed, every))


def find_block(uow: UnitOfWork, ref: str) -> Block:
    block, rest = split_block(uow, ref.split())
    if rest:
        raise NotFound(unknown_block(ref, blocks(uow)))
    return block


def unknown_block(typed: str, every: Sequence[Block]) -> str:
    choices = {w: b.name for b in every for w in b.words()}
    close = process.extractOne(fold(typed), list(choices), scorer=fuzz.WRatio) if typed and choices else None
    message = _("Unknown block {block}.", block=typed or "?")
    if close:
        message += " " + _("Did you mean {name}?", name=choices[close[0]])
    return message + " " + _("Blocks: {names}.", names=", ".join(b.name for b in every))


def edit_block(uow: UnitOfWork, actor: Member, block: Block, *, channel: tuple[str, str, str] | None = None,
               assignee: Member | None = None) -> list[str]:
    """Set the block's channel (platform, target, label) and/or default assignee; returns what changed.

    Not audited here: the command that calls it is declared sensitive, so ``execute`` writes the entry."""
    changed = []
    if channel is not None:
        block.channel_platform, block.channel_target, block.channel_label = channel
        changed.append("channel")
    if assignee is not None:
        block.assignee_id = assignee.id
        changed.append("assignee")
    if not changed:
        raise InvalidInput(_("Nothing to change: give a channel or a default assignee."))
    return changed


def budget_range(block: Block) -> str:
    return f"{money(block.budget_min, CURRENCY)}–{money(block.budget_max, CURRENCY)}"


# ---------------------------------------------------------------- requests


def get(uow: UnitOfWork, request_id: int) -> MarketRequest:
    """The request numbered ``request_id``; ``NotFound`` if there is none (whatever the number)."""
    req = uow.session.get(MarketRequest, request_id) if 0 < request_id <= MAX_ID else None
    if req is None:
        raise NotFound(_("No request has the number #{id}.", id=request_id))
    return req


def _targets(uow: UnitOfWork, req: MarketRequest, actor: Member, *, block: Block | None = None) -> list[dict[str, Any]]:
    """Where an event about ``req`` is told: the block's channel (when given), then the requester
    and the artist's owner by DM, never the person who acted."""
    out: list[dict[str, Any]] = []
    if block is not None and block.channel_platform and block.channel_target:
        out.append({"platform": block.channel_platform, "target": block.channel_target})
    owner = uow.session.scalar(select(Artist.owner_id).where(Artist.id == req.artist_id))
    for member_id in dict.fromkeys((req.requester_id, owner)):
        if member_id is not None and member_id != actor.id:
            out.append({"member": member_id})
    return out


def _event(uow: UnitOfWork, type_: str, req: MarketRequest, actor: Member, block: Block, artist_name: str,
           **extra: Any) -> None:
    outbox.record(uow, type_, request_id=req.id, artist_id=req.artist_id, name=artist_name, block=block.name,
                  block_key=block.key, status=req.status, by=actor.id,
                  notify=_targets(uow, req, actor, block=block if type_ == "request.created" else None), **extra)


def open_request(uow: UnitOfWork, actor: Member, artist: Artist, block: Block, *, brief: str,
                 budget: Decimal | None, due: dt.date | None, today: dt.date, confirm: bool = False) -> MarketRequest:
    """Open a request in status new. A budget outside the block's range raises ``BudgetOutOfRange``
    unless ``confirm``; a due date before ``today`` is refused. Nothing is written on refusal."""
    if artist.archived_at:
        raise InvalidInput(_("{name} is archived; restore them first.", name=artist.name))
    brief = clean(brief, what=_("brief"), max_len=1500)
    if not brief:
        raise InvalidInput(_("The brief is empty: say what is needed, e.g. a 10-date club tour."))
    if due is not None and due < today:
        raise InvalidInput(_("The due date {date} is in the past; give today or a later date.", date=due.isoformat()))
    if budget is not None and not confirm and not (block.budget_min <= budget <= block.budget_max):
        raise BudgetOutOfRange(_("{budget} is outside the usual budget of {block} ({range}). Open the request anyway?",
                                 budget=money(budget, CURRENCY), block=block.name, range=budget_range(block)), budget)
    now = utcnow()
    req = MarketRequest(artist_id=artist.id, block_id=block.id, brief=brief, budget=budget, currency=CURRENCY, due=due,
                        status="new", requester_id=actor.id, assignee_id=block.assignee_id, created_at=now,
                        updated_at=now, updated_by_id=actor.id)
    uow.session.add(req)
    uow.session.flush()
    uow.session.add(RequestTransition(request_id=req.id, from_status=None, to_status="new", actor_id=actor.id, at=now))
    add_to_counter(uow.session, RequestCount.__table__, {"block_id": block.id, "status": "new"}, "n")
    _event(uow, "request.created", req, actor, block, artist.name, brief=brief,
           budget=str(budget) if budget is not None else None, due=due.isoformat() if due else None)
    return req


def _last_actor(uow: UnitOfWork, req_id: int, status: str | None = None) -> tuple[str, str]:
    """(status now, who made the latest move [to ``status``]) of a request, read afresh."""
    now_status = uow.session.scalar(select(MarketRequest.status).where(MarketRequest.id == req_id)) or "?"
    q = (select(Member.display_name).select_from(RequestTransition)
         .outerjoin(Member, Member.id == RequestTransition.actor_id)
         .where(RequestTransition.request_id == req_id, RequestTransition.kind == "status"))
    if status:
        q = q.where(RequestTransition.to_status == status)
    who = uow.session.scalar(q.order_by(RequestTransition.id.desc()).limit(1))
    return now_status, who or _("someone else")


def _save(uow: UnitOfWork, req: MarketRequest) -> None:
    """Flush the request, turning a lost-update race into a ``ConcurrentChange`` naming who won."""
    rid = req.id
    try:
        uow.session.flush()
    except StaleDataError:
        uow.rollback()
        status, who = _last_actor(uow, rid)
        raise ConcurrentChange(_("{who} moved request #{id} to {status} meanwhile; nothing was saved.",
                                 who=who, id=rid, status=status)) from None


def move(uow: UnitOfWork, actor: Member, req: MarketRequest, to: Status, *, note: str | None = None) -> str:
    """Move ``req`` to status ``to`` if the lifecycle allows it; returns the status it left."""
    if to not in STATUSES:
        raise InvalidInput(_("Unknown status {status}. Statuses: {statuses}.", status=to, statuses=", ".join(STATUSES)))
    before = req.status
    if to == before:
        _now, who = _last_actor(uow, req.id, to)
        raise InvalidInput(_("Request #{id} is already {status} (by {who}).", id=req.id, status=to, who=who))
    legal = LEGAL[before]
    if to not in legal:
        if not legal:
            raise InvalidInput(_("Request #{id} is {status}, which is final: it cannot move any more.", id=req.id, status=before))
        raise InvalidInput(_("Request #{id} is {status}; from there it can go to {legal}, not {to}.",
                             id=req.id, status=before, legal=", ".join(legal), to=to))
    note = clean(note, what=_("note"), max_len=1000) or None if note else None
    now = utcnow()
    req.status, req.updated_at, req.updated_by_id = to, now, actor.id
    if to == "accepted":
        req.accepted_at = now
        if req.assignee_id is None:
            req.assignee_id = actor.id
    if to == "delivered":
        req.delivered_at = now
    _save(uow, req)
    s = uow.session
    s.add(RequestTransition(request_id=req.id, from_status=before, to_status=to, actor_id=actor.id, at=now, note=note))
    add_to_counter(s, RequestCount.__table__, {"block_id": req.block_id, "status": before}, "n", -1)
    add_to_counter(s, RequestCount.__table__, {"block_id": req.block_id, "status": to}, "n")
    if to in ("accepted", "delivered"):
        hours = max(0, int((now - req.created_at).total_seconds() // 3600))
        add_to_counter(s, RequestDuration.__table__, {"block_id": req.block_id, "step": STEPS[to], "hours": hours}, "n")
    if to == "delivered" and req.budget is not None:
        _add_revenue(uow, req.block_id, now.date().replace(day=1), req.currency, req.budget)
    block = s.get(Block, req.block_id)
    artist_name = s.scalar(select(Artist.name).where(Artist.id == req.artist_id)) or "?"
    assert block is not None
    _event(uow, f"request.{to}", req, actor, block, artist_name, from_status=before, note=note)
    return before


def _add_revenue(uow: UnitOfWork, block_id: int, month: dt.date, currency: str, amount: Decimal) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    table = BlockRevenue.__table__
    dialect = postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(block_id=block_id, month=month, currency=currency, total=amount, n=1)
    uow.session.execute(stmt.on_conflict_do_update(
        index_elements=["block_id", "month", "currency"],
        set_={"total": table.c.total + amount, "n": table.c.n + 1}))


def assign(uow: UnitOfWork, actor: Member, req: MarketRequest, member: Member) -> None:
    if req.status not in OPEN:
        raise InvalidInput(_("Request #{id} is {status}; only open requests can be assigned.", id=req.id, status=req.status))
    if req.assignee_id == member.id:
        raise InvalidInput(_("Request #{id} is already assigned to {name}.", id=req.id, name=member.display_name))
    now = utcnow()
    req.assignee_id, req.updated_at, req.updated_by_id = member.id, now, actor.id
    _save(uow, req)
    uow.session.add(RequestTransition(request_id=req.id, kind="assign", from_status=req.status, to_status=req.status,
                                      actor_id=actor.id, at=now, note=member.display_name))
    block = uow.session.get(Block, req.block_id)
    assert block is not None
    artist_name = uow.session.scalar(select(Artist.name).where(Artist.id == req.artist_id)) or "?"
    _event(uow, "request.assigned", req, actor, block, artist_name, assignee=member.display_name)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class RequestView:
    request: MarketRequest
    block: Block
    artist_name: str
    requester: str | None
    assignee: str | None
    timeline: list[tuple[RequestTransition, str | None]]


def view(uow: UnitOfWork, req: MarketRequest) -> RequestView:
    s = uow.session
    block = s.get(Block, req.block_id)
    assert block is not None
    names = dict(s.execute(select(Member.id, Member.display_name).where(
        Member.id.in_({i for i in (req.requester_id, req.assignee_id) if i is not None}))).all())
    artist_name = s.scalar(select(Artist.name).where(Artist.id == req.artist_id)) or "?"
    rows = s.execute(select(RequestTransition, Member.display_name)
                     .outerjoin(Member, Member.id == RequestTransition.actor_id)
                     .where(RequestTransition.request_id == req.id).order_by(RequestTransition.id)).all()
    return RequestView(req, block, artist_name, names.get(req.requester_id or 0), names.get(req.assignee_id or 0),
                       [(t, n) for t, n in rows])


@dataclass(frozen=True)
class RequestFilter:
    status: Status | None = None
    block_id: int | None = None
    artist_id: int | None = None
    member_id: int | None = None  # requested by or assigned to


@dataclass(frozen=True)
class RequestRow:
    id: int
    block: str
    artist: str
    status: str
    budget: Decimal | None
    currency: str
    due: dt.date | None
    requester: str | None
    assignee: str | None


def list_requests(uow: UnitOfWork, flt: RequestFilter, *, page: int, page_size: int) -> tuple[list[RequestRow], int]:
    """One page of requests, newest first, and how many match; two indexed queries."""
    conds: list[Any] = []
    if flt.status:
        conds.append(MarketRequest.status == flt.status)
    if flt.block_id is not None:
        conds.append(MarketRequest.block_id == flt.block_id)
    if flt.artist_id is not None:
        conds.append(MarketRequest.artist_id == flt.artist_id)
    if flt.member_id is not None:
        conds.append(or_(MarketRequest.requester_id == flt.member_id, MarketRequest.assignee_id == flt.member_id))
    s = uow.session
    total = s.scalar(select(func.count()).select_from(MarketRequest).where(*conds)) or 0
    requester, assignee = aliased(Member), aliased(Member)
    page_ids = (select(MarketRequest.id).where(*conds).order_by(MarketRequest.id.desc())
                .offset((page - 1) * page_size).limit(page_size).subquery())
    rows = s.execute(
        select(MarketRequest.id, Block.name, Artist.name, MarketRequest.status, MarketRequest.budget,
               MarketRequest.currency, MarketRequest.due, requester.display_name, assignee.display_name)
        .join(page_ids, page_ids.c.id == MarketRequest.id)
        .join(Block, Block.id == MarketRequest.block_id)
        .join(Artist, Artist.id == MarketRequest.artist_id)
        .outerjoin(requester, requester.id == MarketRequest.requester_id)
        .outerjoin(assignee, assignee.id == MarketRequest.assignee_id)
        .order_by(MarketRequest.id.desc())
    ).all()
    return [RequestRow(*r) for r in rows], total


@dataclass
class BlockFigures:
    block: Block
    counts: dict[str, int] = field(default_factory=dict)
    accept_hours: float | None = None
    deliver_hours: float | None = None


@dataclass(frozen=True)
class MarketStats:
    blocks: list[BlockFigures]
    #: (month, block name, currency, total, how many), newest month first.
    revenue: list[tuple[dt.date, str, str, Decimal, int]]
    accept_hours: float | None
    deliver_hours: float | None


def stats(uow: UnitOfWork, *, months: int = 6, today: dt.date | None = None) -> MarketStats:
    """Requests per block and status, median hours to accept and to deliver, revenue per block per
    month over the last ``months`` months: three reads of small aggregate tables."""
    s = uow.session
    figures = {b.id: BlockFigures(b) for b in blocks(uow)}
    for block_id, status, n in s.execute(select(RequestCount.block_id, RequestCount.status, RequestCount.n)):
        if block_id in figures and n:
            figures[block_id].counts[status] = n
    hist: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
    overall: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for block_id, step, hours, n in s.execute(
            select(RequestDuration.block_id, RequestDuration.step, RequestDuration.hours, RequestDuration.n)):
        hist[block_id, step][hours] = n
        overall[step][hours] += n
    for block_id, fig in figures.items():
        fig.accept_hours = weighted_median(hist.get((block_id, "accept"), {}))
        fig.deliver_hours = weighted_median(hist.get((block_id, "deliver"), {}))
    today = today or utcnow().date()
    first = today.replace(day=1)
    for _i in range(months - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    names = {block_id: f.block.name for block_id, f in figures.items()}
    revenue = [(m, names.get(b, "?"), c, Decimal(t), n) for m, b, c, t, n in s.execute(
        select(BlockRevenue.month, BlockRevenue.block_id, BlockRevenue.currency, BlockRevenue.total, BlockRevenue.n)
        .where(BlockRevenue.month >= first).order_by(BlockRevenue.month.desc(), BlockRevenue.block_id))]
    return MarketStats(list(figures.values()), revenue, weighted_median(overall.get("accept", {})),
                       weighted_median(overall.get("deliver", {})))


def overdue(uow: UnitOfWork, today: dt.date, *, limit: int = 5) -> tuple[int, list[str]]:
    """Open requests whose due date has passed: how many, and the oldest few as ``#id Block (Artist)``."""
    s = uow.session
    late = (MarketRequest.status.in_(OPEN), MarketRequest.due < today)
    total = s.scalar(select(func.count()).select_from(MarketRequest).where(*late)) or 0
    rows = s.execute(select(MarketRequest.id, Block.name, Artist.name)
                     .join(Block, Block.id == MarketRequest.block_id).join(Artist, Artist.id == MarketRequest.artist_id)
                     .where(*late).order_by(MarketRequest.due, MarketRequest.id).limit(limit)).all()
    return total, [f"#{i} {b} ({a})" for i, b, a in rows]
