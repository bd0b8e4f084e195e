"""/market commands: the 10 service blocks, requests and their lifecycle, buttons and forms."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core import artists as crm
from core import marketplace as market
from core.errors import Ambiguous, FieldError, InvalidInput, UserError
from core.i18n import _, money, number
from core.team import Member, Permission, Role, check
from handlers.ops import _channel_target
from handlers.paging import page_buttons, page_count, requested_page
from handlers.parser import Args, Flag, parse_date, tokenize
from handlers.registry import RERUN, Context, registry
from handlers.render import days, local_datetime, shorten
from handlers.reply import Button, ChoiceInput, Field, Modal, Option, Reply, Section, TextInput

READ = Permission.READ
REQUEST = Permission.REQUEST_SERVICES


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
def blocks_cmd(ctx: Context, args: Args) -> Reply:
    """List the 10 service blocks: what each delivers, budget, lead time, channel, with a Request button."""
    every = market.blocks(ctx.uow)
    names = dict(ctx.uow.session.execute(select(Member.id, Member.display_name).where(
        Member.id.in_({b.assignee_id for b in every if b.assignee_id}))).all())
    sections = tuple(Section(
        title=f"{b.name} ({b.key})", text=f"{b.description}\n{_('Delivers: {what}', what=b.delivers)}",
        fields=(Field(_("Budget"), market.budget_range(b)), Field(_("Lead time"), days(b.lead_days)),
                Field(_("Channel"), b.channel_label or _("none")),
                Field(_("Default assignee"), names.get(b.assignee_id or 0) or _("nobody"))))
        for b in every)
    buttons = tuple(Button(_("Request {block}", block=b.name), "market.request_form", b.key) for b in every)
    return Reply(title=_("Marketplace blocks"), sections=sections, actions=buttons)


@registry.command("market block edit", permission=Permission.MANAGE_BLOCKS, args=(1, None),
                  usage="BLOCK [--channel #channel] [--assignee @member]",
                  flags=(Flag("channel", "word", metavar="#channel"), Flag("assignee", "member")))
def block_edit(ctx: Context, args: Args) -> Reply:
    """Change a block's channel (where new requests are announced) and default assignee."""
    block = market.find_block(ctx.uow, " ".join(args.positionals))
    channel = None
    if args.get("channel"):
        target, label = _channel_target(ctx, _raw_flag(ctx, "channel") or args.get("channel"))
        channel = (ctx.invocation.platform, target, label)
    assignee = ctx.member(args.get("assignee")) if args.get("assignee") else None
    market.edit_block(ctx.uow, ctx.actor, block, channel=channel, assignee=assignee)
    parts = []
    if channel:
        parts.append(_("channel {label}", label=channel[2]))
    if assignee:
        parts.append(_("default assignee {name}", name=assignee.display_name))
    return Reply(text=_("{block}: {changes}.", block=block.name, changes=", ".join(parts)), ephemeral=False)


def _raw_flag(ctx: Context, name: str) -> str | None:
    """A flag's word as it came, before the parser reads channel links as ``#name`` text: the
    platform's channel id (``<#C123|booking>``) is what a notification needs."""
    inv = ctx.invocation
    tokens = tokenize(inv.text if inv.kind == "command" else inv.value)
    for i, token in enumerate(tokens):
        low = token.lower()
        if low == f"--{name}" and i + 1 < len(tokens):
            return tokens[i + 1]
        if low.startswith(f"--{name}="):
            return token.split("=", 1)[1]
    return None


# ---------------------------------------------------------------- opening and showing requests


@registry.command("market request", permission=READ, args=(1, None),
                  usage="ARTIST|ID [BLOCK] [BRIEF] [--budget N] [--due DATE]",
                  flags=(Flag("budget", "word", metavar="N"), Flag("due", "date"), Flag("confirm", "bool")))
def request_cmd(ctx: Context, args: Args) -> Reply:
    """Open a request: /market request ARTIST BLOCK BRIEF [--budget N] [--due DATE]; or show one: /market request ID.

    The block's channel is told, with Accept / Decline / Assign buttons. A budget outside the block's
    usual range asks for confirmation first."""
    words = args.positionals
    if len(words) == 1 and market.parse_ref(words[0]) is not None and not args.flags:
        return request_reply(ctx, market.get(ctx.uow, words[0]))
    check(ctx.actor, REQUEST, admins_configured=bool(ctx.settings.admins), platform_roles=ctx.invocation.platform_roles)
    name, rest = crm.split_leading_artist(ctx.uow, words)
    if not rest:
        raise InvalidInput(_("Say the block and the brief after the artist. Usage: /market request ARTIST BLOCK BRIEF "
                             "[--budget N] [--due DATE]; /market blocks lists the blocks."))
    artist = crm.find(ctx.uow, name)
    block, brief = market.split_block(ctx.uow, rest)
    budget = crm.parse_amount(args.get("budget")) if args.get("budget") else None
    return _open(ctx, artist, block, " ".join(brief), budget, args.get("due"), bool(args.get("confirm")))


def _open(ctx: Context, artist: crm.Artist, block: market.Block, brief: str, budget: Decimal | None,
          due: dt.date | None, confirm: bool) -> Reply:
    try:
        req = market.open_request(ctx.uow, ctx.actor, artist, block, brief=brief, budget=budget, due=due,
                                  today=_today(ctx), confirm=confirm)
    except market.BudgetOutOfRange as e:
        line = f'/market request #{artist.id} {block.key} "{brief.replace(chr(34), chr(39))}" --budget {e.budget}'
        line += f" --due {due.isoformat()}" if due else ""
        return Reply(text=e.message, ephemeral=True, actions=(
            Button(_("Confirm"), RERUN, f"{line} --confirm", "primary"), Button(_("Cancel"), "market.draft_cancel")))
    where = block.channel_label or _("nobody (no channel set for this block)")
    return request_reply(ctx, req, note=_("Opened request #{id} for {name}: {block}. {channel} is told.",
                                          id=req.id, name=artist.name, block=block.name, channel=where),
                         ephemeral=False)


@registry.action("market.draft_cancel", permission=READ)
def draft_cancel(ctx: Context, value: str) -> Reply:
    return Reply(text=_("Nothing was opened."), replace_original=True)


@registry.action("market.request_form", permission=REQUEST)
def request_form(ctx: Context, value: str) -> Reply:
    block = market.find_block(ctx.uow, value)
    return Reply(modal=Modal(
        "market.request", _("Request: {block}", block=block.name)[:24],
        (TextInput("artist", _("Artist"), placeholder=_("Name, or an id like #12")),
         TextInput("brief", _("Brief"), multiline=True),
         TextInput("budget", _("Budget (EUR)"), required=False, placeholder=market.budget_range(block)),
         TextInput("due", _("Due date (YYYY-MM-DD)"), required=False)),
        submit_label=_("Request"), private_metadata=block.key))


@registry.submit("market.request", permission=REQUEST)
def request_submit(ctx: Context, values: dict[str, str], meta: str) -> Reply:
    block = market.find_block(ctx.uow, meta)
    try:
        artist = crm.find(ctx.uow, values.get("artist") or "")
    except Ambiguous as e:
        raise FieldError("artist", e.message + " " + ", ".join(c.label for c in e.candidates[:5])) from None
    except UserError as e:
        raise FieldError("artist", e.message) from None
    budget = due = None
    try:
        if (values.get("budget") or "").strip():
            budget = crm.parse_amount(values["budget"])
    except UserError as e:
        raise FieldError("budget", e.message) from None
    try:
        if (values.get("due") or "").strip():
            due = parse_date(values["due"].strip())
            if due < _today(ctx):
                raise InvalidInput(_("The due date {date} is in the past; give today or a later date.", date=due.isoformat()))
    except UserError as e:
        raise FieldError("due", e.message) from None
    try:
        return _open(ctx, artist, block, values.get("brief") or "", budget, due, False)
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
    actions: list[Any] = [Button(_move_label(s), "market.move", f"{r.id}:{s}",
                                 "primary" if s in ("accepted", "in_progress", "delivered") else None)
                          for s in market.LEGAL[r.status]]
    if r.status in market.OPEN:
        actions.append(Button(_("Assign…"), "market.assign_form", str(r.id)))
    return Reply(text=note, title=_("Request #{id} · {block}", id=r.id, block=v.block.name),
                 sections=(Section(fields=fields), Section(title=_("Brief"), text=shorten(r.brief, 1500)),
                           Section(title=_("Timeline"), text="\n".join(lines))),
                 actions=tuple(actions), ephemeral=ephemeral, replace_original=ctx.invocation.kind == "action")


# ---------------------------------------------------------------- moving and assigning


@registry.command("market move", permission=REQUEST, args=(2, 2), usage="ID STATUS [--note TEXT]",
                  flags=(Flag("note"),))
def move_cmd(ctx: Context, args: Args) -> Reply:
    """Move a request along: new → accepted → in_progress → delivered → closed, or declined / cancelled."""
    req = market.get(ctx.uow, args.positionals[0])
    return _moved(ctx, req, args.positionals[1], args.get("note"))


def _moved(ctx: Context, req: market.MarketRequest, to: str, note: str | None) -> Reply:
    before = market.move(ctx.uow, ctx.actor, req, to, note=note)
    text = _("{who} moved request #{id} from {before} to {after}.", who=ctx.actor.display_name, id=req.id,
             before=before, after=req.status)
    return request_reply(ctx, req, note=text, ephemeral=False)


@registry.action("market.move", permission=REQUEST)
def move_button(ctx: Context, value: str) -> Reply:
    rid, _sep, to = value.partition(":")
    return _moved(ctx, market.get(ctx.uow, rid), to, None)


@registry.action("market.assign_form", permission=REQUEST)
def assign_form(ctx: Context, value: str) -> Reply:
    req = market.get(ctx.uow, value)
    members = ctx.uow.session.scalars(select(Member).where(Member.role != Role.VIEWER.value)
                                      .order_by(Member.display_name, Member.id).limit(25)).all()
    block = ctx.uow.session.get(market.Block, req.block_id)
    initial = req.assignee_id or (block.assignee_id if block else None) or ctx.actor.id
    return Reply(modal=Modal(
        "market.assign", _("Assign request #{id}", id=req.id),
        (ChoiceInput("member", _("Assign to"), tuple(Option(m.display_name, str(m.id)) for m in members),
                     initial=str(initial) if any(m.id == initial for m in members) else None),),
        submit_label=_("Assign"), private_metadata=str(req.id)))


@registry.submit("market.assign", permission=REQUEST)
def assign_submit(ctx: Context, values: dict[str, str], meta: str) -> Reply:
    req = market.get(ctx.uow, meta)
    chosen = values.get("member") or ""
    member = ctx.uow.session.get(Member, int(chosen)) if chosen.isdigit() else None
    if member is None:
        raise FieldError("member", _("Pick a team member."))
    try:
        market.assign(ctx.uow, ctx.actor, req, member)
    except UserError as e:
        raise FieldError("member", e.message) from None
    return request_reply(ctx, req, note=_("{who} assigned request #{id} to {name}.", who=ctx.actor.display_name,
                                          id=req.id, name=member.display_name), ephemeral=False)


# ---------------------------------------------------------------- lists and figures


@registry.command("market requests", permission=READ, args=(0, 0),
                  usage="[--status S] [--block B] [--artist A] [--mine] [--page N]",
                  flags=(Flag("status", "choice", choices=market.STATUSES), Flag("block"), Flag("artist"),
                         Flag("mine", "bool"), Flag("page", "int")))
def requests_cmd(ctx: Context, args: Args) -> Reply:
    """List requests, newest first, filtered by status, block, artist or yours (requested by or assigned to you)."""
    block = market.find_block(ctx.uow, args.get("block")) if args.get("block") else None
    artist = crm.find(ctx.uow, args.get("artist"), include_archived=True) if args.get("artist") else None
    flt = market.RequestFilter(status=args.get("status"), block_id=block.id if block else None,
                               artist_id=artist.id if artist else None,
                               member_id=ctx.actor.id if args.get("mine") else None)
    size, page = ctx.settings.page_size, requested_page(args)
    rows, total = market.list_requests(ctx.uow, flt, page=page, page_size=size)
    pages = page_count(page, total, size)
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
        f' --{k} "{v}"' for k, v in (("status", args.get("status")), ("block", block and block.key),
                                     ("artist", artist and f"#{artist.id}")) if v) + (" --mine" if args.get("mine") else "")
    return Reply(title=_("Requests: {total} · page {page}/{pages}", total=number(total), page=page, pages=pages),
                 text="\n".join(lines) if lines else _("No request matches."), actions=page_buttons(base, page, pages),
                 replace_original=ctx.invocation.kind == "action")


@registry.command("market stats", permission=READ)
def stats_cmd(ctx: Context, args: Args) -> Reply:
    """Marketplace figures: requests per block and status, median time to accept and to deliver,
    revenue (budgets of delivered requests) per block per month."""
    s = market.stats(ctx.uow, today=_today(ctx))
    lines = []
    for f in s.blocks:
        counts = " · ".join(f"{st} {number(f.counts[st])}" for st in market.STATUSES if f.counts.get(st)) or _("no request")
        lines.append(f"{f.block.name}: {counts}")
    medians = [_("All blocks: accept {accept}, deliver {deliver}", accept=_hours(s.accept_hours),
                 deliver=_hours(s.deliver_hours))]
    medians += [_("{block}: accept {accept}, deliver {deliver}", block=f.block.name, accept=_hours(f.accept_hours),
                  deliver=_hours(f.deliver_hours)) for f in s.blocks if f.accept_hours is not None]
    revenue = [f"{m.strftime('%Y-%m')} · {block} · {money(total, cur)} ({number(n)})" for m, block, cur, total, n in s.revenue]
    return Reply(title=_("Marketplace figures"), sections=(
        Section(title=_("Requests per block and status"), text="\n".join(lines)),
        Section(title=_("Median time from opening"), text="\n".join(medians)),
        Section(title=_("Revenue per block per month (delivered, last 6 months)"),
                text="\n".join(revenue) or _("Nothing delivered yet."))),
        actions=(Button(_("Requests"), RERUN, "/market requests"),))
