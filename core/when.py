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


#: A word written as a time of day (``9:00``, ``21h30``, ``25:99``, ``7pm``), valid or not.
_CLOCK = re.compile(r"^\d{1,2}([:h.]\d{0,2}|\s*[ap]\.?m\.?)$", re.I)
_VALID_CLOCK = re.compile(r"^([01]?\d|2[0-3])([:h.]([0-5]\d)?)?$|^(0?[1-9]|1[0-2])\s*[ap]\.?m\.?$", re.I)


def leading_time(words: Sequence[str], *, most: int = 5, now: dt.datetime | None = None) -> int:
    """How many of the first words (``most`` at most) name a time: 2 for ``tomorrow 9:00 call Alex``,
    trying the longest lead first; 0 when they name none. Whether words name a time does not depend
    on the timezone, so this only splits; ``due_at`` reads the time in the team's timezone.

    An impossible time of day among the first words (``tomorrow 25:99``) is refused: dateparser
    would read past it and set the reminder at the current time of that day."""
    words = list(words)
    now = now or dt.datetime.now(dt.UTC)
    found = next((n for n in range(min(len(words), most), 0, -1)
                  if parse_when(" ".join(words[:n]), tz="UTC", now=now) is not None), 0)
    for word in words[:found + 2]:  # what was read, and what may have been meant as part of it
        if word.lower() not in ("at", "à") and _CLOCK.match(word) and not _VALID_CLOCK.match(word):
            raise InvalidInput(_("{word} is not a time of day; write it like 9:00 or 21:30.", word=word))
    return found


def due_at(when: str | dt.datetime, *, tz: str, now: dt.datetime) -> dt.datetime:
    """The moment a reminder is due, as an aware UTC datetime: ``when`` is what a person wrote
    (read in the team's timezone ``tz``) or a datetime (one without a timezone is in ``tz``).

    Refuses times in the past, more than a year ahead, or that cannot be read."""
    if isinstance(when, dt.datetime):
        said = when.isoformat(sep=" ", timespec="minutes")
        due = (when if when.tzinfo else when.replace(tzinfo=ZoneInfo(tz))).astimezone(dt.UTC)
    else:
        said = when
        parsed = parse_when(when, tz=tz, now=now)
        if parsed is None:
            raise InvalidInput(_("I cannot read a time at the start of \"{text}\". Try in 2h, tomorrow 9:00 or 2026-12-01 14:30.",
                                 text=" ".join(when.split()[:4])))
        due = parsed
    if due <= now:
        local = due.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
        raise InvalidInput(_("{when} is in the past ({local}); give a time to come.", when=said, local=local))
    if due - now > MAX_AHEAD:
        raise InvalidInput(_("{when} is more than a year away; mona keeps reminders for up to a year.", when=said))
    return due
