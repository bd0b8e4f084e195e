"""The slash commands of ``slack-manifest.yml``, generated from the command declarations.

``python -m bot.slack_manifest`` (``make manifest``) rewrites the manifest's ``slash_commands``
block, keeping the rest of the file (scopes, comments) as written; a spec fails when the file and
the declarations drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

import handlers  # noqa: F401  (registers every command)
from handlers.registry import GROUPS, Registry, registry

MANIFEST = Path(__file__).resolve().parent.parent / "slack-manifest.yml"
URL = "https://YOUR-HOST/slack/events"
MAX_HINT = 1000
_START, _END = "  slash_commands:\n", "oauth_config:\n"


def usage_hint(commands: Registry, group: str) -> str:
    """Each subcommand of ``group`` with its positional arguments: ``add NAME | show ARTIST | …``."""
    parts = []
    for spec in commands.in_group(group):
        words = [*spec.path[1:], *(a.usage for a in spec.positionals)]
        parts.append(" ".join(words) or spec.name)
    hint = " | ".join(p for p in parts if p)
    return hint if len(hint) <= MAX_HINT else hint[: MAX_HINT - 1] + "…"


def slash_commands(commands: Registry = registry) -> list[dict[str, Any]]:
    return [{"command": f"/{group}", "description": GROUPS[group], "usage_hint": usage_hint(commands, group),
             "should_escape": True, "url": URL} for group in commands.groups]


def render(text: str, commands: Registry = registry) -> str:
    """``text`` (the manifest) with its slash_commands block generated from the declarations."""
    start = text.index(_START) + len(_START)
    end = text.index(_END, start)
    block = yaml.safe_dump(slash_commands(commands), sort_keys=False, allow_unicode=True, width=1000)
    indented = "".join(f"    {line}" if line.strip() else line for line in block.splitlines(keepends=True))
    return text[:start] + indented + text[end:]


def main() -> int:
    text = MANIFEST.read_text()
    new = render(text)
    if new != text:
        MANIFEST.write_text(new)
        print(f"rewrote the slash commands of {MANIFEST.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
