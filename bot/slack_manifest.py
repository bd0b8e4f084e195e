"""The slash commands and shortcuts of ``slack-manifest.yml``, generated from the declarations.

``python -m bot.slack_manifest`` (``make docs``) rewrites the manifest's ``slash_commands`` block
(from the command declarations) and the ``shortcuts`` after it (from ``bot.slack.SHORTCUTS``, the
message shortcuts the adapter serves), keeping the rest of the file (scopes, events, comments) as
written; a spec fails when the file and the declarations drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

import handlers  # noqa: F401  (registers every command)
from bot.slack import SHORTCUTS, FileShortcut
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


def shortcuts(declared: tuple[FileShortcut, ...] = SHORTCUTS) -> list[dict[str, Any]]:
    return [{"name": s.name, "type": "message", "callback_id": s.callback_id, "description": s.description}
            for s in declared]


def _listed(items: list[dict[str, Any]]) -> str:
    block = yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=1000)
    return "".join(f"    {line}" if line.strip() else line for line in block.splitlines(keepends=True))


def render(text: str, commands: Registry = registry) -> str:
    """``text`` (the manifest) with its slash_commands and shortcuts blocks generated from the declarations."""
    start = text.index(_START) + len(_START)
    end = text.index(_END, start)
    return text[:start] + _listed(slash_commands(commands)) + "  shortcuts:\n" + _listed(shortcuts()) + text[end:]


def main() -> int:
    text = MANIFEST.read_text()
    new = render(text)
    if new != text:
        MANIFEST.write_text(new)
        print(f"rewrote the slash commands and shortcuts of {MANIFEST.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
