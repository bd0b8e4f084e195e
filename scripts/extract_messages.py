"""Extract mona's messages into core/locale/mona.pot and merge them into every language's .po file.

    python scripts/extract_messages.py           # or: make messages
    python scripts/extract_messages.py --check   # also fail when a translation is missing or fuzzy

Messages come from three places:

* the ``_()`` and ``ngettext()`` calls in the files that ``babel.cfg`` names (babel's extractor,
  plus those inside f-strings, which babel sees only on Python 3.12 and later);
* the help of every declared command, i.e. its docstring, which no extractor sees: the one-line
  summary that ``/mona help`` lists (``CommandSpec.summary``), the full text that
  ``/mona help COMMAND`` shows (``CommandSpec.help``) and the description of each argument
  (Discord's option descriptions);
* the event catalogue (``core.events``): what each event means and its fields;
* the few values translated at run time with ``_(variable)``: the deal statuses.

Existing translations are kept (``Catalog.update``): a new message arrives untranslated, a changed
one fuzzy, and messages gone from the code leave the catalog. The files are rewritten only when
their messages changed, not merely their dates.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import inspect
import io
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po, write_po
from babel.util import pathmatch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.i18n import DOMAIN, LOCALE_DIR, use_language  # noqa: E402

MAPPING = ROOT / "babel.cfg"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
#: The same keywords as babel.cfg (and ``pybabel extract -k _ -k ngettext:1,2``).
KEYWORDS = parse_keywords(["_", "ngettext:1,2"])
HEADER: dict[str, Any] = {"project": "mona", "version": "0.1.0", "copyright_holder": "MONA x SPARK",
          "header_comment": "# Messages of mona, the MONA x SPARK bot. Regenerate with `make messages`;\n"
                            "# the English text is the message id. Never translate stage names, command\n"
                            "# words, --flags, role names or {placeholders}."}
#: Header lines that change on every run; ignored when deciding whether a file changed.
_DATES = re.compile(rb'^"(POT-Creation-Date|PO-Revision-Date): .*\\n"\n', re.MULTILINE)


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def languages() -> list[str]:
    """Every language mona offers besides English (the message ids), and any catalog on disk."""
    from core.config import LANGUAGES

    on_disk = {p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")}
    return sorted((set(LANGUAGES) - {"en"}) | on_disk)


def _rel(path: str | Path) -> str:
    return Path(path).resolve().relative_to(ROOT).as_posix()


def _mapping() -> tuple[list[tuple[str, str]], dict[str, dict]]:
    with MAPPING.open() as fh:
        return parse_mapping_cfg(fh, str(MAPPING))


def _code_messages() -> Iterator[tuple[str | tuple[str, ...], str, int, list[str]]]:
    method_map, options_map = _mapping()
    for filename, lineno, message, comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",), strip_comment_tags=True
    ):
        yield message, filename, lineno, comments


def _fstring_messages() -> Iterator[tuple[str | tuple[str, ...], str, int, list[str]]]:
    """``f"{_('closes')} …"``: on Python 3.11 an f-string is one token to babel, so read the syntax tree."""
    patterns = [pattern for pattern, method in _mapping()[0] if method == "python"]
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))  # as babel's extract_from_dir
        for name in sorted(files):
            rel = _rel(Path(folder) / name)
            if any(pathmatch(p, rel) for p in patterns):
                yield from _fstring_calls(rel)


def _fstring_calls(rel: str) -> Iterator[tuple[str | tuple[str, ...], str, int, list[str]]]:
    tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"), filename=rel)
    for fstring in [n for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)]:
        for call in ast.walk(fstring):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in KEYWORDS):
                continue
            spec = KEYWORDS[call.func.id]
            positions = (1,) if spec is None else spec
            if not (isinstance(positions, tuple) and all(isinstance(i, int) for i in positions)):
                continue
            args = [call.args[i - 1] if len(call.args) >= i else None for i in positions]
            texts = tuple(a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str))
            if len(texts) == len(positions):
                yield (texts[0] if len(texts) == 1 else texts), rel, call.lineno, []


def _help_messages() -> Iterator[tuple[str, str, int, list[str]]]:
    import handlers  # noqa: F401  (registers every command)
    from handlers.registry import registry

    for spec in sorted(registry.commands.values(), key=lambda s: s.path):
        where = _rel(inspect.getsourcefile(spec.cls) or "")
        try:
            line = inspect.getsourcelines(spec.cls)[1]
        except OSError:  # a class made from a catalogue (create_model): no source lines of its own
            line = 0
        # English has no catalog, so the summary comes back untranslated: exactly the message id.
        with use_language("en"):
            summary = spec.summary
        yield summary, where, line, [f"Summary of {spec.name}, listed by /mona help."]
        if spec.help and spec.help != summary:
            yield spec.help, where, line, [f"Full help of {spec.name}, shown by /mona help {' '.join(spec.path)}."]
        for a in spec.args:
            yield a.description, where, line, [f"What {a.label} of {spec.name} is (Discord's option description, /mona help)."]


def _event_messages() -> Iterator[tuple[str, str, int, list[str]]]:
    from core import events

    where = _rel(inspect.getsourcefile(events) or "")
    for type_ in sorted(events.CATALOGUE):
        doc, fields = events.describe(type_)
        line = inspect.getsourcelines(events.CATALOGUE[type_])[1]
        yield doc, where, line, [f"What the event {type_} means, listed by /mona help events."]
        for name, description in fields:
            yield description, where, line, [f"The field {name} of the event {type_}."]


def _runtime_messages() -> Iterator[tuple[str, str, int, list[str]]]:
    from core import artists

    where = _rel(inspect.getsourcefile(artists) or "")
    for status in artists.DEAL_STATUSES:
        yield status, where, 0, ["A deal status (core.artists.DEAL_STATUSES), translated where it is shown."]


def extract_template() -> Catalog:
    """The message template: every message mona can show, from a fresh look at the code."""
    catalog = Catalog(domain=DOMAIN, charset="utf-8", **HEADER)
    for source in (_code_messages(), _fstring_messages(), _help_messages(), _event_messages(), _runtime_messages()):
        for message, filename, lineno, comments in source:
            catalog.add(message, None, [(filename, lineno)], auto_comments=comments)
    return catalog


def merge(template: Catalog, lang: str) -> Catalog:
    """The language's catalog brought up to date with ``template``, its translations kept."""
    path = po_path(lang)
    if path.exists():
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=lang, domain=DOMAIN)
    else:
        catalog = Catalog(locale=lang, domain=DOMAIN, charset="utf-8", fuzzy=False,
                          revision_date=dt.datetime.now(dt.UTC), last_translator="MONA x SPARK team",
                          language_team="MONA x SPARK team", **HEADER)
    catalog.update(template)
    return catalog


def render(catalog: Catalog, *, template: bool = False) -> bytes:
    buf = io.BytesIO()
    # Line numbers in the template help translators; the .po files keep only file names, so that a
    # line moving in the code does not rewrite them.
    write_po(buf, catalog, width=100, ignore_obsolete=True, include_lineno=template)
    return buf.getvalue()


def write_if_changed(path: Path, data: bytes) -> bool:
    old = path.read_bytes() if path.exists() else None
    if old is not None and _DATES.sub(b"", old) == _DATES.sub(b"", data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


@dataclass(frozen=True)
class Counts:
    total: int
    translated: int
    untranslated: list[str]
    fuzzy: list[str]


def counts(catalog: Catalog) -> Counts:
    """How many messages are translated; the ids (singular) of the untranslated and fuzzy ones."""
    messages = [m for m in catalog if m.id]
    untranslated: list[str] = []
    fuzzy: list[str] = []
    for m in messages:
        ident = str(m.id[0] if isinstance(m.id, (tuple, list)) else m.id)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if not all(strings):
            untranslated.append(ident)
        elif m.fuzzy:
            fuzzy.append(ident)
    return Counts(len(messages), len(messages) - len(untranslated) - len(fuzzy), untranslated, fuzzy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if a message is untranslated or fuzzy")
    args = parser.parse_args(argv)

    template = extract_template()
    changed = write_if_changed(TEMPLATE, render(template, template=True))
    print(f"{_rel(TEMPLATE)}: {len([m for m in template if m.id])} messages{' (updated)' if changed else ''}")
    incomplete = False
    for lang in languages():
        catalog = merge(template, lang)
        changed = write_if_changed(po_path(lang), render(catalog))
        c = counts(catalog)
        print(f"{_rel(po_path(lang))}: {c.translated} of {c.total} translated, {len(c.untranslated)} untranslated, "
              f"{len(c.fuzzy)} fuzzy{' (updated)' if changed else ''}")
        for ident in c.untranslated:
            print(f"  untranslated: {ident!r}")
        for ident in c.fuzzy:
            print(f"  fuzzy: {ident!r}")
        incomplete |= bool(c.untranslated or c.fuzzy)
    return 1 if args.check and incomplete else 0


if __name__ == "__main__":
    raise SystemExit(main())
