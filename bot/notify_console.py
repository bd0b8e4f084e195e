"""``Notifier`` for the console: notifications as lines of text (the embedded default, and tests).

``[#C1] Title — text`` for a channel, ``[@U1] …`` for a direct message, one ``  [label]`` line per
button; an edit is ``[update console:3] …``. References are ``console:<n>``. Keys are remembered
in memory, so a send with ``possibly_sent_since`` returns the earlier reference without writing.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, TextIO

from core.notifier import Message, Notifier, PermanentFailure

PLATFORM = "console"
USER_PREFIX = "user:"


def _body(message: Message) -> str:
    return " — ".join(p for p in (message.title, message.text) if p)


class ConsoleNotifier:
    platform = PLATFORM

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.sent: dict[str, str] = {}  # key → ref
        self._count = 0
        self._lock = threading.Lock()

    def _write(self, head: str, message: Message) -> None:
        lines = [f"[{head}] {_body(message)}".rstrip()]
        lines += [f"  [{a.label}]" for a in message.actions]
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()

    def send(self, target: str, message: Message, *, key: str, possibly_sent_since: dt.datetime | None = None) -> str:
        with self._lock:
            if possibly_sent_since is not None and key in self.sent:
                return self.sent[key]
            self._count += 1
            ref = f"{PLATFORM}:{self._count}"
            where = "@" + target.removeprefix(USER_PREFIX) if target.startswith(USER_PREFIX) else "#" + target
            if message.thread:
                where += f" ↳ {message.thread}"
            self._write(where, message)
            self.sent[key] = ref
            return ref

    def update(self, ref: str, message: Message) -> None:
        with self._lock:
            if ref not in self.sent.values():
                raise PermanentFailure(f"no console message {ref!r}")
            self._write(f"update {ref}", message)


if TYPE_CHECKING:
    _conforms: type[Notifier] = ConsoleNotifier
