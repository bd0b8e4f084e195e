"""Live presets: a named set of studio changes ("go live", "BRB", "end") applied in one action.

A preset may switch the program scene, show or hide a source of that scene, start or stop the
stream, switch moderation's stream mode, and say something (the ``stream.preset_applied`` event,
routable like any other). Applying one records a run with what was there before, so the run can be
undone (the scene, the source and the stream mode come back; a stopped stream is not restarted).

Concurrency: each preset says what happens when it is asked while a run of it is under way —
``queue`` waits for that run (a row lock on the preset), ``drop`` refuses at once. A preset that
would end or interrupt a live stream (it stops the stream, or switches scenes while live) asks for
confirmation first. Every run is audited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import JSON, ForeignKey, Index, String, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from core import outbox
from core.db import Base, UnitOfWork, utcnow
from core.errors import ConcurrentChange, InvalidInput, NotFound
from core.i18n import _
from core.moderation import service as moderation
from core.moderation.store import Community
from core.studio import Studio, match_name
from core.team import Member, audit
from core.text import clean, fold

Policy = Literal["queue", "drop"]


class Preset(Base):
    __tablename__ = "stream_presets"
    __table_args__ = (Index("uq_stream_presets_name_key", "name_key", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    name_key: Mapped[str] = mapped_column(String(60))
    scene: Mapped[str | None] = mapped_column(String(200))
    #: A source of ``scene`` to show (``True``) or hide (``False``).
    source: Mapped[str | None] = mapped_column(String(200))
    source_visible: Mapped[bool | None] = mapped_column(default=None)
    #: "start" or "stop" the stream, or leave it.
    stream: Mapped[str | None] = mapped_column(String(5))
    #: "on" or "off": moderation's stream mode in every community.
    stream_mode: Mapped[str | None] = mapped_column(String(3))
    say: Mapped[str | None] = mapped_column(String(500))
    policy: Mapped[str] = mapped_column(String(5), default="queue")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PresetRun(Base):
    __tablename__ = "stream_preset_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    preset_id: Mapped[int] = mapped_column(ForeignKey("stream_presets.id", ondelete="CASCADE"), index=True)
    #: done, undone
    status: Mapped[str] = mapped_column(String(8), default="done")
    #: What was there before: {"scene": …, "source_visible": …, "stream_mode": {community id: bool}}.
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def _key(name: str) -> str:
    return fold(name)[:60]


def add(uow: UnitOfWork, actor: Member, studio: Studio, *, name: str, scene: str | None, source: str | None,
        visible: bool | None, stream: str | None, stream_mode: str | None, say: str | None, policy: Policy) -> Preset:
    name = clean(name, what=_("name"), max_len=60, allow_newlines=False)
    if not name:
        raise InvalidInput(_("Give the preset a name, e.g. BRB."))
    if not any((scene, source, stream, stream_mode, say)):
        raise InvalidInput(_("Say what the preset does: --scene, --show or --hide, --stream, --stream-mode or --say."))
    if uow.session.scalar(select(Preset.id).where(Preset.name_key == _key(name))) is not None:
        raise InvalidInput(_("There is already a preset called {name}; remove it first.", name=name))
    if source is not None and scene is None:
        raise InvalidInput(_("--show and --hide name a source of the preset's --scene: say the scene too."))
    if scene is not None:  # checked against OBS now; applying checks again (a scene may be deleted later)
        scene = match_name(scene, studio.scenes()[0], what=_("scene"))
        if source is not None:
            source = match_name(source, [n for _i, n, _v in studio.sources(scene)], what=_("source"))
    preset = Preset(name=name, name_key=_key(name), scene=scene, source=source, source_visible=visible, stream=stream,
                    stream_mode=stream_mode, say=clean(say, what=_("text"), max_len=500) if say else None,
                    policy=policy, created_by_id=actor.id)
    uow.session.add(preset)
    uow.session.flush()
    audit(uow, actor, "stream preset add", name)
    return preset


def find(uow: UnitOfWork, name: str) -> Preset:
    every = list(uow.session.scalars(select(Preset).order_by(Preset.name_key)))
    if not every:
        raise NotFound(_("There are no presets yet: /stream preset add NAME --scene SCENE …"))
    try:
        chosen = match_name(name, [p.name for p in every], what=_("preset"))
    except NotFound:
        raise NotFound(_("There is no preset called {name}. Presets: {names}.", name=name,
                         names=", ".join(p.name for p in every))) from None
    return next(p for p in every if p.name == chosen)


def every(uow: UnitOfWork) -> list[Preset]:
    return list(uow.session.scalars(select(Preset).order_by(Preset.name_key)))


def remove(uow: UnitOfWork, actor: Member, preset: Preset) -> None:
    uow.session.delete(preset)
    audit(uow, actor, "stream preset remove", preset.name)


def interrupts(preset: Preset, live: bool) -> bool:
    """Whether applying ``preset`` would end or interrupt a live stream."""
    return live and (preset.stream == "stop" or preset.scene is not None)


@dataclass(frozen=True)
class Applied:
    run: PresetRun
    done: tuple[str, ...]


def _lock(uow: UnitOfWork, preset: Preset) -> None:
    """Take the preset's row lock: ``queue`` waits for a run under way, ``drop`` refuses."""
    if uow.session.get_bind().dialect.name != "postgresql":
        return
    q = select(Preset.id).where(Preset.id == preset.id)
    try:
        with uow.session.begin_nested():
            uow.session.execute(q.with_for_update(nowait=preset.policy == "drop"))
    except OperationalError:
        raise ConcurrentChange(_("{name} is running already; this one was dropped (its policy is drop).",
                                 name=preset.name)) from None


def apply(uow: UnitOfWork, actor: Member, studio: Studio, preset: Preset) -> Applied:
    _lock(uow, preset)
    before: dict[str, Any] = {}
    done: list[str] = []
    names, current = studio.scenes()
    if preset.scene is not None:
        if preset.scene not in names:
            raise NotFound(_("The preset {name} switches to {scene}, which OBS no longer has; remove the preset and "
                             "add it again.", name=preset.name, scene=preset.scene))
        before["scene"] = current
    item: int | None = None
    if preset.source is not None and preset.scene is not None:
        items = {n: (i, v) for i, n, v in studio.sources(preset.scene)}
        if preset.source not in items:
            raise NotFound(_("The preset {name} names the source {source}, which {scene} no longer has.",
                             name=preset.name, source=preset.source, scene=preset.scene))
        item, was = items[preset.source]
        before["source_visible"] = was
    communities = list(uow.session.scalars(select(Community).order_by(Community.id)))
    if preset.stream_mode is not None:
        before["stream_mode"] = {str(c.id): moderation.rules_of(c).stream_mode for c in communities}
    if preset.scene is not None:
        studio.switch_scene(preset.scene)
        done.append(_("on air: {scene}", scene=preset.scene))
    if item is not None and preset.scene is not None and preset.source_visible is not None:
        studio.set_source(preset.scene, item, preset.source_visible)
        done.append(_("{source} shown", source=preset.source) if preset.source_visible
                    else _("{source} hidden", source=preset.source))
    if preset.stream is not None:
        live = studio.status().live
        if (preset.stream == "start") != live:
            studio.stream(preset.stream == "start")
            done.append(_("stream starting") if preset.stream == "start" else _("stream ending"))
    if preset.stream_mode is not None:
        on = preset.stream_mode == "on"
        for c in communities:
            if moderation.rules_of(c).stream_mode != on:
                moderation.set_stream(uow, actor, c, on)
        done.append(_("stream mode on") if on else _("stream mode off"))
    run = PresetRun(preset_id=preset.id, before=before, by_id=actor.id, at=utcnow())
    uow.session.add(run)
    uow.session.flush()
    outbox.record(uow, "stream.preset_applied", preset=preset.name, run_id=run.id, say=preset.say, by=actor.id)
    audit(uow, actor, "stream preset", preset.name, detail="; ".join(done))
    return Applied(run, tuple(done))


def undo(uow: UnitOfWork, actor: Member, studio: Studio, run_id: int) -> tuple[str, ...]:
    run = uow.session.get(PresetRun, run_id, with_for_update=True)
    if run is None:
        raise NotFound(_("There is no preset run #{id}.", id=run_id))
    if run.status == "undone":
        raise ConcurrentChange(_("That preset run was undone already."))
    preset = uow.session.get(Preset, run.preset_id)
    restored: list[str] = []
    if "scene" in run.before:
        studio.switch_scene(run.before["scene"])
        restored.append(_("on air: {scene}", scene=run.before["scene"]))
    if "source_visible" in run.before and preset is not None and preset.scene and preset.source:
        items = {n: i for i, n, _v in studio.sources(preset.scene)}
        if preset.source in items:
            studio.set_source(preset.scene, items[preset.source], bool(run.before["source_visible"]))
            restored.append(_("{source} as it was", source=preset.source))
    for cid, was in (run.before.get("stream_mode") or {}).items():
        c = uow.session.get(Community, int(cid))
        if c is not None and moderation.rules_of(c).stream_mode != was:
            moderation.set_stream(uow, actor, c, bool(was))
    if run.before.get("stream_mode"):
        restored.append(_("stream mode as it was"))
    run.status = "undone"
    audit(uow, actor, "stream preset undo", preset.name if preset else f"run {run_id}", detail="; ".join(restored))
    return tuple(restored)
