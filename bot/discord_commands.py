"""Discord application (slash) commands generated from the command declarations, and back.

Every declared command becomes a Discord command with the same words: ``/artist move`` is the
subcommand ``move`` of the group ``artist``; ``/mona notify add`` is ``add`` in the subgroup
``notify`` of ``mona`` (Discord nests at most group → subgroup → command); a group without
subcommands (``/pipeline``) is a top-level command. Discord cannot run a group itself, so a
command that also has subcommands (``/remind …`` beside ``/remind list``) gets a subcommand name
of its own: ``BARE_NAMES`` names the known ones (``/remind set``, ``/mona jobs status``), others
are called ``run``.

Options are the command's declared arguments (``handlers.args.ArgSpec``), never a second list:
positionals first, then flags, each with its type (a user, a channel, a whole number, a switch,
fixed choices), its description and what to suggest while typing. Arguments declared for other
platforms only (``--in`` outside a community) are left out. When the command runs, the submitted
values build the typed command directly (``handlers.registry.build``), and ``command_line`` writes
them back as a command line only to offer reruns (e.g. after an ambiguous name).
"""

from __future__ import annotations

import inspect
import keyword
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands

from core.i18n import _
from core.refs import ChannelRef, Mention
from handlers.args import ArgSpec, OptionKind, Suggest, Upload
from handlers.registry import CommandSpec, Registry

log = logging.getLogger("mona.discord")

PLATFORM = "discord"
#: Subcommand names for commands that are also groups (see the module's docstring).
BARE_NAMES: dict[tuple[str, ...], str] = {("remind",): "set", ("mona", "jobs"): "status", ("score",): "artist", ("mod", "case"): "show", ("stream", "preset"): "run"}
BARE_FALLBACK = "run"

#: Discord's limits.
MAX_DESCRIPTION = 100
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_DEPTH = 3
_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")
#: Characters the parser reads as a double quote.
_QUOTES = '"“”„«»'


@dataclass(frozen=True)
class OptionShape:
    """One Discord option, filling the declared argument ``arg``."""

    name: str
    description: str
    kind: OptionKind
    required: bool
    arg: ArgSpec
    choices: tuple[str, ...] = ()
    suggest: Suggest | None = None


@dataclass(frozen=True)
class CommandShape:
    spec: CommandSpec
    #: The Discord words: group, [subgroup,] command.
    names: tuple[str, ...]
    description: str
    #: Positional arguments in declaration order, then flags.
    options: tuple[OptionShape, ...]

    @property
    def qualified_name(self) -> str:
        return " ".join(self.names)


# ----------------------------------------------------------------------------------------------
# Declarations → shapes


def offered_on_discord(arg: ArgSpec) -> bool:
    return arg.place != "meta" and (not arg.platforms or PLATFORM in arg.platforms)


def option_shape(arg: ArgSpec) -> OptionShape:
    choices = arg.choices if len(arg.choices) <= MAX_CHOICES else ()
    return OptionShape(arg.name.rstrip("_"), _(arg.description), arg.chat.option,
                       arg.required and arg.place != "flag", arg, choices=choices,
                       suggest=None if choices else arg.chat.suggest)


def discord_names(path: tuple[str, ...], paths: set[tuple[str, ...]]) -> tuple[str, ...]:
    """A command's Discord words; a command that is also a group gets a subcommand name."""
    if any(len(p) > len(path) and p[: len(path)] == path for p in paths):
        return (*path, BARE_NAMES.get(path, BARE_FALLBACK))
    return path


def shape_of(spec: CommandSpec, names: tuple[str, ...]) -> CommandShape:
    options = [option_shape(a) for a in (*spec.positionals, *spec.flags) if offered_on_discord(a)]
    # Discord lists required options first.
    options.sort(key=lambda o: not o.required)
    return CommandShape(spec, names, _cut(spec.summary or spec.name, MAX_DESCRIPTION), tuple(options))


def command_shapes(registry: Registry) -> list[CommandShape]:
    """Every declared command as a Discord command (call inside ``use_language`` for the texts)."""
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
# Submitted values → typed command values, and back to a command line


def argument_values(shape: CommandShape, values: Mapping[str, object]) -> dict[str, object]:
    """The declared arguments' values from what Discord submitted (by option name; users as
    ``Mention``, channels as ``ChannelRef``; missing, ``None`` or an unticked switch = not given)."""
    out: dict[str, object] = {}
    for option in shape.options:
        value = values.get(option.name)
        if value is None or value == "" or (value is False and option.kind == "boolean"):
            continue
        out[option.arg.name] = str(value) if isinstance(value, int) and option.kind == "integer" else value
    return out


def argument(value: object) -> str:
    """One value as a word of the command line: mentions as ``<@id|name>`` / ``<#id|name>``,
    text with spaces in double quotes (text holding a double quote cannot be quoted: its words
    stay words, which the commands taking free text join again)."""
    if isinstance(value, Mention):
        name = _mention_name(value.name)
        return _quoted(f"<@{value.external_id}|{name}>" if name else f"<@{value.external_id}>")
    if isinstance(value, Upload):
        return _quoted(value.name)
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
    """The command line that reads as the values Discord submitted (for reruns and logs)."""
    words = ["/" + " ".join(shape.spec.path)]
    flags: list[str] = []
    for option in shape.options:
        value = values.get(option.name)
        if value is None or value is False or value == "":
            continue
        if option.arg.place != "flag":
            words.append(argument(value))
        elif option.kind == "boolean":
            flags.append(f"--{option.arg.flag}")
        else:
            flags += [f"--{option.arg.flag}", argument(value)]
    return " ".join(words + flags)


# ----------------------------------------------------------------------------------------------
# Shapes → discord.py command tree

RunCommand = Callable[[discord.Interaction[Any], CommandShape, dict[str, Any]], Awaitable[None]]
SuggestValues = Callable[[discord.Interaction[Any], OptionShape, str], Awaitable[list[str]]]

_ANNOTATIONS: dict[OptionKind, Any] = {
    "string": str, "integer": int, "boolean": bool, "user": discord.User, "channel": app_commands.AppCommandChannel,
    "attachment": discord.Attachment,
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
