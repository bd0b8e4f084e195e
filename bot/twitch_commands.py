"""Twitch chat commands: what a ``!word`` message asks for, and a ``Reply`` as one chat line.

Twitch chat has no embeds, buttons or private answers: a reply becomes one line of at most 500
characters (title, text, sections and fields joined), without its buttons. A line never starts with
``/``, ``.`` or ``!`` (Twitch or another bot could read it as a command, e.g. an artist named
``/ban x``): such a line gets a zero-width space in front. Answers to mirrored ``/mod`` commands
name commands as they are typed in chat (``!timeout @user DURATION REASON``, ``in_chat_terms``).

Every line costs the bot's chat quota, which anyone in chat can spend: refusals to people who do
not moderate the channel are kept to one per person a minute (``RefusalLimiter``).
"""

from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from core.i18n import _
from handlers.registry import RERUN, CommandSpec
from handlers.reply import Reply

PREFIX = "!"
MAX_LINE = 500
ZERO_WIDTH_SPACE = "\u200b"
_COMMAND_START = ("/", ".", "!")

#: Chat commands that mirror a ``/mod`` command: the word typed after ``!`` → the command's words.
MOD_COMMANDS: dict[str, str] = {
    "warn": "mod warn",
    "timeout": "mod timeout",
    "ban": "mod ban",
    "unban": "mod unban",
    "permit": "mod permit",
    "stream": "mod stream",
    "cases": "mod cases",
    "emergency": "mod emergency",
    "scene": "stream scene",
}
#: Mirrored commands whose first argument is the person acted on (``@login`` or ``login``).
NAMES_A_USER = frozenset({"warn", "timeout", "ban", "unban", "permit", "cases"})
#: Mirrored commands whose action, once Twitch carried it out, is announced in the chat by a public
#: notice ("@x is timed out for 10m (spam)."): that notice is the answer, and the reply to the
#: moderator is not posted as well (it is when the action was refused, failed or is still queued).
ANNOUNCED = frozenset({"warn", "timeout", "ban"})
#: Commands anyone in chat may use, answered by the adapter itself or through the dispatcher.
VIEWER_COMMANDS = frozenset({"uptime", "socials", "artist"})
#: A Twitch login: what follows ``@`` in chat (display names differ only in case, or are localized).
_LOGIN = re.compile(r"^[A-Za-z0-9_]{1,25}$")


@dataclass(frozen=True)
class ChatCommand:
    word: str  # lower case, without the "!"
    args: str  # the rest of the message, trimmed


def parse_command(text: str) -> ChatCommand | None:
    """``!artist Alex`` → ``ChatCommand("artist", "Alex")``; ``None`` for other messages."""
    if not text.startswith(PREFIX):
        return None
    parts = text[len(PREFIX):].split(maxsplit=1)
    if not parts:
        return None
    return ChatCommand(parts[0].lower(), parts[1].strip() if len(parts) > 1 else "")


def split_target(args: str) -> tuple[str | None, str]:
    """The login named first (``@Spammy`` or ``spammy`` → ``spammy``) and the words after it;
    ``None`` when the first word is not a Twitch login."""
    parts = args.split(maxsplit=1)
    if not parts:
        return None, ""
    login = parts[0].removeprefix("@")
    rest = parts[1] if len(parts) > 1 else ""
    return (login.lower(), rest) if _LOGIN.match(login) else (None, rest)


def mention(user_id: str, name: str) -> str:
    """A person as the shared parser reads a platform mention: ``<@id|name>``."""
    return f"<@{user_id}|{name}>"


def chat_line(text: str) -> str:
    """``text`` as one chat line: lines joined with `` · ``, spaces collapsed, at most 500
    characters, never starting like a command."""
    line = " · ".join(" ".join(part.split()) for part in text.splitlines() if part.strip())
    while line and (line[0].isspace() or unicodedata.category(line[0]) == "Cf"):
        line = line[1:]
    if line.startswith(_COMMAND_START):
        line = ZERO_WIDTH_SPACE + line
    if len(line) > MAX_LINE:
        line = line[: MAX_LINE - 1].rstrip() + "…"
    return line


def reply_line(reply: Reply) -> str:
    """Everything a person reads in ``reply``, as one line, its footer last; buttons are left out,
    except the choices offered when a name matched several (their labels are the answer)."""
    parts = [reply.title, reply.text]
    for section in reply.sections:
        parts += [section.title, section.text]
        parts += [f"{f.label}: {f.value}" for f in section.fields]
    choices = [b.label for b in reply.buttons if b.action_id == RERUN]
    if choices:
        parts.append(", ".join(choices))
    parts.append(reply.footer)  # e.g. whether Twitch carried the action out
    return chat_line(" · ".join(p.replace("\n", " · ") for p in parts if p))


_CARD_ID = re.compile(r"\s*\(#\d+\)$")


def artist_line(reply: Reply) -> str:
    """An artist card for chat: the name and the stage, nothing else (no owner, contact, deals or
    notes). Call in the team's language: the stage field is found by its label."""
    stage = next((f for s in reply.sections for f in s.fields if f.label == _("Stage")), None)
    if reply.error or stage is None or not reply.title:
        # Not a card (not found, several match): the message and the choices, never other fields.
        return reply_line(Reply(text=reply.text, actions=reply.actions))
    return chat_line(f"{_CARD_ID.sub('', reply.title)} · {stage.label}: {stage.value}")


def uptime_line(started_at: dt.datetime | None, now: dt.datetime) -> str:
    """"Live for 1 h 23 min." or "Offline."; call in the team's language."""
    if started_at is None:
        return _("Offline.")
    minutes = max(0, int((now - started_at).total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    duration = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return _("Live for {duration}.", duration=duration)


def chat_usage(word: str, spec: CommandSpec, platform: str = "twitch") -> str:
    """How a mirrored command is typed in chat: ``!timeout @user DURATION REASON`` (options meant
    for other places, like ``--in``, left out)."""
    args = [a.usage for a in (*spec.positionals, *spec.flags) if not a.platforms or platform in a.platforms]
    return " ".join([PREFIX + word, *args])


def in_chat_terms(text: str, mirrored: Mapping[str, str], specs: Mapping[tuple[str, ...], CommandSpec]) -> str:
    """``text`` with the ``/mod`` commands it names as typed in chat: a usage line becomes
    ``chat_usage``, and ``/mod ban`` becomes ``!ban``."""
    by_length = sorted(mirrored.items(), key=lambda item: -len(item[1]))
    for word, words in by_length:
        spec = specs.get(tuple(words.split()))
        if spec is not None:
            text = text.replace(spec.full_usage, chat_usage(word, spec))
    for word, words in by_length:
        text = re.sub(rf"(?<![\w/]){re.escape('/' + words)}(?![\w-])", PREFIX + word, text)
    return text


class RefusalLimiter:
    """At most one refusal per person every ``interval`` seconds; the others are not posted.
    Remembers the last ``size`` people."""

    def __init__(self, interval: float = 60.0, *, size: int = 5000, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.size = size
        self.clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()

    def allow(self, user_id: str) -> bool:
        now = self.clock()
        last = self._last.get(user_id)
        if last is not None and now - last < self.interval:
            return False
        self._last[user_id] = now
        self._last.move_to_end(user_id)
        while len(self._last) > self.size:
            self._last.popitem(last=False)
        return True
