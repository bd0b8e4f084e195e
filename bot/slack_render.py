"""Render a ``Reply`` as Slack Block Kit, and a ``Modal`` as a Slack view.

Every piece of text in a reply is plain text (what users typed, what mona wrote). Slack reads
``&``, ``<`` and ``>`` as control characters in every text object, so each piece is escaped here
before any emphasis is added from the structure: a title is bold, a field label is bold. An artist
named ``<!channel>`` is therefore shown as written and pings nobody.

Slack's size limits are applied here, not left to Slack (which would reject the whole message):
long text is cut with "…", lists of fields, elements, options and blocks are split or trimmed.

Action ids must be unique within one message, while several mona buttons share one (``cmd.run``
for pagination and choices): each element's action id is sent as ``"{action_id}#{n}"`` and
``action_id_of`` strips the suffix when the click comes back.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from core.i18n import _
from handlers.reply import Button, ChoiceInput, Element, Field, Modal, Option, Reply, Section, Select, TextInput

Block = dict[str, Any]
log = logging.getLogger("mona.slack")

#: Limits from Slack's Block Kit reference.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_PLACEHOLDER = 150
MAX_ACTION_ID = 255
MAX_MODAL_TITLE = 24
MAX_INPUT_LABEL = 2000
MAX_INPUT_VALUE = 3000
MAX_METADATA = 3000
#: The ``text`` of a message: Slack allows far more, but it is only a notification preview.
MAX_FALLBACK = 3000

SUFFIX = "#"
ELLIPSIS = "…"


def escape(text: str) -> str:
    """Text as Slack shows it literally: ``&``, ``<`` and ``>`` as HTML entities, nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(escaped: str, limit: int) -> str:
    """Cut escaped text to ``limit`` characters with "…", never inside an ``&…;`` entity."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 4))
    if amp >= 0 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def plain(text: str, limit: int) -> dict[str, Any]:
    """A ``plain_text`` object (Slack still decodes the three entities in it)."""
    return {"type": "plain_text", "text": fit(escape(text), limit) or " ", "emoji": True}


def _mrkdwn(escaped: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": fit(escaped, limit), "verbatim": True}


def _bold(text: str, limit: int = 300) -> str:
    """``*text*`` with the inner text escaped and kept short enough to stay bold."""
    inner = fit(escape(" ".join(text.split())), limit)
    return f"*{inner}*" if inner else ""


def _titled(title: str | None, text: str) -> str:
    parts = [_bold(title)] if title else []
    if text:
        parts.append(escape(text))
    return "\n".join(p for p in parts if p)


def _field(f: Field) -> dict[str, Any]:
    return _mrkdwn(f"{_bold(f.label)}\n{escape(f.value) or '-'}", MAX_FIELD_TEXT)


def _section_blocks(section: Section) -> list[Block]:
    text = _titled(section.title, section.text)
    fields = [_field(f) for f in section.fields]
    out: list[Block] = []
    first: Block = {"type": "section"}
    if text:
        first["text"] = _mrkdwn(text)
    if fields:
        first["fields"] = fields[:MAX_FIELDS]
    if len(first) > 1:
        out.append(first)
    for start in range(MAX_FIELDS, len(fields), MAX_FIELDS):
        out.append({"type": "section", "fields": fields[start : start + MAX_FIELDS]})
    return out


def action_id_of(sent: str) -> str:
    """The mona action id behind a Slack action id: ``"cmd.run#3"`` → ``"cmd.run"``."""
    base, sep, n = sent.rpartition(SUFFIX)
    return base if sep and n.isdigit() else sent


def _unique_id(action_id: str, n: int) -> str:
    suffix = f"{SUFFIX}{n}"
    return action_id[: MAX_ACTION_ID - len(suffix)] + suffix


def _fits(value: str, limit: int, what: str) -> bool:
    """A value is an id or a command line: cut, it would do something else than its label says,
    so an element whose value is too long is left out (and logged) rather than sent."""
    if len(value) <= limit:
        return True
    log.warning("left out a %s whose value is %d characters (Slack allows %d)", what, len(value), limit)
    return False


def _options(options: tuple[Option, ...]) -> list[dict[str, Any]]:
    return [{"text": plain(o.label, MAX_OPTION_TEXT), "value": o.value}
            for o in options if _fits(o.value, MAX_OPTION_VALUE, "menu option")][:MAX_OPTIONS]


def _element(el: Element, n: int) -> Block | None:
    if isinstance(el, Button):
        if not _fits(el.value, MAX_BUTTON_VALUE, "button"):
            return None
        button: Block = {"type": "button", "action_id": _unique_id(el.action_id, n),
                         "text": plain(el.label, MAX_BUTTON_TEXT)}
        if el.value:
            button["value"] = el.value
        if el.style:
            button["style"] = el.style
        return button
    if isinstance(el, Select):
        options = _options(el.options)
        if not options:
            return None  # Slack refuses a menu without options; there is nothing to choose.
        return {"type": "static_select", "action_id": _unique_id(el.action_id, n),
                "placeholder": plain(el.placeholder, MAX_PLACEHOLDER), "options": options}
    return None


def _action_blocks(actions: tuple[Element, ...]) -> list[Block]:
    elements = [e for e in (_element(el, n) for n, el in enumerate(actions)) if e is not None]
    return [{"type": "actions", "elements": elements[i : i + MAX_ELEMENTS]}
            for i in range(0, len(elements), MAX_ELEMENTS)]


def blocks(reply: Reply) -> list[Block]:
    """The reply as Block Kit blocks: text and title, sections, footer, then buttons and menus."""
    content: list[Block] = []
    lead = _titled(reply.title, reply.text)
    if lead:
        content.append({"type": "section", "text": _mrkdwn((":warning: " if reply.error else "") + lead)})
    for section in reply.sections:
        content += _section_blocks(section)
    if reply.footer:
        content.append({"type": "context", "elements": [_mrkdwn(escape(reply.footer))]})
    actions = _action_blocks(reply.actions)[:MAX_BLOCKS - 1]
    room = MAX_BLOCKS - len(actions)
    if len(content) > room:
        content = content[: room - 1]
        content.append({"type": "context", "elements": [_mrkdwn(escape(_("(Shortened: too long for one message.)")))]})
    return content + actions


def fallback_text(reply: Reply) -> str:
    """The message's ``text``: what notifications and screen readers show; escaped like blocks."""
    return fit(escape(reply.plain_text()), MAX_FALLBACK)


# ----------------------------------------------------------------------------------------------
# Modals


def view_metadata(modal: Modal, channel_id: str | None) -> str:
    """The view's ``private_metadata``: the modal's own metadata and where to post the result."""
    packed = json.dumps({"m": modal.private_metadata, "c": channel_id}, separators=(",", ":"))
    if len(packed) > MAX_METADATA:
        raise ValueError(f"private_metadata of {modal.callback_id} is {len(packed)} characters; Slack allows {MAX_METADATA}")
    return packed


def read_view_metadata(packed: str) -> tuple[str, str | None]:
    """``(modal metadata, channel id)`` from ``view_metadata``; tolerant of an empty string."""
    try:
        data = json.loads(packed) if packed else {}
    except ValueError:
        return packed, None
    if not isinstance(data, dict):
        return packed, None
    channel = data.get("c")
    return str(data.get("m") or ""), channel if isinstance(channel, str) and channel else None


def _input_block(field: TextInput | ChoiceInput) -> Block:
    element: Block
    if isinstance(field, ChoiceInput):
        options = _options(field.options)
        element = {"type": "static_select", "action_id": field.name, "options": options}
        initial = next((o for o in options if o["value"] == field.initial), None)
        if initial is not None:
            element["initial_option"] = initial
        optional = False
    else:
        element = {"type": "plain_text_input", "action_id": field.name, "multiline": field.multiline}
        if field.initial:
            element["initial_value"] = field.initial[:MAX_INPUT_VALUE]
        if field.placeholder:
            element["placeholder"] = plain(field.placeholder, MAX_PLACEHOLDER)
        optional = not field.required
    return {"type": "input", "block_id": field.name, "label": plain(field.label, MAX_INPUT_LABEL),
            "element": element, "optional": optional}


def modal_view(modal: Modal, private_metadata: str) -> dict[str, Any]:
    """The modal as a Slack view; block ids and action ids are the inputs' names, so a
    submission's ``state.values`` maps straight back to ``{name: value}``."""
    return {
        "type": "modal",
        "callback_id": modal.callback_id,
        "title": plain(modal.title, MAX_MODAL_TITLE),
        "submit": plain(modal.submit_label, MAX_MODAL_TITLE),
        "close": plain(_("Cancel"), MAX_MODAL_TITLE),
        "private_metadata": private_metadata,
        "blocks": [_input_block(f) for f in modal.inputs],
    }


def submitted_values(state_values: dict[str, dict[str, dict[str, Any]]]) -> dict[str, str]:
    """``view.state.values`` → ``{block_id: value}`` (text inputs and static selects)."""
    out: dict[str, str] = {}
    for block_id, by_action in state_values.items():
        for element in by_action.values():
            if element.get("type") == "static_select" or "selected_option" in element:
                value = (element.get("selected_option") or {}).get("value")
            else:
                value = element.get("value")
            out[block_id] = value or ""
    return out
