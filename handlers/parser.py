"""The one command-line parser: quotes, ``--flags``, mentions, for every platform.

Quoting follows what people type in chat rather than a shell: double quotes (straight or curly)
group words; an apostrophe inside a word (``j'ai``, ``Guns N' Roses``) is just a letter. A text flag
takes every word up to the next flag (``--reason signed the contract``); other flags take one word.
"""

from __future__ import annotations

import datetime as dt
import re

from dateutil import parser as dateparser
from rapidfuzz import process

from core.errors import InvalidInput
from core.i18n import _
from core.refs import ChannelRef, Mention

_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'"})
_MENTION = re.compile(r"^<@!?([A-Za-z0-9]+)(?:\|([^>]*))?>$")


_CHANNEL = re.compile(r"^<#([A-Za-z0-9]+)(?:\|([^>]*))?>$")


def parse_channel(token: str) -> ChannelRef | None:
    m = _CHANNEL.match(token)
    if m:
        return ChannelRef(m.group(1), m.group(2) or None)
    if token.startswith("#") and len(token) > 1 and not token[1:].isdecimal():
        return ChannelRef(None, token[1:])
    return None


def parse_mention(token: str) -> Mention | None:
    m = _MENTION.match(token)
    if m:
        return Mention(m.group(1), m.group(2) or None)
    if token.startswith("@") and len(token) > 1:
        return Mention(None, token[1:])
    return None


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


def split_flags(tokens: list[str], flags: dict[str, bool], *, bools: set[str], usage: str,
                links: frozenset[str] = frozenset()) -> tuple[list[str], dict[str, str | bool]]:
    """The positional words, and each ``--flag``'s raw value (``True`` for a switch).

    ``flags`` maps each flag to whether it takes every word up to the next flag (free text);
    ``links`` names the flags that take a channel, whose ``<#C123|name>`` link is kept as sent
    (elsewhere a channel link inside free text reads as the ``#name`` the person typed)."""
    positionals: list[str] = []
    given: dict[str, str | bool] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not _is_flag(tok):
            positionals.append(tok)
            i += 1
            continue
        name, eq, inline = tok[2:].partition("=")
        name = name.lower()
        if name not in flags:
            close = process.extractOne(name, list(flags), score_cutoff=60) if flags else None
            hint = " " + _("Did you mean --{flag}?", flag=close[0]) if close else ""
            known = ", ".join(f"--{f}" for f in flags) or _("none")
            raise InvalidInput(_("Unknown option --{flag}. Options here: {known}.", flag=name, known=known) + hint)
        if name in given:
            raise InvalidInput(_("--{flag} is given twice.", flag=name))
        i += 1
        if name in bools:
            given[name] = True
            continue
        if eq:
            words = [inline]
        elif flags[name]:
            words = []
            while i < len(tokens) and not _is_flag(tokens[i]):
                words.append(tokens[i])
                i += 1
        elif i < len(tokens) and not _is_flag(tokens[i]):
            words = [tokens[i]]
            i += 1
        else:
            words = []
        raw = " ".join(w if name in links else _as_typed(w) for w in words).strip()
        if not raw:
            raise InvalidInput(_("--{flag} needs a value: {usage}", flag=name, usage=usage))
        given[name] = raw
    return positionals, given


def _as_typed(word: str) -> str:
    """A channel mention inside free text reads as the ``#name`` the person typed."""
    ref = _CHANNEL.match(word)
    return f"#{ref.group(2) or ref.group(1)}" if ref else word
