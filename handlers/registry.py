"""The declared commands, and the dispatcher that turns what a person did in chat into one of them.

Each command, button and form is one ``core.app.Command`` subclass, registered here with its words
(or action id) and permission; its docstring is the help text and its fields, declared with
``handlers.args``, its arguments. From those declarations come the chat parser and usage line
(``parse_command``), ``/mona help``, the Discord options, the Slack manifest's commands, the values
buttons carry (``button`` / ``decode``) and a JSON schema per command (``schema``).

``Dispatcher.dispatch(invocation) -> Reply`` is the chat side of the one door: it builds the typed
command, calls ``Application.execute`` and turns its outcome into a reply fit for the person.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError
from rapidfuzz import process

from core.app import Application, Caller, Command
from core.db import UnitOfWork
from core.errors import Ambiguous, FieldError, InvalidInput, UserError
from core.i18n import _, use_language
from core.team import Permission
from core.text import check_command_text
from handlers.args import ArgSpec, arg_specs
from handlers.parser import split_flags, tokenize
from handlers.reply import Button, Invocation, Option, Reply

RERUN = "cmd.run"

T = TypeVar("T")
C = TypeVar("C", bound=type[Command])
#: Runs a read-only query in a unit of work of its own: how a chat grammar that depends on the
#: data (the longest artist name at the start of a line) looks things up while parsing.
Lookup = Callable[[Callable[[UnitOfWork], Any]], Any]


@dataclass(frozen=True)
class CommandSpec:
    """A declared chat command, as help, the parser and the platforms see it."""

    path: tuple[str, ...]
    cls: type[Command]

    @property
    def permission(self) -> Permission:
        return self.cls.permission

    @property
    def args(self) -> tuple[ArgSpec, ...]:
        return arg_specs(self.cls)

    @property
    def positionals(self) -> tuple[ArgSpec, ...]:
        return tuple(a for a in self.args if a.place in ("positional", "rest"))

    @property
    def flags(self) -> tuple[ArgSpec, ...]:
        return tuple(a for a in self.args if a.place == "flag")

    @property
    def name(self) -> str:
        return "/" + " ".join(self.path)

    @property
    def usage(self) -> str:
        return " ".join(a.usage for a in (*self.positionals, *self.flags))

    @property
    def full_usage(self) -> str:
        return f"{self.name} {self.usage}".strip()

    @property
    def help(self) -> str:
        return inspect.getdoc(self.cls) or ""

    @property
    def summary(self) -> str:
        return _(self.help.split("\n\n")[0].replace("\n", " "))


def schema(cls: type[Command]) -> dict[str, Any]:
    """The JSON schema of a command's arguments (for the HTTP API and the assistant's tools)."""
    document = cls.model_json_schema()
    document["title"] = cls.key
    document["description"] = inspect.getdoc(cls) or ""
    document["x-permission"] = cls.permission.value
    return document


@dataclass
class Registry:
    commands: dict[tuple[str, ...], CommandSpec] = field(default_factory=dict)
    actions: dict[str, type[Command]] = field(default_factory=dict)
    submits: dict[str, type[Command]] = field(default_factory=dict)

    def command(self, words: str, *, permission: Permission, sensitive: bool = False) -> Callable[[C], C]:
        def register(cls: C) -> C:
            path = tuple(words.split())
            assert path not in self.commands, f"{words} registered twice"
            cls.key, cls.permission, cls.sensitive = words, permission, sensitive
            self.commands[path] = CommandSpec(path, cls)
            return cls

        return register

    def action(self, action_id: str, *, permission: Permission, sensitive: bool = False) -> Callable[[C], C]:
        """A button or select option: its value carries the command's fields (``button``)."""
        return self._keyed(self.actions, action_id, permission, sensitive)

    def submit(self, callback_id: str, *, permission: Permission, sensitive: bool = False) -> Callable[[C], C]:
        """A form's submission: its inputs and hidden metadata are the command's fields (``from_form``)."""
        return self._keyed(self.submits, callback_id, permission, sensitive)

    @staticmethod
    def _keyed(table: dict[str, type[Command]], key: str, permission: Permission, sensitive: bool) -> Callable[[C], C]:
        def register(cls: C) -> C:
            assert key not in table, f"{key} registered twice"
            cls.key, cls.permission, cls.sensitive = key, permission, sensitive
            table[key] = cls
            return cls

        return register

    @property
    def groups(self) -> list[str]:
        """Top-level command words: the slash commands a platform must declare."""
        return sorted({p[0] for p in self.commands})

    def in_group(self, group: str) -> list[CommandSpec]:
        return [s for p, s in sorted(self.commands.items()) if p[0] == group]

    def find(self, tokens: list[str]) -> tuple[CommandSpec, list[str]]:
        """The command named by the leading words (longest match), and the words left for its arguments."""
        if not tokens:
            raise InvalidInput(_("Type a command, e.g. /mona help."))
        group = tokens[0].lstrip("/").lower()
        if not any(p[0] == group for p in self.commands):
            close = process.extractOne(group, self.groups, score_cutoff=60)
            hint = " " + _("Did you mean /{command}?", command=close[0]) if close else ""
            raise InvalidInput(_("Unknown command /{command}.", command=group) + hint + " " + _("Type /mona help for the list."))
        words = [group] + [t.lower() for t in tokens[1:3]]
        for n in (3, 2, 1):
            if len(words) >= n and tuple(words[:n]) in self.commands:
                return self.commands[tuple(words[:n])], tokens[n:]
        prefix = tuple(words[:2]) if len(words) > 1 and any(p[:2] == tuple(words[:2]) and len(p) > 2 for p in self.commands) else (group,)
        subs = sorted({" ".join(p[len(prefix):len(prefix) + 1]) for p in self.commands if p[:len(prefix)] == prefix and len(p) > len(prefix)})
        where = " ".join(prefix)
        if len(tokens) == len(prefix):
            raise InvalidInput(
                _("/{group} needs a subcommand: {subs}. Type /mona help {group} for details.", group=where, subs=", ".join(subs))
            )
        typed = tokens[len(prefix)].lower()
        close = process.extractOne(typed, subs, score_cutoff=60)
        hint = " " + _("Did you mean /{group} {sub}?", group=where, sub=close[0]) if close else ""
        raise InvalidInput(
            _("Unknown subcommand /{group} {sub}. Subcommands: {subs}.", group=where, sub=tokens[len(prefix)], subs=", ".join(subs)) + hint
        )


registry = Registry()

#: What each command group is for, in a line (the Slack manifest's descriptions, Discord's groups).
GROUPS: dict[str, str] = {
    "artist": "Add, find, move and follow up artists (cards, notes, deals).",
    "pipeline": "The MONA and SPARK pipelines - artists per stage, deal value, conversion, who is stuck.",
    "mona": "Help, who you are, roles, notification routing, jobs and the daily digest.",
    "mod": "Chat moderation for Discord and Twitch - rules, warn/timeout/ban, cases, stream mode.",
    "market": "The marketplace - the 10 service blocks, requests and their lifecycle, figures.",
    "remind": "Remind a member, a channel or yourself later (in 2h, tomorrow 9:00, 2026-12-01 14:30).",
    "score": "Mona Market Fit - an artist's score explained, the model's weights, batches and movers.",
    "prescribe": "The ordonnance - a short written plan for an artist from their score.",
    "stream": "Studio Live - OBS from chat: status, scenes, sources, transitions, stream, recording, audio.",
    "cal": "The team calendar - events with attendees, reminders and recurrences, today, the week, .ics export.",
    "task": "Kanban boards - tasks with an assignee, a due date, labels and an artist; move them column to column.",
    "flow": "Workflows - a trigger, conditions and steps: add, test, run, runs, replay, approvals, stats.",
}


def usage_of(cls: type[Command]) -> str:
    """The usage line of a declared command (for messages that show it)."""
    return registry.commands[tuple(cls.key.split())].full_usage


def missing(cls: type[Command]) -> InvalidInput:
    """The error for a command line that leaves out a required argument."""
    return InvalidInput(_("Something is missing. Usage: {usage}", usage=usage_of(cls)))


# ---------------------------------------------------------------- building typed commands


def build(cls: type[Command], values: dict[str, Any]) -> Command:
    """A command from argument values as people give them (chat words, Discord options): strings
    are read by each argument's chat type, typed values pass through."""
    by_name = {a.name: a for a in arg_specs(cls)}
    converted = {k: by_name[k].convert(v) for k, v in values.items() if v is not None}
    try:
        return cls.model_validate(converted)
    except ValidationError as e:
        raise InvalidInput(_validation_message(cls, e)) from None


def _validation_message(cls: type[Command], e: ValidationError) -> str:
    by_name = {a.name: a for a in arg_specs(cls)}
    first = e.errors()[0]
    where = str(first["loc"][0]) if first["loc"] else ""
    spec = by_name.get(where)
    label = spec.label if spec else where
    if first["type"] == "missing":
        return _("{label} is missing.", label=label)
    value = first.get("input")
    return _("{label} cannot be {value}.", label=label, value=value)


def parse_command(spec: CommandSpec, tokens: list[str], lookup: Lookup) -> Command:
    """The chat grammar of a declared command: positionals, then ``--flags`` anywhere."""
    flags = spec.flags
    positionals, raw_flags = split_flags(tokens, {a.flag: a.chat.many_words for a in flags},
                                         bools={a.flag for a in flags if a.chat.option == "boolean"}, usage=spec.full_usage,
                                         links=frozenset(a.flag for a in flags if a.chat.option == "channel"))
    by_flag = {a.flag: a for a in flags}
    values: dict[str, Any] = {by_flag[k].name: v for k, v in raw_flags.items()}
    split = getattr(spec.cls, "chat_split", None)
    if split is not None:
        values.update(split(positionals, lookup))
    else:
        values.update(split_positionals(spec, positionals))
    return build(spec.cls, values)


def raw_remainder(commands: Registry, text: str) -> tuple[CommandSpec, str] | None:
    """For a command that takes a document as it was typed (``raw_rest`` names the argument: a
    workflow's YAML keeps its lines, quotes and dashes), the spec and what follows the command's
    words; None for every other line, or when what follows starts with a --flag."""
    words = text.strip().split(None, 3)
    for n in (3, 2, 1):
        if len(words) <= n:
            continue
        key = tuple(w.lstrip("/").lower() if i == 0 else w.lower() for i, w in enumerate(words[:n]))
        spec = commands.commands.get(key)
        if spec is None:
            continue
        if not getattr(spec.cls, "raw_rest", None):
            return None
        remainder = text.strip()
        for w in words[:n]:
            remainder = remainder[remainder.index(w) + len(w):]
        remainder = remainder.strip("\n\r\t ")
        if remainder.startswith("--") and not remainder.startswith("---"):
            return None
        return spec, remainder
    return None


def split_positionals(spec: CommandSpec, words: list[str]) -> dict[str, str]:
    """One word per positional argument, the ``rest`` one taking what the others leave."""
    slots = spec.positionals
    missing = _("Something is missing. Usage: {usage}", usage=spec.full_usage)
    rest_at = next((i for i, a in enumerate(slots) if a.place == "rest"), None)
    values: dict[str, str] = {}
    if rest_at is None:
        if len(words) > len(slots):
            extra = " ".join(words[len(slots):])
            raise InvalidInput(_("Too many arguments ({extra}). Usage: {usage}", extra=extra, usage=spec.full_usage))
        for a, w in zip(slots, words, strict=False):
            values[a.name] = w
        if any(a.required and a.name not in values for a in slots):
            raise InvalidInput(missing)
        return values
    before, after = slots[:rest_at], slots[rest_at + 1:]
    if len(words) < len(before) + len(after):
        raise InvalidInput(missing)
    for a, w in zip(before, words, strict=False):
        values[a.name] = w
    for a, w in zip(after, words[len(words) - len(after):], strict=True):
        values[a.name] = w
    middle = words[len(before):len(words) - len(after)]
    if middle:
        values[slots[rest_at].name] = " ".join(middle)
    elif slots[rest_at].required:
        raise InvalidInput(missing)
    return values


def encode(command: Command) -> str:
    """What a button or select option carries: the command's values, in declaration order."""
    return ":".join("" if v is None else str(v) for v in command.model_dump().values())


def decode(cls: type[Command], value: str) -> Command:
    """The command a button carried (``encode``'s inverse); an unreadable value is an old button."""
    names = [a.name for a in arg_specs(cls)]
    parts = value.split(":", len(names) - 1) if names else []
    if len(parts) != len(names):
        raise InvalidInput(_("That button is out of date; show the card again."))
    try:
        return build(cls, {n: p for n, p in zip(names, parts, strict=True) if p != ""})
    except InvalidInput:
        raise InvalidInput(_("That button is out of date; show the card again.")) from None


def button(command: Command, label: str, style: Any = None) -> Button:
    return Button(label, command.key, encode(command), style)


def option(command: Command, label: str) -> Option:
    return Option(label, encode(command))


def from_form(cls: type[Command], values: dict[str, str], metadata: str) -> Command:
    """A form's command: hidden ``meta`` fields from the form's metadata, the rest from its inputs;
    a bad input becomes a ``FieldError`` shown beside that input."""
    specs = arg_specs(cls)
    hidden = [a for a in specs if a.place == "meta"]
    parts = metadata.split(":", len(hidden) - 1) if hidden else []
    if len(parts) != len(hidden):
        raise InvalidInput(_("That form is out of date; open it again."))
    typed: dict[str, Any] = {}
    for a, p in zip(hidden, parts, strict=True):
        typed[a.name] = a.convert(p)
    for a in specs:
        if a.place == "meta":
            continue
        raw = (values.get(a.name) or "").strip()
        if not raw:
            if a.required:
                raise FieldError(a.name, _("This field is required."))
            continue
        try:
            typed[a.name] = a.convert(raw)
        except UserError as e:
            raise FieldError(a.name, e.message) from None
    try:
        return cls.model_validate(typed)
    except ValidationError as e:
        where = str(e.errors()[0]["loc"][0]) if e.errors()[0]["loc"] else next(iter(values), "")
        raise FieldError(where, _validation_message(cls, e)) from None


# ---------------------------------------------------------------- the chat door


def error_reply(message: str) -> Reply:
    return Reply(text=message, ephemeral=True, error=True)


class Dispatcher:
    """``dispatch(invocation) -> Reply``: the typed command of what the person did, executed
    through the application's one door, every failure turned into a reply fit for the person."""

    def __init__(self, app: Application, commands: Registry = registry) -> None:
        self.app = app
        self.registry = commands

    def dispatch(self, inv: Invocation) -> Reply:
        with use_language(self.app.settings.lang):
            try:
                command = self.command_of(inv)
            except UserError as e:
                return self.error(inv, e)
            return self.run(inv, command)

    def dispatch_values(self, inv: Invocation, cls: type[Command], values: dict[str, Any]) -> Reply:
        """Run a command whose arguments came structured (a Discord option set), not as a line."""
        with use_language(self.app.settings.lang):
            try:
                command = build(cls, values)
            except UserError as e:
                return self.error(inv, e)
        return self.run(inv, command)

    def run(self, inv: Invocation, command: Command) -> Reply:
        """Execute a command built from ``inv`` (by ``command_of`` or by an adapter from its own
        payload, like a Discord option set) and render the outcome as a reply."""
        outcome = self.app.execute(caller_of(inv), command)
        with use_language(self.app.settings.lang):
            if outcome.error is not None:
                return self.error(inv, outcome.error)
            reply = typing.cast(Reply, outcome.value)
            if outcome.notices:
                note = "\n".join(outcome.notices)
                reply = dataclasses.replace(reply, footer=f"{reply.footer}\n{note}" if reply.footer else note)
            return reply

    def command_of(self, inv: Invocation) -> Command:
        if inv.kind == "command" or (inv.kind == "action" and inv.name == RERUN):
            return self.parse(inv.text if inv.kind == "command" else inv.value)
        table = self.registry.actions if inv.kind == "action" else self.registry.submits
        cls = table.get(inv.name)
        if cls is None:
            raise InvalidInput(_("That button is no longer supported; run the command again."))
        if inv.kind == "action":
            return decode(cls, inv.value)
        return from_form(cls, inv.values, inv.value)

    def parse(self, text: str) -> Command:
        check_command_text(text)
        raw = raw_remainder(self.registry, text)
        if raw is not None:
            spec, remainder = raw
            return build(spec.cls, {spec.cls.raw_rest: remainder})  # type: ignore[attr-defined]
        spec, rest = self.registry.find(tokenize(text))
        return parse_command(spec, rest, self.lookup)

    def lookup(self, query: Callable[[UnitOfWork], T]) -> T:
        with self.app.db.uow() as uow:
            return query(uow)

    def error(self, inv: Invocation, e: UserError) -> Reply:
        if isinstance(e, FieldError):
            return Reply(text=e.message, field_errors={e.field: e.message}, error=True)
        if isinstance(e, Ambiguous):
            return self._choices(inv, e)
        if e.show is not None:  # the record it is about, below the message (its own transaction)
            shown = self.dispatch(dataclasses.replace(inv, kind="command", text=e.show))
            if not shown.error:
                return dataclasses.replace(shown, text=e.message, error=True, ephemeral=True, replace_original=False)
        return error_reply(e.message)

    def _choices(self, inv: Invocation, e: Ambiguous) -> Reply:
        buttons: list[Any] = []
        for c in e.candidates[:5]:
            if inv.kind == "command":
                buttons.append(Button(c.label, RERUN, _replace_ref(inv.text, e.ref, c.typed or f"#{c.id}")))
            else:
                buttons.append(Button(c.label, RERUN, f"/artist show #{c.id}"))
        more = e.total - len(buttons)
        footer = _("and {n} more: type more of the name.", n=more) if more > 0 else None
        return Reply(text=e.message, actions=tuple(buttons), footer=footer, ephemeral=True)


def caller_of(inv: Invocation) -> Caller:
    return Caller(platform=inv.platform, user_id=inv.user_id, user_name=inv.user_name, via=inv.kind,
                  channel_id=inv.channel_id, community=inv.community, protected_ids=inv.protected_ids,
                  platform_roles=inv.platform_roles)


def _replace_ref(text: str, ref: str, new: str) -> str:
    for candidate in (f'"{ref}"', f"“{ref}”", ref):
        if candidate in text:
            return text.replace(candidate, new, 1)
    return text
