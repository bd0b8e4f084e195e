"""/artist commands, the artist card and its buttons and forms."""

from __future__ import annotations

from typing import Any

from core import artists as crm
from core.errors import FieldError, InvalidInput, UserError
from core.i18n import _, number
from core.pipelines import find_any_stage, is_stage_prefix, parse_pipeline, reachable
from core.team import Permission
from handlers.paging import page_buttons, page_count, requested_page
from handlers.parser import Args, Flag, parse_date
from handlers.registry import RERUN, Context, registry
from handlers.render import days, local_date, shorten, totals
from handlers.reply import Button, ChoiceInput, Field, Modal, Option, Reply, Section, Select, TextInput

EDIT = Permission.EDIT_ARTISTS
READ = Permission.READ

FIELD_FLAGS = (
    Flag("genre", metavar="G"), Flag("city", metavar="C"), Flag("email", "word", metavar="E"),
    Flag("instagram", "word", metavar="H"), Flag("tiktok", "word", metavar="H"), Flag("youtube", "word", metavar="H"),
    Flag("spotify", "word", metavar="H"), Flag("twitch", "word", metavar="H"), Flag("followers", "int", metavar="N"),
    Flag("owner", "member", metavar="@member"),
)


def _fields(ctx: Context, args: Args) -> dict[str, Any]:
    fields = {f.name: args.get(f.name) for f in FIELD_FLAGS if f.name in args.flags}
    if "owner" in fields:
        fields["owner"] = ctx.member(fields["owner"])
    return fields


@registry.command("artist add", permission=EDIT, args=(1, None),
                  usage="NAME [--genre G] [--city C] [--pipeline mona|spark] [--email E] [--instagram H] [--tiktok H] "
                        "[--youtube H] [--spotify H] [--followers N] [--owner @member]",
                  flags=(*FIELD_FLAGS, Flag("pipeline", "choice", choices=("mona", "spark"))))
def add(ctx: Context, args: Args) -> Reply:
    """Add an artist to a pipeline (MONA by default), at its first stage.

    The owner is you unless --owner names someone else."""
    artist = crm.add_artist(ctx.uow, ctx.actor, name=" ".join(args.positionals), pipeline=args.get("pipeline"),
                            **_fields(ctx, args))
    reply = card_reply(ctx, artist)
    return Reply(text=_("Added {name} to {pipeline} at {stage}.", name=artist.name, pipeline=artist.pipeline_enum.label,
                        stage=artist.stage), title=reply.title, sections=reply.sections, actions=reply.actions,
                 ephemeral=False)


@registry.command("artist show", permission=READ, args=(1, None), usage="NAME|ID")
def show(ctx: Context, args: Args) -> Reply:
    """Show an artist's card: identity, stage, owner, recent interactions and open deals."""
    artist = crm.find(ctx.uow, " ".join(args.positionals), include_archived=True)
    return card_reply(ctx, artist)


def card_reply(ctx: Context, artist: crm.Artist, *, note: str = "") -> Reply:
    c = crm.card(ctx.uow, artist)
    a = c.artist
    tz = ctx.settings.timezone
    fields = [
        Field(_("Stage"), f"{a.pipeline_enum.label} · {a.stage} ({days(c.days_in_stage)})"),
        Field(_("Owner"), c.owner_name or _("nobody")),
    ]
    for label, value in ((_("Genre"), a.genre), (_("City"), a.city), (_("Email"), a.email)):
        if value:
            fields.append(Field(label, value))
    if a.followers is not None:
        fields.append(Field(_("Followers"), number(a.followers)))
    handles = [f"{h.capitalize()} @{getattr(a, h)}" for h in crm.HANDLES if getattr(a, h)]
    if handles:
        fields.append(Field(_("Handles"), " · ".join(handles)))
    sections = [Section(fields=tuple(fields))]
    if c.interactions:
        lines = [f"{local_date(i.at, tz)} · {i.kind} · {who or '?'}: {shorten(i.text)}" for i, who in c.interactions]
        sections.append(Section(title=_("Last interactions ({shown} of {total})", shown=len(lines), total=c.interaction_count),
                                text="\n".join(lines)))
    else:
        sections.append(Section(title=_("Last interactions"), text=_("None yet.")))
    if c.open_deals:
        lines = [f"#{d.id} {d.title} · {totals({d.currency: d.value})}"
                 + (f" · {_('closes')} {d.expected_close.isoformat()}" if d.expected_close else "") for d in c.open_deals]
        sections.append(Section(title=_("Open deals: {total}", total=totals(c.open_totals)), text="\n".join(lines)))
    if a.archived_at:
        actions: tuple[Any, ...] = (Button(_("Restore"), "artist.restore", f"{a.id}:{a.version}", "primary"),)
        footer = _("Archived on {date}.", date=local_date(a.archived_at, tz))
    else:
        options = tuple(Option(r.label if r.pipeline != a.pipeline_enum else r.stage, f"{a.id}:{a.version}:{r.stage}")
                        for r in reachable(a.pipeline_enum, a.stage))
        actions = (
            Select(_("Move to…"), "artist.move", options),
            Button(_("Log interaction"), "artist.note_form", str(a.id)),
            Button(_("Add deal"), "artist.deal_form", str(a.id)),
            Button(_("Archive"), "artist.archive", f"{a.id}:{a.version}", "danger"),
        )
        footer = None
    return Reply(text=note, title=f"{a.name} (#{a.id})", sections=tuple(sections), actions=actions, footer=footer,
                 replace_original=ctx.invocation.kind == "action")


def _card_ref(value: str, parts: int) -> list[str]:
    bits = value.split(":", parts - 1)
    if len(bits) != parts or not bits[0].isdigit():
        raise InvalidInput(_("That button is out of date; show the card again."))
    return bits


@registry.command("artist list", permission=READ, args=(0, 0),
                  usage="[--pipeline P] [--stage S] [--owner @member] [--search TEXT] [--archived] [--page N]",
                  flags=(Flag("pipeline", "choice", choices=("mona", "spark")), Flag("stage"), Flag("owner", "member"),
                         Flag("search"), Flag("archived", "bool"), Flag("page", "int")))
def list_(ctx: Context, args: Args) -> Reply:
    """List artists, filtered and a page at a time, with buttons to turn pages."""
    pipeline = parse_pipeline(args.get("pipeline")) if args.get("pipeline") else None
    stage = find_any_stage(args.get("stage"), pipeline) if args.get("stage") else None
    owner = ctx.member(args.get("owner")) if args.get("owner") else None
    search = args.get("search")
    flt = crm.ListFilter(pipeline=pipeline, stage=stage.stage if stage else None, owner_id=owner.id if owner else None,
                         search=search, archived=bool(args.get("archived")))
    size, page = ctx.settings.page_size, requested_page(args)
    rows, total = crm.list_artists(ctx.uow, flt, page=page, page_size=size)
    pages = page_count(page, total, size)
    lines = [f"{r.name} (#{r.id}) · {r.pipeline.upper()} · {r.stage} · {days(r.days_in_stage)} · {r.owner or '-'}" for r in rows]
    base = "/artist list" + "".join(
        f' --{k} "{v}"' if k in ("search", "stage") else f" --{k} {v}"
        for k, v in (("pipeline", args.get("pipeline")), ("stage", args.get("stage")),
                     ("owner", owner and _mention_text(ctx, args.get("owner"))), ("search", search))
        if v
    ) + (" --archived" if args.get("archived") else "")
    text = "\n".join(lines) if lines else _("No artist matches.")
    return Reply(title=_("Artists: {total} · page {page}/{pages}", total=total, page=page, pages=pages), text=text,
                 actions=page_buttons(base, page, pages), replace_original=ctx.invocation.kind == "action")


def _mention_text(ctx: Context, mention: Any) -> str:
    if mention.external_id:
        return f"<@{mention.external_id}>"
    return f"@{mention.name}"


@registry.command("artist move", permission=EDIT, args=(2, None), usage="NAME STAGE [--reason TEXT]",
                  flags=(Flag("reason"),))
def move(ctx: Context, args: Args) -> Reply:
    """Move an artist to another stage of their pipeline (or "next").

    Moving a MONA artist from Fidélisation to Qualification qualifies them into SPARK."""
    words = args.positionals
    n = is_stage_prefix(words)
    artist = crm.find(ctx.uow, " ".join(words[:-n]))
    before, after = crm.move_stage(ctx.uow, ctx.actor, artist, " ".join(words[-n:]), reason=args.get("reason"))
    return _moved(ctx, artist, before.label, after.label)


def _moved(ctx: Context, artist: crm.Artist, before: str, after: str) -> Reply:
    note = _("{who} moved {name} from {before} to {after}.", who=ctx.actor.display_name, name=artist.name,
             before=before, after=after)
    if ctx.invocation.kind == "action":
        return card_reply(ctx, artist, note=note)
    return Reply(text=note, ephemeral=False, actions=(Button(_("Show card"), RERUN, f"/artist show #{artist.id}"),))


@registry.action("artist.move", permission=EDIT)
def move_from_card(ctx: Context, value: str) -> Reply:
    artist_id, version, stage = _card_ref(value, 3)
    artist = crm.find(ctx.uow, f"#{artist_id}")
    before, after = crm.move_stage(ctx.uow, ctx.actor, artist, stage, expected_version=int(version))
    return _moved(ctx, artist, before.label, after.label)


@registry.command("artist note", permission=EDIT, args=(2, None), usage="NAME [--type call|email|meeting|dm|note] TEXT",
                  flags=(Flag("type", "choice", choices=crm.INTERACTION_KINDS),))
def note(ctx: Context, args: Args) -> Reply:
    """Log an interaction with an artist: a call, email, meeting, DM or plain note."""
    name, rest = crm.split_leading_artist(ctx.uow, args.positionals)
    artist = crm.find(ctx.uow, name)
    item = crm.log_interaction(ctx.uow, ctx.actor, artist, args.get("type", "note"), " ".join(rest))
    return Reply(text=_("Logged a {kind} with {name}.", kind=item.kind, name=artist.name), ephemeral=True,
                 actions=(Button(_("Show card"), RERUN, f"/artist show #{artist.id}"),))


@registry.action("artist.note_form", permission=EDIT)
def note_form(ctx: Context, value: str) -> Reply:
    artist = crm.find(ctx.uow, f"#{_card_ref(value, 1)[0]}")
    return Reply(modal=Modal(
        "artist.note", _("Log interaction"),
        (ChoiceInput("kind", _("Type"), tuple(Option(k, k) for k in crm.INTERACTION_KINDS), initial="call"),
         TextInput("text", _("What happened"), multiline=True)),
        submit_label=_("Log"), private_metadata=str(artist.id)))


@registry.submit("artist.note", permission=EDIT)
def note_submit(ctx: Context, values: dict[str, str], meta: str) -> Reply:
    artist = crm.find(ctx.uow, f"#{_card_ref(meta, 1)[0]}")
    try:
        crm.log_interaction(ctx.uow, ctx.actor, artist, values.get("kind") or "note", values.get("text") or "")
    except UserError as e:
        raise FieldError("text", e.message) from None
    return card_reply(ctx, artist, note=_("Logged with {name}.", name=artist.name))


@registry.command("artist deal", permission=EDIT, args=(3, None), usage="NAME AMOUNT [--currency EUR] [--close DATE] TITLE",
                  flags=(Flag("currency", "word"), Flag("close", "date")))
def deal(ctx: Context, args: Args) -> Reply:
    """Add an opportunity (a deal) with its value to an artist."""
    words = args.positionals
    at = next((i for i, w in enumerate(words) if i > 0 and w.lstrip("-")[:1].isdigit()), None)
    if at is None:
        raise InvalidInput(_("Give an amount after the artist's name: /artist deal NAME AMOUNT TITLE."))
    artist = crm.find(ctx.uow, " ".join(words[:at]))
    d = crm.add_deal(ctx.uow, ctx.actor, artist, amount=words[at], title=" ".join(words[at + 1:]),
                     currency=args.get("currency", "EUR"), expected_close=args.get("close"))
    return Reply(text=_("Deal #{id} for {name}: {title}, {value}.", id=d.id, name=artist.name, title=d.title,
                        value=totals({d.currency: d.value})), ephemeral=False,
                 actions=(Button(_("Won"), "deal.status", f"{d.id}:won", "primary"), Button(_("Lost"), "deal.status", f"{d.id}:lost"),
                          Button(_("Show card"), RERUN, f"/artist show #{artist.id}")))


@registry.action("artist.deal_form", permission=EDIT)
def deal_form(ctx: Context, value: str) -> Reply:
    artist = crm.find(ctx.uow, f"#{_card_ref(value, 1)[0]}")
    return Reply(modal=Modal(
        "artist.deal", _("Add deal"),
        (TextInput("title", _("Title")), TextInput("amount", _("Amount"), placeholder="1500"),
         TextInput("currency", _("Currency"), initial="EUR"),
         TextInput("close", _("Expected close (YYYY-MM-DD)"), required=False)),
        submit_label=_("Add"), private_metadata=str(artist.id)))


@registry.submit("artist.deal", permission=EDIT)
def deal_submit(ctx: Context, values: dict[str, str], meta: str) -> Reply:
    artist = crm.find(ctx.uow, f"#{_card_ref(meta, 1)[0]}")
    close = None
    if (values.get("close") or "").strip():
        try:
            close = parse_date(values["close"])
        except UserError as e:
            raise FieldError("close", e.message) from None
    for name in ("amount", "currency", "title"):
        try:
            if name == "amount":
                crm.parse_amount(values.get("amount") or "")
            elif name == "currency":
                crm.parse_currency(values.get("currency") or "EUR")
        except UserError as e:
            raise FieldError(name, e.message) from None
    try:
        crm.add_deal(ctx.uow, ctx.actor, artist, amount=values.get("amount") or "", title=values.get("title") or "",
                     currency=values.get("currency") or "EUR", expected_close=close)
    except UserError as e:
        raise FieldError("title", e.message) from None
    return card_reply(ctx, artist, note=_("Deal added for {name}.", name=artist.name))


@registry.command("artist deal-status", permission=EDIT, args=(2, 2), usage="DEAL_ID won|lost")
def deal_status(ctx: Context, args: Args) -> Reply:
    """Mark a deal as won or lost."""
    d = crm.set_deal_status(ctx.uow, ctx.actor, args.positionals[0], args.positionals[1])
    return _deal_closed(d)


def _deal_closed(d: crm.Opportunity) -> Reply:
    return Reply(text=_("Deal #{id} ({title}, {value}) is {status}.", id=d.id, title=d.title,
                        value=totals({d.currency: d.value}), status=_(d.status)), ephemeral=False)


@registry.action("deal.status", permission=EDIT)
def deal_status_button(ctx: Context, value: str) -> Reply:
    deal_id, status = _card_ref(value, 2)
    d = crm.set_deal_status(ctx.uow, ctx.actor, deal_id, status)
    return Reply(text=_deal_closed(d).text, ephemeral=False, replace_original=True)


@registry.command("artist edit", permission=EDIT, args=(1, None),
                  usage="NAME --field value … (fields: name, genre, city, email, instagram, tiktok, youtube, spotify, twitch, followers, owner)",
                  flags=(*FIELD_FLAGS, Flag("name")))
def edit(ctx: Context, args: Args) -> Reply:
    """Change an artist's details: --name, --genre, --city, --email, handles, --followers, --owner."""
    artist = crm.find(ctx.uow, " ".join(args.positionals))
    changes = _fields(ctx, args)
    if "name" in args.flags:
        changes["name"] = args.get("name")
    changed = crm.edit_artist(ctx.uow, ctx.actor, artist, changes)
    text = (_("Updated {name}: {fields}.", name=artist.name, fields=", ".join(f.replace("_id", "") for f in changed))
            if changed else _("Nothing changed: {name} already has those values.", name=artist.name))
    return Reply(text=text, actions=(Button(_("Show card"), RERUN, f"/artist show #{artist.id}"),))


@registry.command("artist archive", permission=EDIT, args=(1, None), usage="NAME")
def archive_cmd(ctx: Context, args: Args) -> Reply:
    """Archive an artist: hidden from lists and the pipeline, kept with their history. Undo with the button."""
    artist = crm.find(ctx.uow, " ".join(args.positionals))
    crm.archive(ctx.uow, ctx.actor, artist)
    return _archived(artist)


def _archived(artist: crm.Artist) -> Reply:
    return Reply(text=_("Archived {name}.", name=artist.name), ephemeral=False,
                 actions=(Button(_("Undo"), "artist.restore", f"{artist.id}:{artist.version}"),))


@registry.action("artist.archive", permission=EDIT)
def archive_button(ctx: Context, value: str) -> Reply:
    artist_id, version = _card_ref(value, 2)
    artist = crm.find(ctx.uow, f"#{artist_id}")
    crm.archive(ctx.uow, ctx.actor, artist, expected_version=int(version))
    return _archived(artist)


@registry.command("artist restore", permission=EDIT, args=(1, None), usage="NAME|ID")
def restore_cmd(ctx: Context, args: Args) -> Reply:
    """Bring an archived artist back into their pipeline."""
    artist = crm.find(ctx.uow, " ".join(args.positionals), include_archived=True)
    crm.archive(ctx.uow, ctx.actor, artist, restore=True)
    return Reply(text=_("Restored {name}.", name=artist.name), ephemeral=False)


@registry.action("artist.restore", permission=EDIT)
def restore_button(ctx: Context, value: str) -> Reply:
    artist_id, _version = _card_ref(value, 2)
    artist = crm.find(ctx.uow, f"#{artist_id}", include_archived=True)
    crm.archive(ctx.uow, ctx.actor, artist, restore=True)
    return card_reply(ctx, artist, note=_("Restored {name}.", name=artist.name))

