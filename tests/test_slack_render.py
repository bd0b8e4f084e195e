"""Rendering a Reply for Slack: user text is always escaped, and Slack's size limits always hold
(a message Slack would refuse is never sent)."""

from __future__ import annotations

import json
from typing import Any

from bot.slack_render import (
    action_id_of,
    blocks,
    fallback_text,
    modal_view,
    read_view_metadata,
    submitted_values,
    view_metadata,
)
from handlers.reply import Button, ChoiceInput, Field, Modal, Option, Reply, Section, Select, TextInput

EVIL = "<!channel> & <@U123> <https://evil.example|click>"


def texts(value: Any) -> list[str]:
    """Every ``text`` string anywhere in a block structure."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in ([v] if k == "text" and isinstance(v, str) else texts(v))]
    if isinstance(value, list):
        return [t for v in value for t in texts(v)]
    return []


def test_user_text_is_escaped_in_every_piece_of_the_message() -> None:
    reply = Reply(text=EVIL, title=EVIL, footer=EVIL,
                  sections=(Section(title=EVIL, text=EVIL, fields=(Field(EVIL, EVIL),)),),
                  actions=(Button(EVIL, "a"), Select(EVIL, "b", (Option(EVIL, "1"),))))

    rendered = blocks(reply)

    assert "<" not in json.dumps(rendered) and ">" not in json.dumps(rendered)
    assert all("&lt;!channel&gt; &amp; &lt;@U123&gt;" in t for t in texts(rendered))
    assert "<" not in fallback_text(reply)


def test_emphasis_comes_from_the_structure() -> None:
    reply = Reply(title="Alex (#1)", text="Added.", sections=(Section(fields=(Field("Stage", "Signed"),)),),
                  footer="as of today")

    rendered = blocks(reply)

    assert rendered[0]["text"]["text"] == "*Alex (#1)*\nAdded."
    assert rendered[1]["fields"][0]["text"] == "*Stage*\nSigned"
    assert rendered[2] == {"type": "context", "elements": [{"type": "mrkdwn", "text": "as of today", "verbatim": True}]}


def test_an_error_is_marked_as_one() -> None:
    assert blocks(Reply(text="No artist matches Zed.", error=True))[0]["text"]["text"].startswith(":warning: ")


def test_long_text_is_cut_with_an_ellipsis_and_never_inside_an_entity() -> None:
    for text in ("x" * 5000, "&" * 5000, "a" + "<" * 5000):
        [section] = blocks(Reply(text=text))
        shown = section["text"]["text"]
        assert len(shown) <= 3000 and shown.endswith("…")
        assert "&" not in shown.replace("&amp;", "").replace("&lt;", "")


def test_more_than_ten_fields_are_split_over_sections() -> None:
    fields = tuple(Field(f"F{n}", str(n)) for n in range(23))

    rendered = blocks(Reply(sections=(Section(title="Figures", fields=fields),)))

    assert [len(b["fields"]) for b in rendered] == [10, 10, 3]
    assert rendered[0]["text"]["text"] == "*Figures*"


def test_buttons_get_unique_action_ids_that_read_back_as_the_mona_action_id() -> None:
    reply = Reply(actions=tuple(Button(f"Page {n}", "cmd.run", f"/artist list --page {n}") for n in range(30)))

    rendered = blocks(reply)

    assert [len(b["elements"]) for b in rendered] == [25, 5]
    ids = [e["action_id"] for b in rendered for e in b["elements"]]
    assert len(set(ids)) == 30
    assert {action_id_of(i) for i in ids} == {"cmd.run"}
    assert action_id_of("artist.move") == "artist.move"


def test_labels_options_and_menus_respect_slacks_limits() -> None:
    options = tuple(Option("o" * 100, f"v{n}") for n in range(120))
    reply = Reply(actions=(Button("b" * 100, "x", "v"), Select("p" * 200, "y", options), Select("empty", "z", ())))

    [actions] = blocks(reply)

    button, menu = actions["elements"]  # a menu without options is left out
    assert len(button["text"]["text"]) == 75
    assert len(menu["options"]) == 100 and all(len(o["text"]["text"]) <= 75 for o in menu["options"])
    assert len(menu["placeholder"]["text"]) <= 150


def test_an_element_whose_value_does_not_fit_is_left_out_rather_than_cut() -> None:
    reply = Reply(actions=(Button("Next", "cmd.run", "/artist list --search " + "x" * 2000), Button("Ok", "ok", "1"),
                           Select("Move", "m", (Option("far", "x" * 151), Option("near", "1:1:Signed")))))

    [actions] = blocks(reply)

    assert [e.get("value") for e in actions["elements"] if e["type"] == "button"] == ["1"]
    assert [o["value"] for o in actions["elements"][1]["options"]] == ["1:1:Signed"]


def test_a_message_never_has_more_than_fifty_blocks_and_keeps_its_buttons() -> None:
    reply = Reply(sections=tuple(Section(text=f"line {n}") for n in range(80)), actions=(Button("More", "cmd.run", "x"),))

    rendered = blocks(reply)

    assert len(rendered) == 50
    assert rendered[-1]["type"] == "actions"
    assert rendered[-2]["type"] == "context"


def test_a_modal_becomes_a_view_whose_submission_maps_back_to_field_names() -> None:
    modal = Modal("artist.deal", "Add a deal for a very long artist name",
                  (TextInput("amount", "Amount", placeholder="1500"), TextInput("notes", "Notes", multiline=True,
                                                                                 required=False, initial="<b>"),
                   ChoiceInput("kind", "Type", (Option("Call", "call"), Option("Email", "email")), initial="email")),
                  submit_label="Add", private_metadata="42")

    view = modal_view(modal, view_metadata(modal, "C0CRM0001"))

    assert view["type"] == "modal" and view["callback_id"] == "artist.deal"
    assert len(view["title"]["text"]) <= 24
    assert read_view_metadata(view["private_metadata"]) == ("42", "C0CRM0001")
    amount, notes, kind = view["blocks"]
    assert (amount["block_id"], amount["element"]["action_id"], amount["optional"]) == ("amount", "amount", False)
    assert notes["optional"] is True and notes["element"]["multiline"] is True
    assert notes["element"]["initial_value"] == "<b>"  # an input's value is raw text, not markup
    assert kind["element"]["initial_option"]["value"] == "email"
    state: dict[str, dict[str, dict[str, Any]]] = {"amount": {"amount": {"type": "plain_text_input", "value": "1500"}},
             "notes": {"notes": {"type": "plain_text_input", "value": None}},
             "kind": {"kind": {"type": "static_select", "selected_option": {"value": "call"}}}}
    assert submitted_values(state) == {"amount": "1500", "notes": "", "kind": "call"}
