"""Commands are declared once, typed: the parser, usage, help, Discord options, the Slack manifest
and the JSON schemas all come from the declarations, and these specs fail when one drifts."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from bot.discord_commands import command_shapes, offered_on_discord
from bot.slack_manifest import MANIFEST, render
from core.app import Command
from core.i18n import use_language
from handlers.args import arg_specs
from handlers.registry import build, decode, encode, registry, schema

SPECS = sorted(registry.commands.values(), key=lambda s: s.path)
EVERY_CLASS = [s.cls for s in SPECS] + list(registry.actions.values()) + list(registry.submits.values())


def test_every_command_button_and_form_is_a_typed_declaration_with_help():
    assert len(SPECS) >= 40
    for cls in EVERY_CLASS:
        assert issubclass(cls, Command) and cls.key, cls
        assert (cls.__doc__ or "").strip(), f"{cls.key} has no help text"
        for a in arg_specs(cls):
            assert a.description and not a.description.startswith("-"), f"{cls.key} {a.name}"
            # Written for people: a sentence with lower-case words, not a placeholder like DURATION.
            assert re.search(r"[a-z]{3}", a.description), f"{cls.key} {a.name}: {a.description!r}"


def test_each_command_has_a_json_schema_matching_its_arguments():
    for spec in SPECS:
        document = schema(spec.cls)
        jsonschema.Draft202012Validator.check_schema(document)
        assert document["title"] == spec.cls.key and document["x-permission"] == spec.permission.value
        assert set(document.get("properties", {})) == {a.name for a in spec.args}
        assert set(document.get("required", [])) == {a.name for a in spec.args if a.required}
        for a in spec.args:
            assert document["properties"][a.name]["x-chat"] == a.place


def test_the_usage_line_names_every_argument_the_parser_reads():
    for spec in SPECS:
        for a in spec.positionals:
            assert a.metavar in spec.usage, (spec.name, a.name)
        for a in spec.flags:
            assert f"--{a.flag}" in spec.usage, (spec.name, a.flag)


def test_a_typed_command_is_the_same_whether_typed_in_chat_or_built_from_values():
    from handlers.artists import AddDeal, MoveArtist

    typed = build(AddDeal, {"artist": "Alex Blue", "amount": "1 500,50", "title": "Summer tour", "currency": "usd"})
    assert typed == AddDeal(artist="Alex Blue", amount=Decimal("1500.50"), title="Summer tour", currency="USD")
    assert AddDeal.model_validate_json('{"artist": "#3", "amount": "12", "title": "EP"}').amount == Decimal("12")
    move = MoveArtist(artist="#4", stage="Villa Prep")
    assert build(MoveArtist, move.model_dump()) == move


def test_a_button_carries_its_command_and_reads_back_as_the_same_command():
    for cls in registry.actions.values():
        names = [a.name for a in arg_specs(cls)]
        if not names:
            continue
        sample = {a.name: _sample(a.chat.option, a.choices) for a in arg_specs(cls)}
        command = build(cls, sample)
        assert decode(cls, encode(command)) == command, cls.key


def _sample(option: str, choices: tuple[str, ...]) -> object:
    if choices:
        return choices[-1]
    return {"integer": "7", "boolean": True}.get(option, "Villa Prep")


def test_discord_options_are_the_declared_arguments(mona):
    with use_language("en"):
        shapes = {s.spec.path: s for s in command_shapes(registry)}
    assert set(shapes) == set(registry.commands)
    for path, shape in shapes.items():
        spec = registry.commands[path]
        expected = [a for a in (*spec.positionals, *spec.flags) if offered_on_discord(a)]
        assert sorted(o.arg.name for o in shape.options) == sorted(a.name for a in expected), spec.name
        required = [o.required for o in shape.options]
        assert required == sorted(required, reverse=True), f"{spec.name}: required options come first"
        for o in shape.options:
            assert o.description == o.arg.description and o.kind == o.arg.chat.option


def test_the_slack_manifest_declares_the_command_groups_as_generated():
    assert render(MANIFEST.read_text()) == MANIFEST.read_text(), "run `make docs` after changing commands"


def test_the_readme_lists_every_command_as_declared():
    from scripts.readme_commands import README
    from scripts.readme_commands import render as render_readme

    assert render_readme(README.read_text()) == README.read_text(), "run `make docs` after changing commands"


def test_help_shows_the_generated_usage_of_every_command(bot):
    listing = bot.run("/mona help").plain_text()
    for spec in SPECS:
        assert spec.full_usage in listing, spec.name


@pytest.mark.parametrize("path", ["README.md"])
def test_the_readme_names_every_command_group(path: str):
    text = (Path(__file__).resolve().parent.parent / path).read_text()
    for group in registry.groups:
        assert f"/{group}" in text
