"""The words of notifications: a domain event (or a reminder, a digest) as a platform-neutral
``Message``. In the core because the relay (``jobs/``) writes them and the handlers show them;
its buttons re-run commands, which every chat adapter routes back through the dispatcher."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.digest import Digest
from core.i18n import _, money, ngettext
from core.notifier import Action, Message
from core.scoring import dimension_label


def describe(event_type: str, p: dict[str, Any], who: str) -> Message:
    """One line for an event; ``who`` is the name of the member who caused it."""
    if event_type.startswith("request."):
        return _request(event_type, p, who)
    name = p.get("name") or f"#{p.get('artist_id')}"
    show = (Action(_("Show card"), "cmd.run", f"/artist show #{p['artist_id']}"),) if p.get("artist_id") else ()
    if event_type == "artist.created":
        text = _("{who} added {name} to {pipeline} at {stage}.", who=who, name=name, pipeline=p["pipeline"].upper(), stage=p["stage"])
    elif event_type == "artist.stage_changed":
        text = _("{who} moved {name} from {before} to {after}.", who=who, name=name,
                 before=f"{p['from_stage']} ({p['from_pipeline'].upper()})", after=f"{p['stage']} ({p['pipeline'].upper()})")
        if p.get("reason"):
            text += " " + _("Reason: {reason}", reason=p["reason"])
    elif event_type == "interaction.logged":
        text = _("{who} logged a {kind} with artist #{id}.", who=who, kind=p["kind"], id=p["artist_id"])
    elif event_type == "deal.created":
        text = _("{who} opened a deal of {value} for artist #{id}.", who=who, value=money(Decimal(p["value"]), p["currency"]), id=p["artist_id"])
    elif event_type in ("deal.won", "deal.lost"):
        text = _("Deal #{deal} ({value}) for artist #{id} is {status}.", deal=p["deal_id"], id=p["artist_id"],
                 value=money(Decimal(p["value"]), p["currency"]), status=_(event_type.split(".")[1]))
    elif event_type == "artist.archived":
        text = _("{who} archived artist #{id}.", who=who, id=p["artist_id"])
    elif event_type == "artist.restored":
        text = _("{who} restored artist #{id}.", who=who, id=p["artist_id"])
    elif event_type == "member.role_changed":
        text = _("{who} made {name} {role} (was {before}).", who=who, name=p["name"], role=p["role"], before=p["before"])
    elif event_type == "score.dropped":
        text = _("{name}'s Market Fit fell {drop} points, from {before} to {after}, mostly in {dimension}.",
                 name=name, drop=f"{p['drop']:.0f}", before=f"{p['previous']:.0f}", after=f"{p['score']:.0f}",
                 dimension=dimension_label(p["dimension"]))
        show = (Action(_("Show score"), "cmd.run", f"/score #{p['artist_id']}"),)
    elif event_type == "stream.preset_applied":
        text = _("{who} ran the preset {preset}.", who=who, preset=p["preset"])
        if p.get("say"):
            text += " " + p["say"]
    elif event_type == "stream.started":
        text = _("Live now! The stream started in OBS ({studio}).", studio=p["studio"])
    elif event_type == "stream.stopped":
        text = _("The stream ended ({studio}).", studio=p["studio"])
    elif event_type == "stream.scene_changed":
        text = _("OBS switched to the scene {scene}.", scene=p["scene"])
    elif event_type in ("stream.recording_started", "stream.recording_stopped"):
        text = (_("OBS started recording.") if event_type == "stream.recording_started"
                else _("OBS stopped recording."))
    elif event_type == "artist.stuck":
        text = _("{name} has been in {stage} for {days} days.", name=name, stage=p["stage"], days=p["days"])
    elif event_type == "task.created":
        text = _("{who} added task #{id} {title} to {board}.", who=who, id=p["card_id"], title=p["title"], board=p["board"])
        show = (Action(_("Show task"), "cmd.run", f"/task show {p['card_id']}"),)
    elif event_type == "task.moved":
        text = _("{who} moved task #{id} {title} from {before} to {after}.", who=who, id=p["card_id"], title=p["title"],
                 before=p["from_column"], after=p["column"])
        show = (Action(_("Show task"), "cmd.run", f"/task show {p['card_id']}"),)
    elif event_type == "case.created":
        text = _("Case {id} on {platform}: {action} {user}.", id=p["case_id"], platform=p["platform"].capitalize(),
                 action=p["action"], user=p["user_name"])
    elif event_type == "artist.updated":
        text = _("{who} updated artist #{id}: {fields}.", who=who, id=p["artist_id"], fields=", ".join(p.get("fields", [])))
    else:
        text = _("{event} by {who}.", event=event_type, who=who)
    return Message(text=text, actions=show)


def _request(event_type: str, p: dict[str, Any], who: str) -> Message:
    """Marketplace events: a new request carries Accept / Decline / Assign buttons for the block's
    channel; a move or an assignment says who did it, from where to where."""
    rid, block, name = p["request_id"], p["block"], p.get("name") or f"#{p.get('artist_id')}"
    show = Action(_("Show request"), "cmd.run", f"/market show {rid}")
    if event_type == "request.created":
        text = _("{who} opened request #{id} for {name}: {block}.", who=who, id=rid, name=name, block=block)
        extras = []
        if p.get("budget"):
            extras.append(_("Budget: {budget}", budget=money(Decimal(p["budget"]), "EUR")))
        if p.get("due"):
            extras.append(_("Due: {date}", date=p["due"]))
        if extras:
            text += " " + " · ".join(extras)
        text += "\n" + _("Brief: {brief}", brief=p.get("brief", ""))
        return Message(title=_("New request #{id} · {block}", id=rid, block=block), text=text, actions=(
            Action(_("Accept"), "market.move", f"{rid}:accepted"), Action(_("Decline"), "market.move", f"{rid}:declined"),
            Action(_("Assign…"), "market.assign_form", str(rid)), show))
    if event_type == "request.assigned":
        text = _("{who} assigned request #{id} ({block}, {name}) to {assignee}.", who=who, id=rid, block=block,
                 name=name, assignee=p.get("assignee", "?"))
    else:
        text = _("{who} moved request #{id} ({block}, {name}) from {before} to {after}.", who=who, id=rid, block=block,
                 name=name, before=p.get("from_status", "?"), after=p["status"])
        if p.get("note"):
            text += " " + _("Note: {note}", note=p["note"])
    return Message(text=text, actions=(show,))


def reminder(text: str, who: str) -> Message:
    return Message(title=_("Reminder from {who}", who=who), text=text)


def digest(d: Digest) -> Message:
    lines = [
        _("New artists: {n}", n=len(d.new_artists)) + (f" ({', '.join(d.new_artists[:10])})" if d.new_artists else ""),
        _("Stage moves: {n}", n=d.moves),
        _("Deals won: {n}", n=d.deals_won) + (f" ({' + '.join(money(v, c) for c, v in sorted(d.won_value.items()))})" if d.deals_won else ""),
        _("Stuck artists: {n}", n=d.stuck_total) + (f" ({', '.join(d.stuck[:5])})" if d.stuck else ""),
        _("Overdue requests: {n}", n=d.overdue_total) + (f" ({', '.join(d.overdue[:5])})" if d.overdue else ""),
        ngettext("Today: {n} event", "Today: {n} events", len(d.events_today)) + (f" ({', '.join(d.events_today[:8])})" if d.events_today else ""),
        _("Streams this week: {n}", n=len(d.streams_week)) + (f" ({', '.join(d.streams_week[:5])})"
                                                              if d.streams_week else ""),
        _("Tasks due today: {n}", n=len(d.tasks_due)) + (f" ({', '.join(d.tasks_due[:5])})" if d.tasks_due else ""),
        _("Overdue tasks: {n}", n=len(d.tasks_overdue)) + (f" ({', '.join(d.tasks_overdue[:5])})"
                                                           if d.tasks_overdue else ""),
    ]
    return Message(title=_("Daily digest for {day}", day=d.day.isoformat()), text="\n".join(lines),
                   actions=(Action(_("Pipeline"), "cmd.run", "/pipeline"),))


def calendar_reminder(event_id: int, title: str, when: str) -> Message:
    """A calendar event coming up, to each attendee."""
    return Message(text=_("Coming up: {title}, {when}.", title=title, when=when), title=_("Reminder"),
                   actions=(Action(_("Show event"), "cmd.run", f"/cal show {event_id}"),))


def task_due(card_id: int, title: str, due: str, overdue: bool) -> Message:
    """A task due today (or overdue), to its assignee."""
    text = (_("Task #{id} {title} was due {date}.", id=card_id, title=title, date=due) if overdue
            else _("Task #{id} {title} is due today.", id=card_id, title=title))
    return Message(text=text, title=_("Reminder"), actions=(Action(_("Done"), "cmd.run", f"/task done {card_id}"),))
