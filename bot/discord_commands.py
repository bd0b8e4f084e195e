"""Discord application (slash) commands generated from the command registry, and back.

Every command of the registry becomes a Discord command with the same words: ``/artist move`` is
the subcommand ``move`` of the group ``artist``; ``/mona notify add`` is ``add`` in the subgroup
``notify`` of ``mona`` (Discord nests at most group → subgroup → command); a group without
subcommands (``/pipeline``) is a top-level command. Discord cannot run a group itself, so a
command that also has subcommands (``/remind …`` beside ``/remind list``) gets a subcommand name
of its own: ``BARE_NAMES`` names the known ones (``/remind set``, ``/mona jobs status``), others
are called ``run``.

Options come from the command's declaration, never from a second list: the positional
placeholders of ``usage`` (``NAME``, ``STAGE``, ``@member``, ``#channel``, ``mona|spark`` …) in
order, then ``spec.flags``. Required is what ``usage`` does not bracket. When the command runs,
``command_line`` writes the submitted values back as the command line the shared parser reads, so
Discord runs exactly the code path a typed command runs.
"""

from __future__ import annotations

import inspect
import keyword
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import discord
from discord import app_commands

from core.i18n import _
from handlers.parser import ChannelRef, Flag, Mention
from handlers.registry import CommandSpec, Registry
from handlers.suggest import role_names

log = logging.getLogger("mona.discord")

OptionKind = Literal["string", "integer", "boolean", "user", "channel"]
#: What to suggest while an option is typed (Discord's autocomplete).
Suggest = Literal["artist", "stage", "event", "command"]

#: Subcommand names for commands that are also groups (see the module's docstring).
BARE_NAMES: dict[tuple[str, ...], str] = {("remind",): "set", ("mona", "jobs"): "status"}
BARE_FALLBACK = "run"
#: Names of options whose values are a fixed list of words, by that list.
CHOICE_NAMES: dict[tuple[str, ...], str] = {("mona", "spark"): "pipeline", ("won", "lost"): "status"}
#: Placeholders read as whole numbers.
INTEGER_PLACEHOLDERS = re.compile(r"^(ID|[A-Z]+_ID)$")
SUGGESTED: dict[str, Suggest] = {"NAME": "artist", "STAGE": "stage", "EVENT": "event", "COMMAND": "command"}

#: Discord's limits.
MAX_DESCRIPTION = 100
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_DEPTH = 3
_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")
#: Characters the parser reads as a double quote.
_QUOTES = '"“”„«»'
_LITERAL = re.compile(r"^[a-z][a-z0-9_.-]*$")


def placeholder_hint(placeholder: str) -> str | None:
    """What a positional placeholder asks for, in the deployment's language."""
    hints = {
        "NAME": _("Artist name, or an id like #12"),
        "STAGE": _("Stage name, or next"),
        "TEXT": _("Text"),
        "AMOUNT": _("Amount, e.g. 1500"),
        "TITLE": _("Title"),
        "DEAL_ID": _("Deal number"),
        "ID": _("Number, as shown in the list"),
        "EVENT": _("Event, e.g. artist.stage_changed, or digest"),
        "WHEN": _("When, e.g. in 2h, tomorrow 9:00, friday 10:00"),
        "ROLE": _("Role"),
        "COMMAND": _("A command, e.g. artist move"),
    }
    return hints.get(placeholder)


@dataclass(frozen=True)
class OptionShape:
    """One Discord option. ``flag`` is the flag it fills; ``None`` for a positional argument."""

    name: str
    description: str
    kind: OptionKind
    required: bool
    choices: tuple[str, ...] = ()
    suggest: Suggest | None = None
    flag: Flag | None = None


@dataclass(frozen=True)
class CommandShape:
    spec: CommandSpec
    #: The Discord words: group, [subgroup,] command.
    names: tuple[str, ...]
    description: str
    #: Positional arguments in the order of ``usage``, then flags in the order of ``spec.flags``.
    options: tuple[OptionShape, ...]

    @property
    def qualified_name(self) -> str:
        return " ".join(self.names)


# ----------------------------------------------------------------------------------------------
# Registry → shapes


def usage_slots(usage: str) -> list[tuple[str, bool]]:
    """``(placeholder, required)`` of each positional argument in a usage line, in order.

    Bracketed flags (``[--genre G]``) are described by ``spec.flags`` and skipped; a bare
    ``--flag`` or ``(`` starts free prose about flags, where the positionals end."""
    slots: list[tuple[str, bool]] = []
    for m in re.finditer(r"\[[^\]]*\]|\S+", usage):
        token = m.group(0)
        optional = token.startswith("[")
        inner = token[1:-1].strip() if optional else token
        if inner.startswith("--"):
            if optional:
                continue
            break
        if inner.startswith("(") or not inner:
            break
        if inner in ("…", "..."):
            continue
        slots.append((inner, not optional))
    return slots


def _positional(slot: str, required: bool) -> OptionShape:
    alternatives = slot.split("|")
    if all(_LITERAL.match(a) for a in alternatives):
        return OptionShape(CHOICE_NAMES.get(tuple(alternatives), "choice"), " | ".join(alternatives), "string",
                           required, choices=tuple(alternatives))
    first = next(a for a in alternatives if not _LITERAL.match(a))
    described = placeholder_hint(first) if len(alternatives) == 1 or first == "NAME" else None
    description = described or " | ".join(alternatives)
    if len(alternatives) == 1 and first.startswith("@"):
        return OptionShape(first[1:].lower() or "member", description, "user", required)
    if len(alternatives) == 1 and first.startswith("#"):
        return OptionShape(first[1:].lower() or "channel", description, "channel", required)
    if any(a.startswith(("@", "#")) for a in alternatives):
        # A member, a channel or a word: one text option (Discord turns picked mentions into <@id>).
        return OptionShape("target", description, "string", required)
    kind: OptionKind = "integer" if len(alternatives) == 1 and INTEGER_PLACEHOLDERS.match(first) else "string"
    choices = tuple(role_names()) if first == "ROLE" else ()
    return OptionShape(first.lower(), description, kind, required, choices=choices, suggest=SUGGESTED.get(first))


def _flag_option(flag: Flag, taken: set[str]) -> OptionShape:
    name = flag.name.replace("-", "_").lower()
    if name in taken:
        name = f"new_{name}"
    kind: OptionKind = {"int": "integer", "member": "user", "bool": "boolean"}.get(flag.kind, "string")  # type: ignore[assignment]
    choices = flag.choices if flag.kind == "choice" and len(flag.choices) <= MAX_CHOICES else ()
    metavar = flag.metavar or {"int": "N", "member": "@member", "date": "YYYY-MM-DD", "bool": ""}.get(flag.kind, "")
    description = flag.help or f"--{flag.name} {metavar}".strip()
    return OptionShape(name, description, kind, False, choices=choices, suggest="stage" if flag.name == "stage" else None,
                       flag=flag)


def _unique_names(options: list[OptionShape]) -> list[OptionShape]:
    seen: set[str] = set()
    out: list[OptionShape] = []
    for o in options:
        name, n = o.name, 2
        while name in seen:
            name, n = f"{o.name}_{n}", n + 1
        seen.add(name)
        out.append(o if name == o.name else OptionShape(name, o.description, o.kind, o.required, o.choices, o.suggest, o.flag))
    return out


def discord_names(path: tuple[str, ...], paths: set[tuple[str, ...]]) -> tuple[str, ...]:
    """A command's Discord words; a command that is also a group gets a subcommand name."""
    if any(len(p) > len(path) and p[: len(path)] == path for p in paths):
        return (*path, BARE_NAMES.get(path, BARE_FALLBACK))
    return path


def shape_of(spec: CommandSpec, names: tuple[str, ...]) -> CommandShape:
    options = [_positional(slot, required) for slot, required in usage_slots(spec.usage)]
    taken = {o.name for o in options}
    options += [_flag_option(f, taken) for f in spec.flags]
    return CommandShape(spec, names, _cut(spec.summary or spec.name, MAX_DESCRIPTION), tuple(_unique_names(options)))


def command_shapes(registry: Registry) -> list[CommandShape]:
    """Every registry command as a Discord command (call inside ``use_language`` for the texts)."""
    paths = set(registry.commands)
    shapes: list[CommandShape] = []
    for path, spec in sorted(registry.commands.items()):
        names = discord_names(path, paths)
        shape = shape_of(spec, names)
        problem = (f"{len(names)} words deep (Discord allows {MAX_DEPTH})" if len(names) > MAX_DEPTH
                   else f"{len(shape.options)} options (Discord allows {MAX_OPTIONS})" if len(shape.options) > MAX_OPTIONS
                   else next((f"the name {n!r}" for n in (*names, *(o.name for o in shape.options)) if not _NAME.match(n)), None))
        if problem:
            log.warning("%s is left out of Discord's commands: %s", spec.name, problem)
            continue
        shapes.append(shape)
    return shapes


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----------------------------------------------------------------------------------------------
# Submitted values → command line


def argument(value: object) -> str:
    """One value as a word of the command line: mentions as ``<@id|name>`` / ``<#id|name>``,
    text with spaces in double quotes (text holding a double quote cannot be quoted: its words
    stay words, which the commands taking free text join again)."""
    if isinstance(value, Mention):
        name = _mention_name(value.name)
        return _quoted(f"<@{value.external_id}|{name}>" if name else f"<@{value.external_id}>")
    if isinstance(value, ChannelRef):
        name = _mention_name(value.name)
        return _quoted(f"<#{value.external_id}|{name}>" if name else f"<#{value.external_id}>")
    return _quoted(" ".join(str(value).split()))


def _mention_name(name: str | None) -> str:
    return " ".join(re.sub(r"[<>|" + _QUOTES + "]", "", name or "").split())


def _quoted(text: str) -> str:
    if not re.search(r"\s", text) or any(q in text for q in _QUOTES):
        return text
    return f'"{text}"'


def command_line(shape: CommandShape, values: Mapping[str, object]) -> str:
    """The command line the shared parser reads, from the values Discord submitted (by option
    name; users as ``Mention``, channels as ``ChannelRef``; missing or ``None`` = not given)."""
    words = ["/" + " ".join(shape.spec.path)]
    flags: list[str] = []
    for option in shape.options:
        value = values.get(option.name)
        if value is None or value is False or value == "":
            continue
        if option.flag is None:
            words.append(argument(value))
        elif option.kind == "boolean":
            flags.append(f"--{option.flag.name}")
        else:
            flags += [f"--{option.flag.name}", argument(value)]
    return " ".join(words + flags)


# ----------------------------------------------------------------------------------------------
# Shapes → discord.py command tree

RunCommand = Callable[[discord.Interaction[Any], CommandShape, dict[str, Any]], Awaitable[None]]
SuggestValues = Callable[[discord.Interaction[Any], OptionShape, str], Awaitable[list[str]]]

_ANNOTATIONS: dict[OptionKind, Any] = {
    "string": str, "integer": int, "boolean": bool, "user": discord.User, "channel": app_commands.AppCommandChannel,
}


def _python_name(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) else name


def make_command(shape: CommandShape, run: RunCommand, suggest: SuggestValues) -> app_commands.Command[Any, ..., None]:
    """A discord.py command whose signature is built from the shape: discord.py reads it like a
    hand-written one (types, defaults, descriptions, choices, autocomplete)."""
    by_python_name = {_python_name(o.name): o for o in shape.options}

    async def callback(interaction: discord.Interaction[Any], **values: Any) -> None:
        await run(interaction, shape, {by_python_name[k].name: v for k, v in values.items()})

    params = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction)]
    for py, o in by_python_name.items():
        params.append(inspect.Parameter(py, inspect.Parameter.KEYWORD_ONLY, annotation=_ANNOTATIONS[o.kind],
                                        default=inspect.Parameter.empty if o.required else None))
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__qualname__ = callback.__name__ = "_".join(shape.names).replace("-", "_")
    decorated: Any = callback
    if by_python_name:
        decorated = app_commands.describe(**{py: _cut(o.description, MAX_DESCRIPTION) for py, o in by_python_name.items()})(decorated)
    renames = {py: o.name for py, o in by_python_name.items() if py != o.name}
    if renames:
        decorated = app_commands.rename(**renames)(decorated)
    choices = {py: [app_commands.Choice(name=c, value=c) for c in o.choices] for py, o in by_python_name.items() if o.choices}
    if choices:
        decorated = app_commands.choices(**choices)(decorated)
    completers = {py: _completer(o, suggest) for py, o in by_python_name.items() if o.suggest and not o.choices}
    if completers:
        decorated = app_commands.autocomplete(**completers)(decorated)
    return app_commands.Command(name=shape.names[-1], description=shape.description, callback=decorated)


def _completer(option: OptionShape, suggest: SuggestValues
               ) -> Callable[[discord.Interaction[Any], str], Coroutine[Any, Any, list[app_commands.Choice[str]]]]:
    async def complete(interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        values = await suggest(interaction, option, current)
        return [app_commands.Choice(name=v, value=v) for v in values if 0 < len(v) <= 100][:MAX_CHOICES]

    return complete


def build_tree(tree: app_commands.CommandTree[Any], shapes: list[CommandShape], *, run: RunCommand,
               suggest: SuggestValues) -> None:
    """Add every shape to ``tree``: groups and subgroups first, then the commands in them."""
    children: dict[tuple[str, ...], list[str]] = {}
    for shape in shapes:
        for depth in range(1, len(shape.names)):
            children.setdefault(shape.names[:depth], [])
            if shape.names[depth] not in children[shape.names[:depth]]:
                children[shape.names[:depth]].append(shape.names[depth])
    groups: dict[tuple[str, ...], app_commands.Group] = {}
    for key in sorted(children, key=len):
        group = app_commands.Group(name=key[-1], description=_cut(f"/{' '.join(key)}: {', '.join(children[key])}", MAX_DESCRIPTION))
        groups[key] = group
        if len(key) == 1:
            tree.add_command(group)
        else:
            groups[key[:-1]].add_command(group)
    for shape in shapes:
        command = make_command(shape, run, suggest)
        if len(shape.names) == 1:
            tree.add_command(command)
        else:
            groups[shape.names[:-1]].add_command(command)
