"""/flow: workflows from chat — add (YAML pasted, attached, in a form, or from a template), list, show,
enable and disable, run by hand, dry-run, runs, replay, stats; the Approve / Reject buttons of an
approval step. The definitions and runs are ``core.workflows``; runs execute on the workers
(``jobs.flows``), started through ``Services.flows``."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import yaml
from sqlalchemy import func, select

from core import events
from core import workflows as flows
from core.app import Command, Context
from core.db import utcnow
from core.errors import FieldError, InvalidInput, NotFound
from core.i18n import _
from core.team import Identity, Member, Permission
from handlers.args import Count, FileArg, RecordId, Seconds, Text, arg, opt
from handlers.parser import parse_channel, tokenize
from handlers.registry import RERUN, button, parse_command, registry
from handlers.render import local_datetime
from handlers.reply import Button, Field, Modal, Reply, Section, TextInput

READ = Permission.READ
EDIT = Permission.MANAGE_WORKFLOWS

#: Ready-made workflows for the common cases (``/flow add --template NAME``), as YAML.
TEMPLATES: dict[str, str] = {
    "welcome": """name: Welcome a new artist
trigger: artist.created
steps:
  - dm_owner: "{name} joined the {pipeline} pipeline at {stage}: plan the first call this week."
""",
    "wins": """name: Congratulate won deals
trigger: deal.won
when:
  - value >= 1000
steps:
  - post: {to: "#wins", text: "Deal #{deal_id} won: {value} {currency}"}
""",
    "stuck": """name: Stuck for 14 days
trigger: artist.stuck
when:
  - days == 14
steps:
  - dm_owner: "{name} has been in {stage} for {days} days: time for a follow-up?"
""",
    "golive": """name: Go-live announcement
trigger: stream.started
steps:
  - post: {to: "#live", text: "We are live now!"}
""",
}


def _started(ctx: Context, run_ids: list[int]) -> None:
    """Hand the runs to the workers once committed."""
    runner = ctx.services.flows
    if runner is None or not run_ids:
        return
    ids = list(run_ids)

    def go() -> None:
        runner.start(ids)

    ctx.defer(go)


def _checker(ctx: Context) -> Callable[[str], None]:
    """Parse a step's command line as chat would (an unknown command, a missing argument: refused with
    the parser's message), without running it."""
    def check(line: str) -> None:
        spec, rest = registry.find(tokenize(line))
        parse_command(spec, rest, lambda query: query(ctx.uow))
    return check


def _resolve_targets(ctx: Context, d: flows.Definition) -> flows.Definition:
    """Where posts and approvals go, on the platform the workflow is saved from: a channel link or a
    name (Slack and the console take names; Discord needs the channel picked, or its id)."""
    steps = []
    for i, step in enumerate(d.steps, 1):
        if step.kind in ("post", "approval") or (step.kind == "command" and step.args.get("to")):
            to = str(step.args["to"]).strip()
            platform, _sep, rest = to.partition(":")
            if platform in ("slack", "discord", "console") and rest:
                where, to = platform, rest
            else:
                where = ctx.caller.platform if ctx.caller.platform in ("slack", "discord") else "console"
            ref = parse_channel(to) if to.startswith(("#", "<#")) else None
            target = (ref.external_id or ref.name or "") if ref is not None else to
            if where == "discord" and not target.isdecimal():
                raise flows.DefinitionError("steps", _("Step {n}: on Discord, give the channel as a link (type # and "
                                                       "pick it) or its id, not {to}.", n=i, to=to))
            step = flows.Step(step.kind, {**step.args, "to": target, "platform": where})
        steps.append(step)
    return flows.Definition(d.name, d.trigger_kind, d.trigger, d.when, tuple(steps), d.on_error)


def _save(ctx: Context, source: str) -> Reply:
    d = flows.parse(source)
    flows.validate(d, _checker(ctx))
    if d.on_error:
        flows.by_name(ctx.uow, d.on_error)  # the error workflow exists
    d = _resolve_targets(ctx, d)
    w, created = flows.save(ctx.uow, ctx.actor, d, source)
    text = (_("Workflow {name} is saved and enabled: it runs on {trigger} from now on.", name=w.name,
              trigger=d.trigger_label) if created
            else _("Workflow {name} is now at version {v}.", name=w.name, v=w.version))
    if d.trigger_kind == "webhook":
        text += " " + _("Its webhook: POST /hooks/{name} signed with HMAC-SHA256 of the body (X-Mona-Signature: "
                        "sha256=…); /flow show {name} gives the secret to its owner.", name=w.name_key.replace(" ", "-"))
    return Reply(text=text, ephemeral=False, actions=(
        Button(_("Dry run"), RERUN, f"/flow test {_quoted(w.name)}"), Button(_("Show"), RERUN, f"/flow show {_quoted(w.name)}")))


def _quoted(name: str) -> str:
    return f'"{name}"' if " " in name else name


@registry.command("flow add", permission=EDIT, sensitive=True)
class FlowAdd(Command):
    """Add a workflow, or a new version of one: in a guided form (name, trigger, conditions, steps), or as
    YAML pasted here, attached as a file, or from a template (/flow templates) opened in a form."""

    definition: Text | None = arg("The workflow's YAML (leave it out for a form)", default=None, rest=True,
                                  metavar="YAML")
    #: The YAML is taken as typed, lines and quotes kept (``handlers.registry.raw_remainder``).
    raw_rest: ClassVar[str] = "definition"
    template: Literal["welcome", "wins", "stuck", "golive"] | None = opt(
        "Start from a template: welcome, wins, stuck or golive")
    file: FileArg | None = opt("The YAML as a file, attached")

    def run(self, ctx: Context) -> Reply:
        if self.file is not None:
            try:
                return _save(ctx, self.file.content.decode("utf-8"))
            except UnicodeDecodeError:
                raise InvalidInput(_("The file is not UTF-8 text.")) from None
        if self.definition:
            return _save(ctx, self.definition)
        if self.template is None:
            return Reply(modal=_guided_form())
        initial = TEMPLATES[self.template]
        if ctx.caller.platform not in ("slack", "discord"):
            return _save(ctx, initial)
        return Reply(modal=Modal(FlowAddSubmit.key, _("New workflow")[:24], (
            TextInput("definition", _("Workflow (YAML)"), multiline=True, initial=initial),),
            submit_label=_("Save")))


def _guided_form() -> Modal:
    return Modal(FlowGuidedSubmit.key, _("New workflow")[:24], (
        TextInput("name", _("Name"), placeholder=_("e.g. Wins")),
        TextInput("trigger", _("Trigger"), placeholder=_("an event (deal.won, artist.created …), cron 0 9 * * 1, manual "
                                                         "or webhook")),
        TextInput("when", _("Conditions, one a line (all must hold)"), multiline=True, required=False,
                  placeholder="value >= 5000"),
        TextInput("steps", _("Steps, one a line"), multiline=True,
                  placeholder=_("post #wins Deal won: {value}\ncommand /artist note #{artist_id} Won\n"
                                "dm_owner Well done!\ndelay 10m\napproval #approvals 1h Send it?\n"
                                "webhook https://example.com/hook"))),
        submit_label=_("Save"))


_STEP_WORDS = ("post", "command", "dm_owner", "webhook", "delay", "approval")


def _step_line(n: int, line: str) -> dict[str, Any]:
    """A step as the guided form takes it: ``KIND`` then what it needs, e.g. ``post #wins Won: {value}``."""
    kind, _sep, rest = line.strip().partition(" ")
    kind, rest = kind.lower().rstrip(":"), rest.strip()
    if kind not in _STEP_WORDS or not rest:
        raise FieldError("steps", _("Line {n}: a step starts with {kinds} and what it needs, like post #wins Won!",
                                    n=n, kinds=", ".join(_STEP_WORDS)))
    if kind == "post":
        to, _sep, text = rest.partition(" ")
        return {"post": {"to": to, "text": text.strip()}}
    if kind == "approval":
        parts = rest.split(" ", 2)
        step: dict[str, Any] = {"to": parts[0]}
        if len(parts) > 1:
            step["timeout"] = parts[1]
        if len(parts) > 2:
            step["text"] = parts[2]
        return {"approval": step}
    return {kind: rest}


def _guided_yaml(name: str, trigger: str, when: str, steps: str) -> str:
    """The YAML of what the guided form holds (it is what is stored, and /flow show shows)."""
    trigger = trigger.strip()
    data: dict[str, Any] = {"name": name.strip(),
                            "trigger": {"cron": trigger[5:].strip()} if trigger.lower().startswith("cron ") else trigger}
    conditions = [c.strip() for c in when.splitlines() if c.strip()]
    if conditions:
        data["when"] = conditions
    data["steps"] = [_step_line(n, line) for n, line in enumerate(steps.splitlines(), 1) if line.strip()]
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@registry.submit("flow.guided", permission=EDIT, sensitive=True)
class FlowGuidedSubmit(Command):
    """Save the workflow of the guided form: a name, a trigger, conditions and steps one a line."""

    name: Text = opt("The workflow's name")
    trigger: Text = opt("What starts it")
    when: Text | None = opt("Its conditions, one a line", default=None)
    steps: Text = opt("Its steps, one a line")

    def run(self, ctx: Context) -> Reply:
        source = _guided_yaml(self.name, self.trigger, self.when or "", self.steps)
        try:
            return _save(ctx, source)
        except flows.DefinitionError as e:  # shown beside the field it is about
            raise FieldError(e.part, e.message) from None


@registry.submit("flow.add", permission=EDIT, sensitive=True)
class FlowAddSubmit(Command):
    """Save the workflow typed in the form."""

    definition: Text = opt("The workflow's YAML")

    def run(self, ctx: Context) -> Reply:
        try:
            return _save(ctx, self.definition)
        except flows.DefinitionError as e:  # beside the YAML, with the form offered again as typed
            raise FieldError("definition", e.message) from None


@registry.command("flow templates", permission=READ)
class FlowTemplates(Command):
    """The ready-made workflows: welcome a new artist, a won deal in #wins, artists stuck 14 days, go-live."""

    def run(self, ctx: Context) -> Reply:
        return Reply(title=_("Workflow templates"), sections=tuple(
            Section(title=name, text=f"```\n{source}```") for name, source in TEMPLATES.items()),
            footer=_("/flow add --template NAME opens one in a form (or saves it from the console)."))


@registry.command("flow list", permission=READ)
class FlowList(Command):
    """Every workflow: its trigger, whether it is enabled, its version and its last run."""

    def run(self, ctx: Context) -> Reply:
        rows = list(ctx.uow.session.scalars(select(flows.Workflow).order_by(flows.Workflow.name).limit(50)))
        if not rows:
            return Reply(text=_("No workflow yet: /flow templates shows ready-made ones, /flow add saves one."))
        last: dict[int, dt.datetime] = {wid: at for wid, at in ctx.uow.session.execute(
            select(flows.WorkflowRun.workflow_id, func.max(flows.WorkflowRun.created_at))
            .group_by(flows.WorkflowRun.workflow_id))}
        tz = ctx.settings.timezone
        lines = [f"{'●' if w.enabled else '○'} {w.name} · {w.trigger} · v{w.version}"
                 + (f" · {_('last run')} {local_datetime(last[w.id], tz)}" if w.id in last else "") for w in rows]
        return Reply(title=_("Workflows"), text="\n".join(lines), footer=_("● enabled ○ disabled"))


def _describe_step(step: flows.Step) -> str:
    a = step.args
    if step.kind == "command":
        return (_("run {command} and post its answer in {to}", command=a["text"], to=a["to"]) if a.get("to")
                else _("run {command}", command=a["text"]))
    if step.kind == "post":
        return _("post in {to}: {text}", to=a["to"], text=a["text"])
    if step.kind == "dm_owner":
        return _("DM the owner: {text}", text=a["text"])
    if step.kind == "webhook":
        return _("POST to {url}", url=a["url"])
    if step.kind == "delay":
        return _("wait {s} s", s=a["seconds"])
    return _("ask {to} for an approval (within {s} s)", to=a["to"], s=a["timeout"])


@registry.command("flow show", permission=READ)
class FlowShow(Command):
    """A workflow: trigger, conditions, steps, version, and its YAML."""

    name: Text = arg("The workflow's name", rest=True, metavar="NAME")

    def run(self, ctx: Context) -> Reply:
        w = flows.by_name(ctx.uow, self.name)
        d = flows.definition_of(ctx.uow, w)
        source = ctx.uow.session.get(flows.WorkflowVersion, (w.id, w.version))
        conditions = f" {d.when.mode} ".join(str(c) for c in d.when.items) or _("none")
        steps = "\n".join(f"{i}. {_describe_step(s)}" for i, s in enumerate(d.steps, 1))
        fields = [Field(_("Trigger"), d.trigger_label), Field(_("Conditions"), conditions),
                  Field(_("State"), _("enabled") if w.enabled else _("disabled")), Field(_("Version"), str(w.version))]
        if d.on_error:
            fields.append(Field(_("On error"), d.on_error))
        sections = [Section(fields=tuple(fields)), Section(title=_("Steps"), text=steps)]
        if source is not None:
            sections.append(Section(title=_("YAML"), text=f"```\n{source.source}\n```"))
        if d.trigger_kind == "webhook" and ctx.actor.id == w.owner_id:
            sections.append(Section(title=_("Webhook secret (only you see it)"), text=w.secret))
        toggle = (button(FlowDisable(name=w.name), _("Disable")) if w.enabled else button(FlowEnable(name=w.name), _("Enable")))
        return Reply(title=_("Workflow {name}", name=w.name), sections=tuple(sections), ephemeral=True, actions=(
            toggle, Button(_("Dry run"), RERUN, f"/flow test {_quoted(w.name)}"),
            Button(_("Runs"), RERUN, f"/flow runs {_quoted(w.name)}")))


class _Toggle(Command):
    name: Text = arg("The workflow's name", rest=True, metavar="NAME")
    on: ClassVar[bool] = True

    def run(self, ctx: Context) -> Reply:
        w = flows.by_name(ctx.uow, self.name, lock=True)
        flows.set_enabled(ctx.uow, w, self.on)
        return Reply(text=_("{name} is enabled: it runs on events from now on.", name=w.name) if self.on
                     else _("{name} is disabled.", name=w.name), ephemeral=False,
                     replace_original=ctx.caller.via == "action")


@registry.command("flow enable", permission=EDIT, sensitive=True)
class FlowEnable(_Toggle):
    """Enable a workflow: it sees the events from now on (not those it missed)."""


@registry.command("flow disable", permission=EDIT, sensitive=True)
class FlowDisable(_Toggle):
    """Disable a workflow: its runs under way finish, no new one starts."""

    on: ClassVar[bool] = False


def _event_json(raw: str | None, d: flows.Definition) -> dict[str, Any]:
    """The trigger's fields for a manual or dry run: the JSON given, or sample values."""
    if raw:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as e:
            # Chat takes the double quotes as its own: {"amount": 5000} arrives as {amount: 5000}, which
            # reads as YAML's flow mapping.
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                raise InvalidInput(_("--event is a JSON object: {why} at column {col}.", why=e.msg, col=e.colno)) from None
        if not isinstance(value, dict):
            raise InvalidInput(_("--event is a JSON object, like {example}.", example='{"amount": 5000}'))
        return value
    if d.trigger_kind == "event":
        return {name: _sample_value(info.annotation) for name, info in events.CATALOGUE[d.trigger].model_fields.items()
                if name != "notify"} | {"event": d.trigger}
    if d.trigger_kind == "cron":
        return flows.cron_fields(dt.datetime.now(dt.UTC))
    return {}


def _sample_value(annotation: Any) -> Any:
    text = str(annotation)
    if "int" in text:
        return 1
    if "float" in text or "Decimal" in text:
        return 1000
    return "example"


@registry.command("flow test", permission=READ)
class FlowTest(Command):
    """A dry run: which conditions hold for an event (yours, or sample values) and what each step would
    do — nothing is changed and nothing sent."""

    name: Text = arg("The workflow's name", rest=True, metavar="NAME")
    event: Text | None = opt("The event's fields as JSON, e.g. {\"amount\": 5000}", metavar="JSON")

    def run(self, ctx: Context) -> Reply:
        w = flows.by_name(ctx.uow, self.name)
        d = flows.definition_of(ctx.uow, w)
        payload = _event_json(self.event, d)
        checks = flows.explain(d.when, payload)
        fires = flows.compile_conditions(d.when)(payload)
        lines = [f"{'✓' if ok else '✗'} {text}" for text, ok in checks] or [_("no conditions: every event")]
        steps = []
        for i, step in enumerate(d.steps, 1):
            try:
                rendered = flows.Step(step.kind, flows.render(step.args, payload))
                steps.append(f"{i}. {_('would')} {_describe_step(rendered)}")
            except InvalidInput as e:
                steps.append(f"{i}. ⚠️ {e.message}")
        verdict = _("It would run.") if fires else _("It would not run: a condition does not hold.")
        return Reply(title=_("Dry run of {name}", name=w.name), text=verdict, sections=(
            Section(title=_("Conditions"), text="\n".join(lines)), Section(title=_("Steps"), text="\n".join(steps))),
            footer=_("Nothing was changed and nothing sent."))


@registry.command("flow run", permission=EDIT, sensitive=True)
class FlowRun(Command):
    """Run a workflow now (a manual trigger), with the event's fields as JSON if its steps need some."""

    name: Text = arg("The workflow's name", rest=True, metavar="NAME")
    event: Text | None = opt("The fields its conditions and templates read, as JSON", metavar="JSON")

    def run(self, ctx: Context) -> Reply:
        w = flows.by_name(ctx.uow, self.name)
        if not w.enabled:
            raise InvalidInput(_("{name} is disabled: /flow enable {name} first.", name=w.name))
        d = flows.definition_of(ctx.uow, w)
        payload = _event_json(self.event, d) if self.event or d.trigger_kind in ("cron", "manual", "webhook") else {}
        if not flows.compile_conditions(d.when)(payload):
            raise InvalidInput(_("Its conditions do not hold for those fields: /flow test {name} says which.", name=w.name))
        run = flows.new_run(ctx.uow, w, payload, by_id=ctx.actor.id)
        _started(ctx, [run.id])
        return Reply(text=_("Run #{id} of {name} is queued.", id=run.id, name=w.name), ephemeral=False,
                     actions=(Button(_("Runs"), RERUN, f"/flow runs {_quoted(w.name)}"),))


def _run_line(r: flows.WorkflowRun, tz: str) -> str:
    took = (f" · {(r.finished_at - r.started_at).total_seconds():.1f} s" if r.finished_at and r.started_at else "")
    error = f" · {r.error}" if r.error else ""
    return f"#{r.id} {r.status} v{r.version} · {local_datetime(r.created_at, tz)}{took}{error}"


@registry.command("flow runs", permission=READ)
class FlowRuns(Command):
    """A workflow's last runs: status, version, when, how long, and why one failed."""

    name: Text = arg("The workflow's name", rest=True, metavar="NAME")

    def run(self, ctx: Context) -> Reply:
        w = flows.by_name(ctx.uow, self.name)
        rows = list(ctx.uow.session.scalars(select(flows.WorkflowRun).where(flows.WorkflowRun.workflow_id == w.id)
                                            .order_by(flows.WorkflowRun.id.desc()).limit(10)))
        if not rows:
            return Reply(text=_("{name} has not run yet.", name=w.name))
        tz = ctx.settings.timezone
        failed = [r for r in rows if r.status == "failed"]
        actions = tuple(Button(_("Replay #{id}", id=r.id), RERUN, f"/flow replay {r.id}") for r in failed[:3])
        return Reply(title=_("Runs of {name}", name=w.name), text="\n".join(_run_line(r, tz) for r in rows),
                     actions=actions)


@registry.command("flow run-steps", permission=READ)
class FlowRunSteps(Command):
    """One run, step by step: each step's outcome, how long it took, and what it said."""

    run_id: RecordId = arg("The run's number, as /flow runs shows it", metavar="RUN")

    def run(self, ctx: Context) -> Reply:
        r = ctx.uow.session.get(flows.WorkflowRun, self.run_id)
        if r is None:
            raise NotFound(_("There is no workflow run #{id}.", id=self.run_id))
        lines = [f"{s['step'] + 1}. {s['kind']} · {s['status']} · {s['ms']} ms · {s.get('detail', '')}" for s in r.steps]
        return Reply(title=_("Run #{id}: {status}", id=r.id, status=r.status), text="\n".join(lines) or _("no step yet"),
                     sections=(Section(title=_("Trigger"), text=json.dumps(r.trigger, ensure_ascii=False, default=str)[:1000]),))


@registry.command("flow replay", permission=EDIT, sensitive=True)
class FlowReplay(Command):
    """Run a past run again with the same trigger: with the version it ran or the current one, from the
    start or from a step."""

    run_id: RecordId = arg("The run's number, as /flow runs shows it", metavar="RUN")
    from_step: Count | None = opt("Start from this step (1 is the first)", metavar="N")
    version: Literal["ran", "current"] | None = opt("ran: the version it ran; current: the workflow as it is now")

    def run(self, ctx: Context) -> Reply:
        old = ctx.uow.session.get(flows.WorkflowRun, self.run_id)
        if old is None:
            raise NotFound(_("There is no workflow run #{id}.", id=self.run_id))
        w = ctx.uow.session.get(flows.Workflow, old.workflow_id)
        assert w is not None
        if self.version is None and old.version != w.version:
            base = f"/flow replay {old.id}" + (f" --from-step {self.from_step}" if self.from_step else "")
            return Reply(text=_("Run #{id} ran version {ran}; {name} is at version {now} now. Replay with which?",
                                id=old.id, ran=old.version, name=w.name, now=w.version), actions=(
                Button(_("The version it ran (v{v})", v=old.version), RERUN, f"{base} --version ran"),
                Button(_("The current version (v{v})", v=w.version), RERUN, f"{base} --version current")))
        version = w.version if self.version == "current" else old.version
        steps = len(flows.definition_of(ctx.uow, w, version).steps)
        start = (self.from_step or 1) - 1
        if not 0 <= start < steps:
            raise InvalidInput(_("--from-step is between 1 and {n}.", n=steps))
        run = flows.new_run(ctx.uow, w, dict(old.trigger), by_id=ctx.actor.id, version=version, replay_of=old.id,
                            next_step=start, depth=old.depth)
        _started(ctx, [run.id])
        return Reply(text=_("Run #{id} replays #{old} with version {v} from step {n}.", id=run.id, old=old.id, v=version,
                            n=start + 1), ephemeral=False)


@registry.command("flow replay-failed", permission=EDIT, sensitive=True)
class FlowReplayFailed(Command):
    """Replay every failed run of a workflow since a while ago (the version each ran)."""

    name: Text = arg("The workflow's name", rest=True, metavar="NAME")
    since: Seconds = opt("How far back, e.g. 24h (the default) or 7d", default=86400, metavar="DURATION")

    def run(self, ctx: Context) -> Reply:
        w = flows.by_name(ctx.uow, self.name)
        since = utcnow() - dt.timedelta(seconds=self.since)
        failed = list(ctx.uow.session.scalars(select(flows.WorkflowRun).where(
            flows.WorkflowRun.workflow_id == w.id, flows.WorkflowRun.status == "failed",
            flows.WorkflowRun.created_at >= since).order_by(flows.WorkflowRun.id).limit(100)))
        if not failed:
            return Reply(text=_("{name} has no failed run in that time.", name=w.name))
        runs = [flows.new_run(ctx.uow, w, dict(r.trigger), by_id=ctx.actor.id, version=r.version, replay_of=r.id,
                              depth=r.depth).id for r in failed]
        _started(ctx, runs)
        return Reply(text=_("{n} failed runs of {name} are replayed.", n=len(runs), name=w.name), ephemeral=False)


@registry.command("flow stats", permission=READ)
class FlowStats(Command):
    """Runs per workflow over the last 7 days: how many a day, the success rate, the median duration and the
    most frequent errors."""

    def run(self, ctx: Context) -> Reply:
        since = utcnow() - dt.timedelta(days=7)
        rows = ctx.uow.session.execute(select(flows.Workflow.name, flows.WorkflowRun.status, flows.WorkflowRun.created_at,
                                              flows.WorkflowRun.started_at, flows.WorkflowRun.finished_at,
                                              flows.WorkflowRun.error)
                                       .join(flows.Workflow, flows.Workflow.id == flows.WorkflowRun.workflow_id)
                                       .where(flows.WorkflowRun.created_at >= since)).all()
        if not rows:
            return Reply(text=_("No workflow ran in the last 7 days."))
        by_flow: dict[str, list[Any]] = {}
        for row in rows:
            by_flow.setdefault(row.name, []).append(row)
        sections = []
        for name, runs in sorted(by_flow.items()):
            days = Counter(r.created_at.date().isoformat() for r in runs)
            ended = [r for r in runs if r.status in ("done", "failed", "rejected")]
            ok = sum(1 for r in ended if r.status == "done")
            took = [(r.finished_at - r.started_at).total_seconds() for r in ended if r.finished_at and r.started_at]
            errors = Counter(r.error for r in runs if r.error).most_common(3)
            fields = [Field(_("Runs a day"), ", ".join(f"{d}: {n}" for d, n in sorted(days.items()))),
                      Field(_("Success"), f"{round(100 * ok / len(ended))} %" if ended else "—"),
                      Field(_("Median duration"), f"{statistics.median(took):.1f} s" if took else "—")]
            if errors:
                fields.append(Field(_("Most frequent errors"), "; ".join(f"{e} ({n})" for e, n in errors)))
            sections.append(Section(title=name, fields=tuple(fields)))
        return Reply(title=_("Workflows, last 7 days"), sections=tuple(sections))


class _Decide(Command):
    run_id: RecordId = arg("The waiting run")
    approve: ClassVar[bool] = True

    def run(self, ctx: Context) -> Reply:
        r = ctx.uow.session.get(flows.WorkflowRun, self.run_id, with_for_update=True)
        if r is None:
            raise NotFound(_("There is no workflow run #{id}.", id=self.run_id))
        ids = [i for i in ctx.uow.session.scalars(select(Identity.external_id).where(Identity.member_id == ctx.actor.id))]
        member = ctx.uow.session.get(Member, ctx.actor.id)
        assert member is not None
        flows.decide(ctx.uow, r, member, ids, self.approve)
        _started(ctx, [r.id])
        return Reply(text=_("Approved by {who}: run #{id} goes on.", who=ctx.actor.display_name, id=r.id) if self.approve
                     else _("Rejected by {who}: run #{id} stops.", who=ctx.actor.display_name, id=r.id),
                     ephemeral=False, replace_original=ctx.caller.via == "action")


@registry.action(flows.APPROVE, permission=READ, sensitive=True)
class FlowApprove(_Decide):
    """Approve a workflow's approval step."""


@registry.action(flows.REJECT, permission=READ, sensitive=True)
class FlowReject(_Decide):
    """Reject a workflow's approval step: the run stops."""

    approve: ClassVar[bool] = False
