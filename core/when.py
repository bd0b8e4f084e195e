"""Times people type: "in 2h", "tomorrow 9:00", "demain 9h", "2026-12-01 14:30", read in the team's
timezone with dateparser (English and French)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import dateparser

from core.errors import InvalidInput
from core.i18n import _

MAX_AHEAD = dt.timedelta(days=366)
_HOUR_H = re.compile(r"\b(\d{1,2})h(\d{2})?\b", re.I)  # French 9h, 9h30
_AT_HOUR = re.compile(r"\b(at|à)\s+(\d{1,2})\b(?!\s*[:h])", re.I)  # "at 9" → "at 9:00"
_SHORT_UNITS = re.compile(r"\b(\d+)\s*(m|min|h|d|j)\b", re.I)
_UNIT_WORDS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "j": "days"}


def _normalise(text: str) -> str:
    text = _SHORT_UNITS.sub(lambda m: f"{m.group(1)} {_UNIT_WORDS[m.group(2).lower()]}", text) if re.match(
        r"^\s*(in|dans)\b", text, re.I) else text
    text = _HOUR_H.sub(lambda m: f"{m.group(1)}:{m.group(2) or '00'}", text)
    return _AT_HOUR.sub(lambda m: f"{m.group(1)} {m.group(2)}:00", text)


def parse_when(text: str, *, tz: str, now: dt.datetime) -> dt.datetime | None:
    """The moment ``text`` names, as an aware UTC datetime, or None if it names no time."""
    zone = ZoneInfo(tz)
    base = now.astimezone(zone).replace(tzinfo=None)
    parsed = dateparser.parse(_normalise(text), languages=["en", "fr"], settings={
        "PREFER_DATES_FROM": "future", "TIMEZONE": tz, "RETURN_AS_TIMEZONE_AWARE": True, "RELATIVE_BASE": base,
    })
    return parsed.astimezone(dt.UTC) if parsed else None


def split_when(words: Sequence[str], *, tz: str, now: dt.datetime) -> tuple[dt.datetime, list[str]]:
    """Split ``tomorrow 9:00 call Alex`` into the time and the rest, trying the longest lead first.

    Refuses times in the past, more than a year ahead, or that cannot be read."""
    words = list(words)
    for n in range(min(len(words) - 1, 5), 0, -1):
        when = parse_when(" ".join(words[:n]), tz=tz, now=now)
        if when is not None:
            if when <= now:
                local = when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
                raise InvalidInput(_("{when} is in the past ({local}); give a time to come.", when=" ".join(words[:n]), local=local))
            if when - now > MAX_AHEAD:
                raise InvalidInput(_("{when} is more than a year away; mona keeps reminders for up to a year.", when=" ".join(words[:n])))
            return when, words[n:]
    raise InvalidInput(_("I cannot read a time at the start of \"{text}\". Try in 2h, tomorrow 9:00 or 2026-12-01 14:30.",
                         text=" ".join(words[:4])))
