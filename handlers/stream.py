"""/stream: OBS Studio from chat — status, scenes (a button each), sources, transitions, the stream,
the recording and audio inputs. Names are matched like artist names (``core.studio.match_name``).
Also live presets, planned stream sessions and their reports (``/stream report``: the figures, and
the chart as a file attached to the reply)."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo

from core import artists as crm
from core import presets, sessions
from core.app import Command, Context
from core.db import utcnow
from core.errors import InvalidInput
from core.i18n import _, ngettext, number
from core.studio import Refused, Studio, StudioUnavailable, match_name, no_studio, quoted
from core.team import Permission
from core.when import parse_when
from handlers.args import ArtistRef, Count, RecordId, Seconds, Switch, Text, Word, arg, meta, opt
from handlers.registry import RERUN, Lookup, button, missing, registry
from handlers.render import local_datetime
from handlers.reply import Attachment, Button, Field, Modal, Reply, Section, TextInput

READ = Permission.READ
RUN = Permission.RUN_STUDIO
OnOff = Literal["on", "off"]
StartStop = Literal["start", "stop"]


def studio(ctx: Context) -> Studio:
    if ctx.services.studio is None:
        raise no_studio()
    return ctx.services.studio


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@registry.command("stream status", permission=READ)
class StreamStatus(Command):
    """Whether OBS is connected and live: uptime, the scene on air, recording, dropped frames, CPU."""

    def run(self, ctx: Context) -> Reply:
        obs = studio(ctx)
        s = obs.status()
        dropped = (_("{n} of {total} ({pct} %)", n=number(s.dropped_frames), total=number(s.total_frames),
                     pct=f"{100 * s.dropped_frames / s.total_frames:.1f}") if s.total_frames else "0")
        fields = (Field(_("Live"), _("yes, for {time}", time=_duration(s.uptime_s or 0)) if s.live else _("no")),
                  Field(_("Scene"), s.scene),
                  Field(_("Recording"), _("yes") if s.recording else _("no")),
                  Field(_("Dropped frames"), dropped),
                  Field(_("CPU"), f"{s.cpu_percent:.1f} %"), Field(_("FPS"), f"{s.fps:.0f}"))
        return Reply(title=_("OBS at {address}: connected", address=obs.health().address),
                     sections=(Section(fields=fields),),
                     actions=(Button(_("Scenes"), RERUN, "/stream scenes"),))


@registry.command("stream scenes", permission=READ)
class StreamScenes(Command):
    """OBS's scenes, the one on air marked, with a button to switch to each."""

    def run(self, ctx: Context) -> Reply:
        names, current = studio(ctx).scenes()
        lines = [("▶ " if n == current else "• ") + n for n in names]
        buttons = tuple(Button(n[:75], RERUN, f"/stream scene {quoted(n)}", "primary" if n == current else None)
                        for n in names if n != current)
        return Reply(title=_("Scenes in OBS"), text="\n".join(lines), actions=buttons[:25])


@registry.command("stream scene", permission=RUN)
class StreamScene(Command):
    """Switch OBS to a scene (its name, or a part of it), with a transition if you say which."""

    scene: Text = arg("The scene, e.g. BRB", rest=True, metavar="SCENE")
    transition: Text | None = opt("The transition to use, e.g. Fade", metavar="TRANSITION")
    ms: Count | None = opt("How long the transition lasts, in milliseconds", metavar="MS")

    def run(self, ctx: Context) -> Reply:
        obs = studio(ctx)
        names, current = obs.scenes()
        scene = match_name(self.scene, names, what=_("scene"))
        transition = match_name(self.transition, obs.transitions()[0], what=_("transition")) if self.transition else None
        if scene == current and transition is None:
            return Reply(text=_("{scene} is already on air.", scene=scene))
        obs.switch_scene(scene, transition=transition, duration_ms=self.ms)
        return Reply(text=_("On air: {scene}.", scene=scene), ephemeral=False)


@registry.command("stream source", permission=RUN)
class StreamSource(Command):
    """Show or hide a source in a scene. Quote names with spaces: /stream source "Écran de fin" Banner off."""

    scene: Word = arg("The scene", metavar="SCENE")
    source: Word = arg("The source in it", metavar="SOURCE")
    state: OnOff = arg("on to show it, off to hide it")

    def run(self, ctx: Context) -> Reply:
        obs = studio(ctx)
        scene = match_name(self.scene, obs.scenes()[0], what=_("scene"))
        items = obs.sources(scene)
        name = match_name(self.source, [n for _i, n, _v in items], what=_("source"))
        item_id = next(i for i, n, _v in items if n == name)
        obs.set_source(scene, item_id, self.state == "on")
        return Reply(text=_("{source} is shown in {scene}.", source=name, scene=scene) if self.state == "on"
                     else _("{source} is hidden in {scene}.", source=name, scene=scene), ephemeral=False)


@registry.command("stream transition", permission=RUN)
class StreamTransition(Command):
    """Choose the transition OBS uses between scenes, and how long it lasts."""

    name: Word = arg("The transition, e.g. Fade or Cut", metavar="TRANSITION")
    ms: Count | None = arg("How long it lasts, in milliseconds", default=None, metavar="MS")

    def run(self, ctx: Context) -> Reply:
        obs = studio(ctx)
        name = match_name(self.name, obs.transitions()[0], what=_("transition"))
        obs.set_transition(name, self.ms)
        return Reply(text=_("Transition: {name}.", name=name) + (" " + _("{ms} ms.", ms=self.ms) if self.ms else ""))


@registry.command("stream start", permission=RUN, sensitive=True)
class StreamStart(Command):
    """Start streaming from OBS."""

    def run(self, ctx: Context) -> Reply:
        obs = studio(ctx)
        if obs.status().live:
            raise InvalidInput(_("The stream is already live."))
        try:
            obs.stream(True)
        except Refused as e:
            if e.status == 500:  # it is starting already
                raise InvalidInput(_("The stream is already live.")) from None
            raise
        return Reply(text=_("OBS is starting the stream."), ephemeral=False)


@registry.command("stream stop", permission=RUN, sensitive=True)
class StreamStop(Command):
    """End the stream in OBS (asks you to confirm first)."""

    confirm: Switch = opt("End it without asking", default=False)

    def run(self, ctx: Context) -> Reply:
        obs = studio(ctx)
        status = obs.status()
        if not status.live:
            raise InvalidInput(_("The stream is not live."))
        if not self.confirm:
            return Reply(text=_("End the stream, live for {time}?", time=_duration(status.uptime_s or 0)),
                         actions=(Button(_("End the stream"), RERUN, "/stream stop --confirm", "danger"),))
        obs.stream(False)
        return Reply(text=_("OBS is ending the stream."), ephemeral=False)


@registry.command("stream record", permission=RUN, sensitive=True)
class StreamRecord(Command):
    """Start or stop recording in OBS."""

    action: StartStop = arg("start or stop")

    def run(self, ctx: Context) -> Reply:
        obs = studio(ctx)
        recording = obs.status().recording
        if (self.action == "start") == recording:
            raise InvalidInput(_("OBS is already recording.") if recording else _("OBS is not recording."))
        try:
            obs.record(self.action == "start")
        except Refused as e:  # it started or stopped meanwhile (OBS takes a moment to say so)
            if e.status == 500:
                raise InvalidInput(_("OBS is already recording.")) from None
            if e.status == 501:
                raise InvalidInput(_("OBS is not recording.")) from None
            raise
        return Reply(text=_("OBS is recording.") if self.action == "start" else _("OBS stopped recording."),
                     ephemeral=False)


class _Mute(Command):
    input: Text = arg("The audio input, e.g. Mic/Aux", rest=True, metavar="INPUT")
    muted: ClassVar[bool] = True

    def run(self, ctx: Context) -> Reply:
        obs = studio(ctx)
        name = match_name(self.input, obs.inputs(), what=_("input"))
        obs.set_mute(name, self.muted)
        return Reply(text=_("{input} is muted.", input=name) if self.muted else _("{input} is live.", input=name),
                     ephemeral=False)


@registry.command("stream mute", permission=RUN)
class StreamMute(_Mute):
    """Mute an audio input in OBS."""


@registry.command("stream unmute", permission=RUN)
class StreamUnmute(_Mute):
    """Unmute an audio input in OBS."""

    muted: ClassVar[bool] = False


@registry.command("stream connect", permission=Permission.RUN_MAINTENANCE, sensitive=True)
class StreamConnect(Command):
    """Connect mona to an OBS (its WebSocket server: OBS → Tools → WebSocket Server Settings); the
    password is asked in a form, never in the command line."""

    host: Word = arg("The machine OBS runs on, e.g. 192.168.1.20", metavar="HOST")
    port: Count = arg("Its WebSocket port, 4455 unless changed", default=4455, metavar="PORT")

    def run(self, ctx: Context) -> Reply:
        if ctx.services.connect_studio is None:
            raise no_studio()
        return Reply(modal=Modal(StreamConnectSubmit.key, _("Connect OBS")[:24], (
            TextInput("password", _("OBS WebSocket password"), required=False,
                      placeholder=_("Tools → WebSocket Server Settings → Show Connect Info")),),
            submit_label=_("Connect"), private_metadata=f"{self.host}:{self.port}"))


@registry.submit("stream.connect", permission=Permission.RUN_MAINTENANCE, sensitive=True)
class StreamConnectSubmit(Command):
    """Connect to the OBS named in the form, with the password typed there."""

    host: Word = meta("The machine OBS runs on")
    port: Count = meta("Its WebSocket port")
    password: Text | None = opt("The WebSocket password", default=None)

    def audit_target(self) -> str:
        return f"{self.host}:{self.port}"  # never the password

    def run(self, ctx: Context) -> Reply:
        connect = ctx.services.connect_studio
        if connect is None:
            raise no_studio()
        candidate = connect(self.host, self.port, self.password or "")
        health = candidate.health()
        if health.state != "connected":
            candidate.close()
            raise StudioUnavailable(_("Not connected: {reason}. The OBS in use is unchanged.",
                                      reason=health.reason or health.state))
        if ctx.services.studio is not None:
            ctx.services.studio.close()
        ctx.services.studio = candidate
        return Reply(text=_("Connected to OBS at {address}. The password is kept in memory only: set OBS_HOST, "
                            "OBS_PORT and OBS_PASSWORD to connect again after a restart.", address=health.address),
                     ephemeral=True)


# ---------------------------------------------------------------- live presets

PresetStream = Literal["start", "stop"]
Policy = Literal["queue", "drop"]


@registry.command("stream preset add", permission=RUN, sensitive=True)
class PresetAdd(Command):
    """Save a live preset: what one action does — switch the scene, show or hide one of its sources,
    start or stop the stream, switch stream mode, and say something where stream.preset_applied is routed."""

    name: Text = arg("The preset's name, e.g. BRB", rest=True, metavar="NAME")
    scene: Text | None = opt("The scene it switches to", metavar="SCENE")
    show: Text | None = opt("A source of that scene it shows", metavar="SOURCE")
    hide: Text | None = opt("A source of that scene it hides", metavar="SOURCE")
    stream: PresetStream | None = opt("start or stop the stream")
    stream_mode: OnOff | None = opt("Moderation's stream mode: on or off")
    say: Text | None = opt("What it announces, e.g. Back in 5 minutes!", metavar="TEXT")
    policy: Policy = opt("When asked while it runs: queue (wait) or drop", default="queue")

    def run(self, ctx: Context) -> Reply:
        if self.show and self.hide:
            raise InvalidInput(_("A preset shows or hides one source: --show or --hide, not both."))
        p = presets.add(ctx.uow, ctx.actor, studio(ctx), name=self.name, scene=self.scene, source=self.show or self.hide,
                        visible=True if self.show else False if self.hide else None, stream=self.stream,
                        stream_mode=self.stream_mode, say=self.say, policy=self.policy)
        return Reply(text=_("Saved the preset {name}: {what}.", name=p.name, what=_describe(p)),
                     actions=(Button(_("Run {name}", name=p.name)[:75], RERUN, f"/stream preset {quoted(p.name)}"),))


def _describe(p: presets.Preset) -> str:
    parts = []
    if p.scene:
        parts.append(_("scene {scene}", scene=p.scene))
    if p.source:
        parts.append(_("show {source}", source=p.source) if p.source_visible else _("hide {source}", source=p.source))
    if p.stream:
        parts.append(_("start the stream") if p.stream == "start" else _("stop the stream"))
    if p.stream_mode:
        parts.append(_("stream mode {state}", state=p.stream_mode))
    if p.say:
        parts.append(_("say “{text}”", text=p.say))
    return ", ".join(parts) + f" ({p.policy})"


@registry.command("stream presets", permission=READ)
class PresetList(Command):
    """The live presets, each with a button that runs it."""

    def run(self, ctx: Context) -> Reply:
        every = presets.every(ctx.uow)
        if not every:
            return Reply(text=_("No presets yet: /stream preset add BRB --scene BRB --say Back in 5 minutes!"))
        return Reply(title=_("Live presets"), text="\n".join(f"• {p.name}: {_describe(p)}" for p in every),
                     actions=tuple(Button(p.name[:75], RERUN, f"/stream preset {quoted(p.name)}") for p in every[:25]))


@registry.command("stream preset remove", permission=RUN, sensitive=True)
class PresetRemove(Command):
    """Remove a live preset."""

    name: Text = arg("The preset", rest=True, metavar="NAME")

    def run(self, ctx: Context) -> Reply:
        p = presets.find(ctx.uow, self.name)
        presets.remove(ctx.uow, ctx.actor, p)
        return Reply(text=_("Removed the preset {name}.", name=p.name))


@registry.command("stream preset", permission=RUN)
class PresetApply(Command):
    """Run a live preset (asks you to confirm when it would end or interrupt the live stream); it can be undone."""

    name: Text = arg("The preset", rest=True, metavar="NAME")
    confirm: Switch = opt("Run it without asking, even while live", default=False)

    def run(self, ctx: Context) -> Reply:
        obs = studio(ctx)
        p = presets.find(ctx.uow, self.name)
        if not self.confirm and presets.interrupts(p, obs.status().live):
            return Reply(text=_("The stream is live: run {name} anyway ({what})?", name=p.name, what=_describe(p)),
                         actions=(Button(_("Run {name}", name=p.name)[:75], RERUN,
                                         f"/stream preset {quoted(p.name)} --confirm", "danger"),))
        applied = presets.apply(ctx.uow, ctx.actor, obs, p)
        return Reply(text=_("{name}: {done}.", name=p.name, done=", ".join(applied.done) or _("nothing to change")),
                     actions=(button(PresetUndo(run_id=applied.run.id), _("Undo")),), ephemeral=False)


@registry.action("stream.preset_undo", permission=RUN, sensitive=True)
class PresetUndo(Command):
    """Undo a preset's run: the scene, the source and stream mode as they were."""

    run_id: RecordId = arg("The run's number")

    def run(self, ctx: Context) -> Reply:
        restored = presets.undo(ctx.uow, ctx.actor, studio(ctx), self.run_id)
        return Reply(text=_("Undone: {what}.", what=", ".join(restored) or _("nothing to restore")), ephemeral=False)


# ---------------------------------------------------------------- stream sessions


@registry.command("stream plan", permission=RUN)
class StreamPlan(Command):
    """Plan a stream for an artist: a reminder before it, and the stream OBS runs then is attached to it."""

    artist: ArtistRef = arg("The artist: a name, or an id like #12", rest=True)
    when: Text = arg("When it starts, e.g. friday 20:00 or 2026-12-12 21:00 (the team's timezone)", rest=True,
                     metavar="WHEN")
    duration: Seconds | None = opt("How long, e.g. 1h30m (2h unless you say)")
    title: Text | None = opt("Its title", metavar="TITLE")

    @classmethod
    def chat_split(cls, words: list[str], lookup: Lookup) -> dict[str, str]:
        """``Alex Blue friday 20:00``: the longest known artist name, then the time."""
        if len(words) < 2:
            raise missing(cls)
        name, rest = lookup(lambda uow: crm.split_leading_artist(uow, words))
        if not rest:
            raise InvalidInput(_("Say when after the artist, e.g. /stream plan Alex friday 20:00."))
        return {"artist": name, "when": " ".join(rest)}

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist)
        now = utcnow()
        start = parse_when(self.when, tz=ctx.settings.timezone, now=now)
        if start is None:
            raise InvalidInput(_("I cannot read a time in \"{text}\". Try friday 20:00 or 2026-12-12 21:00.",
                                 text=self.when))
        where = ctx.caller.channel_id
        target, label = (where, f"#{where}") if where else (f"user:{ctx.caller.user_id}", _("you"))
        session = sessions.plan(ctx.uow, ctx.actor, artist, start=start,
                                duration=dt.timedelta(seconds=self.duration or 7200), title=self.title,
                                platform=ctx.caller.platform, target=target, label=label, now=now)
        tz = ctx.settings.timezone
        return Reply(text=_("Planned session #{id}: {title}, {start} to {end} ({tz}); a reminder 30 minutes before.",
                            id=session.id, title=session.title, start=local_datetime(start, tz),
                            end=local_datetime(session.planned_end or start, tz), tz=tz), ephemeral=False)


@registry.command("stream sessions", permission=READ)
class StreamSessions(Command):
    """The stream sessions to come."""

    def run(self, ctx: Context) -> Reply:
        tz = ctx.settings.timezone
        rows = sessions.upcoming(ctx.uow, utcnow())
        if not rows:
            return Reply(text=_("No stream planned: /stream plan ARTIST WHEN."))
        return Reply(title=_("Streams to come"), text="\n".join(
            f"#{s.id} {s.title}: {local_datetime(s.planned_start, tz) if s.planned_start else '?'}" for s in rows))


@registry.command("stream report", permission=READ)
class StreamReport(Command):
    """After a stream: how long it ran, the time in each scene, chat messages per minute, the moderation
    actions and the peak of viewers Twitch gave, with a chart."""

    session: RecordId | None = arg("The session's number (the last stream when left out)", default=None,
                                   metavar="SESSION")

    def run(self, ctx: Context) -> Reply:
        charts = Path(ctx.settings.data_dir or tempfile.gettempdir()) / "reports"
        r = sessions.report(ctx.uow, self.session, now=utcnow(), charts=charts)
        tz = ctx.settings.timezone
        scenes = "\n".join(_("{scene}: {time}", scene=s, time=_duration(t)) for s, t in r.scenes) or _("none seen")
        moderation = ", ".join(f"{a} {n}" for a, n in r.moderation) or _("none")
        fields = (Field(_("Duration"), _duration(r.duration.total_seconds())),
                  Field(_("Moderation actions"), moderation),
                  Field(_("Chat"), _chat_figures(r, tz)),
                  Field(_("Peak viewers"), _peak(r, tz)))
        title = _("Stream report #{id}: {title}", id=r.session.id, title=r.session.title)
        files = (Attachment(r.chart, _("Chart of stream #{id}", id=r.session.id)),) if r.chart else ()
        footer = _("The chart could not be drawn ({why}).", why=r.chart_problem) if r.chart_problem else None
        return Reply(title=title, sections=(Section(fields=fields), Section(title=_("Time in each scene"), text=scenes)),
                     footer=footer, files=files, ephemeral=False)


PLATFORM_NAMES = {"twitch": "Twitch", "discord": "Discord"}


def _clock(at: dt.datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%H:%M")


def _chat_figures(r: sessions.Report, tz: str) -> str:
    """``124 messages (Twitch 100, Discord 24), 3.1 a minute; busiest minute 20:14 with 27``."""
    if not r.chat.total:
        return _("no message seen")
    platforms = ", ".join(f"{PLATFORM_NAMES.get(p, p)} {number(n)}" for p, n in r.chat.by_platform.items())
    figures = ngettext("{count} message ({platforms}), {rate} a minute", "{count} messages ({platforms}), {rate} a minute",
                       r.chat.total, count=number(r.chat.total), platforms=platforms,
                       rate=number(r.chat.per_minute(r.duration), 1))
    busiest = r.chat.busiest
    if busiest is not None:
        figures += "; " + _("busiest minute {time} with {n}", time=_clock(busiest[0], tz), n=number(busiest[1]))
    return figures


def _peak(r: sessions.Report, tz: str) -> str:
    peak = r.peak_viewers
    if peak is None:
        return _("Twitch did not say")
    return _("{n} at {time}", n=number(peak[1]), time=_clock(peak[0], tz))
