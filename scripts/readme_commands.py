"""The command table of README.md, generated from the command declarations.

    python scripts/readme_commands.py      # or: make docs (also the Slack manifest)

Rewrites what lies between the ``<!-- commands -->`` and ``<!-- /commands -->`` markers: one row
per command, its usage line and its summary, exactly as ``/mona help`` shows them in English.
A spec (tests/test_declarations.py) fails when the README and the declarations drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import handlers  # noqa: E402,F401  (registers every command)
from core.i18n import use_language  # noqa: E402
from handlers.registry import registry  # noqa: E402

README = ROOT / "README.md"
START, END = "<!-- commands -->\n", "<!-- /commands -->\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def table() -> str:
    rows = ["| command | what it does |", "|---|---|"]
    with use_language("en"):
        for spec in sorted(registry.commands.values(), key=lambda s: s.path):
            rows.append(f"| `{_cell(spec.full_usage)}` | {_cell(spec.summary)} |")
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    start = text.index(START) + len(START)
    end = text.index(END, start)
    return text[:start] + table() + text[end:]


def main() -> int:
    text = README.read_text()
    new = render(text)
    if new != text:
        README.write_text(new)
        print("rewrote the command table of README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
