"""Small formatting helpers shared by handlers (dates in the team's timezone, money, truncation)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from core.i18n import money, ngettext


def local_date(at: dt.datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d")


def local_datetime(at: dt.datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def totals(amounts: dict[str, Decimal]) -> str:
    return " + ".join(money(v, c) for c, v in sorted(amounts.items())) or money(Decimal(0), "EUR")


def days(n: int) -> str:
    return ngettext("{n} day", "{n} days", n)


def shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
