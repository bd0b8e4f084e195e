"""The platform-neutral reply every adapter renders, and the invocation every adapter builds.

All text here is plain text as users typed it or as mona wrote it: adapters escape it for their
platform (Slack mrkdwn, Discord markdown) and add emphasis from the structure (a ``title`` is bold,
a ``Field`` label is bold), so user text can never ping a channel or break the layout.

A reply may carry files (``Attachment``: a chart). Slack uploads them into the channel the reply
goes to, Discord attaches them to the message, the console shows their paths; where a file cannot
be sent, the reply still arrives and says so (``attachment_failed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.i18n import _

Style = Literal["primary", "danger"] | None


@dataclass(frozen=True)
class Button:
    label: str
    action_id: str
    value: str = ""
    style: Style = None


@dataclass(frozen=True)
class Option:
    label: str
    value: str


@dataclass(frozen=True)
class Select:
    placeholder: str
    action_id: str
    options: tuple[Option, ...]


Element = Button | Select


@dataclass(frozen=True)
class Field:
    label: str
    value: str


@dataclass(frozen=True)
class Section:
    text: str = ""
    title: str | None = None
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True)
class TextInput:
    name: str
    label: str
    multiline: bool = False
    required: bool = True
    placeholder: str | None = None
    initial: str | None = None


@dataclass(frozen=True)
class ChoiceInput:
    name: str
    label: str
    options: tuple[Option, ...]
    initial: str | None = None


Input = TextInput | ChoiceInput


@dataclass(frozen=True)
class Modal:
    """A form. Its submission comes back as an ``Invocation`` of kind ``submit`` named ``callback_id``."""

    callback_id: str
    title: str
    inputs: tuple[Input, ...]
    submit_label: str = "OK"
    private_metadata: str = ""


@dataclass(frozen=True)
class Attachment:
    """A file sent with a reply: ``path`` on this machine, ``title`` what people see it as."""

    path: Path
    title: str

    @property
    def filename(self) -> str:
        return self.path.name


def attachment_failed(files: tuple[Attachment, ...], why: str) -> str:
    """What a reply says when its files could not be sent (in the team's language)."""
    names = ", ".join(f.title for f in files)
    return _("{files} could not be attached ({why}).", files=names, why=why)


@dataclass(frozen=True)
class Reply:
    text: str = ""
    title: str | None = None
    sections: tuple[Section, ...] = ()
    actions: tuple[Element, ...] = ()
    footer: str | None = None
    ephemeral: bool = True
    #: On a button click: replace the message the button was on (pagination, refreshed cards).
    replace_original: bool = False
    modal: Modal | None = None
    #: Errors in a form's fields (field name → message), shown beside the fields.
    field_errors: dict[str, str] = field(default_factory=dict)
    error: bool = False
    #: Files sent with the reply (a chart), in order.
    files: tuple[Attachment, ...] = ()

    @property
    def buttons(self) -> list[Button]:
        return [a for a in self.actions if isinstance(a, Button)]

    def plain_text(self) -> str:
        """Everything a person reads in this reply, as text (for logs, tests and notifications)."""
        parts = [p for p in (self.title, self.text) if p]
        for s in self.sections:
            parts += [p for p in (s.title, s.text) if p]
            parts += [f"{f.label}: {f.value}" for f in s.fields]
        if self.footer:
            parts.append(self.footer)
        return "\n".join(parts)


@dataclass(frozen=True)
class Invocation:
    """What a person did, in platform-neutral terms.

    ``kind`` is ``command`` (``text`` is the whole command line, e.g. ``/artist show Alex``),
    ``action`` (a button or select: ``name`` is the action id, ``value`` its value) or ``submit``
    (a modal: ``name`` is the callback id, ``values`` the fields, ``value`` its private metadata).
    """

    platform: str
    user_id: str
    user_name: str
    kind: Literal["command", "action", "submit"] = "command"
    text: str = ""
    name: str = ""
    value: str = ""
    values: dict[str, str] = field(default_factory=dict)
    channel_id: str | None = None
    #: The chat community it happened in, for moderation: a Discord guild id, a Twitch broadcaster id.
    community: str | None = None
    #: Platform user ids, among the people this invocation mentions, who are moderators or the
    #: broadcaster there (the adapter knows; moderation refuses to act on them).
    protected_ids: frozenset[str] = frozenset()
    #: What the platform says this person is there: "broadcaster", "moderator", "vip", "subscriber".
    #: Moderation commands accept the platform's moderators whatever their mona role.
    platform_roles: frozenset[str] = frozenset()
