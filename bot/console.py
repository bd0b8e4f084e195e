"""The console adapter: a REPL that speaks the same commands, and the driver the tests use.

Buttons and select options are shown as numbered choices; typing the number clicks it. A form
(modal) is asked field by field. A file sent with a reply (a chart) is shown as its path on this
machine.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from core.app import Caller
from core.team import CONSOLE_USER
from handlers.registry import Dispatcher
from handlers.reply import Button, ChoiceInput, Invocation, Modal, Reply, Select

PLATFORM = "console"
#: The console's local user (an admin), for what the ``mona`` command line runs outside the REPL.
CONSOLE_CALLER = Caller(platform=PLATFORM, user_id=CONSOLE_USER, user_name=getpass.getuser(), channel_id="console")


@dataclass(frozen=True)
class Choice:
    label: str
    action_id: str
    value: str


def choices(reply: Reply) -> list[Choice]:
    out: list[Choice] = []
    for el in reply.actions:
        if isinstance(el, Button):
            out.append(Choice(el.label, el.action_id, el.value))
        elif isinstance(el, Select):
            out += [Choice(f"{el.placeholder} {o.label}", el.action_id, o.value) for o in el.options]
    return out


def render(reply: Reply) -> str:
    """The reply as terminal text; user text is printed as it is (a terminal has no markup)."""
    lines: list[str] = []
    if reply.text:
        lines.append(("! " if reply.error else "") + reply.text)
    if reply.title:
        lines.append(f"== {reply.title} ==")
    for s in reply.sections:
        if s.title:
            lines.append(f"-- {s.title}")
        if s.text:
            lines.append(s.text)
        lines += [f"{f.label}: {f.value}" for f in s.fields]
    if reply.footer:
        lines.append(reply.footer)
    lines += [f"{f.title}: {f.path}" for f in reply.files]
    for n, c in enumerate(choices(reply), 1):
        lines.append(f"  [{n}] {c.label}")
    if reply.modal:
        lines.append(f"[form] {reply.modal.title}")
    return "\n".join(lines)


class ConsoleBot:
    """Drives the dispatcher as the console's local user (an admin) or any identity given."""

    def __init__(self, dispatcher: Dispatcher, *, user_id: str = CONSOLE_USER, user_name: str | None = None,
                 platform: str = PLATFORM) -> None:
        self.dispatcher = dispatcher
        self.platform = platform
        self.user_id = user_id
        self.user_name = user_name or (getpass.getuser() if platform == PLATFORM else user_id)

    def run(self, text: str) -> Reply:
        text = text.strip()
        if not text.startswith("/"):
            text = "/" + text
        return self.dispatcher.dispatch(self._inv(kind="command", text=text))

    def click(self, reply: Reply, label: str | int) -> Reply:
        """Click a button or select option by its number (1-based) or a piece of its label."""
        options = choices(reply)
        if isinstance(label, int):
            choice = options[label - 1]
        else:
            matching = [c for c in options if label.casefold() in c.label.casefold()]
            if len(matching) != 1:
                raise LookupError(f"{label!r} matches {[c.label for c in matching]} among {[c.label for c in options]}")
            choice = matching[0]
        return self.dispatcher.dispatch(self._inv(kind="action", name=choice.action_id, value=choice.value))

    def submit(self, modal: Modal, values: dict[str, str]) -> Reply:
        return self.dispatcher.dispatch(self._inv(kind="submit", name=modal.callback_id, value=modal.private_metadata,
                                                  values=values))

    def as_user(self, user_id: str, user_name: str | None = None) -> ConsoleBot:
        return ConsoleBot(self.dispatcher, user_id=user_id, user_name=user_name, platform=self.platform)

    def _inv(self, **kw: object) -> Invocation:
        return Invocation(platform=self.platform, user_id=self.user_id, user_name=self.user_name,
                          channel_id="console", **kw)  # type: ignore[arg-type]


def ask_form(modal: Modal, ask: Callable[[str], str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for field in modal.inputs:
        if isinstance(field, ChoiceInput):
            names = "/".join(o.value for o in field.options)
            answer = ask(f"{field.label} ({names}) [{field.initial or ''}]: ").strip()
            values[field.name] = answer or (field.initial or "")
        else:
            default = f" [{field.initial}]" if field.initial else ""
            answer = ask(f"{field.label}{default}: ").strip()
            values[field.name] = answer or (field.initial or "")
    return values


def repl(bot: ConsoleBot, *, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """Read commands until end of input. A number clicks a choice of the last reply."""
    def ask(prompt: str) -> str:
        stdout.write(prompt)
        stdout.flush()
        line = stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    stdout.write("mona console — type /mona help, a number to pick a choice, or quit.\n")
    last: Reply | None = None
    while True:
        try:
            line = ask("mona> ").strip()
        except (EOFError, KeyboardInterrupt):
            stdout.write("\n")
            return
        if line in ("quit", "exit"):
            return
        if not line:
            continue
        if line.isdecimal() and last is not None and 1 <= int(line) <= len(choices(last)):
            reply = bot.click(last, int(line))
        else:
            reply = bot.run(line)
        while reply.modal is not None:
            try:
                values = ask_form(reply.modal, ask)
            except EOFError:
                return
            submitted = bot.submit(reply.modal, values)
            if submitted.field_errors:
                stdout.write(render(submitted) + "\n")
                continue
            reply = submitted
        stdout.write(render(reply) + "\n")
        last = reply
