"""Typed arguments, and how each is written in chat, on a Discord option or in a form.

A command's fields are declared once with these types (``ArtistRef``, ``Amount``, ``MemberRef`` …)
and ``arg()`` / ``opt()``: a positional argument or a ``--flag``, with a description written for
people. From that declaration come the chat parser, the usage line, the Discord options, the
button values and the JSON schema (pydantic's, where ``x-chat`` says how it is typed in chat).

Chat conversions raise ``InvalidInput`` naming the argument as the person typed it (``--budget``,
``AMOUNT``); a value that is already typed (a Discord user, a ``Decimal`` from JSON) passes through.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from core import artists as crm
from core.errors import InvalidInput, NotFound
from core.i18n import _
from core.moderation.engine import parse_duration
from core.refs import ChannelRef, Mention
from handlers.parser import parse_channel, parse_date, parse_mention

OptionKind = Literal["string", "integer", "boolean", "user", "channel", "attachment"]
#: What to suggest while an option is typed (Discord's autocomplete).
Suggest = Literal["artist", "stage", "event", "command", "block"]
#: The largest record id (PostgreSQL's integer): a larger number names nothing.
MAX_ID = 2**31 - 1
#: The largest whole number an integer column holds, and a 64-bit one (follower counts).
MAX_INT, MAX_BIGINT = 2**31 - 1, 2**63 - 1
#: How a field is typed in chat: one word, every remaining word, a --flag, or a form's hidden metadata.
ChatPlace = Literal["positional", "rest", "flag", "meta"]


@dataclass(frozen=True)
class ChatType:
    """How values of one type are written: read from chat text, shown in usage, offered on Discord."""

    convert: Callable[[str, str], Any]
    metavar: str
    hint: str
    option: OptionKind = "string"
    suggest: Suggest | None = None
    #: A --flag of this type takes every word up to the next flag (free text, names with spaces).
    many_words: bool = False


def _text(raw: str, label: str) -> str:
    return raw


def _whole(raw: str, label: str, *, most: int = MAX_INT) -> int:
    clean = raw.replace(",", "").replace("_", "").replace(" ", "").replace("\u202f", "").replace("\xa0", "")
    if not re.fullmatch(r"-?[0-9]{1,19}", clean):
        raise InvalidInput(_("{label} must be a whole number, not {value}.", label=label, value=raw))
    value = int(clean)
    if value < 0:
        raise InvalidInput(_("{label} must not be negative.", label=label))
    if value > most:
        raise InvalidInput(_("{label} is too large: at most {most}.", label=label, most=f"{most:,}"))
    return value


def _big_whole(raw: str, label: str) -> int:
    return _whole(raw, label, most=MAX_BIGINT)


def _record_id(raw: str, label: str) -> int:
    clean = raw.strip().lstrip("#")
    if not re.fullmatch(r"[0-9]{1,19}", clean):
        raise InvalidInput(_("{label} must be a number like 12 or #12, not {value}.", label=label, value=raw))
    if int(clean) > MAX_ID:
        raise NotFound(_("Nothing has the number #{value}.", value=clean))
    return int(clean)


def _amount(raw: str, label: str) -> Decimal:
    return crm.parse_amount(raw)


def _currency(raw: str, label: str) -> str:
    return crm.parse_currency(raw)


def _date(raw: str, label: str) -> dt.date:
    return parse_date(raw)


def _member(raw: str, label: str) -> Mention:
    mention = parse_mention(raw)
    if mention is None:
        raise InvalidInput(_("{label} takes a mention like @name, not {value}.", label=label, value=raw))
    return mention


def _channel(raw: str, label: str) -> ChannelRef:
    ref = parse_channel(raw)
    if ref is None:
        raise InvalidInput(_("{value} is not a channel; write #channel.", value=raw))
    return ref


def _duration(raw: str, label: str) -> int:
    try:
        return parse_duration(raw)
    except ValueError:
        raise InvalidInput(_("{value} is not a duration; write it like 10m, 1h30m or 2d.", value=raw)) from None


@dataclass(frozen=True)
class Upload:
    """A file a person attached to a command (a Discord attachment option): its name and bytes."""

    name: str
    content: bytes


MAX_UPLOAD = 1_000_000


def _no_typed_file(raw: str, label: str) -> Upload:
    raise InvalidInput(_("{label} is a file to attach: attach it to the command on Discord, or run mona import FILE "
                         "where mona runs.", label=label))


def _flag_on(raw: str, label: str) -> bool:
    return True


ArtistRef = Annotated[str, ChatType(_text, "ARTIST", "Artist name, or an id like #12", suggest="artist", many_words=True)]
ArtistName = Annotated[str, ChatType(_text, "NAME", "The artist's name", many_words=True)]
StageName = Annotated[str, ChatType(_text, "STAGE", "Stage name, or next", suggest="stage", many_words=True)]
Text = Annotated[str, ChatType(_text, "TEXT", "Text", many_words=True)]
Word = Annotated[str, ChatType(_text, "WORD", "One word")]
Count = Annotated[int, Field(ge=0, le=MAX_INT), ChatType(_whole, "N", "A whole number", option="integer")]
#: A count that may pass 2^31 (followers): a 64-bit column.
BigCount = Annotated[int, Field(ge=0, le=MAX_BIGINT), ChatType(_big_whole, "N", "A whole number", option="integer")]
RecordId = Annotated[int, Field(ge=0, le=MAX_ID), ChatType(_record_id, "ID", "Number, as shown in the list", option="integer")]
Amount = Annotated[Decimal, Field(ge=0), ChatType(_amount, "AMOUNT", "Amount, e.g. 1500")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$"), ChatType(_currency, "CUR", "Currency code, e.g. EUR")]
Day = Annotated[dt.date, ChatType(_date, "DATE", "A date, e.g. 2026-12-31")]
Seconds = Annotated[int, Field(gt=0), ChatType(_duration, "DURATION", "How long, e.g. 10m, 1h30m or 2d")]
MemberRef = Annotated[Mention, ChatType(_member, "@member", "A team member", option="user")]
ChannelArg = Annotated[ChannelRef, ChatType(_channel, "#channel", "A channel", option="channel")]
Switch = Annotated[bool, ChatType(_flag_on, "", "Yes when given", option="boolean")]
FileArg = Annotated[Upload, ChatType(_no_typed_file, "FILE", "A file to attach", option="attachment")]


def arg(description: str, *, rest: bool = False, default: Any = ..., metavar: str = "") -> Any:
    """A positional argument; ``rest`` takes every word left (a name with spaces, free text)."""
    extra: dict[str, Any] = {"x-chat": "rest" if rest else "positional"}
    if metavar:
        extra["x-metavar"] = metavar
    return Field(default, description=description, json_schema_extra=extra)


def opt(description: str, *, default: Any = None, metavar: str = "", platforms: tuple[str, ...] = ()) -> Any:
    """A ``--flag``; ``platforms`` limits it to where it means something (``--in`` outside a community)."""
    extra: dict[str, Any] = {"x-chat": "flag"}
    if metavar:
        extra["x-metavar"] = metavar
    if platforms:
        extra["x-platforms"] = list(platforms)
    return Field(default, description=description, json_schema_extra=extra)


def meta(description: str) -> Any:
    """A value a form carries without showing it (the record it was opened on)."""
    return Field(..., description=description, json_schema_extra={"x-chat": "meta"})


def _chat_type_of(annotation: Any, metadata: list[Any]) -> ChatType:
    for m in metadata:
        if isinstance(m, ChatType):
            return m
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _chat_type_of(inner[0], [])
    if typing.get_origin(annotation) is Annotated:
        return _chat_type_of(args[0], list(args[1:]))
    if typing.get_origin(annotation) is Literal:
        return choice_type(tuple(str(a) for a in args))
    if annotation is bool:
        return typing.get_args(Switch)[1]  # type: ignore[no-any-return]
    if annotation is int:
        return typing.get_args(Count)[2]  # type: ignore[no-any-return]
    return typing.get_args(Text)[1]  # type: ignore[no-any-return]


def choice_type(choices: tuple[str, ...]) -> ChatType:
    def convert(raw: str, label: str) -> str:
        low = raw.strip().lower()
        if low in choices:
            return low
        if label.startswith("--"):
            raise InvalidInput(_("{label} must be one of {choices}, not {value}.", label=label, choices=", ".join(choices), value=raw))
        listed = _(" or ").join(choices) if len(choices) == 2 else ", ".join(choices)
        raise InvalidInput(_("Say {choices}, not {value}.", choices=listed, value=raw))

    return ChatType(convert, "|".join(choices), " | ".join(choices))


@dataclass(frozen=True)
class ArgSpec:
    """One declared argument, as chat and platforms see it."""

    name: str
    place: ChatPlace
    chat: ChatType
    description: str
    required: bool
    default: Any
    metavar: str
    choices: tuple[str, ...]
    platforms: tuple[str, ...]

    @property
    def flag(self) -> str:
        return self.name.rstrip("_").replace("_", "-")

    @property
    def label(self) -> str:
        """The argument as people type it: ``--budget`` or ``AMOUNT``."""
        return f"--{self.flag}" if self.place == "flag" else self.metavar

    def convert(self, raw: Any) -> Any:
        return self.chat.convert(raw, self.label) if isinstance(raw, str) else raw

    @property
    def usage(self) -> str:
        if self.place == "flag":
            shown = f"--{self.flag}" + (f" {self.metavar}" if self.metavar and self.chat.option != "boolean" else "")
            return f"[{shown}]"
        return self.metavar if self.required else f"[{self.metavar}]"


def arg_specs(cls: type[Any]) -> tuple[ArgSpec, ...]:
    """The declared arguments of a command class, in declaration order (cached on the class)."""
    cached = cls.__dict__.get("_mona_args")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    specs = []
    for name, info in cls.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        chat = _chat_type_of(info.annotation, list(info.metadata))
        place = typing.cast(ChatPlace, extra.get("x-chat", "flag"))
        literal = _literal_choices(info.annotation)
        specs.append(ArgSpec(
            name=name, place=place, chat=chat, description=info.description or chat.hint, required=info.is_required(),
            default=None if info.is_required() else info.default, metavar=str(extra.get("x-metavar") or chat.metavar),
            choices=literal, platforms=tuple(typing.cast(list[str], extra.get("x-platforms") or []))))
    result = tuple(specs)
    cls._mona_args = result
    return result


def _literal_choices(annotation: Any) -> tuple[str, ...]:
    if typing.get_origin(annotation) is Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    for a in typing.get_args(annotation):
        found = _literal_choices(a)
        if found:
            return found
    return ()
