"""/task: kanban boards from chat — add a card, see a board (a move menu per card), move (a WIP limit asks
to confirm), done, show, yours, new boards and WIP limits. The boards and cards are ``core.kanban``."""

from __future__ import annotations

from typing import Annotated

from core import artists as crm
from core import kanban
from core.app import Command, Context
from core.errors import InvalidInput
from core.i18n import _
from core.team import Member, Permission
from handlers.args import ArtistRef, ChatType, Count, MemberRef, RecordId, Switch, Text, arg, opt
from handlers.calendar import Day
from handlers.registry import RERUN, option, registry
from handlers.reply import Button, Field, Reply, Section, Select

READ = Permission.READ
EDIT = Permission.EDIT_ARTISTS
#: Cards shown with a move menu on a board (platforms cap the menus of one message).
MENUS = 10


def _labels(raw: str, label: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in raw.split(",") if x.strip())


def _limit(raw: str, label: str) -> int:
    text = raw.strip().lower()
    if text == "off":
        return 0
    if not text.isdecimal() or int(text) < 1:
        raise InvalidInput(_("A WIP limit is a positive number of cards, or off."))
    return int(text)


Labels = Annotated[tuple[str, ...], ChatType(_labels, "LABEL,…", "Labels, separated by commas")]
WipLimit = Annotated[int, ChatType(_limit, "N|off", "A number of cards, or off")]


def _card_line(ctx: Context, c: kanban.Card, names: dict[int, str]) -> str:
    parts = [f"#{c.id} {c.title}"]
    if c.assignee_id:
        parts.append(f"@{names.get(c.assignee_id, '?')}")
    if c.due:
        parts.append(_("due {date}", date=c.due.isoformat()))
    if c.labels:
        parts.append(kanban.label_text(c.labels))
    return " · ".join(parts)


def _names(ctx: Context, cards: list[kanban.Card]) -> dict[int, str]:
    from sqlalchemy import select

    ids = {c.assignee_id for c in cards if c.assignee_id}
    return {i: n for i, n in ctx.uow.session.execute(select(Member.id, Member.display_name).where(Member.id.in_(ids)))}


@registry.command("task add", permission=EDIT)
class TaskAdd(Command):
    """Add a task to a board's first column (the Team board unless --board says another)."""

    title: Text = arg("What is to be done", rest=True, metavar="TITLE")
    board: Text | None = opt("The board, e.g. Villa", metavar="BOARD")
    due: Day | None = opt("When it is due, e.g. 2026-12-20")
    assign: MemberRef | None = opt("Who does it")
    artist: ArtistRef | None = opt("The artist it is about")
    labels: Labels | None = opt("Labels, e.g. urgent,press")
    description: Text | None = opt("More about it", metavar="TEXT")

    def run(self, ctx: Context) -> Reply:
        b = kanban.board(ctx.uow, self.board)
        assignee = ctx.member(self.assign) if self.assign else None
        artist = crm.find(ctx.uow, self.artist) if self.artist else None
        card = kanban.add_card(ctx.uow, ctx.actor, b, title=self.title, due=self.due,
                               assignee_id=assignee.id if assignee else None, artist_id=artist.id if artist else None,
                               labels=self.labels or (), description=self.description)
        return Reply(text=_("Added task #{id} {title} to {board}.", id=card.id, title=card.title, board=b.name),
                     ephemeral=False, actions=(Button(_("Board"), RERUN, f"/task board {b.name}"),))


@registry.command("task board", permission=READ)
class TaskBoard(Command):
    """A board's columns and cards, with a menu to move each card (the Team board unless named)."""

    board: Text | None = arg("The board (Team when left out)", rest=True, default=None, metavar="BOARD")

    def run(self, ctx: Context) -> Reply:
        b = kanban.board(ctx.uow, self.board)
        view = kanban.board_view(ctx.uow, b)
        names = _names(ctx, [c for _col, cards, _n in view for c in cards])
        sections = []
        menus: list[Select] = []
        for col, cards, total in view:
            title = f"{col.name} ({total}" + (f"/{col.wip_limit})" if col.wip_limit else ")")
            lines = [_card_line(ctx, c, names) for c in cards] or [_("empty")]
            if total > len(cards):
                lines.append(_("and {n} more", n=total - len(cards)))
            sections.append(Section(title=title, text="\n".join(lines)))
            for c in cards:
                if len(menus) >= MENUS:
                    break
                others = [o for o, _cards, _n in view if o.id != col.id]
                menus.append(Select(_("Move #{id}…", id=c.id)[:50], TaskMoveMenu.key, tuple(
                    option(TaskMoveMenu(card_id=c.id, column_id=o.id, version=c.version), o.name) for o in others)))
        return Reply(title=_("Board {name}", name=b.name), sections=tuple(sections), actions=tuple(menus),
                     replace_original=ctx.caller.via == "action")


def _moved_reply(ctx: Context, m: kanban.Moved) -> Reply:
    text = _("Task #{id} {title}: {before} → {after}.", id=m.card.id, title=m.card.title, before=m.before.name,
             after=m.after.name)
    return Reply(text=text, ephemeral=False, actions=(Button(_("Board"), RERUN, f"/task board {_board_name(ctx, m.card)}"),))


def _board_name(ctx: Context, card: kanban.Card) -> str:
    b = ctx.uow.session.get(kanban.Board, card.board_id)
    return b.name if b else ""


def _move(ctx: Context, card: kanban.Card, target: kanban.BoardColumn, *, version: int | None, confirm: bool) -> Reply:
    try:
        return _moved_reply(ctx, kanban.move(ctx.uow, ctx.actor, card, target, expected_version=version, confirm=confirm))
    except kanban.WipExceeded as e:
        return Reply(text=e.message, actions=(
            Button(_("Move it anyway"), RERUN, f"/task move {card.id} \"{target.name}\" --confirm", "danger"),))


@registry.command("task move", permission=EDIT)
class TaskMove(Command):
    """Move a task to another column of its board (past a WIP limit, it asks to confirm)."""

    card: RecordId = arg("The task's number", metavar="ID")
    column: Text = arg("The column, e.g. Doing", rest=True, metavar="COLUMN")
    confirm: Switch = opt("Move it even past the column's WIP limit", default=False)

    def run(self, ctx: Context) -> Reply:
        card = kanban.get_card(ctx.uow, self.card, lock=True)
        b = ctx.uow.session.get(kanban.Board, card.board_id)
        assert b is not None
        return _move(ctx, card, kanban.column(ctx.uow, b, self.column), version=None, confirm=self.confirm)


@registry.action("task.move", permission=EDIT)
class TaskMoveMenu(Command):
    """Move a task from its board's menu (refused when someone moved it since the board was shown)."""

    card_id: RecordId = arg("The task")
    column_id: RecordId = arg("The column")
    version: Count = arg("The task's version when the board was shown")

    def run(self, ctx: Context) -> Reply:
        card = kanban.get_card(ctx.uow, self.card_id, lock=True)
        target = ctx.uow.session.get(kanban.BoardColumn, self.column_id)
        if target is None or target.board_id != card.board_id:
            raise InvalidInput(_("That column is no longer on the board: show the board again."))
        return _move(ctx, card, target, version=self.version, confirm=False)


@registry.command("task done", permission=EDIT)
class TaskDone(Command):
    """Move a task to its board's last column (Done)."""

    card: RecordId = arg("The task's number", metavar="ID")

    def run(self, ctx: Context) -> Reply:
        card = kanban.get_card(ctx.uow, self.card, lock=True)
        b = ctx.uow.session.get(kanban.Board, card.board_id)
        assert b is not None
        return _move(ctx, card, kanban.columns(ctx.uow, b)[-1], version=None, confirm=True)


@registry.command("task show", permission=READ)
class TaskShow(Command):
    """One task: board and column, assignee, due date, labels, artist and description."""

    card: RecordId = arg("The task's number", metavar="ID")

    def run(self, ctx: Context) -> Reply:
        c = kanban.get_card(ctx.uow, self.card)
        b = ctx.uow.session.get(kanban.Board, c.board_id)
        col = ctx.uow.session.get(kanban.BoardColumn, c.column_id)
        names = _names(ctx, [c])
        fields = [Field(_("Board"), f"{b.name if b else '?'} · {col.name if col else '?'}")]
        if c.assignee_id:
            fields.append(Field(_("Assigned to"), names.get(c.assignee_id, "?")))
        if c.due:
            fields.append(Field(_("Due"), c.due.isoformat()))
        if c.labels:
            fields.append(Field(_("Labels"), ", ".join(c.labels)))
        if c.artist_id:
            artist = ctx.uow.session.get(crm.Artist, c.artist_id)
            if artist is not None:
                fields.append(Field(_("Artist"), artist.name))
        sections = [Section(fields=tuple(fields))]
        if c.description:
            sections.append(Section(text=c.description))
        return Reply(title=_("Task #{id} {title}", id=c.id, title=c.title), sections=tuple(sections),
                     actions=() if c.done_at else (Button(_("Done"), RERUN, f"/task done {c.id}", "primary"),))


@registry.command("task mine", permission=READ)
class TaskMine(Command):
    """Your open tasks, the soonest due first."""

    def run(self, ctx: Context) -> Reply:
        cards = kanban.open_cards(ctx.uow, assignee_id=ctx.actor.id)
        if not cards:
            return Reply(text=_("No open task is assigned to you."))
        names = _names(ctx, cards)
        return Reply(title=_("Your tasks"), text="\n".join(_card_line(ctx, c, names) for c in cards))


@registry.command("task new-board", permission=EDIT, sensitive=True)
class TaskNewBoard(Command):
    """Make a board, with its columns in order (To do, Doing, Done unless given)."""

    name: Text = arg("The board's name", rest=True, metavar="NAME")
    columns: Labels | None = opt("Its columns, e.g. Idea,Booked,Played")

    def run(self, ctx: Context) -> Reply:
        b = kanban.add_board(ctx.uow, self.name, tuple(self.columns) if self.columns else kanban.DEFAULT_COLUMNS)
        names = ", ".join(c.name for c in kanban.columns(ctx.uow, b))
        return Reply(text=_("Board {name} made: {columns}.", name=b.name, columns=names), ephemeral=False)


@registry.command("task wip", permission=EDIT, sensitive=True)
class TaskWip(Command):
    """Set or remove a column's WIP limit (how many cards it holds before a move asks to confirm)."""

    column: Text = arg("The column, e.g. Doing", metavar="COLUMN")
    limit: WipLimit = arg("The most cards it holds, or off")
    board: Text | None = opt("The board (Team when left out)", metavar="BOARD")

    def run(self, ctx: Context) -> Reply:
        b = kanban.board(ctx.uow, self.board)
        col = kanban.column(ctx.uow, b, self.column)
        kanban.set_wip(ctx.uow, col, self.limit or None)
        return Reply(text=_("{column} of {board}: WIP limit {limit}.", column=col.name, board=b.name,
                            limit=self.limit or _("off")))
