"""The Slack app manifest (slack-manifest.yml) is one Slack accepts and declares what mona serves."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.slack import EVENTS_PATH
from handlers.registry import registry

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = Path(__file__).parent / "fixtures" / "slack-manifest.schema.v1.json"


def manifest() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "slack-manifest.yml").read_text())


def problems(document: dict[str, Any]) -> list[str]:
    schema = yaml.safe_load(SCHEMA.read_text())  # JSON is YAML; one loader for both files
    jsonschema.Draft7Validator.check_schema(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(document)]


def commands(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["features"]["slash_commands"])


def test_the_manifest_follows_slacks_schema() -> None:
    assert problems(manifest()) == []


def test_every_command_group_has_a_slash_command_and_nothing_else_does() -> None:
    declared = sorted(c["command"] for c in commands(manifest()))

    assert declared == sorted(f"/{group}" for group in registry.groups)


@pytest.mark.parametrize("breakage", ["no description", "no leading slash"])
def test_a_broken_slash_command_is_refused_by_the_schema(breakage: str) -> None:
    broken = copy.deepcopy(manifest())
    first = commands(broken)[0]
    if breakage == "no description":
        del first["description"]
    else:
        first["command"] = first["command"].lstrip("/")

    assert problems(broken) != []


def test_the_manifest_grants_what_the_slack_adapter_relies_on() -> None:
    m = manifest()

    assert m["features"]["bot_user"]["display_name"] == "mona"
    assert set(m["oauth_config"]["scopes"]["bot"]) >= {"commands", "chat:write", "chat:write.public", "users:read",
                                                       "im:write", "files:read", "files:write"}
    settings = m["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith(EVENTS_PATH)
    assert settings["socket_mode_enabled"] is True
    assert settings["org_deploy_enabled"] is False
    for command in commands(m):
        # Mentions must arrive as <@U…|name> for the parser; & < > arrive as entities, which
        # the adapter decodes.
        assert command["should_escape"] is True
        assert command["url"].endswith(EVENTS_PATH)
        assert command["usage_hint"]
