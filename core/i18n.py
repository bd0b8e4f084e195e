"""One message catalog for every module: English message ids, translations in ``core/locale``.

Write ``_("Moved {name} to {stage}.", name=..., stage=...)``: the English text is the message id,
placeholders are filled after translation. The language is the deployment's ``MONA_LANG``, set per
call with ``use_language`` (a context variable, so threads and tasks do not leak it). The ``.po``
files are compiled in memory on first use, so the repository holds no binary catalogs.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterator
from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "mona"
_language: ContextVar[str] = ContextVar("mona_language", default="en")


@functools.cache
def translations(lang: str) -> NullTranslations:
    po_path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def current_language() -> str:
    return _language.get()


@contextlib.contextmanager
def use_language(lang: str) -> Iterator[None]:
    token = _language.set(lang)
    try:
        yield
    finally:
        _language.reset(token)


def _(message: str, /, **params: Any) -> str:
    """Translate ``message`` into the current language and fill its ``{placeholders}``."""
    text = translations(_language.get()).gettext(message)
    return text.format(**params) if params else text


def ngettext(singular: str, plural: str, n: int, /, **params: Any) -> str:
    text = translations(_language.get()).ngettext(singular, plural, n)
    return text.format(n=n, **params)


def money(amount: Decimal, currency: str) -> str:
    return format_currency(amount, currency, locale=_language.get())


def number(value: float | int | Decimal, digits: int = 0) -> str:
    fmt = "#,##0" if digits == 0 else "#,##0." + "0" * digits
    return format_decimal(value, format=fmt, locale=_language.get())


def percent(ratio: float) -> str:
    return format_percent(ratio, locale=_language.get())

