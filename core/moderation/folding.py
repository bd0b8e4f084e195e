"""Folding chat text so that a disguised word reads as the word a moderator banned.

Three views of one message, each a plain ``str``:

``fold(text)`` — the *folded* text, on which banned patterns run and repeated messages are compared:
  1. compatibility decomposition (NFKD): fullwidth ``ｍｏｎａ``, mathematical ``𝐦𝐨𝐧𝐚``/``𝓶𝓸𝓷𝓪``,
     circled ``ⓜ``, superscripts, ligatures ``ﬁ`` become plain letters, and accents come apart
     from their letters;
  2. every nonspacing or enclosing mark is dropped (Unicode categories Mn and Me): accents
     (``ḿona`` → ``mona``), zalgo stacks (``m̴̧o̷n̶a`` → ``mona``) and variation selectors
     (U+FE00–FE0F, U+E0100–E01EF);
  3. invisible characters are dropped: every format character (category Cf, which includes
     U+00AD soft hyphen, U+200B–U+200F zero-width spaces/joiners and direction marks, U+202A–U+202E,
     U+2060–U+2064, U+2066–U+2069, U+FEFF, the tag characters U+E0000–E007F), the blank "filler"
     letters U+115F, U+1160, U+3164, U+FFA0, and control characters other than whitespace;
  4. lowercase (``str.casefold``, so ``ß`` → ``ss``);
  5. look-alike letters become the Latin letter they imitate (table ``HOMOGLYPHS`` below): Cyrillic
     ``а е о р с у х і ј ѕ к м н т в`` (and their capitals, and ``ԁ һ ӏ ԛ ԝ ү``), Greek
     ``α ο ρ ε ι κ ν τ υ χ ω`` and the capitals that look Latin (``Η`` → h, ``Ν`` → n, …),
     small capitals ``ᴍᴏɴᴀ``, IPA ``ɑ ɡ ı ȷ``, and the letter-like emoji 🇦–🇿, 🅐–🅩, 🅰–🆉;
  6. every run of whitespace becomes one space, and the ends are trimmed.
  Pure-ASCII text takes a fast path that only lowercases and collapses whitespace (steps 1–5 cannot
  change ASCII text apart from its case and control characters).

``deleet(folded)`` — the folded text with leet digits and symbols read as letters:
  ``0→o 1→i 3→e 4→a 5→s 7→t 8→b 9→g @→a $→s !→i |→i``. It has exactly the length of the folded
  text, so a position in one is the same character in the other: a banned word is searched for in
  this view, and its word boundaries are checked in the folded one (where ``!`` or ``@`` is still
  punctuation, so ``m0na!`` and ``@mona`` are caught, and ``2024`` is still a number).

``collapse_spaced(folded)`` — the spaced-out words only, glued back together: a run of at least
  four single letters or digits separated by 1–3 non-alphanumeric characters (spaces, dots,
  dashes, emoji, …) — ``m o n a``, ``m.o.n.a``, ``m-o-n-a``, ``m 0 n 4`` — loses its separators and
  is deleeted (``mona``); several runs are joined by one space. Ordinary words are not collapsed, so
  ``I'm on a boat`` does not read as ``imonaboat``, and neither do words split in two (``mo na``,
  which this does not catch). Only banned words of 4 letters or more are looked for in this view.

Not folded: words written with letters swapped or doubled (``moona``), look-alikes outside the table
(e.g. Armenian, Cherokee), ``rn`` for ``m``, and words spelled with spaces between groups of letters.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["HOMOGLYPHS", "LEET", "SPACED_SCREEN", "collapse_spaced", "deleet", "fold", "spaced_runs"]

_SMALL_CAPS = "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ"  # there is no small capital q or x
_LATIN = "abcdefghijklmnopqrstuvwxyz"

#: Look-alike letter → the Latin letter it imitates. Sources are matched before and after
#: lowercasing, so a capital whose lowercase looks different (Greek ``Η``/``η``) keeps its own entry.
HOMOGLYPHS: dict[str, str] = {
    # Cyrillic capitals and small letters
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c",
    "Т": "t", "У": "y", "Х": "x", "І": "i", "Ј": "j", "Ѕ": "s",
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "һ": "h", "ӏ": "l",
    "ԛ": "q", "ԝ": "w", "ү": "y",
    # Greek capitals and small letters
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n",
    "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "ω": "w",
    # IPA letters used as look-alikes
    "ɑ": "a", "ɡ": "g", "ı": "i", "ȷ": "j",
    **dict(zip(_SMALL_CAPS, _LATIN.replace("q", "").replace("x", ""), strict=True)),
    # regional indicators 🇦–🇿, negative circled 🅐–🅩, negative squared 🅰–🆉
    **{chr(0x1F1E6 + i): c for i, c in enumerate(_LATIN)},
    **{chr(0x1F150 + i): c for i, c in enumerate(_LATIN)},
    **{chr(0x1F170 + i): c for i, c in enumerate(_LATIN)},
}

_LEET_FROM, _LEET_TO = "013457@$!|89", "oieastasiibg"
#: Leet character → letter, applied by ``deleet``.
LEET: dict[int, int] = str.maketrans(_LEET_FROM, _LEET_TO)
_LEET_BYTES = bytes.maketrans(_LEET_FROM.encode(), _LEET_TO.encode())

_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
_DROPPED_CATEGORIES = frozenset({"Mn", "Me", "Cf", "Cs"})  # Cs: lone surrogates
_CACHE_LIMIT = 30_000  # distinct non-ASCII characters remembered; others are folded each time


def _fold_char(char: str) -> str | None:
    out: list[str] = []
    for part in unicodedata.normalize("NFKD", char):
        if part in HOMOGLYPHS:
            out.append(HOMOGLYPHS[part])
            continue
        for ch in unicodedata.normalize("NFKD", part.casefold()):
            category = unicodedata.category(ch)
            if category in _DROPPED_CATEGORIES or ch in _FILLERS:
                continue
            if category == "Cc":
                if ch.isspace():
                    out.append(" ")
                continue
            out.append(" " if ch.isspace() else HOMOGLYPHS.get(ch, ch))
    return "".join(out) or None


class _FoldTable(dict[int, str | None]):
    """``str.translate`` table that folds each character on first sight and remembers it."""

    def __missing__(self, code: int) -> str | None:
        value = _fold_char(chr(code))
        if len(self) < _CACHE_LIMIT:
            self[code] = value
        return value


_TABLE = _FoldTable()
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")


def _fold_run(match: re.Match[str]) -> str:
    return match.group().translate(_TABLE)


def fold(text: str) -> str:
    """The folded text (see the module docstring): lowercase, no marks, no invisibles, Latin look-alikes."""
    folded = text.lower() if text.isascii() else _NON_ASCII.sub(_fold_run, text).lower()
    if not folded.isprintable():
        folded = _CONTROLS.sub("", folded)
    return " ".join(folded.split())


def deleet(folded: str) -> str:
    """``folded`` with leet digits and symbols read as letters; same length, position for position."""
    # In UTF-8 a byte below 128 is always that ASCII character, so only the leet characters change.
    return folded.encode().translate(_LEET_BYTES).decode()


_SPACED = re.compile(r"(?<![^\W_])(?:[^\W_][\W_]{1,3}){3,}[^\W_](?![^\W_])")
#: The same test for RE2 (no lookbehind there), for screening a message in one pass with other patterns.
SPACED_SCREEN = r"(?:^|[^\pL\pN])(?:[\pL\pN][^\pL\pN]{1,3}){3}[\pL\pN](?:$|[^\pL\pN])"
_NOT_ALNUM = re.compile(r"[\W_]+")


def spaced_runs(folded: str) -> list[tuple[str, str]]:
    """Each spaced-out run of ``folded`` as written and glued: ``("m . 0 . n . a", "mona")``."""
    return [(m.group(), _NOT_ALNUM.sub("", m.group()).translate(LEET)) for m in _SPACED.finditer(folded)]


def collapse_spaced(folded: str) -> str:
    """The spaced-out words of ``folded`` (``m o n a``, ``m.0.n.a``) glued and deleeted, or ``""``."""
    return " ".join(glued for _written, glued in spaced_runs(folded))
