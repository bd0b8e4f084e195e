"""Translations: every message mona can show has a French translation, faithful to its placeholders,
and a deployment with MONA_LANG=fr answers in French (English otherwise), amounts included.

The messages are extracted afresh from the code (scripts/extract_messages.py, as ``make messages``
does), so a new ``_()`` string or command docstring without a French translation fails here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
from pathlib import Path
from string import Formatter
from types import ModuleType

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from bot.console import ConsoleBot
from core.app import Application
from core.i18n import use_language
from core.pipelines import STAGES, Pipeline
from handlers.registry import Dispatcher, registry

ROOT = Path(__file__).resolve().parent.parent
#: How babel (CLDR) writes 1500 EUR in French: a narrow no-break space groups thousands, a no-break
#: space comes before the currency sign.
FR_1500_EUR = "1\u202f500,00\u00a0€"


def _extractor() -> ModuleType:
    spec = importlib.util.spec_from_file_location("extract_messages", ROOT / "scripts" / "extract_messages.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def template() -> Catalog:
    return _extractor().extract_template()


@pytest.fixture(scope="module")
def french() -> Catalog:
    with (ROOT / "core" / "locale" / "fr" / "LC_MESSAGES" / "mona.po").open("rb") as fh:
        return read_po(fh, locale="fr", domain="mona")


def _messages(catalog: Catalog) -> list[Message]:
    return [m for m in catalog if m.id]


def _forms(message: Message) -> tuple[str, ...]:
    """The translation, one string per plural form ("" when missing)."""
    strings = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
    return tuple(s or "" for s in strings)


def _ids(message: Message) -> tuple[str, ...]:
    """The message id: singular, and plural when it has one."""
    return tuple(message.id) if isinstance(message.id, (tuple, list)) else (message.id,)


def _placeholders(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conv in Formatter().parse(text) if name is not None}


# ---------------------------------------------------------------- the catalog


def test_the_extraction_finds_code_messages_command_help_and_deal_statuses(template):
    ids = {m.id for m in _messages(template)}
    assert "Added {name} to {pipeline} at {stage}." in ids
    assert ("{n} day", "{n} days") in ids
    assert "closes" in ids  # inside an f-string, which babel alone misses on Python 3.11
    assert {"open", "won", "lost"} <= ids  # translated at run time with _(status)
    with use_language("en"):
        for spec in registry.commands.values():
            assert spec.summary in ids, spec.name
            assert spec.help in ids, spec.name


def test_every_message_has_a_french_translation_that_is_not_fuzzy(template, french):
    problems = []
    for message in _messages(template):
        translated = french.get(message.id)
        if translated is None or not all(_forms(translated)):
            problems.append(f"untranslated: {message.id!r}")
        elif translated.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        elif len(_forms(translated)) != (2 if message.pluralizable else 1):
            problems.append(f"wrong number of plural forms: {message.id!r}")
    assert not problems, "run `make messages` and translate core/locale/fr/LC_MESSAGES/mona.po:\n" + "\n".join(problems)


def test_the_french_catalog_declares_french_plurals(french):
    assert french.plural_forms == "nplurals=2; plural=(n > 1);"


def test_each_translation_keeps_exactly_the_placeholders_of_its_message(french):
    problems = []
    for message in _messages(french):
        ids = _ids(message)
        for n, form in enumerate(_forms(message)):
            source = ids[min(n, len(ids) - 1)]
            try:
                if _placeholders(form) != _placeholders(source):
                    problems.append(f"{source!r} -> {form!r}")
            except ValueError as e:
                problems.append(f"{form!r}: {e}")
    assert not problems, "\n".join(problems)


def test_translations_keep_stage_names_pipelines_flags_and_commands(french):
    keep = [*(s for stages in STAGES.values() for s in stages), *(p.label for p in Pipeline)]
    problems = []
    for message in _messages(french):
        for source, form in zip(_ids(message), _forms(message), strict=False):
            words = [w for w in keep if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", source)]
            words += re.findall(r"--[a-z][a-z-]*", source) + re.findall(r"(?<![\w/])/[a-z][a-z-]*", source)
            problems += [f"{word} lost in {form!r}" for word in words if word not in form]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- replies


@pytest.fixture
def fr_bot(mona, settings) -> ConsoleBot:
    return ConsoleBot(Dispatcher(Application(mona.db, dataclasses.replace(settings, lang="fr"))), user_name="Lina")


def _bot(lang: str, bot: ConsoleBot, fr_bot: ConsoleBot) -> ConsoleBot:
    return fr_bot if lang == "fr" else bot


#: (command, English reply, French reply), run in this order on an empty database.
CONVERSATION = [
    ("/artist add Alex", "Added Alex to MONA at Prospection.", "Alex a rejoint MONA à l'étape Prospection."),
    ("/artist move Alex Nowhere",
     "Unknown stage Nowhere. Valid stages: Check-up, Prescription, Exécution, Fidélisation.",
     "Étape Nowhere inconnue. Étapes possibles : Check-up, Prescription, Exécution, Fidélisation."),
    ("/artist move Alex Showcase",
     "Showcase belongs to the other pipeline; from Prospection (MONA) the valid stages are: "
     "Check-up, Prescription, Exécution, Fidélisation.",
     "Showcase appartient à l'autre pipeline ; depuis Prospection (MONA), les étapes possibles sont : "
     "Check-up, Prescription, Exécution, Fidélisation."),
    ("/artist move Alex next", "Lina moved Alex from Prospection (MONA) to Check-up (MONA).",
     "Lina a déplacé Alex de Prospection (MONA) vers Check-up (MONA)."),
    ("/artsit show Alex", "Unknown command /artsit. Did you mean /artist? Type /mona help for the list.",
     "Commande /artsit inconnue. Vouliez-vous dire /artist ? Tapez /mona help pour voir la liste."),
    ("/artist", "/artist needs a subcommand:", "/artist attend une sous-commande :"),
    ("/artist add Bo --followers lots", "--followers must be a whole number, not lots.",
     "--followers doit être un nombre entier, pas lots."),
    ("/artist deal Alex 1500 Tour", "Deal #1 for Alex: Tour, €1,500.00.", f"Affaire #1 pour Alex : Tour, {FR_1500_EUR}."),
    ("/artist deal-status 1 won", "Deal #1 (Tour, €1,500.00) is won.", f"L'affaire #1 (Tour, {FR_1500_EUR}) est gagnée."),
    ("/artist deal-status 1 lost", "Deal #1 is already won.", "L'affaire #1 est déjà gagnée."),
]


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_commands_reply_in_the_deployment_language(bot, fr_bot, lang):
    speaker = _bot(lang, bot, fr_bot)
    for command, english, french in CONVERSATION:
        expected = french if lang == "fr" else english
        assert expected in speaker.run(command).text, command


@pytest.mark.parametrize(
    ("lang", "title", "summary", "footer"),
    [
        ("en", "mona commands", "Add an artist to a pipeline (MONA by default), at its first stage.",
         "Type /mona help COMMAND for details, e.g. /mona help artist move."),
        ("fr", "Commandes de mona", "Ajouter un artiste à un pipeline (MONA par défaut), à sa première étape.",
         "Tapez /mona help COMMANDE pour le détail, par exemple /mona help artist move."),
    ],
)
def test_help_lists_the_commands_in_the_deployment_language(bot, fr_bot, lang, title, summary, footer):
    reply = _bot(lang, bot, fr_bot).run("/mona help")
    assert reply.title == title and reply.footer == footer
    artist = next(s for s in reply.sections if s.title == "/artist")
    assert "/artist add NAME [--genre GENRE]" in artist.text and f"\n    {summary}\n" in artist.text


@pytest.mark.parametrize(
    ("lang", "text", "who"),
    [
        ("en", 'Move an artist to another stage of their pipeline (or "next").\n\n'
               "Moving a MONA artist from Fidélisation to Qualification qualifies them into SPARK.", "Who may use it"),
        ("fr", "Déplacer un artiste vers une autre étape de son pipeline (ou \"next\" pour l'étape suivante).\n\n"
               "Déplacer un artiste MONA de Fidélisation vers Qualification le fait passer dans SPARK.", "Qui peut l'utiliser"),
    ],
)
def test_help_on_one_command_shows_its_full_text_in_the_deployment_language(bot, fr_bot, lang, text, who):
    reply = _bot(lang, bot, fr_bot).run("/mona help artist move")
    assert reply.title == "/artist move ARTIST STAGE [--reason TEXT]"
    section = reply.sections[0]
    assert section.text == text
    assert [(f.label, f.value) for f in section.fields] == [(who, "admin, manager, member")]


def test_one_deployment_in_french_does_not_change_the_language_of_another(bot, fr_bot):
    assert fr_bot.run("/artist add Alex").text == "Alex a rejoint MONA à l'étape Prospection."
    assert bot.run("/artist add Sam").text == "Added Sam to MONA at Prospection."
    assert fr_bot.run("/artist show Nobody").text == "Aucun artiste ne s'appelle Nobody."


# ---------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("lang", "stage", "deals", "line"),
    [
        ("en", ("Stage", "MONA · Prospection (0 days)"), "Open deals: €1,500.00", "#1 Tour · €1,500.00 · closes 2026-12-31"),
        ("fr", ("Étape", "MONA · Prospection (0 jour)"), f"Affaires en cours : {FR_1500_EUR}",
         f"#1 Tour · {FR_1500_EUR} · clôture le 2026-12-31"),
    ],
)
def test_the_card_formats_amounts_for_the_language(bot, fr_bot, lang, stage, deals, line):
    speaker = _bot(lang, bot, fr_bot)
    speaker.run("/artist add Alex")
    assert not speaker.run("/artist deal Alex 1500 --close 2026-12-31 Tour").error
    card = speaker.run("/artist show Alex")
    assert stage in [(f.label, f.value) for f in card.sections[0].fields]
    section = next(s for s in card.sections if s.title == deals)
    assert section.text == line


def test_pipeline_figures_use_french_plurals_and_amounts(fr_bot):
    fr_bot.run("/artist add Alex")
    fr_bot.run("/artist deal Alex 1500 Tour")
    reply = fr_bot.run("/pipeline mona")
    (section,) = reply.sections
    assert section.title == "MONA : 1 artiste"
    assert f"Prospection: 1 · {FR_1500_EUR}" in section.text
    fr_bot.run("/artist add Sam")
    assert fr_bot.run("/pipeline mona").sections[0].title == "MONA : 2 artistes"
