"""Text that users type: normalising names for matching and rejecting what cannot be stored."""

from __future__ import annotations

import re
import unicodedata

from core.errors import InvalidInput
from core.i18n import _

MAX_TEXT = 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


#: Letters that render as nothing (Hangul fillers, the Braille blank) though Unicode files them as letters or symbols.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
#: Categories that never show: controls, formats (soft hyphen, joiners, BOM), marks on nothing, spaces.
_UNSEEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Mn", "Me", "Zs", "Zl", "Zp"})


def has_visible(text: str) -> bool:
    """Whether ``text`` shows at least one character (a name of U+2060 or U+3164 alone shows blank)."""
    return any(c not in _BLANK_LETTERS and unicodedata.category(c) not in _UNSEEN for c in text)


def fold(text: str) -> str:
    """Case- and accent-insensitive key: "Éloïse  Dupré" → "eloise dupre"."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


def clean(text: str, *, what: str, max_len: int = MAX_TEXT, allow_newlines: bool = True) -> str:
    """Trim ``text`` and refuse control characters or over-long text with a specific message."""
    text = text.strip()
    if len(text) > max_len:
        raise InvalidInput(
            _("The {what} is {n} characters long; the limit is {limit}.", what=what, n=len(text), limit=max_len)
        )
    bad = _CONTROL.search(text) or (not allow_newlines and re.search(r"[\r\n\t]", text))
    if bad:
        raise InvalidInput(
            _("The {what} contains a control character ({code}); remove it and try again.", what=what, code=f"U+{ord(bad.group(0)):04X}")
        )
    if text and not has_visible(text):
        raise InvalidInput(_("The {what} shows nothing: it needs at least one visible character.", what=what))
    return text


def check_command_text(text: str) -> None:
    """Whole-command checks done before parsing."""
    clean(text, what=_("message"), max_len=MAX_TEXT)
