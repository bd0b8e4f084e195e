"""Kanban boards: ordered columns (To do / Doing / Done unless told otherwise) with an optional WIP limit,
and cards with a title, description, assignee, due date, labels and an artist.

A card carries a version: a move made from a board someone looked at says so when the card was moved
meanwhile (``ConcurrentChange``), and a move typed as a command locks the card's row, so of two people
moving the same card at once one wins and the other is told where it went. Moving past a column's WIP
limit is refused unless confirmed (``WipExceeded`` says how many cards it holds). Every move records
``task.moved`` (notifications, workflow triggers); a new card ``task.created``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from rapidfuzz import process
from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, aliased, mapped_column

from core import outbox
from core.db import Base, UnitOfWork, utcnow
from core.errors import ConcurrentChange, InvalidInput, NotFound
from core.i18n import _
from core.team import Member
from core.text import clean
from core.text import fold as fold_key

DEFAULT_BOARD = "Team"
DEFAULT_COLUMNS = ("To do", "Doing", "Done")
MAX_LABELS = 10


class Board(Base):
    __tablename__ = "boards"
    __table_args__ = (UniqueConstraint("name_key", name="uq_boards_name_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    name_key: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BoardColumn(Base):
    __tablename__ = "board_columns"
    __table_args__ = (UniqueConstraint("board_id", "name_key", name="uq_board_columns_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    name_key: Mapped[str] = mapped_column(String(60))
    position: Mapped[int]
    wip_limit: Mapped[int | None] = mapped_column(default=None)


class Card(Base):
    __tablename__ = "cards"
    __table_args__ = (Index("ix_cards_column", "column_id", "position"), Index("ix_cards_assignee", "assignee_id", "done_at"),
                      Index("ix_cards_due", "due", "done_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    column_id: Mapped[int] = mapped_column(ForeignKey("board_columns.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), default=None)
    due: Mapped[dt.date | None] = mapped_column(default=None)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    artist_id: Mapped[int | None] = mapped_column(ForeignKey("artists.id", ondelete="SET NULL"), default=None, index=True)
    position: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)
    done_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: The day its due reminder went to the assignee (once).
    reminded_on: Mapped[dt.date | None] = mapped_column(default=None)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    moved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    moved_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), default=None)


class WipExceeded(InvalidInput):
    """The column is at its WIP limit; the move needs confirming."""

    def __init__(self, message: str, column: BoardColumn) -> None:
        super().__init__(message)
        self.column = column


# ---------------------------------------------------------------- boards and columns


def _closest(typed: str, names: list[str]) -> str:
    close = process.extractOne(typed, names, score_cutoff=60) if names else None
    return " " + _("Did you mean {name}?", name=close[0]) if close else ""


def board(uow: UnitOfWork, name: str | None, *, create_default: bool = True) -> Board:
    """The board named (closest names suggested when there is none), or the default board, made on first use."""
    if name is None:
        found = uow.session.scalars(select(Board).where(Board.name_key == fold_key(DEFAULT_BOARD))).one_or_none()
        if found is None and create_default:
            return add_board(uow, DEFAULT_BOARD)
        if found is None:
            raise NotFound(_("There is no board yet: /task add makes the {name} board.", name=DEFAULT_BOARD))
        return found
    found = uow.session.scalars(select(Board).where(Board.name_key == fold_key(name))).one_or_none()
    if found is None:
        names = list(uow.session.scalars(select(Board.name).order_by(Board.name)))
        raise NotFound(_("There is no board {name}.", name=name) + _closest(name, names))
    return found


def add_board(uow: UnitOfWork, name: str, columns: tuple[str, ...] = DEFAULT_COLUMNS) -> Board:
    name = clean(name, what=_("board name"), max_len=80, allow_newlines=False)
    if not name:
        raise InvalidInput(_("Give the board a name."))
    if uow.session.scalars(select(Board).where(Board.name_key == fold_key(name))).first() is not None:
        raise InvalidInput(_("There is already a board {name}.", name=name))
    names = [clean(c, what=_("column name"), max_len=60, allow_newlines=False) for c in columns if c.strip()]
    if not 1 <= len(names) <= 10 or len({fold_key(c) for c in names}) != len(names):
        raise InvalidInput(_("A board has 1 to 10 columns with different names."))
    b = Board(name=name, name_key=fold_key(name))
    uow.session.add(b)
    uow.session.flush()
    for i, c in enumerate(names):
        uow.session.add(BoardColumn(board_id=b.id, name=c, name_key=fold_key(c), position=i))
    uow.session.flush()
    return b


def columns(uow: UnitOfWork, b: Board) -> list[BoardColumn]:
    return list(uow.session.scalars(select(BoardColumn).where(BoardColumn.board_id == b.id).order_by(BoardColumn.position)))


def column(uow: UnitOfWork, b: Board, name: str) -> BoardColumn:
    cols = columns(uow, b)
    for c in cols:
        if c.name_key == fold_key(name):
            return c
    raise NotFound(_("{board} has no column {name}; it has {names}.", board=b.name, name=name,
                     names=", ".join(c.name for c in cols)) + _closest(name, [c.name for c in cols]))


def set_wip(uow: UnitOfWork, c: BoardColumn, limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise InvalidInput(_("A WIP limit is a positive number of cards, or off."))
    c.wip_limit = limit


# ---------------------------------------------------------------- cards


def add_card(uow: UnitOfWork, actor: Member, b: Board, *, title: str, due: dt.date | None = None,
             assignee_id: int | None = None, artist_id: int | None = None, labels: tuple[str, ...] = (),
             description: str | None = None) -> Card:
    title = clean(title, what=_("title"), max_len=200, allow_newlines=False)
    if not title:
        raise InvalidInput(_("Give the task a title, e.g. /task add Book the studio."))
    if len(labels) > MAX_LABELS:
        raise InvalidInput(_("A card has at most {n} labels.", n=MAX_LABELS))
    first = columns(uow, b)[0]
    position = (uow.session.scalar(select(func.max(Card.position)).where(Card.column_id == first.id)) or 0) + 1
    card = Card(board_id=b.id, column_id=first.id, title=title, description=clean(description, what=_("description"))
                if description else None, assignee_id=assignee_id, due=due, labels=[lbl.strip() for lbl in labels if lbl.strip()],
                artist_id=artist_id, position=position, created_by_id=actor.id, moved_by_id=actor.id)
    uow.session.add(card)
    uow.session.flush()
    outbox.record(uow, "task.created", card_id=card.id, title=card.title, board=b.name, column=first.name,
                  assignee_id=assignee_id, artist_id=artist_id, by=actor.id)
    return card


def get_card(uow: UnitOfWork, card_id: int, *, lock: bool = False) -> Card:
    card = uow.session.get(Card, card_id, with_for_update=lock)
    if card is None:
        raise NotFound(_("There is no task #{id}.", id=card_id))
    return card


@dataclass(frozen=True)
class Moved:
    card: Card
    before: BoardColumn
    after: BoardColumn


def move(uow: UnitOfWork, actor: Member, card: Card, target: BoardColumn, *, expected_version: int | None = None,
         confirm: bool = False) -> Moved:
    """Move the card to ``target``: refused when it changed since ``expected_version``, and past the
    column's WIP limit unless ``confirm``."""
    if expected_version is not None and card.version != expected_version:
        where = uow.session.get(BoardColumn, card.column_id)
        who = uow.session.get(Member, card.moved_by_id) if card.moved_by_id else None
        raise ConcurrentChange(_("{who} moved task #{id} to {column} meanwhile; nothing was changed.",
                                 who=who.display_name if who else _("someone"), id=card.id,
                                 column=where.name if where else "?"))
    before = uow.session.get(BoardColumn, card.column_id)
    assert before is not None
    if target.id == card.column_id:
        raise InvalidInput(_("Task #{id} is already in {column}.", id=card.id, column=target.name))
    if target.wip_limit is not None and not confirm:
        held = uow.session.scalar(select(func.count()).select_from(Card).where(Card.column_id == target.id)) or 0
        if held >= target.wip_limit:
            raise WipExceeded(_("{column} holds {n} cards, its WIP limit is {limit}: move it anyway?",
                                column=target.name, n=held, limit=target.wip_limit), target)
    cols = columns(uow, uow.session.get(Board, card.board_id) or Board())
    last = cols[-1] if cols else target
    card.column_id = target.id
    card.position = (uow.session.scalar(select(func.max(Card.position)).where(Card.column_id == target.id)) or 0) + 1
    card.version += 1
    card.moved_at, card.moved_by_id = utcnow(), actor.id
    card.done_at = utcnow() if target.id == last.id else None
    b = uow.session.get(Board, card.board_id)
    outbox.record(uow, "task.moved", card_id=card.id, title=card.title, board=b.name if b else "", from_column=before.name,
                  column=target.name, done=card.done_at is not None, assignee_id=card.assignee_id,
                  artist_id=card.artist_id, by=actor.id)
    return Moved(card, before, target)


def open_cards(uow: UnitOfWork, *, assignee_id: int | None = None, artist_id: int | None = None,
               limit: int = 50) -> list[Card]:
    q = select(Card).where(Card.done_at.is_(None))
    if assignee_id is not None:
        q = q.where(Card.assignee_id == assignee_id)
    if artist_id is not None:
        q = q.where(Card.artist_id == artist_id)
    return list(uow.session.scalars(q.order_by(Card.due.is_(None), Card.due, Card.id).limit(limit)))


def board_view(uow: UnitOfWork, b: Board, *, per_column: int = 20) -> list[tuple[BoardColumn, list[Card], int]]:
    """Each column with its first cards (by position) and how many it holds, in two queries."""
    cols = columns(uow, b)
    counts: dict[int, int] = {cid: n for cid, n in uow.session.execute(
        select(Card.column_id, func.count()).where(Card.board_id == b.id).group_by(Card.column_id))}
    ranked = select(Card, func.row_number().over(partition_by=Card.column_id, order_by=Card.position).label("n")).where(
        Card.board_id == b.id).subquery()
    card = aliased(Card, ranked)
    by_column: dict[int, list[Card]] = {}
    for c in uow.session.scalars(select(card).where(ranked.c.n <= per_column).order_by(ranked.c.column_id, ranked.c.position)):
        by_column.setdefault(c.column_id, []).append(c)
    return [(c, by_column.get(c.id, []), int(counts.get(c.id, 0))) for c in cols]


def due_cards(uow: UnitOfWork, day: dt.date, *, limit: int = 10) -> tuple[list[Card], list[Card]]:
    """(due today, overdue) open cards."""
    due = list(uow.session.scalars(select(Card).where(Card.done_at.is_(None), Card.due == day).order_by(Card.id).limit(limit)))
    late = list(uow.session.scalars(select(Card).where(Card.done_at.is_(None), Card.due < day)
                                    .order_by(Card.due, Card.id).limit(limit)))
    return due, late


def claim_due_reminders(uow: UnitOfWork, day: dt.date) -> list[Card]:
    """Open cards with an assignee due today or overdue, not yet reminded today (marked now)."""
    rows = list(uow.session.scalars(select(Card).where(Card.done_at.is_(None), Card.assignee_id.is_not(None),
                                                       Card.due <= day, (Card.reminded_on.is_(None)) | (Card.reminded_on < day))
                                    .with_for_update(skip_locked=True).limit(500)))
    for c in rows:
        c.reminded_on = day
    return rows


def label_text(labels: list[str] | Any) -> str:
    return " ".join(f"[{lbl}]" for lbl in labels or [])
