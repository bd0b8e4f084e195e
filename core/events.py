"""The catalogue of domain events: every event type the outbox can carry, declared once with its fields.

Each event is a pydantic model whose docstring says when it happens and whose fields (with their
descriptions) are what subscribers receive: notification routing, workflow conditions, and the
catalogue people read (``/mona help events``). ``core.outbox.record`` refuses an event that is not
declared here or whose fields do not match its declaration, so the catalogue cannot drift from
what the code emits.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class Event(BaseModel):
    """A fact the core recorded in a committed transaction."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ClassVar[str] = ""

    by: int | None = Field(None, description="The team member who caused it")


class ArtistEvent(Event):
    artist_id: int = Field(description="The artist's id")


class ArtistCreated(ArtistEvent):
    """An artist was added to a pipeline."""

    type = "artist.created"
    name: str = Field(description="The artist's name")
    pipeline: str = Field(description="mona or spark")
    stage: str = Field(description="The stage they start at")


class ArtistStuck(ArtistEvent):
    """An artist has been in the same stage for 7, 14, 30, 60 or 90 days (told once at each)."""

    type = "artist.stuck"
    name: str = Field(description="The artist's name")
    pipeline: str = Field(description="mona or spark")
    stage: str = Field(description="The stage they are in")
    days: int = Field(description="How many days they have been there: 7, 14, 30, 60 or 90")


class ArtistUpdated(ArtistEvent):
    """An artist's details were changed."""

    type = "artist.updated"
    fields: list[str] = Field(description="The details that changed")


class ArtistStageChanged(ArtistEvent):
    """An artist moved to another stage (possibly into SPARK)."""

    type = "artist.stage_changed"
    name: str = Field(description="The artist's name")
    from_pipeline: str = Field(description="The pipeline before the move")
    from_stage: str = Field(description="The stage before the move")
    pipeline: str = Field(description="The pipeline after the move")
    stage: str = Field(description="The stage after the move")
    reason: str | None = Field(None, description="Why, when someone said")


class ArtistArchived(ArtistEvent):
    """An artist was archived."""

    type = "artist.archived"


class ArtistRestored(ArtistEvent):
    """An archived artist was brought back."""

    type = "artist.restored"


class InteractionLogged(ArtistEvent):
    """A call, email, meeting, DM or note was logged with an artist."""

    type = "interaction.logged"
    interaction_id: int = Field(description="The interaction's id")
    kind: str = Field(description="call, email, meeting, dm or note")


class DealEvent(ArtistEvent):
    deal_id: int = Field(description="The deal's id")
    value: str = Field(description="What the deal is worth, as a decimal number")
    currency: str = Field(description="The ISO 4217 currency code")


class DealCreated(DealEvent):
    """A deal (an opportunity) was opened for an artist."""

    type = "deal.created"


class DealWon(DealEvent):
    """A deal was won."""

    type = "deal.won"


class DealLost(DealEvent):
    """A deal was lost."""

    type = "deal.lost"


class MemberRoleChanged(Event):
    """A team member was given another role."""

    type = "member.role_changed"
    member_id: int = Field(description="The member whose role changed")
    name: str = Field(description="Their name")
    before: str = Field(description="Their role before")
    role: str = Field(description="Their role now")


class RequestEvent(Event):
    request_id: int = Field(description="The marketplace request's id")
    artist_id: int = Field(description="The artist it is for")
    name: str = Field(description="The artist's name")
    block: str = Field(description="The service block's name")
    block_key: str = Field(description="The service block's key")
    status: str = Field(description="The request's status now")
    notify: list[dict[str, Any]] = Field(default_factory=list,
                                         description="Who is told besides the routing rules (channels, members)")


class RequestCreated(RequestEvent):
    """A marketplace request was opened."""

    type = "request.created"
    brief: str = Field(description="What is asked for")
    budget: str | None = Field(None, description="The budget, as a decimal number")
    due: str | None = Field(None, description="When it is due (ISO date)")


class RequestAssigned(RequestEvent):
    """A marketplace request was assigned to someone."""

    type = "request.assigned"
    assignee: str = Field(description="Who it was assigned to")


class RequestMoved(RequestEvent):
    from_status: str = Field(description="The status before")
    note: str | None = Field(None, description="A note left with the move")


class RequestAccepted(RequestMoved):
    """A marketplace request was accepted."""

    type = "request.accepted"


class RequestInProgress(RequestMoved):
    """Work started on a marketplace request."""

    type = "request.in_progress"


class RequestDelivered(RequestMoved):
    """A marketplace request was delivered."""

    type = "request.delivered"


class RequestClosed(RequestMoved):
    """A delivered marketplace request was closed."""

    type = "request.closed"


class RequestDeclined(RequestMoved):
    """A marketplace request was declined."""

    type = "request.declined"


class RequestCancelled(RequestMoved):
    """A marketplace request was cancelled."""

    type = "request.cancelled"


class ScoreDropped(ArtistEvent):
    """An artist's Market Fit score fell by more than MONA_SCORE_DROP points since their last score."""

    type = "score.dropped"
    name: str = Field(description="The artist's name")
    score_id: int | None = Field(None, description="The new score's id (none for a batch)")
    previous: float = Field(description="The score before, 0-100")
    score: float = Field(description="The score now, 0-100")
    drop: float = Field(description="How many points it fell")
    dimension: str = Field(description="The dimension that fell most: audience, market, monetization or competitive")


class CaseCreated(Event):
    """A moderation case was recorded: by the guard for a message it flagged, or by a moderator."""

    type = "case.created"
    case_id: int = Field(description="The case's number")
    platform: str = Field(description="discord or twitch")
    community: str = Field(description="The Discord server's or Twitch channel's id")
    user_name: str = Field(description="Who it is about")
    action: str = Field(description="warn, timeout, ban, unban or delete")
    rule: str | None = Field(None, description="The rule broken, for an automatic case (banned_word, link, flood …)")
    automatic: bool = Field(description="Whether the guard made it (else a moderator)")


class TaskEvent(Event):
    card_id: int = Field(description="The task's number")
    title: str = Field(description="The task's title")
    board: str = Field(description="The board it is on")
    column: str = Field(description="The column it is in now")
    assignee_id: int | None = Field(None, description="The member it is assigned to")
    artist_id: int | None = Field(None, description="The artist it is about")


class TaskCreated(TaskEvent):
    """A task was added to a board."""

    type = "task.created"


class TaskMoved(TaskEvent):
    """A task moved to another column of its board."""

    type = "task.moved"
    from_column: str = Field(description="The column it left")
    done: bool = Field(description="Whether it reached the board's last column (done)")


class StudioEvent(Event):
    studio: str = Field(description="The OBS it happened in, as HOST:PORT")


class StreamSceneChanged(StudioEvent):
    """OBS switched its program scene (from chat, a preset, or by hand in OBS)."""

    type = "stream.scene_changed"
    scene: str = Field(description="The scene now on air")


class StreamStarted(StudioEvent):
    """The stream went live in OBS."""

    type = "stream.started"


class StreamStopped(StudioEvent):
    """The stream ended in OBS."""

    type = "stream.stopped"


class StreamRecordingStarted(StudioEvent):
    """OBS started recording."""

    type = "stream.recording_started"


class StreamRecordingStopped(StudioEvent):
    """OBS stopped recording."""

    type = "stream.recording_stopped"


class StreamPresetApplied(Event):
    """A live preset was applied (its scene, source, stream and stream mode changes)."""

    type = "stream.preset_applied"
    preset: str = Field(description="The preset's name")
    run_id: int = Field(description="The run's id (its Undo button)")
    say: str | None = Field(None, description="What the preset says when it runs")


def _declared(base: type[Event]) -> list[type[Event]]:
    out: list[type[Event]] = []
    for sub in base.__subclasses__():
        if sub.type:
            out.append(sub)
        out += _declared(sub)
    return out


#: Every event type, by its name.
CATALOGUE: dict[str, type[Event]] = {cls.type: cls for cls in _declared(Event)}
EVENT_TYPES = frozenset(CATALOGUE)


def check(type_: str, payload: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless ``payload`` is what the catalogue declares for ``type_``."""
    cls = CATALOGUE.get(type_)
    if cls is None:
        raise ValueError(f"unknown event type {type_!r}")
    cls.model_validate(payload)


def describe(type_: str) -> tuple[str, list[tuple[str, str]]]:
    """What an event means and its fields (name, description), for the catalogue people read."""
    cls = CATALOGUE[type_]
    doc = (cls.__doc__ or "").strip()
    fields = [(name, info.description or "") for name, info in cls.model_fields.items() if name != "notify"]
    return doc, fields
