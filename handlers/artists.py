"""/artist commands, the artist card and its buttons and forms."""

from __future__ import annotations

from typing import Any, Literal

from core import artists as crm
from core.app import Command, Context
from core.db import utcnow
from core.errors import InvalidInput
from core.i18n import _, number
from core.pipelines import find_any_stage, is_stage_prefix, parse_pipeline, reachable
from core.refs import Mention
from core.team import Permission
from handlers.args import (
    Amount,
    ArtistName,
    ArtistRef,
    BigCount,
    Count,
    Currency,
    Day,
    MemberRef,
    RecordId,
    StageName,
    Switch,
    Text,
    Word,
    arg,
    meta,
    opt,
)
from handlers.paging import Page, page_buttons, page_count
from handlers.registry import RERUN, Lookup, button, missing, option, registry, usage_of
from handlers.render import days, local_date, local_datetime, shorten, totals
from handlers.reply import Button, ChoiceInput, Field, Modal, Option, Reply, Section, Select, TextInput

EDIT = Permission.EDIT_ARTISTS
READ = Permission.READ

PipelineName = Literal["mona", "spark"]
InteractionKind = Literal["call", "email", "meeting", "dm", "note"]
DealOutcome = Literal["won", "lost"]


class ArtistFields(Command):
    """The details an artist card holds, shared by /artist add and /artist edit."""

    genre: Text | None = opt("Music genre, e.g. afro-pop", metavar="GENRE")
    city: Text | None = opt("Home city", metavar="CITY")
    email: Word | None = opt("Contact email address", metavar="EMAIL")
    instagram: Word | None = opt("Instagram handle", metavar="HANDLE")
    tiktok: Word | None = opt("TikTok handle", metavar="HANDLE")
    youtube: Word | None = opt("YouTube handle", metavar="HANDLE")
    spotify: Word | None = opt("Spotify artist handle", metavar="HANDLE")
    twitch: Word | None = opt("Twitch channel", metavar="HANDLE")
    followers: BigCount | None = opt("Total followers across platforms")
    owner: MemberRef | None = opt("The team member who follows this artist")

    def field_changes(self, ctx: Context) -> dict[str, Any]:
        names = [n for n in ArtistFields.model_fields if getattr(self, n) is not None]
        changes = {n: getattr(self, n) for n in names}
        if "owner" in changes:
            changes["owner"] = ctx.member(changes["owner"])
        return changes


@registry.command("artist add", permission=EDIT)
class AddArtist(ArtistFields):
    """Add an artist to a pipeline (MONA by default), at its first stage.

    The owner is you unless --owner names someone else."""

    name: ArtistName = arg("The new artist's name", rest=True)
    pipeline: PipelineName | None = opt("Which pipeline they start in (MONA unless you say spark)")

    def run(self, ctx: Context) -> Reply:
        artist = crm.add_artist(ctx.uow, ctx.actor, name=self.name, pipeline=self.pipeline, **self.field_changes(ctx))
        reply = card_reply(ctx, artist)
        return Reply(text=_("Added {name} to {pipeline} at {stage}.", name=artist.name, pipeline=artist.pipeline_enum.label,
                            stage=artist.stage), title=reply.title, sections=reply.sections, actions=reply.actions,
                     ephemeral=False)


@registry.command("artist show", permission=READ)
class ShowArtist(Command):
    """Show an artist's card: identity, stage, owner, recent interactions and open deals."""

    artist: ArtistRef = arg("Artist name, or an id like #12", rest=True)

    def run(self, ctx: Context) -> Reply:
        return card_reply(ctx, crm.find(ctx.uow, self.artist, include_archived=True))


def _next_event(ctx: Context, artist_id: int) -> str | None:
    """The artist's next calendar event, as a line ("#4 2026-12-11 10:00 Showcase"), or None."""
    from core import calendar

    now = utcnow()
    found = calendar.between(ctx.uow, now, now + calendar.LOOK_AHEAD, artist_id=artist_id)
    if not found:
        return None
    e, at, _end = found[0]
    return f"#{e.id} {local_datetime(at, ctx.settings.timezone)} {e.title}"


def _open_tasks(ctx: Context, artist_id: int) -> str | None:
    from core import kanban

    cards = kanban.open_cards(ctx.uow, artist_id=artist_id, limit=5)
    return "\n".join(f"#{c.id} {c.title}" + (f" · {c.due.isoformat()}" if c.due else "") for c in cards) or None


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
    coming = _next_event(ctx, a.id)
    if coming:
        sections.append(Section(title=_("Next event"), text=coming))
    tasks = _open_tasks(ctx, a.id)
    if tasks:
        sections.append(Section(title=_("Open tasks"), text=tasks))
    if a.archived_at:
        actions: tuple[Any, ...] = (button(RestoreFromCard(artist_id=a.id, version=a.version), _("Restore"), "primary"),)
        footer = _("Archived on {date}.", date=local_date(a.archived_at, tz))
    else:
        options = tuple(option(MoveFromCard(artist_id=a.id, version=a.version, stage=r.stage),
                               r.label if r.pipeline != a.pipeline_enum else r.stage)
                        for r in reachable(a.pipeline_enum, a.stage))
        actions = (
            Select(_("Move to…"), MoveFromCard.key, options),
            button(NoteForm(artist_id=a.id), _("Log interaction")),
            button(DealForm(artist_id=a.id), _("Add deal")),
            button(ArchiveFromCard(artist_id=a.id, version=a.version), _("Archive"), "danger"),
        )
        footer = None
    return Reply(text=note, title=f"{a.name} (#{a.id})", sections=tuple(sections), actions=actions, footer=footer,
                 replace_original=ctx.caller.via == "action")


def _show_card(artist: crm.Artist) -> Button:
    return Button(_("Show card"), RERUN, f"/artist show #{artist.id}")


@registry.command("artist list", permission=READ)
class ListArtists(Page):
    """List artists, filtered and a page at a time, with buttons to turn pages."""

    pipeline: PipelineName | None = opt("Only this pipeline")
    stage: StageName | None = opt("Only artists at this stage")
    owner: MemberRef | None = opt("Only artists this team member follows")
    search: Text | None = opt("Only names containing this text")
    archived: Switch = opt("Show archived artists instead", default=False)

    def run(self, ctx: Context) -> Reply:
        pipeline = parse_pipeline(self.pipeline) if self.pipeline else None
        stage = find_any_stage(self.stage, pipeline) if self.stage else None
        owner = ctx.member(self.owner) if self.owner else None
        flt = crm.ListFilter(pipeline=pipeline, stage=stage.stage if stage else None, owner_id=owner.id if owner else None,
                             search=self.search, archived=self.archived)
        size = ctx.settings.page_size
        rows, total = crm.list_artists(ctx.uow, flt, page=self.page, page_size=size)
        pages = page_count(self.page, total, size)
        lines = [f"{r.name} (#{r.id}) · {r.pipeline.upper()} · {r.stage} · {days(r.days_in_stage)} · {r.owner or '-'}"
                 for r in rows]
        base = "/artist list" + "".join(
            f' --{k} "{v}"' if k in ("search", "stage") else f" --{k} {v}"
            for k, v in (("pipeline", self.pipeline), ("stage", self.stage),
                         ("owner", self.owner and _mention_text(self.owner)), ("search", self.search))
            if v
        ) + (" --archived" if self.archived else "")
        text = "\n".join(lines) if lines else _("No artist matches.")
        return Reply(title=_("Artists: {total} · page {page}/{pages}", total=total, page=self.page, pages=pages), text=text,
                     actions=page_buttons(base, self.page, pages), replace_original=ctx.caller.via == "action")


def _mention_text(mention: Mention) -> str:
    if mention.external_id:
        return f"<@{mention.external_id}>"
    return f"@{mention.name}"


@registry.command("artist move", permission=EDIT)
class MoveArtist(Command):
    """Move an artist to another stage of their pipeline (or "next").

    Moving a MONA artist from Fidélisation to Qualification qualifies them into SPARK."""

    artist: ArtistRef = arg("Artist name, or an id like #12", rest=True)
    stage: StageName = arg("The stage to move them to, or next", rest=True)
    reason: Text | None = opt("Why, kept in the stage history")

    @classmethod
    def chat_split(cls, words: list[str], lookup: Lookup) -> dict[str, str]:
        """``Alex Blue Villa Prep``: the trailing words that name a stage, the name before them."""
        n = is_stage_prefix(words)
        if n == 0:
            raise missing(cls)
        return {"artist": " ".join(words[:-n]), "stage": " ".join(words[-n:])}

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist)
        before, after = crm.move_stage(ctx.uow, ctx.actor, artist, self.stage, reason=self.reason)
        return _moved(ctx, artist, before.label, after.label)


def _moved(ctx: Context, artist: crm.Artist, before: str, after: str) -> Reply:
    note = _("{who} moved {name} from {before} to {after}.", who=ctx.actor.display_name, name=artist.name,
             before=before, after=after)
    if ctx.caller.via == "action":
        return card_reply(ctx, artist, note=note)
    return Reply(text=note, ephemeral=False, actions=(_show_card(artist),))


class CardAction(Command):
    """A button on an artist's card: the artist and the card's version when it was drawn, so a
    click on a card someone else has changed since is refused rather than applied blindly."""

    artist_id: RecordId = arg("The artist's id")
    version: Count = arg("The card's version when it was shown")


@registry.action("artist.move", permission=EDIT)
class MoveFromCard(CardAction):
    """Move the artist to the stage picked in the card's menu."""

    stage: StageName = arg("The stage picked")

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, f"#{self.artist_id}")
        before, after = crm.move_stage(ctx.uow, ctx.actor, artist, self.stage, expected_version=self.version)
        return _moved(ctx, artist, before.label, after.label)


@registry.command("artist note", permission=EDIT)
class LogInteraction(Command):
    """Log an interaction with an artist: a call, email, meeting, DM or plain note."""

    artist: ArtistRef = arg("Artist name, or an id like #12", rest=True)
    text: Text = arg("What happened", rest=True)
    type: InteractionKind = opt("What kind of interaction it was", default="note")

    @classmethod
    def chat_split(cls, words: list[str], lookup: Lookup) -> dict[str, str]:
        """``Alex Blue called about the EP``: the longest known artist name, then the text."""
        if len(words) < 2:
            raise missing(cls)
        name, rest = lookup(lambda uow: crm.split_leading_artist(uow, words))
        return {"artist": name, "text": " ".join(rest)}

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist)
        item = crm.log_interaction(ctx.uow, ctx.actor, artist, self.type, self.text)
        return Reply(text=_("Logged a {kind} with {name}.", kind=item.kind, name=artist.name), ephemeral=True,
                     actions=(_show_card(artist),))


@registry.action("artist.note_form", permission=EDIT)
class NoteForm(Command):
    """Open the form that logs an interaction."""

    artist_id: RecordId = arg("The artist's id")

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, f"#{self.artist_id}")
        return Reply(modal=Modal(
            NoteSubmit.key, _("Log interaction"),
            (ChoiceInput("kind", _("Type"), tuple(Option(k, k) for k in crm.INTERACTION_KINDS), initial="call"),
             TextInput("text", _("What happened"), multiline=True)),
            submit_label=_("Log"), private_metadata=str(artist.id)))


@registry.submit("artist.note", permission=EDIT)
class NoteSubmit(Command):
    """Log the interaction written in the form."""

    artist_id: RecordId = meta("The artist's id")
    kind: InteractionKind = opt("What kind of interaction it was", default="note")
    text: Text = arg("What happened")

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, f"#{self.artist_id}")
        crm.log_interaction(ctx.uow, ctx.actor, artist, self.kind, self.text)
        return card_reply(ctx, artist, note=_("Logged with {name}.", name=artist.name))


@registry.command("artist deal", permission=EDIT)
class AddDeal(Command):
    """Add an opportunity (a deal) with its value to an artist."""

    artist: ArtistRef = arg("Artist name, or an id like #12", rest=True)
    amount: Amount = arg("What the deal is worth, e.g. 1500")
    title: Text = arg("What the deal is, e.g. Summer tour", rest=True, metavar="TITLE")
    currency: Currency = opt("Currency code, EUR unless you say otherwise", default="EUR")
    close: Day | None = opt("When it should close, e.g. 2026-12-31")

    @classmethod
    def chat_split(cls, words: list[str], lookup: Lookup) -> dict[str, str]:
        """``Alex Blue 1500 Summer tour``: the first number after the name is the amount."""
        at = next((i for i, w in enumerate(words) if i > 0 and w.lstrip("-")[:1].isdigit()), None)
        if at is None:
            raise InvalidInput(_("Give an amount after the artist's name. Usage: {usage}", usage=usage_of(cls)))
        return {"artist": " ".join(words[:at]), "amount": words[at], "title": " ".join(words[at + 1:])}

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist)
        d = crm.add_deal(ctx.uow, ctx.actor, artist, amount=self.amount, title=self.title, currency=self.currency,
                         expected_close=self.close)
        return Reply(text=_("Deal #{id} for {name}: {title}, {value}.", id=d.id, name=artist.name, title=d.title,
                            value=totals({d.currency: d.value})), ephemeral=False,
                     actions=(button(DealStatusButton(deal_id=d.id, status="won"), _("Won"), "primary"),
                              button(DealStatusButton(deal_id=d.id, status="lost"), _("Lost")), _show_card(artist)))


@registry.action("artist.deal_form", permission=EDIT)
class DealForm(Command):
    """Open the form that adds a deal."""

    artist_id: RecordId = arg("The artist's id")

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, f"#{self.artist_id}")
        return Reply(modal=Modal(
            DealSubmit.key, _("Add deal"),
            (TextInput("title", _("Title")), TextInput("amount", _("Amount"), placeholder="1500"),
             TextInput("currency", _("Currency"), initial="EUR"),
             TextInput("close", _("Expected close (YYYY-MM-DD)"), required=False)),
            submit_label=_("Add"), private_metadata=str(artist.id)))


@registry.submit("artist.deal", permission=EDIT)
class DealSubmit(Command):
    """Add the deal written in the form."""

    artist_id: RecordId = meta("The artist's id")
    title: Text = arg("What the deal is")
    amount: Amount = arg("What the deal is worth")
    currency: Currency = opt("Currency code", default="EUR")
    close: Day | None = opt("When it should close")

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, f"#{self.artist_id}")
        crm.add_deal(ctx.uow, ctx.actor, artist, amount=self.amount, title=self.title, currency=self.currency,
                     expected_close=self.close)
        return card_reply(ctx, artist, note=_("Deal added for {name}.", name=artist.name))


@registry.command("artist deal-status", permission=EDIT)
class SetDealStatus(Command):
    """Mark a deal as won or lost."""

    deal_id: RecordId = arg("The deal's number, as shown on the card", metavar="DEAL_ID")
    status: DealOutcome = arg("won or lost")

    def run(self, ctx: Context) -> Reply:
        return _deal_closed(crm.set_deal_status(ctx.uow, ctx.actor, self.deal_id, self.status))


def _deal_closed(d: crm.Opportunity) -> Reply:
    return Reply(text=_("Deal #{id} ({title}, {value}) is {status}.", id=d.id, title=d.title,
                        value=totals({d.currency: d.value}), status=_(d.status)), ephemeral=False)


@registry.action("deal.status", permission=EDIT)
class DealStatusButton(SetDealStatus):
    """Mark the deal won or lost from its buttons."""

    def run(self, ctx: Context) -> Reply:
        d = crm.set_deal_status(ctx.uow, ctx.actor, self.deal_id, self.status)
        return Reply(text=_deal_closed(d).text, ephemeral=False, replace_original=True)


@registry.command("artist edit", permission=EDIT)
class EditArtist(ArtistFields):
    """Change an artist's details: --name, --genre, --city, --email, handles, --followers, --owner."""

    artist: ArtistRef = arg("Artist name, or an id like #12", rest=True)
    name: ArtistName | None = opt("Their new name")

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist)
        changes = self.field_changes(ctx)
        if self.name is not None:
            changes["name"] = self.name
        changed = crm.edit_artist(ctx.uow, ctx.actor, artist, changes)
        text = (_("Updated {name}: {fields}.", name=artist.name, fields=", ".join(f.replace("_id", "") for f in changed))
                if changed else _("Nothing changed: {name} already has those values.", name=artist.name))
        return Reply(text=text, actions=(_show_card(artist),))


@registry.command("artist archive", permission=EDIT)
class ArchiveArtist(Command):
    """Archive an artist: hidden from lists and the pipeline, kept with their history. Undo with the button."""

    artist: ArtistRef = arg("Artist name, or an id like #12", rest=True)

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist)
        crm.archive(ctx.uow, ctx.actor, artist)
        return _archived(artist)


def _archived(artist: crm.Artist) -> Reply:
    return Reply(text=_("Archived {name}.", name=artist.name), ephemeral=False,
                 actions=(button(RestoreFromCard(artist_id=artist.id, version=artist.version), _("Undo")),))


@registry.action("artist.archive", permission=EDIT)
class ArchiveFromCard(CardAction):
    """Archive the artist from their card."""

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, f"#{self.artist_id}")
        crm.archive(ctx.uow, ctx.actor, artist, expected_version=self.version)
        return _archived(artist)


@registry.command("artist restore", permission=EDIT)
class RestoreArtist(Command):
    """Bring an archived artist back into their pipeline."""

    artist: ArtistRef = arg("Artist name, or an id like #12", rest=True)

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist, include_archived=True)
        crm.archive(ctx.uow, ctx.actor, artist, restore=True)
        return Reply(text=_("Restored {name}.", name=artist.name), ephemeral=False)


@registry.action("artist.restore", permission=EDIT)
class RestoreFromCard(CardAction):
    """Restore the archived artist from their card (or undo an archive)."""

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, f"#{self.artist_id}", include_archived=True)
        crm.archive(ctx.uow, ctx.actor, artist, restore=True)
        return card_reply(ctx, artist, note=_("Restored {name}.", name=artist.name))
