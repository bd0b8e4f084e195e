"""Render a ``Reply`` for Discord: an embed, and a view of buttons and menus; a ``Modal`` as a
Discord modal; and read a modal submission back.

Text is plain in a ``Reply``: each piece is escaped here (``discord.utils.escape_markdown`` and
``escape_mentions``) before the structure adds anything, and every message the adapter sends also
carries ``AllowedMentions.none()``, so nothing a person typed can ping anyone.

Routing: a component's ``custom_id`` is ``"{action_id}|{value}"`` (the format notifications use
too), so a click comes back to the handler of that action id whatever message it was on, even
after a restart. Discord allows 100 characters: a longer value (or one starting with ``~``) is
kept in a bounded in-memory map and the custom id carries ``~`` and a token instead; when the map
has forgotten it (after a restart or many newer messages) the click answers that the button
expired. A menu's custom id carries only its action id; the chosen option's value comes with the
click. Views are built already stopped: discord.py then sends their components without keeping
per-message state, and one router handles every click.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections import OrderedDict
from typing import Any

import discord

from bot.notify_discord import ELLIPSIS, ZWSP, fit
from core.i18n import _
from handlers.chat import ModLogPost
from handlers.reply import Button, ChoiceInput, Element, Modal, Reply, Select

log = logging.getLogger("mona.discord")

SEP = "|"
TOKEN = "~"
#: The action id of "open the form again" buttons, handled by the adapter itself.
FORM_ACTION = "discord.form"

#: Limits from Discord's reference.
MAX_CUSTOM_ID = 100
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_EMBED = 6000
MAX_CONTENT = 2000
MAX_ROWS = 5
BUTTONS_PER_ROW = 5
MAX_BUTTON_LABEL = 80
MAX_OPTIONS = 25
MAX_OPTION_LABEL = 100
MAX_OPTION_VALUE = 100
MAX_PLACEHOLDER = 150
MAX_MODAL_TITLE = 45
MAX_INPUT_LABEL = 45
MAX_INPUT_PLACEHOLDER = 100
MAX_INPUT_VALUE = 4000
MAX_INPUTS = 5

BRAND = discord.Colour(0x7C3AED)
ERROR = discord.Colour(0xDC2626)
STYLES = {"primary": discord.ButtonStyle.primary, "danger": discord.ButtonStyle.danger}

NO_MENTIONS = discord.AllowedMentions.none()


def escape(text: str) -> str:
    """Text as Discord shows it literally: markdown escaped (links kept), mentions broken."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def cut(text: str, limit: int) -> str:
    """Plain text (labels, footers: Discord shows them without markdown) cut to ``limit``."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


class CustomIds:
    """Custom ids for components and modals, and the bounded map of values too long for them."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[str, Any] = OrderedDict()
        self._modals: OrderedDict[str, Modal] = OrderedDict()

    def _keep(self, value: Any) -> str:
        token = secrets.token_urlsafe(9)
        self._kept[token] = value
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)
        return TOKEN + token

    def kept(self, token: str) -> Any | None:
        value = self._kept.get(token.removeprefix(TOKEN))
        if value is not None:
            self._kept.move_to_end(token.removeprefix(TOKEN))
        return value

    def encode(self, action_id: str, value: str, *, unique: bool = False) -> str | None:
        """``action|value``, or ``action|~token`` for a long value (or ``unique``, to tell two equal
        buttons apart); ``None`` if even that does not fit (an action id of about 90 characters)."""
        direct = f"{action_id}{SEP}{value}"
        if len(direct) <= MAX_CUSTOM_ID and not value.startswith(TOKEN) and not unique:
            return direct
        if len(action_id) + len(SEP) + 13 > MAX_CUSTOM_ID:
            log.warning("left out a component whose action id is %d characters", len(action_id))
            return None
        return f"{action_id}{SEP}{self._keep(value)}"

    def decode(self, custom_id: str) -> tuple[str, str] | None:
        """``(action id, value)``; ``None`` when the value was kept and has been forgotten."""
        action_id, _sep, value = custom_id.partition(SEP)
        if value.startswith(TOKEN):
            kept = self.kept(value)
            if not isinstance(kept, str):
                return None
            value = kept
        return action_id, value

    def option_value(self, value: str) -> str:
        if len(value) <= MAX_OPTION_VALUE and not value.startswith(TOKEN):
            return value
        return self._keep(value)

    def chosen(self, value: str) -> str | None:
        """A chosen menu option's value as the handler gave it; ``None`` if forgotten."""
        if not value.startswith(TOKEN):
            return value
        kept = self.kept(value)
        return kept if isinstance(kept, str) else None

    def modal_id(self, modal: Modal) -> str:
        """The custom id of a modal (its callback id and private metadata); the modal is
        remembered, so that errors can name its fields by their labels."""
        custom_id = self.encode(modal.callback_id, modal.private_metadata) or modal.callback_id
        self._modals[custom_id] = modal
        while len(self._modals) > self.capacity:
            self._modals.popitem(last=False)
        return custom_id

    def modal(self, custom_id: str) -> Modal | None:
        return self._modals.get(custom_id)

    def form_button(self, label: str, modal: Modal) -> Button:
        """A button that opens ``modal`` (Discord opens a form only in answer to a click)."""
        return Button(label, FORM_ACTION, self._keep(modal), "primary")

    def form(self, value: str) -> Modal | None:
        kept = self.kept(value) if value.startswith(TOKEN) else None
        return kept if isinstance(kept, Modal) else None


# ----------------------------------------------------------------------------------------------
# Messages


def _chunks(escaped: str, limit: int) -> list[str]:
    """Escaped text in pieces of at most ``limit`` characters, cut between lines when possible."""
    pieces: list[str] = []
    current = ""
    for line in escaped.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = fit(line, limit)
    if current:
        pieces.append(current)
    return pieces or ["-"]


def embed(reply: Reply) -> discord.Embed:
    """The reply as one embed: title, text, each section as fields in order (a section's title and
    text as a full-width field, its fields side by side), footer. Cut to Discord's limits."""
    title = fit(escape(" ".join(reply.title.split())), MAX_TITLE) if reply.title else None
    text = escape(reply.text)
    if reply.error and text:
        text = "⚠️ " + text
    e = discord.Embed(title=title, description=fit(text, MAX_DESCRIPTION) or None, colour=ERROR if reply.error else BRAND)
    fields: list[tuple[str, str, bool]] = []
    for section in reply.sections:
        name = fit(escape(" ".join((section.title or "").split())), MAX_FIELD_NAME) or ZWSP
        if section.text:
            for n, piece in enumerate(_chunks(escape(section.text), MAX_FIELD_VALUE)):
                fields.append((name if n == 0 else ZWSP, piece, False))
        elif section.title:
            fields.append((name, ZWSP, False))
        for f in section.fields:
            fields.append((fit(escape(f.label), MAX_FIELD_NAME) or ZWSP, fit(escape(f.value), MAX_FIELD_VALUE) or "-", True))
    used = len(title or "") + len(e.description or "") + len(reply.footer or "")
    shortened = False
    for name, value, inline in fields:
        if len(e.fields) == MAX_FIELDS - 1 or used + len(name) + len(value) > MAX_EMBED - 100:
            shortened = True
            break
        e.add_field(name=name, value=value, inline=inline)
        used += len(name) + len(value)
    if shortened:
        e.add_field(name=ZWSP, value=escape(_("(Shortened: too long for one message.)")), inline=False)
    if reply.footer:
        e.set_footer(text=fit(reply.footer, MAX_FOOTER))
    if not (e.title or e.description or e.fields):
        e.description = ZWSP
    return e


def view(actions: tuple[Element, ...], ids: CustomIds) -> discord.ui.View | None:
    """Buttons (five to a row) and menus (a row each) as a stopped view; ``None`` when empty.

    Must be called on the event loop (a view made elsewhere could not be stopped)."""
    items: list[discord.ui.Item[Any]] = []
    row, in_row, used = 0, 0, set()
    for element in actions:
        if isinstance(element, Button):
            custom_id = ids.encode(element.action_id, element.value)
            if custom_id in used:
                custom_id = ids.encode(element.action_id, element.value, unique=True)
            if custom_id is None:
                continue
            if in_row == BUTTONS_PER_ROW:
                row, in_row = row + 1, 0
            if row >= MAX_ROWS:
                log.warning("left out the last components of a reply (Discord allows %d rows)", MAX_ROWS)
                break
            items.append(discord.ui.Button(label=cut(element.label, MAX_BUTTON_LABEL) or element.action_id,
                                           custom_id=custom_id, style=STYLES.get(element.style or "", discord.ButtonStyle.secondary),
                                           row=row))
            in_row += 1
        elif isinstance(element, Select) and element.options:
            custom_id = ids.encode(element.action_id, "")
            if custom_id in used:
                custom_id = ids.encode(element.action_id, "", unique=True)
            if custom_id is None:
                continue
            if in_row:
                row, in_row = row + 1, 0
            if row >= MAX_ROWS:
                log.warning("left out the last components of a reply (Discord allows %d rows)", MAX_ROWS)
                break
            if len(element.options) > MAX_OPTIONS:
                log.warning("left out %d options of a menu (Discord allows %d)", len(element.options) - MAX_OPTIONS, MAX_OPTIONS)
            options = [discord.SelectOption(label=cut(o.label, MAX_OPTION_LABEL) or o.value[:MAX_OPTION_LABEL],
                                            value=ids.option_value(o.value)) for o in element.options[:MAX_OPTIONS]]
            items.append(discord.ui.Select(custom_id=custom_id, placeholder=cut(element.placeholder, MAX_PLACEHOLDER) or None,
                                           options=options, row=row))
            row += 1
        else:
            continue
        used.add(custom_id)
    if not items:
        return None
    out = discord.ui.View(timeout=None)
    for item in items:
        out.add_item(item)
    out.stop()
    return out


def modlog_embed(post: ModLogPost, problems: list[str]) -> discord.Embed:
    """A mod-log case; ``problems`` (what Discord refused) are markup mona wrote, not user text."""
    text = escape(post.text)
    if problems:
        text = "\n".join([text, *("⚠️ " + p for p in problems)]).strip()
    return discord.Embed(title=fit(escape(" ".join(post.title.split())), MAX_TITLE) or None,
                         description=fit(text, MAX_DESCRIPTION) or ZWSP, colour=ERROR if problems else BRAND)


def content(text: str, *, markup: bool = False) -> str:
    """A message's content (a moderation notice), escaped unless it is ``markup`` mona wrote;
    never empty."""
    return fit(text if markup else escape(text), MAX_CONTENT) or ZWSP


# ----------------------------------------------------------------------------------------------
# Modals


def modal(form: Modal, custom_id: str) -> discord.ui.Modal:
    """The form as a Discord modal: each input under a label; a choice is a menu. Stopped, like
    views: its submission is routed by its custom id. Must be called on the event loop."""
    out = discord.ui.Modal(title=cut(form.title, MAX_MODAL_TITLE) or "mona", custom_id=custom_id, timeout=None)
    if len(form.inputs) > MAX_INPUTS:
        log.warning("left out %d fields of the form %s (Discord allows %d)", len(form.inputs) - MAX_INPUTS,
                    form.callback_id, MAX_INPUTS)
    for field in form.inputs[:MAX_INPUTS]:
        component: discord.ui.Item[Any]
        if isinstance(field, ChoiceInput):
            component = discord.ui.Select(custom_id=field.name, required=True, options=[
                discord.SelectOption(label=cut(o.label, MAX_OPTION_LABEL) or o.value, value=o.value[:MAX_OPTION_VALUE],
                                     default=o.value == field.initial)
                for o in field.options[:MAX_OPTIONS]])
        else:
            component = discord.ui.TextInput(
                custom_id=field.name, required=field.required,
                style=discord.TextStyle.paragraph if field.multiline else discord.TextStyle.short,
                placeholder=cut(field.placeholder, MAX_INPUT_PLACEHOLDER) if field.placeholder else None,
                default=field.initial[:MAX_INPUT_VALUE] if field.initial else None)
        out.add_item(discord.ui.Label(text=cut(field.label, MAX_INPUT_LABEL) or field.name, component=component))
    out.stop()
    return out


def submitted_values(components: list[dict[str, Any]]) -> dict[str, str]:
    """A modal submission's components (in action rows or labels) → ``{input name: value}``."""
    out: dict[str, str] = {}
    for c in components:
        if c.get("type") == 1:
            out.update(submitted_values(c.get("components") or []))
        elif c.get("type") == 18:
            out.update(submitted_values([c.get("component") or {}]))
        elif c.get("custom_id"):
            values = c.get("values")
            out[c["custom_id"]] = (values[0] if values else "") if values is not None else (c.get("value") or "")
    return out


def refilled(form: Modal, values: dict[str, str]) -> Modal:
    """The same form with what was submitted as its initial values (to fix and send again)."""
    inputs = tuple(dataclasses.replace(i, initial=values[i.name]) if values.get(i.name) else i for i in form.inputs)
    return dataclasses.replace(form, inputs=inputs)


def field_errors_text(errors: dict[str, str], form: Modal | None) -> str:
    """One line per field in error, named by its label: ``Amount: … is not an amount``."""
    labels = {i.name: i.label for i in form.inputs} if form else {}
    return "\n".join(f"{labels.get(name, name)}: {message}" for name, message in errors.items())

