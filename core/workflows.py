"""Workflows: a trigger, conditions on its fields and ordered steps, versioned, owned by a member.

A workflow is written as a small YAML document (``parse``), e.g.::

    name: Wins
    trigger: deal.won              # an event of the catalogue, {cron: "0 9 * * 1"}, manual or webhook
    when:                          # optional: one condition, a list (all must hold), or {all: […]} / {any: […]}
      - amount >= 5000
    steps:
      - post: {to: "#wins", text: "{title} won: {amount}"}
      - command: /artist note #{artist_id} Deal won ({title})
      - delay: 10m
      - approval: {to: "#approvals", timeout: 1h, approver: "@sam"}
      - dm_owner: "Congratulations on {title}!"
      - webhook: {url: "https://example.com/hook", body: {artist: "{artist_id}"}}
    on_error: Tell the team        # optional: the workflow run when a run of this one fails

Everything a definition names is checked when it is saved (``validate``): the event type, each
condition's field against the fields the trigger gives (``trigger_fields``), every ``{field}`` of a
template, the cron expression (croniter; the message says which field is wrong), the commands (by
the caller's parser, ``check_command``), durations. A definition that fails is not stored.

Every edit is a new version (``WorkflowVersion``); a run keeps the version it ran. ``Workflow.since_event``
is the last outbox event when it was enabled: it sees only events after that. Conditions compile to
plain Python predicates (``compile_conditions``), which the matcher (``Matcher``) indexes by event type.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import yaml
from croniter import croniter
from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, case, func, select
from sqlalchemy.orm import Mapped, mapped_column

from core import events
from core.db import Base, UnitOfWork, utcnow
from core.errors import InvalidInput, NotFound
from core.i18n import _
from core.moderation.engine import parse_duration
from core.outbox import OutboxEvent
from core.team import Member
from core.text import fold as fold_key

#: A chain of workflows triggering each other stops at this depth (an event caused by a run of depth
#: N has depth N + 1; runs are not made from events at this depth).
MAX_DEPTH = 5
MAX_STEPS = 30
MAX_SOURCE = 20_000
STEP_KINDS = ("command", "post", "dm_owner", "webhook", "delay", "approval")
TriggerKind = Literal["event", "cron", "manual", "webhook"]
Op = Literal["==", "!=", ">=", "<=", ">", "<", "in", "not in", "contains"]
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|>=|<=|>|<|not in|in|contains)\s*(.+?)\s*$")
#: What a cron, manual or webhook trigger gives its conditions and templates.
CRON_FIELDS = ("date", "time", "weekday")
#: Runs kept: none older than ``MONA_FLOW_KEEP_DAYS`` days, at most this many per workflow.
KEEP_RUNS = 1000


class Workflow(Base):
    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("name_key", name="uq_workflows_name_key"), Index("ix_workflows_trigger", "trigger"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    name_key: Mapped[str] = mapped_column(String(80))
    owner_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    #: The event type, or "cron", "manual", "webhook".
    trigger: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(default=1)
    enabled: Mapped[bool] = mapped_column(default=True)
    #: The last outbox event when it was enabled: it sees only later ones.
    since_event: Mapped[int] = mapped_column(default=0)
    #: The secret of its incoming webhook (HMAC-SHA256 of the body).
    secret: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_hex(24))
    #: When its cron schedule last fired (so each time fires once).
    cron_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WorkflowVersion(Base):
    __tablename__ = "workflow_versions"

    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(MAX_SOURCE))
    by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


RunStatus = Literal["queued", "running", "waiting", "done", "failed", "rejected"]


class WorkflowRun(Base):
    __tablename__ = "workflow_runs"
    __table_args__ = (UniqueConstraint("workflow_id", "event_id", name="uq_workflow_runs_event"),
                      Index("ix_workflow_runs_workflow", "workflow_id", "created_at"),
                      Index("ix_workflow_runs_status", "status", "wake_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column()
    #: The outbox event that triggered it (None: cron, manual, webhook, replay, error workflow).
    event_id: Mapped[int | None] = mapped_column(default=None)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Who made it run (manual, replay) or caused its event.
    by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), default=None)
    depth: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    next_step: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    #: Each step's outcome: {"step", "kind", "status", "ms", "detail"}.
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(String(500), default="")
    #: When a waiting run goes on (a delay's end, an approval's timeout).
    wake_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    replay_of: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


# ---------------------------------------------------------------- the definition


@dataclass(frozen=True)
class Condition:
    field: str
    op: Op
    value: Any

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.value!r}"


@dataclass(frozen=True)
class Conditions:
    mode: Literal["all", "any"] = "all"
    items: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Step:
    kind: str
    #: The step's settings as written (templates unrendered), e.g. {"to": "#wins", "text": "…"}.
    args: dict[str, Any]


@dataclass(frozen=True)
class Definition:
    name: str
    trigger_kind: TriggerKind
    #: The event type for an event trigger; the cron expression for a cron one.
    trigger: str
    when: Conditions
    steps: tuple[Step, ...]
    on_error: str | None = None

    @property
    def trigger_type(self) -> str:
        """What ``Workflow.trigger`` holds: the event type, or cron, manual, webhook."""
        return self.trigger if self.trigger_kind == "event" else self.trigger_kind

    @property
    def trigger_label(self) -> str:
        return self.trigger if self.trigger_kind in ("event", "cron") else self.trigger_kind

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "trigger_kind": self.trigger_kind, "trigger": self.trigger,
                "when": {"mode": self.when.mode, "items": [[c.field, c.op, c.value] for c in self.when.items]},
                "steps": [{"kind": s.kind, "args": s.args} for s in self.steps], "on_error": self.on_error}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Definition:
        when = data.get("when") or {}
        return Definition(data["name"], data["trigger_kind"], data["trigger"],
                          Conditions(when.get("mode", "all"), tuple(Condition(f, o, v) for f, o, v in when.get("items", []))),
                          tuple(Step(s["kind"], dict(s["args"])) for s in data["steps"]), data.get("on_error"))


class DefinitionError(InvalidInput):
    """What is wrong with a definition, and in which part of it: name, trigger, when or steps (a
    guided form shows it beside that field)."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


def _in(part: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, its refusal tagged with the part of the definition it is about."""
    try:
        return fn(*args)
    except DefinitionError:
        raise
    except InvalidInput as e:
        raise DefinitionError(part, e.message) from None


def _where(e: yaml.MarkedYAMLError) -> str:
    mark = e.problem_mark
    return _("line {line}, column {column}", line=mark.line + 1, column=mark.column + 1) if mark else ""


def parse(source: str) -> Definition:
    """A definition from its YAML; what does not parse says where (line and column) and why."""
    if len(source) > MAX_SOURCE:
        raise InvalidInput(_("A workflow is at most {n} characters of YAML.", n=MAX_SOURCE))
    try:
        data = yaml.safe_load(source)
    except yaml.MarkedYAMLError as e:
        raise InvalidInput(_("The YAML does not parse at {where}: {problem}.", where=_where(e),
                             problem=e.problem or e.context or "?")) from None
    except yaml.YAMLError as e:
        raise InvalidInput(_("The YAML does not parse: {problem}.", problem=str(e))) from None
    if not isinstance(data, dict):
        raise InvalidInput(_("A workflow is a YAML mapping with name, trigger and steps."))
    unknown = sorted(set(data) - {"name", "trigger", "when", "steps", "on_error"})
    if unknown:
        raise InvalidInput(_("A workflow has name, trigger, when, steps and on_error, not {keys}.", keys=", ".join(unknown)))
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 80:
        raise DefinitionError("name", _("Give the workflow a name (at most 80 characters): name: Wins"))
    kind, trigger = _in("trigger", _trigger, data.get("trigger"))
    when = _in("when", _conditions, data.get("when"))
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise DefinitionError("steps", _("A workflow needs steps: a list such as - post: {to: \"#wins\", text: \"…\"}"))
    if len(raw_steps) > MAX_STEPS:
        raise DefinitionError("steps", _("A workflow has at most {n} steps.", n=MAX_STEPS))
    steps = tuple(_in("steps", _step, i, s) for i, s in enumerate(raw_steps, 1))
    on_error = data.get("on_error")
    return Definition(name, kind, trigger, when, steps, str(on_error).strip() if on_error else None)


def _trigger(raw: Any) -> tuple[TriggerKind, str]:
    if isinstance(raw, dict) and set(raw) == {"cron"}:
        expr = str(raw["cron"]).strip()
        check_cron(expr)
        return "cron", expr
    text = str(raw or "").strip()
    if text in ("manual", "webhook"):
        return text, text  # type: ignore[return-value]
    if text in events.EVENT_TYPES:
        return "event", text
    raise InvalidInput(_("trigger is an event ({examples} …; /mona help events lists them), {{cron: \"0 9 * * 1\"}}, "
                         "manual or webhook, not {value}.", examples="deal.won, artist.created", value=text or "nothing"))


CRON_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def check_cron(expr: str) -> None:
    """Refuse a cron expression croniter does not take, naming the field that is wrong."""
    parts = expr.split()
    if len(parts) != 5:
        raise InvalidInput(_("A cron schedule has 5 fields (minute hour day-of-month month day-of-week), like 0 9 * * 1; "
                             "{expr} has {n}.", expr=expr, n=len(parts)))
    for i, part in enumerate(parts):
        probe = ["*"] * 5
        probe[i] = part
        if not croniter.is_valid(" ".join(probe)):
            raise InvalidInput(_("In the cron schedule {expr}, the {field} field {part} is not valid.", expr=expr,
                                 field=CRON_FIELD_NAMES[i], part=part))
    if not croniter.is_valid(expr):
        raise InvalidInput(_("The cron schedule {expr} is not valid.", expr=expr))


def _conditions(raw: Any) -> Conditions:
    if raw is None:
        return Conditions()
    mode: Literal["all", "any"] = "all"
    if isinstance(raw, dict):
        if len(raw) != 1 or next(iter(raw)) not in ("all", "any"):
            raise InvalidInput(_("when is a condition, a list of them, or all: […] / any: […]."))
        mode = "any" if "any" in raw else "all"
        raw = raw[mode]
    items = raw if isinstance(raw, list) else [raw]
    return Conditions(mode, tuple(parse_condition(str(c)) for c in items))


def parse_condition(text: str) -> Condition:
    m = _CONDITION.match(text)
    if m is None:
        raise InvalidInput(_("{text} is not a condition; write FIELD OP VALUE, e.g. amount >= 5000 or "
                             "stage == Showcase (OP: == != >= <= > < in, not in, contains).", text=text))
    fld, op, raw = m.group(1), m.group(2), m.group(3)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if op in ("in", "not in") and not isinstance(value, list):
        raise InvalidInput(_("{op} takes a list, like genre in [pop, rap]: {text}", op=op, text=text))
    if op in (">=", "<=", ">", "<") and not isinstance(value, int | float):
        raise InvalidInput(_("{op} compares numbers: {text}", op=op, text=text))
    return Condition(fld, op, value)  # type: ignore[arg-type]


def _step(i: int, raw: Any) -> Step:
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in STEP_KINDS:
        raise InvalidInput(_("Step {n} is one of {kinds}, like - post: {{to: \"#wins\", text: \"…\"}}.", n=i,
                             kinds=", ".join(STEP_KINDS)))
    kind, value = next(iter(raw.items()))
    if kind == "command" and isinstance(value, dict):  # {run: "/pipeline", to: "#team"}: its answer posted there
        given = _mapping(i, kind, value, required=("run",), optional=("to",))
        if not str(given["run"]).strip().startswith("/"):
            raise InvalidInput(_("Step {n}: a command starts with /, like /artist note #{{artist_id}} …", n=i))
        return Step(kind, {"text": str(given["run"]).strip(), **({"to": str(given["to"])} if given.get("to") else {})})
    if kind in ("command", "dm_owner"):
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(_("Step {n} ({kind}) takes a text.", n=i, kind=kind))
        args: dict[str, Any] = {"text": value.strip()}
        if kind == "command" and not args["text"].startswith("/"):
            raise InvalidInput(_("Step {n}: a command starts with /, like /artist note #{{artist_id}} …", n=i))
    elif kind == "delay":
        args = {"seconds": _seconds(i, value)}
    elif kind == "post":
        args = _mapping(i, kind, value, required=("to", "text"), optional=())
    elif kind == "webhook":
        args = _mapping(i, kind, {"url": value} if isinstance(value, str) else value, required=("url",),
                        optional=("body",))
        if not str(args["url"]).startswith(("http://", "https://")):
            raise InvalidInput(_("Step {n}: a webhook's url starts with http:// or https://.", n=i))
    else:  # approval
        args = _mapping(i, kind, value, required=("to",), optional=("timeout", "approver", "text"))
        args["timeout"] = _seconds(i, args.get("timeout", "1h"))
    return Step(kind, args)


def _seconds(i: int, value: Any) -> int:
    try:
        seconds = value if isinstance(value, int) else parse_duration(str(value))
    except ValueError:
        raise InvalidInput(_("Step {n}: {value} is not a duration; write it like 10m, 1h30m or 2d.", n=i,
                             value=value)) from None
    if not 1 <= seconds <= 30 * 86400:
        raise InvalidInput(_("Step {n}: a wait lasts from a second to 30 days.", n=i))
    return int(seconds)


def _mapping(i: int, kind: str, value: Any, *, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(_("Step {n} ({kind}) takes {fields}.", n=i, kind=kind, fields=", ".join(required + optional)))
    missing = [k for k in required if not value.get(k)]
    unknown = sorted(set(value) - set(required) - set(optional))
    if missing or unknown:
        raise InvalidInput(_("Step {n} ({kind}) takes {fields}.", n=i, kind=kind, fields=", ".join(required + optional)))
    return dict(value)


# ---------------------------------------------------------------- checking against what the trigger gives


def trigger_fields(d: Definition) -> frozenset[str] | None:
    """The fields conditions and templates may use; None when any may come (manual, webhook)."""
    if d.trigger_kind == "event":
        return frozenset(events.CATALOGUE[d.trigger].model_fields) - {"notify"}
    if d.trigger_kind == "cron":
        return frozenset(CRON_FIELDS)
    return None


def template_fields(template: Any) -> set[str]:
    """The ``{field}`` names a template (or a nested body) uses."""
    if isinstance(template, dict):
        return set().union(*(template_fields(v) for v in template.values())) if template else set()
    if isinstance(template, list):
        return set().union(*(template_fields(v) for v in template)) if template else set()
    if not isinstance(template, str):
        return set()
    try:
        return {name.split(".")[0].split("[")[0] for _lit, name, _spec, _conv in string.Formatter().parse(template)
                if name}
    except ValueError:
        raise InvalidInput(_("{template} has an unclosed {{ or }}: write {{{{ for a brace.", template=template)) from None


def validate(d: Definition, check_command: Callable[[str], None]) -> None:
    """Everything named exists: condition and template fields, and commands (``check_command``
    parses a command line as the caller's parser would, raising ``InvalidInput``)."""
    fields = trigger_fields(d)
    if fields is not None:
        known = ", ".join(sorted(fields))
        for c in d.when.items:
            if c.field not in fields:
                raise DefinitionError("when", _("The trigger {trigger} has no field {field}; it has {fields}.",
                                                trigger=d.trigger_label, field=c.field, fields=known))
    for i, step in enumerate(d.steps, 1):
        used = _in("steps", template_fields, {k: v for k, v in step.args.items() if k not in ("to", "approver")})
        if fields is not None:
            for name in sorted(used - fields):
                raise DefinitionError("steps", _("Step {n} uses {{{field}}}, which the trigger {trigger} does not give; "
                                                 "it has {fields}.", n=i, field=name, trigger=d.trigger_label, fields=known))
        if step.kind == "command":
            _in("steps", check_command, render(step.args["text"], {f: _sample(f) for f in used}))


def _sample(name: str) -> str:
    """A stand-in value for checking a command line before any event: ids are numbers."""
    return "1" if name == "id" or name.endswith("_id") else "x"


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        raise InvalidInput(_("The template uses {{{field}}}, which this run does not have.", field=key))


def render(template: Any, values: Mapping[str, Any]) -> Any:
    """A template (or a nested body) with the trigger's fields filled in."""
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    if not isinstance(template, str):
        return template
    return template.format_map(_Fields(values))


def compile_conditions(when: Conditions) -> Callable[[Mapping[str, Any]], bool]:
    """The conditions as one predicate over a payload."""
    tests = [_test(c) for c in when.items]
    if not tests:
        return lambda payload: True
    if len(tests) == 1:  # most workflows: no generator per check
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        if when.mode == "any":
            return lambda payload: first(payload) or second(payload)
        return lambda payload: first(payload) and second(payload)
    if when.mode == "any":
        return lambda payload: any(t(payload) for t in tests)
    return lambda payload: all(t(payload) for t in tests)


def _test(c: Condition) -> Callable[[Mapping[str, Any]], bool]:
    f, v = c.field, c.value
    folded = _fold(v)

    def number(payload: Mapping[str, Any]) -> float | None:
        try:
            return float(payload[f])
        except (KeyError, TypeError, ValueError):
            return None

    if c.op == "==":
        return lambda p: _fold(p.get(f)) == folded
    if c.op == "!=":
        return lambda p: _fold(p.get(f)) != folded
    if c.op == "in":
        return lambda p: _fold(p.get(f)) in folded
    if c.op == "not in":
        return lambda p: _fold(p.get(f)) not in folded
    if c.op == "contains":
        return lambda p: _contains(p.get(f), folded)
    bound = float(v)
    compare: dict[str, Callable[[float], bool]] = {">=": lambda x: x >= bound, "<=": lambda x: x <= bound,
                                                    ">": lambda x: x > bound, "<": lambda x: x < bound}
    check = compare[c.op]
    return lambda p: (n := number(p)) is not None and check(n)


@functools.lru_cache(maxsize=65536)
def _fold_text(value: str) -> str:
    """``fold_key``, remembered: one event's fields are compared with many workflows' conditions."""
    return fold_key(value)


def _fold(value: Any) -> Any:
    """Text compared without case or accents ("showcase" == "Showcase"); lists element by element."""
    if isinstance(value, str):
        return _fold_text(value)
    if isinstance(value, list):
        return [_fold(v) for v in value]
    return value


def _contains(value: Any, wanted: Any) -> bool:
    if isinstance(value, list):
        return wanted in [_fold(v) for v in value]
    if isinstance(value, str) and isinstance(wanted, str):
        return wanted in _fold_text(value)
    return False


def explain(when: Conditions, payload: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """Each condition and whether it holds for ``payload`` (the dry run shows them)."""
    return [(str(c), _test(c)(payload)) for c in when.items]


# ---------------------------------------------------------------- storing


def by_name(uow: UnitOfWork, name: str, *, lock: bool = False) -> Workflow:
    q = select(Workflow).where(Workflow.name_key == fold_key(name))
    found = uow.session.scalars(q.with_for_update() if lock else q).one_or_none()
    if found is None:
        names = list(uow.session.scalars(select(Workflow.name).order_by(Workflow.name).limit(10)))
        raise NotFound(_("No workflow is called {name}.", name=name) + (
            " " + _("There are: {names}.", names=", ".join(names)) if names else " " + _("/flow add creates one.")))
    return found


def definition_of(uow: UnitOfWork, w: Workflow, version: int | None = None) -> Definition:
    row = uow.session.get(WorkflowVersion, (w.id, version or w.version))
    if row is None:
        raise NotFound(_("{name} has no version {v}.", name=w.name, v=version))
    return Definition.from_json(row.definition)


def last_event_id(uow: UnitOfWork) -> int:
    return int(uow.session.scalar(select(func.max(OutboxEvent.id))) or 0)


def save(uow: UnitOfWork, actor: Member, d: Definition, source: str) -> tuple[Workflow, bool]:
    """Store a new workflow (enabled, seeing events from now on), or a new version of the one with
    that name; returns it and whether it is new."""
    key = fold_key(d.name)
    w = uow.session.scalars(select(Workflow).where(Workflow.name_key == key).with_for_update()).one_or_none()
    if d.on_error and fold_key(d.on_error) == key:
        raise InvalidInput(_("A workflow cannot be its own error workflow."))
    created = w is None
    if w is None:
        w = Workflow(name=d.name, name_key=key, owner_id=actor.id, trigger=d.trigger_type, version=1, enabled=True,
                     since_event=last_event_id(uow))
        uow.session.add(w)
        uow.session.flush()
    else:
        w.version += 1
        w.name, w.trigger = d.name, d.trigger_type
    uow.session.add(WorkflowVersion(workflow_id=w.id, version=w.version, definition=d.to_json(), source=source,
                                    by_id=actor.id))
    uow.session.flush()
    return w, created


def set_enabled(uow: UnitOfWork, w: Workflow, on: bool) -> None:
    if w.enabled == on:
        raise InvalidInput(_("{name} is already {state}.", name=w.name, state=_("enabled") if on else _("disabled")))
    w.enabled = on
    if on:
        w.since_event = last_event_id(uow)  # what happened while it was off is not run now


def new_run(uow: UnitOfWork, w: Workflow, trigger: dict[str, Any], *, event_id: int | None = None, depth: int = 0,
            by_id: int | None = None, version: int | None = None, replay_of: int | None = None,
            next_step: int = 0) -> WorkflowRun:
    run = WorkflowRun(workflow_id=w.id, version=version or w.version, event_id=event_id, trigger=trigger, depth=depth,
                      by_id=by_id, replay_of=replay_of, next_step=next_step, steps=[])
    uow.session.add(run)
    uow.session.flush()
    return run


def cron_fields(at: dt.datetime) -> dict[str, Any]:
    return {"date": at.date().isoformat(), "time": at.strftime("%H:%M"), "weekday": at.strftime("%A")}


def cron_due(last: dt.datetime | None, expr: str, now_local: dt.datetime) -> dt.datetime | None:
    """The latest time the schedule falls due at or before ``now_local`` if it is after ``last`` (when
    it last fired); None when nothing is due. A schedule that never fired is not caught up: the
    ticker notes the time first."""
    latest: dt.datetime = croniter(expr, now_local + dt.timedelta(seconds=1)).get_prev(dt.datetime)
    if last is None or latest <= last:
        return None
    return latest


# ---------------------------------------------------------------- matching


@dataclass
class Matcher:
    """Which workflows an event fires: enabled event-triggered workflows indexed by event type, each
    with its conditions compiled; rebuilt when a workflow changes (``stamp``)."""

    stamp: tuple[int, ...] = ()
    by_type: dict[str, list[tuple[int, int, int, Callable[[Mapping[str, Any]], bool]]]] = field(default_factory=dict)

    def refresh(self, uow: UnitOfWork) -> None:
        enabled_ids = case((Workflow.enabled.is_(True), Workflow.id), else_=0)
        row = uow.session.execute(select(func.count(Workflow.id), func.coalesce(func.sum(Workflow.version), 0),
                                         func.coalesce(func.sum(Workflow.since_event), 0),
                                         func.coalesce(func.sum(enabled_ids), 0))).one()
        stamp = tuple(int(x) for x in row)
        if stamp == self.stamp:
            return
        index: dict[str, list[tuple[int, int, int, Callable[[Mapping[str, Any]], bool]]]] = {}
        rows = uow.session.execute(select(Workflow.id, Workflow.version, Workflow.since_event, WorkflowVersion.definition)
                                   .join(WorkflowVersion, (WorkflowVersion.workflow_id == Workflow.id)
                                         & (WorkflowVersion.version == Workflow.version))
                                   .where(Workflow.enabled.is_(True), Workflow.trigger.in_(events.EVENT_TYPES)))
        for wid, version, since, definition in rows:
            d = Definition.from_json(definition)
            index.setdefault(d.trigger, []).append((wid, version, since, compile_conditions(d.when)))
        self.by_type, self.stamp = index, stamp

    def match(self, event_id: int, type_: str, payload: Mapping[str, Any]) -> list[tuple[int, int]]:
        """(workflow id, version) of each workflow the event fires."""
        return [(wid, version) for wid, version, since, test in self.by_type.get(type_, ())
                if event_id > since and test(payload)]


# ---------------------------------------------------------------- approvals

APPROVE, REJECT = "flow.approve", "flow.reject"


def waiting_approval(uow: UnitOfWork, run: WorkflowRun) -> Step:
    """The approval step ``run`` waits on; refused when it waits on nothing."""
    w = uow.session.get(Workflow, run.workflow_id)
    assert w is not None
    d = definition_of(uow, w, run.version)
    if run.status != "waiting" or run.next_step >= len(d.steps) or d.steps[run.next_step].kind != "approval":
        raise InvalidInput(_("Run #{id} is not waiting for an approval (it is {status}).", id=run.id, status=run.status))
    return d.steps[run.next_step]


def decide(uow: UnitOfWork, run: WorkflowRun, member: Member, identities: list[str], approve: bool) -> WorkflowRun:
    """Approve or reject the approval step ``run`` waits on: never by the person who triggered it, and
    only by the required approver when there is one (named by @name or a mention); the run is then
    queued to go on (a rejection ends it)."""
    step = waiting_approval(uow, run)
    triggered_by = run.by_id or (run.trigger.get("by") if isinstance(run.trigger.get("by"), int) else None)
    if triggered_by == member.id:
        raise InvalidInput(_("You triggered this run: someone else approves it."))
    approver = str(step.args.get("approver") or "")
    if approver and not _is(approver, member, identities):
        raise InvalidInput(_("Only {who} may answer this approval.", who=approver))
    verdict = "approved" if approve else "rejected"
    run.steps = [*run.steps, {"step": run.next_step, "kind": "approval", "status": verdict, "ms": 0,
                              "detail": _("{verdict} by {who}", verdict=verdict, who=member.display_name)}]
    run.status, run.wake_at = "queued", None
    return run


def _is(approver: str, member: Member, identities: list[str]) -> bool:
    wanted = approver.strip().lstrip("<@!").rstrip(">").split("|")[0].lstrip("@")
    return fold_key(wanted) == fold_key(member.display_name) or wanted in identities


def prune(uow: UnitOfWork, *, older_than: dt.datetime, keep: int = KEEP_RUNS) -> int:
    """Delete finished runs older than ``older_than``, and beyond the newest ``keep`` of each workflow."""
    from sqlalchemy import CursorResult, delete

    finished = WorkflowRun.status.in_(("done", "failed", "rejected"))
    old = cast(CursorResult[Any], uow.session.execute(delete(WorkflowRun).where(finished, WorkflowRun.created_at < older_than)))
    gone = old.rowcount or 0
    ranked = select(WorkflowRun.id, func.row_number().over(partition_by=WorkflowRun.workflow_id,
                                                           order_by=WorkflowRun.id.desc()).label("n")).subquery()
    extra = select(ranked.c.id).where(ranked.c.n > keep)
    many = cast(CursorResult[Any], uow.session.execute(delete(WorkflowRun).where(finished, WorkflowRun.id.in_(extra))))
    gone += many.rowcount or 0
    return int(gone)


# ---------------------------------------------------------------- incoming webhooks

#: The largest body a workflow's webhook takes.
MAX_HOOK_BODY = 1024 * 1024


def hook_name(w: Workflow) -> str:
    """The workflow's name in its webhook's path: ``/hooks/big-spend``."""
    return "-".join(w.name_key.split())


def signature(secret: str, body: bytes) -> str:
    """What ``X-Mona-Signature`` carries: ``sha256=`` and the HMAC-SHA256 of the body, in hex."""
    import hashlib
    import hmac

    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class BadSignature(InvalidInput):
    """The webhook call is not signed with the workflow's secret."""


class Disabled(InvalidInput):
    """The workflow is disabled."""


def from_webhook(uow: UnitOfWork, name: str, body: bytes, signed: str | None) -> WorkflowRun:
    """A run of the webhook workflow ``name`` (as in its path) from a signed call; its JSON body's
    fields are the trigger's. Refused: an unknown or disabled workflow, a wrong signature, a body
    that is not a JSON object, one over ``MAX_HOOK_BODY``."""
    import hmac

    if len(body) > MAX_HOOK_BODY:
        raise InvalidInput(_("The body is over {n} bytes.", n=MAX_HOOK_BODY))
    found = [w for w in uow.session.scalars(select(Workflow).where(Workflow.trigger == "webhook")) if hook_name(w) == name]
    if not found:
        raise NotFound(_("No workflow has the webhook {name}.", name=name))
    w = found[0]
    if not signed or not hmac.compare_digest(signed.strip(), signature(w.secret, body)):
        raise BadSignature(_("The signature does not match: sign the body with the workflow's secret "
                             "(X-Mona-Signature: sha256=HMAC-SHA256 in hex)."))
    if not w.enabled:
        raise Disabled(_("{name} is disabled.", name=w.name))
    import json

    try:
        fields = json.loads(body or b"{}")
    except ValueError:
        raise InvalidInput(_("The body is not JSON.")) from None
    if not isinstance(fields, dict):
        raise InvalidInput(_("The body is a JSON object, like {example}.", example='{"artist": "Alex"}'))
    d = definition_of(uow, w)
    if not compile_conditions(d.when)(fields):
        raise InvalidInput(_("Its conditions do not hold for this body."))
    return new_run(uow, w, fields)
