"""The one command-line parser: quotes, ``--flags``, mentions, for every platform.

Quoting follows what people type in chat rather than a shell: double quotes (straight or curly)
group words; an apostrophe inside a word (``j'ai``, ``Guns N' Roses``) is just a letter. A text flag
takes every word up to the next flag (``--reason signed the contract``); other flags take one word.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from dateutil import parser as dateparser
from rapidfuzz import process

from core.errors import InvalidInput
from core.i18n import _

FlagKind = Literal["text", "word", "int", "member", "date", "choice", "bool"]

_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'"})
_MENTION = re.compile(r"^<@!?([A-Za-z0-9]+)(?:\|([^>]*))?>$")


@dataclass(frozen=True)
class Mention:
    """``<@U123>`` (Slack), ``<@123>`` (Discord) or ``@alice`` (a display name, console)."""

    external_id: str | None
    name: str | None

    def __str__(self) -> str:
        return f"@{self.name or self.external_id}"


@dataclass(frozen=True)
class ChannelRef:
    """``<#C123|crm>`` (Slack), ``<#123>`` (Discord) or ``#crm`` (a console channel name)."""

    external_id: str | None
    name: str | None

    @property
    def label(self) -> str:
        return f"#{self.name or self.external_id}"


_CHANNEL = re.compile(r"^<#([A-Za-z0-9]+)(?:\|([^>]*))?>$")


def parse_channel(token: str) -> ChannelRef | None:
    m = _CHANNEL.match(token)
    if m:
        return ChannelRef(m.group(1), m.group(2) or None)
    if token.startswith("#") and len(token) > 1 and not token[1:].isdigit():
        return ChannelRef(None, token[1:])
    return None


def parse_mention(token: str) -> Mention | None:
    m = _MENTION.match(token)
    if m:
        return Mention(m.group(1), m.group(2) or None)
    if token.startswith("@") and len(token) > 1:
        return Mention(None, token[1:])
    return None


@dataclass(frozen=True)
class Flag:
    name: str
    kind: FlagKind = "text"
    choices: tuple[str, ...] = ()
    metavar: str = ""
    help: str = ""


@dataclass
class Args:
    positionals: list[str] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.flags.get(name, default)


def tokenize(text: str) -> list[str]:
    """Split a command line into words, honouring double quotes; refuses an unclosed quote."""
    text = text.translate(_QUOTES)
    # Chat clients turn "--" into an em or en dash: read them back as flags.
    text = re.sub(r"(^|\s)[—–](?=\w)", r"\1--", text)
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise InvalidInput(_('There is an unclosed quote (") in your command.'))
            tokens.append(text[i + 1 : end])
            i = end + 1
            continue
        j = i
        while j < n and not text[j].isspace():
            j += 1
        tokens.append(text[i:j])
        i = j
    return tokens


def _is_flag(token: str) -> bool:
    return token.startswith("--") and len(token) > 2 and not token[2].isdigit()


def parse_date(text: str) -> dt.date:
    try:
        return dateparser.parse(text, dayfirst=not re.match(r"^\d{4}-", text)).date()
    except (ValueError, OverflowError):
        raise InvalidInput(_("{text} is not a date; write it like 2026-12-31.", text=text)) from None


def parse_args(tokens: list[str], flags: tuple[Flag, ...], *, usage: str) -> Args:
    by_name = {f.name: f for f in flags}
    args = Args()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not _is_flag(tok):
            args.positionals.append(tok)
            i += 1
            continue
        name, eq, inline = tok[2:].partition("=")
        name = name.lower()
        spec = by_name.get(name)
        if spec is None:
            close = process.extractOne(name, list(by_name), score_cutoff=60) if by_name else None
            hint = " " + _("Did you mean --{flag}?", flag=close[0]) if close else ""
            known = ", ".join(f"--{f}" for f in by_name) or _("none")
            raise InvalidInput(_("Unknown option --{flag}. Options here: {known}.", flag=name, known=known) + hint)
        if name in args.flags:
            raise InvalidInput(_("--{flag} is given twice.", flag=name))
        i += 1
        if spec.kind == "bool":
            args.flags[name] = True
            continue
        if eq:
            words = [inline]
        elif spec.kind == "text":
            words = []
            while i < len(tokens) and not _is_flag(tokens[i]):
                words.append(tokens[i])
                i += 1
        elif i < len(tokens) and not _is_flag(tokens[i]):
            words = [tokens[i]]
            i += 1
        else:
            words = []
        raw = " ".join(_as_typed(w) for w in words).strip()
        if not raw:
            raise InvalidInput(_("--{flag} needs a value: {usage}", flag=name, usage=usage))
        args.flags[name] = _convert(spec, raw)
    return args


def _as_typed(word: str) -> str:
    """A channel mention inside free text reads as the ``#name`` the person typed."""
    ref = _CHANNEL.match(word)
    return f"#{ref.group(2) or ref.group(1)}" if ref else word


def _convert(spec: Flag, raw: str) -> Any:
    if spec.kind == "int":
        clean = raw.replace(",", "").replace("_", "").replace(" ", "")
        if not re.fullmatch(r"-?\d{1,15}", clean):
            raise InvalidInput(_("--{flag} must be a whole number, not {value}.", flag=spec.name, value=raw))
        value = int(clean)
        if value < 0:
            raise InvalidInput(_("--{flag} must not be negative.", flag=spec.name))
        return value
    if spec.kind == "choice":
        low = raw.lower()
        if low not in spec.choices:
            raise InvalidInput(
                _("--{flag} must be one of {choices}, not {value}.", flag=spec.name, choices=", ".join(spec.choices), value=raw)
            )
        return low
    if spec.kind == "member":
        mention = parse_mention(raw)
        if mention is None:
            raise InvalidInput(_("--{flag} takes a mention like @name, not {value}.", flag=spec.name, value=raw))
        return mention
    if spec.kind == "date":
        return parse_date(raw)
    return raw
