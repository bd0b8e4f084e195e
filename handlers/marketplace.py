"""/market commands: the 10 service blocks, requests and their lifecycle, buttons and forms."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from rapidfuzz import process
from sqlalchemy import select

from core import artists as crm
from core import marketplace as market
from core.app import Command, Context
from core.db import UnitOfWork
from core.errors import Ambiguous, FieldError, InvalidInput, UserError
from core.i18n import _, money, number
from core.refs import ChannelRef
from core.team import Member, Permission, Role
from handlers.args import (
    Amount,
    ArtistRef,
    ChannelArg,
    ChatType,
    Day,
    MemberRef,
    RecordId,
    Switch,
    Text,
    arg,
    meta,
    opt,
)
from handlers.paging import Page, page_buttons, page_count
from handlers.registry import RERUN, Lookup, button, missing, registry, usage_of
from handlers.render import days, local_datetime, shorten
from handlers.reply import Button, ChoiceInput, Field, Modal, Option, Reply, Section, TextInput

READ = Permission.READ
REQUEST = Permission.REQUEST_SERVICES
MANAGE = Permission.MANAGE_BLOCKS


def _block_words(raw: str, label: str) -> str:
    return " ".join(raw.split())


def _status(raw: str, label: str) -> str:
    """A status as people type it: ``accepted``, ``In-Progress``, ``in progress``; a near miss is named."""
    status = raw.strip().lower().replace("-", "_").replace(" ", "_")
    if status in market.STATUSES:
        return status
    if label.startswith("--"):
        raise InvalidInput(_("{label} must be one of {choices}, not {value}.", label=label,
                             choices=", ".join(market.STATUSES), value=raw))
    close = process.extractOne(status, market.STATUSES, score_cutoff=60)
    hint = " " + _("Did you mean {status}?", status=close[0]) if close else ""
    raise InvalidInput(_("Unknown status {status}. Statuses: {statuses}.", status=raw,
                         statuses=", ".join(market.STATUSES)) + hint)


#: One of the 10 blocks, by its key, name, a part of its name or an alias (``booking``, ``a&r``).
BlockRef = Annotated[str, ChatType(_block_words, "BLOCK", "A service block, e.g. booking", suggest="block",
                                   many_words=True)]
#: A request's status (the lifecycle's words; ``in-progress`` reads as ``in_progress``).
StatusArg = Annotated[market.Status, ChatType(_status, "STATUS", "A request status, e.g. accepted")]


def _move_label(status: str) -> str:
    """The button of each move, by the status it moves to."""
    return {"accepted": _("Accept"), "in_progress": _("Start"), "delivered": _("Deliver"), "closed": _("Close"),
            "declined": _("Decline"), "cancelled": _("Cancel request")}[status]


def _today(ctx: Context) -> dt.date:
    return dt.datetime.now(ZoneInfo(ctx.settings.timezone)).date()


def _hours(h: float | None) -> str:
    if h is None:
        return "-"
    if h < 1:
        return _("under 1 h")
    if h < 48:
        return _("{n} h", n=number(h, 1 if h % 1 else 0))
    return _("{n} days", n=number(h / 24, 1))


# ---------------------------------------------------------------- blocks


@registry.command("market blocks", permission=READ)
class ListBlocks(Command):
    """List the 10 service blocks: what each delivers, budget, lead time, channel, with a Request button."""

    def run(self, ctx: Context) -> Reply:
        every = market.blocks(ctx.uow)
        names = dict(ctx.uow.session.execute(select(Member.id, Member.display_name).where(
            Member.id.in_({b.assignee_id for b in every if b.assignee_id}))).all())
        sections = tuple(Section(
            title=f"{b.name} ({b.key})", text=f"{b.description}\n{_('Delivers: {what}', what=b.delivers)}",
            fields=(Field(_("Budget"), market.budget_range(b)), Field(_("Lead time"), days(b.lead_days)),
                    Field(_("Channel"), b.channel_label or _("none")),
                    Field(_("Default assignee"), names.get(b.assignee_id or 0) or _("nobody"))))
            for b in every)
        buttons = tuple(button(RequestForm(block=b.key), _("Request {block}", block=b.name)) for b in every)
        return Reply(title=_("Marketplace blocks"), sections=sections, actions=buttons)


@registry.command("market block edit", permission=MANAGE, sensitive=True)
class EditBlock(Command):
    """Change a block's channel (where new requests are announced) and default assignee."""

    block: BlockRef = arg("The block to change, e.g. booking", rest=True)
    channel: ChannelArg | None = opt("The channel told of each new request on this block")
    assignee: MemberRef | None = opt("The team member new requests on this block are assigned to")

    def run(self, ctx: Context) -> Reply:
        if self.channel is None and self.assignee is None:
            raise InvalidInput(_("Say what to change: --channel #channel and/or --assignee @member."))
        block = market.find_block(ctx.uow, self.block)
        channel = _channel_target(ctx, self.channel) if self.channel else None
        assignee = ctx.member(self.assignee) if self.assignee else None
        market.edit_block(ctx.uow, ctx.actor, block, channel=channel, assignee=assignee)
        parts = []
        if channel:
            parts.append(_("channel {label}", label=channel[2]))
        if assignee:
            parts.append(_("default assignee {name}", name=assignee.display_name))
        return Reply(text=_("{block}: {changes}.", block=block.name, changes=", ".join(parts)), ephemeral=False)


def _channel_target(ctx: Context, ref: ChannelRef) -> tuple[str, str, str]:
    """(platform, target, label) of a channel named on this platform: a notification needs the
    platform's channel id (``<#C123|booking>``); only the console goes by name."""
    if ref.external_id:
        return ctx.caller.platform, ref.external_id, ref.label
    if ctx.caller.platform != "console":
        raise InvalidInput(_("I do not know the channel {label}; pick it from the suggestions so it becomes a link.",
                             label=ref.label))
    return ctx.caller.platform, ref.name or "", ref.label


# ---------------------------------------------------------------- opening and showing requests


@registry.command("market show", permission=READ)
class ShowRequest(Command):
    """Show a request: artist, status, who asked and who works on it, budget, due date, brief and
    timeline, with buttons for the moves it allows."""

    request_id: RecordId = arg("The request's number, as shown in the list")

    def run(self, ctx: Context) -> Reply:
        return request_reply(ctx, market.get(ctx.uow, self.request_id))


@registry.command("market request", permission=REQUEST)
class OpenRequest(Command):
    """Open a request for an artist on one of the 10 blocks, with a brief of what is needed.

    The block's channel is told, with Accept / Decline / Assign buttons. A budget outside the block's
    usual range asks for confirmation first."""

    artist: ArtistRef = arg("The artist the request is for: a name, or an id like #12", rest=True)
    block: BlockRef = arg("The service block, e.g. booking", rest=True)
    brief: Text = arg("What is needed, e.g. a 10-date club tour", rest=True, metavar="BRIEF")
    budget: Amount | None = opt("What may be spent, in euros")
    due: Day | None = opt("When it is needed by, e.g. 2026-12-31")
    confirm: Switch = opt("Open it even if the budget is outside the block's usual range", default=False)

    @classmethod
    def chat_split(cls, words: list[str], lookup: Lookup) -> dict[str, str]:
        """``Alex Blue booking a club tour``: the longest known artist name, then the block
        (the longest block name after it), then the brief."""
        if not words:
            raise missing(cls)
        name, rest = lookup(lambda uow: crm.split_leading_artist(uow, words))
        if not rest:
            rid = words[0].lstrip("#")
            if len(words) == 1 and rid.isdecimal():
                raise InvalidInput(_("Say the block and the brief after the artist. Usage: {usage}; "
                                     "/market show {id} shows request #{id}.", usage=usage_of(cls), id=int(rid)))
            raise InvalidInput(_("Say the block and the brief after the artist. Usage: {usage}; "
                                 "/market blocks lists the blocks.", usage=usage_of(cls)))
        block, brief = lookup(lambda uow: _split_block(uow, rest))
        if not brief:
            raise InvalidInput(_("Write a brief after the block: what is needed, e.g. /market request Alex booking "
                                 "a 10-date club tour."))
        return {"artist": name, "block": block, "brief": " ".join(brief)}

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist)
        block = market.find_block(ctx.uow, self.block)
        return _open(ctx, artist, block, self.brief, self.budget, self.due, confirm=self.confirm)


def _split_block(uow: UnitOfWork, words: list[str]) -> tuple[str, list[str]]:
    block, rest = market.split_block(uow, words)
    return block.key, rest


def _open(ctx: Context, artist: crm.Artist, block: market.Block, brief: str, budget: Decimal | None,
          due: dt.date | None, *, confirm: bool) -> Reply:
    try:
        req = market.open_request(ctx.uow, ctx.actor, artist, block, brief=brief, budget=budget, due=due,
                                  today=_today(ctx), confirm=confirm)
    except market.BudgetOutOfRange as e:
        return Reply(text=e.message, ephemeral=True, actions=(
            Button(_("Confirm"), RERUN, _confirmed_line(artist, block, brief, e.budget, due), "primary"),
            button(DraftCancel(), _("Cancel"))))
    where = block.channel_label or _("nobody (no channel set for this block)")
    return request_reply(ctx, req, note=_("Opened request #{id} for {name}: {block}. {channel} is told.",
                                          id=req.id, name=artist.name, block=block.name, channel=where),
                         ephemeral=False)


def _confirmed_line(artist: crm.Artist, block: market.Block, brief: str, budget: Decimal, due: dt.date | None) -> str:
    """The command line that opens the same request with ``--confirm`` (what the Confirm button runs)."""
    quoted = "".join("'" if c in '"“”„«»' else c for c in brief)
    line = f'/market request #{artist.id} {block.key} "{quoted}" --budget {budget}'
    return line + (f" --due {due.isoformat()}" if due else "") + " --confirm"


@registry.action("market.draft_cancel", permission=READ)
class DraftCancel(Command):
    """Drop a request that was waiting for its budget to be confirmed."""

    def run(self, ctx: Context) -> Reply:
        return Reply(text=_("Nothing was opened."), replace_original=True)


@registry.action("market.request_form", permission=REQUEST)
class RequestForm(Command):
    """Open the form that requests a block."""

    block: BlockRef = arg("The block to request")
    artist: ArtistRef | None = opt("The artist it is for, filled in the form", default=None)

    def run(self, ctx: Context) -> Reply:
        block = market.find_block(ctx.uow, self.block)
        return Reply(modal=Modal(
            RequestSubmit.key, _("Request: {block}", block=block.name)[:24],
            (TextInput("artist", _("Artist"), placeholder=_("Name, or an id like #12"), initial=self.artist),
             TextInput("brief", _("Brief"), multiline=True),
             TextInput("budget", _("Budget (EUR)"), required=False, placeholder=market.budget_range(block)),
             TextInput("due", _("Due date (YYYY-MM-DD)"), required=False)),
            submit_label=_("Request"), private_metadata=block.key))


@registry.submit("market.request", permission=REQUEST)
class RequestSubmit(Command):
    """Open the request written in the form."""

    block: BlockRef = meta("The block requested")
    artist: ArtistRef = arg("The artist the request is for: a name, or an id like #12")
    brief: Text = arg("What is needed")
    budget: Amount | None = opt("What may be spent, in euros")
    due: Day | None = opt("When it is needed by")

    def run(self, ctx: Context) -> Reply:
        block = market.find_block(ctx.uow, self.block)
        try:
            artist = crm.find(ctx.uow, self.artist)
        except Ambiguous as e:
            raise FieldError("artist", e.message + " " + ", ".join(c.label for c in e.candidates[:5])) from None
        except UserError as e:
            raise FieldError("artist", e.message) from None
        if self.due is not None and self.due < _today(ctx):
            raise FieldError("due", _("The due date {date} is in the past; give today or a later date.",
                                      date=self.due.isoformat()))
        try:
            return _open(ctx, artist, block, self.brief, self.budget, self.due, confirm=False)
        except UserError as e:
            raise FieldError("brief", e.message) from None


def request_reply(ctx: Context, req: market.MarketRequest, *, note: str = "", ephemeral: bool = True) -> Reply:
    """A request with its timeline and the buttons of the moves it allows."""
    v = market.view(ctx.uow, req)
    r = v.request
    tz = ctx.settings.timezone
    due = "-"
    if r.due:
        due = r.due.isoformat() + (" " + _("(overdue)") if r.status in market.OPEN and r.due < _today(ctx) else "")
    fields = (Field(_("Artist"), f"{v.artist_name} (#{r.artist_id})"), Field(_("Status"), r.status),
              Field(_("Requested by"), v.requester or "-"), Field(_("Assigned to"), v.assignee or _("nobody")),
              Field(_("Budget"), money(r.budget, r.currency) if r.budget is not None else "-"), Field(_("Due"), due))
    lines = []
    for t, who in v.timeline:
        when = local_datetime(t.at, tz)
        if t.kind == "assign":
            lines.append(_("{when} · assigned to {name} · {who}", when=when, name=t.note or "?", who=who or "?"))
            continue
        step = f"{t.from_status} → {t.to_status}" if t.from_status else t.to_status
        lines.append(f"{when} · {step} · {who or '?'}" + (f" · {t.note}" if t.note else ""))
    actions: list[Any] = [button(MoveButton(request_id=r.id, status=s), _move_label(s),
                                 "primary" if s in ("accepted", "in_progress", "delivered") else None)
                          for s in market.LEGAL[r.status]]
    if r.status in market.OPEN:
        actions.append(button(AssignForm(request_id=r.id), _("Assign…")))
    return Reply(text=note, title=_("Request #{id} · {block}", id=r.id, block=v.block.name),
                 sections=(Section(fields=fields), Section(title=_("Brief"), text=shorten(r.brief, 1500)),
                           Section(title=_("Timeline"), text="\n".join(lines))),
                 actions=tuple(actions), ephemeral=ephemeral, replace_original=ctx.caller.via == "action")


# ---------------------------------------------------------------- moving and assigning


class RequestMove(Command):
    """A move of a request along its lifecycle: which request, and the status it goes to."""

    request_id: RecordId = arg("The request's number, as shown in the list")
    status: StatusArg = arg("The status to move it to, e.g. accepted")


@registry.command("market move", permission=REQUEST)
class MoveRequest(RequestMove):
    """Move a request along: new → accepted → in_progress → delivered → closed, or declined / cancelled."""

    note: Text | None = opt("Why, or what was done, kept in the request's timeline")

    def run(self, ctx: Context) -> Reply:
        return _moved(ctx, market.get(ctx.uow, self.request_id), self.status, self.note)


@registry.action("market.move", permission=REQUEST)
class MoveButton(RequestMove):
    """Move the request to the status its button names."""

    def run(self, ctx: Context) -> Reply:
        return _moved(ctx, market.get(ctx.uow, self.request_id), self.status, None)


def _moved(ctx: Context, req: market.MarketRequest, to: market.Status, note: str | None) -> Reply:
    before = market.move(ctx.uow, ctx.actor, req, to, note=note)
    text = _("{who} moved request #{id} from {before} to {after}.", who=ctx.actor.display_name, id=req.id,
             before=before, after=req.status)
    return request_reply(ctx, req, note=text, ephemeral=False)


@registry.action("market.assign_form", permission=REQUEST)
class AssignForm(Command):
    """Open the form that assigns a request to a team member."""

    request_id: RecordId = arg("The request's number")

    def run(self, ctx: Context) -> Reply:
        req = market.get(ctx.uow, self.request_id)
        members = ctx.uow.session.scalars(select(Member).where(Member.role != Role.VIEWER.value)
                                          .order_by(Member.display_name, Member.id).limit(25)).all()
        block = ctx.uow.session.get(market.Block, req.block_id)
        initial = req.assignee_id or (block.assignee_id if block else None) or ctx.actor.id
        return Reply(modal=Modal(
            AssignSubmit.key, _("Assign request #{id}", id=req.id),
            (ChoiceInput("member", _("Assign to"), tuple(Option(m.display_name, str(m.id)) for m in members),
                         initial=str(initial) if any(m.id == initial for m in members) else None),),
            submit_label=_("Assign"), private_metadata=str(req.id)))


@registry.submit("market.assign", permission=REQUEST)
class AssignSubmit(Command):
    """Assign the request to the team member picked in the form."""

    request_id: RecordId = meta("The request's number")
    member: RecordId = arg("The team member to assign it to", metavar="MEMBER")

    def run(self, ctx: Context) -> Reply:
        req = market.get(ctx.uow, self.request_id)
        member = ctx.uow.session.get(Member, self.member) if self.member <= market.MAX_ID else None
        if member is None:
            raise FieldError("member", _("Pick a team member."))
        try:
            market.assign(ctx.uow, ctx.actor, req, member)
        except UserError as e:
            raise FieldError("member", e.message) from None
        return request_reply(ctx, req, note=_("{who} assigned request #{id} to {name}.", who=ctx.actor.display_name,
                                              id=req.id, name=member.display_name), ephemeral=False)


# ---------------------------------------------------------------- lists and figures


@registry.command("market requests", permission=READ)
class ListRequests(Page):
    """List requests, newest first, filtered by status, block, artist or yours (requested by or assigned to you)."""

    status: StatusArg | None = opt("Only requests in this status")
    block: BlockRef | None = opt("Only requests on this block")
    artist: ArtistRef | None = opt("Only requests for this artist")
    mine: Switch = opt("Only requests you opened or are assigned to", default=False)

    def run(self, ctx: Context) -> Reply:
        block = market.find_block(ctx.uow, self.block) if self.block else None
        artist = crm.find(ctx.uow, self.artist, include_archived=True) if self.artist else None
        flt = market.RequestFilter(status=self.status, block_id=block.id if block else None,
                                   artist_id=artist.id if artist else None,
                                   member_id=ctx.actor.id if self.mine else None)
        size = ctx.settings.page_size
        rows, total = market.list_requests(ctx.uow, flt, page=self.page, page_size=size)
        pages = page_count(self.page, total, size)
        today = _today(ctx)
        lines = []
        for r in rows:
            bits = [f"#{r.id}", r.block, r.artist, r.status]
            if r.budget is not None:
                bits.append(money(r.budget, r.currency))
            if r.due:
                late = r.status in market.OPEN and r.due < today
                bits.append(_("due {date}", date=r.due.isoformat()) + (" " + _("(overdue)") if late else ""))
            bits.append(f"{r.requester or '?'} → {r.assignee or '-'}")
            lines.append(" · ".join(bits))
        base = "/market requests" + "".join(
            f' --{k} "{v}"' for k, v in (("status", self.status), ("block", block and block.key),
                                         ("artist", artist and f"#{artist.id}")) if v) + (" --mine" if self.mine else "")
        return Reply(title=_("Requests: {total} · page {page}/{pages}", total=number(total), page=self.page, pages=pages),
                     text="\n".join(lines) if lines else _("No request matches."),
                     actions=page_buttons(base, self.page, pages), replace_original=ctx.caller.via == "action")


@registry.command("market stats", permission=READ)
class ShowFigures(Command):
    """Marketplace figures: requests per block and status, median time to accept and to deliver,
    revenue (budgets of delivered requests) per block per month."""

    def run(self, ctx: Context) -> Reply:
        s = market.stats(ctx.uow, today=_today(ctx))
        lines = []
        for f in s.blocks:
            counts = " · ".join(f"{st} {number(f.counts[st])}" for st in market.STATUSES if f.counts.get(st)) or _("no request")
            lines.append(f"{f.block.name}: {counts}")
        medians = [_("All blocks: accept {accept}, deliver {deliver}", accept=_hours(s.accept_hours),
                     deliver=_hours(s.deliver_hours))]
        medians += [_("{block}: accept {accept}, deliver {deliver}", block=f.block.name, accept=_hours(f.accept_hours),
                      deliver=_hours(f.deliver_hours)) for f in s.blocks if f.accept_hours is not None]
        revenue = [f"{m.strftime('%Y-%m')} · {block} · {money(total, cur)} ({number(n)})"
                   for m, block, cur, total, n in s.revenue]
        return Reply(title=_("Marketplace figures"), sections=(
            Section(title=_("Requests per block and status"), text="\n".join(lines)),
            Section(title=_("Median time from opening"), text="\n".join(medians)),
            Section(title=_("Revenue per block per month (delivered, last 6 months)"),
                    text="\n".join(revenue) or _("Nothing delivered yet."))),
            actions=(Button(_("Requests"), RERUN, "/market requests"),))
