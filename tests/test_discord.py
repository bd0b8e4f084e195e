"""Discord: the real discord.py client (``MonaDiscord``) against a local stand-in of Discord's REST
API and gateway (``tests/discord_gateway_stub.py``), on PostgreSQL.

What a person does on Discord (a slash command, a click, a form, a message in a channel) arrives
as a gateway event; what mona answers is read from the REST calls the stand-in recorded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest
from sqlalchemy import select

from bot.app import Mona
from bot.console import ConsoleBot
from bot.discord import MonaDiscord
from bot.discord_commands import argument_values, command_line, command_shapes, shape_of
from bot.discord_moderation import DiscordModeration
from core import effects
from core.app import Command, Context
from core.artists import Artist, Interaction
from core.config import Settings
from core.refs import ChannelRef, Mention
from core.team import Permission
from handlers.args import ChannelArg, MemberRef, RecordId, Text, arg, opt
from handlers.chat import ChatEvent, ModAction, ModLogPost, Outcome
from handlers.parser import parse_mention
from handlers.registry import Dispatcher, Registry, registry
from handlers.reply import Reply
from tests.discord_gateway_stub import (
    ADMIN_ID,
    APP_ID,
    BOT_TOKEN,
    CHANNEL_ID,
    FAN_ROLE_ID,
    GUILD_ID,
    MODERATOR_ID,
    MODLOG_ID,
    SPAMMER_ID,
    VIEWER_ID,
    LiveDiscord,
    Recorded,
    components_of,
    message_create,
)

NO_PINGS = {"parse": []}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A Discord admin (snowflake ids are numeric) and the server the commands are registered in."""
    return dataclasses.replace(settings, admins=settings.admins | {f"discord:{ADMIN_ID}"},
                               discord_guild_ids=(int(GUILD_ID),))


@pytest.fixture
def live(mona: Mona) -> Iterator[LiveDiscord]:
    with LiveDiscord(mona) as running:
        yield running


def artist_named(mona: Mona, name: str) -> Artist | None:
    with mona.db.uow() as uow:
        return uow.session.scalars(select(Artist).where(Artist.name == name)).one_or_none()


def embed_of(payload: dict[str, Any]) -> dict[str, Any]:
    embeds = payload.get("embeds") or []
    assert len(embeds) == 1, payload
    return dict(embeds[0])


def embed_text(embed: dict[str, Any]) -> str:
    parts = [embed.get("title") or "", embed.get("description") or ""]
    parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(parts)


# ---------------------------------------------------------------- commands: shape and sync


def test_every_declared_command_is_a_discord_command_with_options_from_its_arguments(mona: Mona):
    client = MonaDiscord(mona)
    tree = client.tree
    found: dict[str, dict[str, Any]] = {}

    def walk(payload: dict[str, Any], prefix: tuple[str, ...]) -> None:
        words = (*prefix, payload["name"])
        subs = [o for o in payload.get("options") or [] if o["type"] in (1, 2)]
        if subs:
            for sub in subs:
                walk(sub, words)
        else:
            found[" ".join(words)] = {o["name"]: o for o in payload.get("options") or []}

    for command in tree.get_commands():
        walk(command.to_dict(tree), ())
    expected = {s.qualified_name for s in command_shapes(registry)}
    assert set(found) == expected
    assert len(found) == len(registry.commands)
    assert {path[0] for path in registry.commands} == {name.split()[0] for name in found}
    # A command that is also a group keeps its words, one deeper; 3-word commands are subgroups.
    assert {"remind set", "remind list", "remind cancel", "mona jobs status", "mona jobs retry", "mona notify add",
            "pipeline"} <= set(found)

    add = found["artist add"]
    # A new artist's name is new: nothing to autocomplete.
    assert add["name"]["required"] is True and add["name"]["type"] == 3 and not add["name"].get("autocomplete")
    assert add["name"]["description"] == "The new artist's name"
    assert add["genre"]["required"] is False and add["genre"]["type"] == 3
    assert add["followers"]["type"] == 4 and add["owner"]["type"] == 6
    assert [c["value"] for c in add["pipeline"]["choices"]] == ["mona", "spark"]
    assert list(add)[0] == "name"  # required options first
    move = found["artist move"]
    assert move["stage"]["required"] is True and move["stage"]["autocomplete"] is True
    assert move["reason"]["required"] is False
    assert [c["value"] for c in found["artist deal-status"]["status"]["choices"]] == ["won", "lost"]
    assert found["artist deal-status"]["deal_id"]["type"] == 4
    assert found["artist list"]["archived"]["type"] == 5
    assert found["artist edit"]["artist"]["autocomplete"] is True and found["artist edit"]["name"]["required"] is False
    role = found["mona role"]
    assert role["member"]["type"] == 6 and "admin" in [c["value"] for c in role["role"]["choices"]]
    assert found["mona notify add"]["target"]["type"] == 3 and found["mona notify add"]["event"]["autocomplete"]
    assert found["pipeline"]["pipeline"]["required"] is False
    assert list(found["remind set"]) == ["target", "when", "text"]


def test_declared_argument_types_become_options_of_the_right_kind():
    reg = Registry()

    @reg.command("zz post", permission=Permission.READ)
    class Post(Command):
        """Post."""

        channel: ChannelArg = arg("Where to post")
        member: MemberRef = arg("Who to tell")
        artist: str = arg("Artist name, or an id like #12", rest=True)
        count: RecordId = arg("Which one")
        pipeline: Literal["mona", "spark"] | None = opt("Which pipeline")
        note: Text | None = opt("Anything to add")

    shape = shape_of(reg.commands[("zz", "post")], ("zz", "post"))
    kinds = [(o.name, o.kind, o.required, o.choices, o.description) for o in shape.options]
    assert kinds == [("channel", "channel", True, (), "Where to post"), ("member", "user", True, (), "Who to tell"),
                     ("artist", "string", True, (), "Artist name, or an id like #12"),
                     ("count", "integer", True, (), "Which one"),
                     ("pipeline", "string", False, ("mona", "spark"), "Which pipeline"),
                     ("note", "string", False, (), "Anything to add")]


def test_submitted_values_fill_the_declared_arguments_and_read_back_as_a_command_line():
    add = next(s for s in command_shapes(registry) if s.qualified_name == "artist add")
    values = {"name": "Alex Blue", "genre": "hip hop", "followers": 1200, "pipeline": "spark",
              "owner": Mention("900000000000000002", "Vic <the> Fan"), "city": None}
    assert argument_values(add, values) == {"name": "Alex Blue", "genre": "hip hop", "followers": "1200",
                                            "pipeline": "spark", "owner": Mention("900000000000000002", "Vic <the> Fan")}
    line = command_line(add, values)
    assert line == '/artist add "Alex Blue" --genre "hip hop" --followers 1200 --owner "<@900000000000000002|Vic the Fan>" --pipeline spark'
    assert parse_mention("<@900000000000000002|Vic the Fan>") == Mention("900000000000000002", "Vic the Fan")
    listing = next(s for s in command_shapes(registry) if s.qualified_name == "artist list")
    assert command_line(listing, {"archived": True, "page": 2}) == "/artist list --page 2 --archived"
    assert command_line(listing, {"archived": False}) == "/artist list"
    assert argument_values(listing, {"archived": False}) == {}
    notify = next(s for s in command_shapes(registry) if s.qualified_name == "mona notify add")
    assert command_line(notify, {"event": "artist.created", "target": ChannelRef("1300000000000000020", "crm")}) \
        == "/mona notify add artist.created <#1300000000000000020|crm>"


def test_discord_settings_come_from_the_environment(tmp_path):
    env = {"MONA_DATA_DIR": str(tmp_path), "DISCORD_TOKEN": "t", "DISCORD_GUILD_IDS": " 123, 456 ",
           "DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/gateway/", "DISCORD_API_URL": "http://127.0.0.1:9/api/v10"}
    s = Settings.from_env(env)
    assert (s.discord_guild_ids, s.discord_gateway_url, s.discord_api_url) == \
        ((123, 456), "ws://127.0.0.1:9/gateway/", "http://127.0.0.1:9/api/v10")
    assert "'t'" not in repr(s)
    defaults = Settings.from_env({"MONA_DATA_DIR": str(tmp_path)})
    assert (defaults.discord_guild_ids, defaults.discord_gateway_url) == ((), "wss://gateway.discord.gg/")
    with pytest.raises(ValueError, match="DISCORD_GUILD_IDS"):
        Settings.from_env({**env, "DISCORD_GUILD_IDS": "my-server"})


def test_the_commands_are_registered_in_the_configured_server(live: LiveDiscord):
    put = live.stand_in.requests_to("PUT", rf"^/applications/{APP_ID}/guilds/{GUILD_ID}/commands$")
    assert len(put) == 1 and not live.stand_in.requests_to("PUT", rf"^/applications/{APP_ID}/commands$")
    names = {c["name"] for c in put[0].body}
    assert names == {path[0] for path in registry.commands}
    mona = next(c for c in put[0].body if c["name"] == "mona")
    notify = next(o for o in mona["options"] if o["name"] == "notify")
    assert notify["type"] == 2 and {o["name"] for o in notify["options"]} == {"add", "list", "remove"}


# ---------------------------------------------------------------- slash commands, autocomplete


def test_a_slash_command_runs_the_real_command_and_answers_with_an_embed(live: LiveDiscord, mona: Mona):
    callback = live.command("artist add", {"name": "Alex", "genre": "pop"})
    assert callback.query == {"with_response": "1"}
    assert callback.body["type"] == 4
    data = callback.body["data"]
    assert not (data.get("flags") or 0) & 64  # "Added …" is for the channel
    assert data["allowed_mentions"] == NO_PINGS
    embed = embed_of(data)
    assert embed["title"].startswith("Alex (#")
    assert embed["description"] == "Added Alex to MONA at Prospection."
    assert {"name": "Genre", "value": "pop", "inline": True} in embed["fields"]
    artist = artist_named(mona, "Alex")
    assert artist is not None and artist.genre == "pop" and artist.stage == "Prospection"
    custom_ids = [c["custom_id"] for c in components_of(data)]
    assert custom_ids == ["artist.move|", f"artist.note_form|{artist.id}", f"artist.deal_form|{artist.id}",
                          f"artist.archive|{artist.id}:{artist.version}"]


def test_a_viewer_is_refused_privately(live: LiveDiscord, mona: Mona):
    callback = live.command("artist add", {"name": "Alex"}, by=VIEWER_ID)
    data = callback.body["data"]
    assert data["flags"] & 64
    assert "You need one of these roles" in embed_of(data)["description"]
    assert artist_named(mona, "Alex") is None


def test_user_text_never_pings(live: LiveDiscord):
    callback = live.command("artist add", {"name": f"@everyone <@{ADMIN_ID}> **bold**"})
    data = callback.body["data"]
    assert data["allowed_mentions"] == NO_PINGS
    text = embed_text(embed_of(data))
    assert "@everyone" not in text and f"<@{ADMIN_ID}>" not in text and "**bold**" not in text
    assert "@\u200beveryone" in text and "\\*\\*bold\\*\\*" in text


def test_a_member_option_arrives_as_a_mention(live: LiveDiscord, mona: Mona):
    live.command("artist add", {"name": "Alex", "owner": ("user", VIEWER_ID)}, users=(VIEWER_ID,))
    with mona.db.uow() as uow:
        from core.team import Member

        owner = uow.session.get(Member, artist_named(mona, "Alex").owner_id)  # type: ignore[union-attr]
        assert owner is not None and owner.display_name == "Vic"


def test_autocomplete_suggests_artists_accent_insensitively_and_stages(live: LiveDiscord, bot: Any):
    for name in ("Éloïse", "Eloane", "Alex"):
        bot.run(f'/artist add "{name}"')
    choices = live.autocomplete("artist move", {"artist": "elo"}, focused="artist")
    assert [c["value"] for c in choices] == ["Eloane", "Éloïse"]
    stages = live.autocomplete("artist move", {"artist": "Alex", "stage": "vil"}, focused="stage")
    assert [c["value"] for c in stages] == ["Villa Prep"]


def test_a_slow_command_is_deferred_then_its_reply_replaces_the_thinking_message(mona: Mona):
    with LiveDiscord(mona, defer_after=0.0) as live:
        callback = live.command("mona whoami")
        assert callback.body["type"] == 5 and callback.body["data"]["flags"] & 64
        token = callback.path.split("/")[3]
        edit = live.stand_in.wait_for("PATCH", rf"^/webhooks/{APP_ID}/{token}/messages/@original$")[0]
        assert embed_of(edit.body)["title"] == "Dana"
        assert edit.body["allowed_mentions"] == NO_PINGS


# ---------------------------------------------------------------- components and forms


def test_the_cards_menu_moves_the_artist_and_edits_the_card(live: LiveDiscord, mona: Mona):
    card = live.message(live.command("artist add", {"name": "Alex"}))
    menu = next(c for c in components_of(card) if c["type"] == 3)
    check_up = next(o["value"] for o in menu["options"] if o["label"] == "Check-up")
    callback = live.click(card, menu["custom_id"], values=(check_up,))
    assert callback.body["type"] == 7  # the message clicked on is edited
    embed = embed_of(callback.body["data"])
    assert embed["description"] == "Dana moved Alex from Prospection (MONA) to Check-up (MONA)."
    assert callback.body["data"]["allowed_mentions"] == NO_PINGS
    assert artist_named(mona, "Alex").stage == "Check-up"  # type: ignore[union-attr]
    # The same (now stale) menu again: refused privately, nothing edited.
    again = live.click(card, menu["custom_id"], values=(check_up,))
    assert again.body["type"] == 4 and again.body["data"]["flags"] & 64


def test_a_form_opens_from_a_button_and_its_submission_logs_an_interaction(live: LiveDiscord, mona: Mona):
    card = live.message(live.command("artist add", {"name": "Alex"}))
    button = next(c for c in components_of(card) if c.get("label") == "Log interaction")
    opened = live.click(card, button["custom_id"])
    assert opened.body["type"] == 9
    form = opened.body["data"]
    assert form["title"] == "Log interaction"
    labels = {c["label"]: c["component"] for c in form["components"]}
    assert labels["Type"]["type"] == 3 and [o["value"] for o in labels["Type"]["options"]][:2] == ["call", "email"]
    assert labels["What happened"]["type"] == 4 and labels["What happened"]["style"] == 2
    submitted = live.submit(form["custom_id"], {"kind": "call", "text": "Talked about the EP"}, choices=("kind",))
    assert submitted.body["type"] == 4
    assert "Logged with Alex." in embed_text(embed_of(submitted.body["data"]))
    with mona.db.uow() as uow:
        logged = uow.session.scalars(select(Interaction)).all()
        assert [(i.kind, i.text) for i in logged] == [("call", "Talked about the EP")]


def test_a_field_error_names_the_field_and_offers_the_form_again_filled_in(live: LiveDiscord):
    card = live.message(live.command("artist add", {"name": "Alex"}))
    button = next(c for c in components_of(card) if c.get("label") == "Add deal")
    form = live.click(card, button["custom_id"]).body["data"]
    refused = live.submit(form["custom_id"], {"title": "EP", "amount": "lots", "currency": "EUR", "close": ""})
    data = refused.body["data"]
    assert data["flags"] & 64
    assert embed_of(data)["description"].startswith("⚠️ Amount: lots is not an amount")
    again = components_of(data)[0]
    assert again["label"] == "Open the form again"
    reopened = live.click(live.message(refused), again["custom_id"])
    assert reopened.body["type"] == 9
    fields = {c["component"]["custom_id"]: c["component"] for c in reopened.body["data"]["components"]}
    assert fields["amount"]["value"] == "lots" and fields["title"]["value"] == "EP"


def test_an_expired_button_says_so(live: LiveDiscord):
    callback = live.click({"id": "1400000000000000555"}, "artist.archive|~forgotten")
    assert callback.body["data"]["flags"] & 64
    assert embed_of(callback.body["data"])["description"] == "⚠️ That button has expired; run the command again."


def test_a_notification_button_is_routed_like_any_other(live: LiveDiscord, bot: Any):
    bot.run("/artist add Alex")
    notification = live.stand_in.post(CHANNEL_ID, {"content": "Lina added Alex.", "components": [
        {"type": 1, "components": [{"type": 2, "style": 1, "label": "Show card", "custom_id": "cmd.run|/artist show #1"}]}]})
    callback = live.click(notification, "cmd.run|/artist show #1")
    assert callback.body["type"] == 7 and callback.body["data"]["content"] is None
    assert embed_of(callback.body["data"])["title"] == "Alex (#1)"


# ---------------------------------------------------------------- moderation


class SpamGuard:
    """Flags messages offering followers: delete, timeout with a notice, and a mod-log case."""

    def __init__(self) -> None:
        self.events: list[ChatEvent] = []

    def on_message(self, event: ChatEvent) -> Outcome:
        self.events.append(event)
        if "buy followers" not in event.text:
            return Outcome()
        return Outcome(
            actions=(ModAction("delete", event.community, event.user_id, event.channel_id, event.message_id, reason="spam"),
                     ModAction("timeout", event.community, event.user_id, event.channel_id, duration_s=600,
                               reason="spam: buy followers", notice="@everyone Spammy is timed out for 10 minutes.")),
            modlog=(ModLogPost(MODLOG_ID, "Case 1 · timeout", "Spammy: buy followers", undo_action_id="modtest.undo",
                               undo_value=event.user_id),))


def moderation_registry() -> Registry:
    """mona's commands, and an Undo button for ``SpamGuard``'s mod-log posts that lifts the timeout
    the way commands act on platforms (``core.effects``)."""
    reg = Registry(commands=dict(registry.commands), actions=dict(registry.actions), submits=dict(registry.submits))

    @reg.action("modtest.undo", permission=Permission.READ)
    class Undo(Command):
        """Lift the timeout."""

        user_id: Text = arg("Whose timeout")

        def run(self, ctx: Context) -> Reply:
            effect = effects.request(ctx.uow, platform="discord", community=GUILD_ID, kind="untimeout",
                                     user_id=self.user_id, reason="undo")
            ctx.defer(effects.after_commit(ctx.services.effects, effect))
            return Reply(text="Undone.", ephemeral=False, replace_original=True)

    return reg


@pytest.fixture
def moderated(mona: Mona) -> Mona:
    return dataclasses.replace(mona, dispatcher=Dispatcher(mona.app, moderation_registry()))


def wait_until(condition: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _until(patch_body: dict[str, Any]) -> dt.timedelta:
    until = dt.datetime.fromisoformat(patch_body["communication_disabled_until"])
    return until - dt.datetime.now(dt.UTC)


def test_a_flagged_message_is_deleted_its_author_timed_out_and_the_case_posted_with_undo(moderated: Mona):
    guard = SpamGuard()
    with LiveDiscord(moderated, guard=guard) as live:
        stand_in = live.stand_in
        live.send("MESSAGE_CREATE", message_create("hello all", by=VIEWER_ID, message_id="1400000000000000100",
                                                   mentions=(ADMIN_ID,), role_mentions=(FAN_ROLE_ID,)))
        live.send("MESSAGE_CREATE", message_create("buy followers here", by=SPAMMER_ID, message_id="1400000000000000101"))
        deleted = stand_in.wait_for("DELETE", rf"^/channels/{CHANNEL_ID}/messages/1400000000000000101$")
        patched = stand_in.wait_for("PATCH", rf"^/guilds/{GUILD_ID}/members/{SPAMMER_ID}$")[0]
        posts = stand_in.wait_for("POST", r"^/channels/\d+/messages$", count=2)
        assert len(deleted) == 1
        assert dt.timedelta(seconds=590) < _until(patched.body) <= dt.timedelta(seconds=600)
        assert urllib.parse.unquote(patched.headers["X-Audit-Log-Reason"]) == "spam: buy followers"
        notice, case = sorted(posts, key=lambda r: r.path != f"/channels/{CHANNEL_ID}/messages")
        assert notice.body["content"] == "@\u200beveryone Spammy is timed out for 10 minutes."
        assert notice.body["allowed_mentions"] == NO_PINGS
        assert case.path == f"/channels/{MODLOG_ID}/messages" and case.body["allowed_mentions"] == NO_PINGS
        assert embed_of(case.body)["title"] == "Case 1 · timeout"
        assert [c["custom_id"] for c in components_of(case.body)] == [f"modtest.undo|{SPAMMER_ID}"]

        clean, spam = guard.events
        assert (clean.platform, clean.community, clean.user_id, clean.user_name) == ("discord", GUILD_ID, VIEWER_ID, "Vic")
        assert {"Fans", FAN_ROLE_ID} <= clean.roles and clean.mention_count == 2
        assert not clean.is_moderator and not clean.is_broadcaster
        assert stand_in.requests_to("DELETE", "1400000000000000100") == []

        # Undo from the mod-log: the click is routed to the action, which lifts the timeout.
        case_message = next(m for m in stand_in.messages.values() if m["channel_id"] == MODLOG_ID)
        undone = live.click(case_message, f"modtest.undo|{SPAMMER_ID}")
        assert undone.body["type"] == 7
        lifted = stand_in.wait_for("PATCH", rf"^/guilds/{GUILD_ID}/members/{SPAMMER_ID}$", count=2)[1]
        assert lifted.body == {"communication_disabled_until": None}


def test_moderators_and_bots_are_seen_for_what_they_are(moderated: Mona):
    guard = SpamGuard()
    with LiveDiscord(moderated, guard=guard) as live:
        bot_message = message_create("buy followers", by=ADMIN_ID, message_id="1400000000000000200")
        bot_message["author"] = {**bot_message["author"], "bot": True}
        live.send("MESSAGE_CREATE", bot_message)
        live.send("MESSAGE_CREATE", message_create("hi", by=ADMIN_ID, message_id="1400000000000000201"))
        wait_until(lambda: guard.events)
    # Leaving waited for every handler: the bot's message never reached the guard.
    assert [e.message_id for e in guard.events] == ["1400000000000000201"]
    assert guard.events[0].is_moderator and "Moderator" in guard.events[0].roles


def _timeout_spammy(live: LiveDiscord, bot: Any) -> Recorded:
    bot.run(f"/mod modlog <#{MODLOG_ID}> --in discord:{GUILD_ID}")
    return live.command("mod timeout", {"target": ("user", SPAMMER_ID), "duration": "5m", "reason": "by command"},
                        users=(SPAMMER_ID,))


def test_a_mod_command_typed_on_discord_is_carried_out_and_says_so(live: LiveDiscord, bot: Any):
    stand_in = live.stand_in
    callback = _timeout_spammy(live, bot)
    assert embed_of(callback.body["data"])["description"] == "Case 1: timeout @Spammy."
    assert "Done on Discord." in embed_text(embed_of(callback.body["data"])) + str(callback.body)
    patched = stand_in.wait_for("PATCH", rf"^/guilds/{GUILD_ID}/members/{SPAMMER_ID}$")[0]
    assert dt.timedelta(seconds=290) < _until(patched.body) <= dt.timedelta(seconds=300)
    assert urllib.parse.unquote(patched.headers["X-Audit-Log-Reason"]) == "by command"
    notice = stand_in.wait_for("POST", rf"^/channels/{CHANNEL_ID}/messages$")[0]
    assert notice.body["content"] == "@Spammy is timed out for 5m (by command)."
    case = stand_in.wait_for("POST", rf"^/channels/{MODLOG_ID}/messages$")[0]
    assert embed_of(case.body)["title"] == "Case 1: timeout Spammy"
    assert [c["custom_id"] for c in components_of(case.body)] == ["mod.undo|1"]
    assert case.body["allowed_mentions"] == NO_PINGS


def test_a_refusal_by_discord_is_said_in_the_reply_and_the_mod_log_and_no_notice_claims_it(live: LiveDiscord, bot: Any):
    stand_in = live.stand_in
    stand_in.fail("PATCH", f"/members/{SPAMMER_ID}")
    callback = _timeout_spammy(live, bot)
    assert "Discord refused: mona lacks the permission, or its role is below theirs" in str(callback.body)
    case = stand_in.wait_for("POST", rf"^/channels/{MODLOG_ID}/messages$")[0]
    assert "Could not carry out timeout" in embed_of(case.body)["description"]
    # The public notice would claim a timeout that did not happen: it is not posted.
    assert stand_in.requests_to("POST", f"/channels/{CHANNEL_ID}/messages") == []


def test_a_mod_command_typed_in_slack_acts_on_a_discord_server_over_rest(live: LiveDiscord, mona: Mona):
    """No gateway connection needed: the REST gateway (the bot token alone) acts on the server."""
    slack = ConsoleBot(mona.dispatcher, user_id="UADMIN01", user_name="Ada", platform="slack")
    previous = mona.use_moderator(DiscordModeration(BOT_TOKEN, live.stand_in.api_base, "en"))
    try:
        r = slack.run(f"/mod ban @{SPAMMER_ID} raid --in discord:{GUILD_ID}")
    finally:
        mona.restore_moderator("discord", previous)
    assert r.text == f"Case 1: ban @{SPAMMER_ID}." and r.footer == "Done on Discord."
    ban = live.stand_in.wait_for("PUT", rf"^/guilds/{GUILD_ID}/bans/{SPAMMER_ID}$")[0]
    assert urllib.parse.unquote(ban.headers["X-Audit-Log-Reason"]) == "raid"
    refused = slack.run(f"/mod ban <@U777|sam> raid --in discord:{GUILD_ID}")
    assert refused.error and "That mention is a slack account" in refused.text


def test_a_member_with_moderate_members_may_use_mod_whatever_their_mona_role(live: LiveDiscord, mona: Mona):
    """As the README promises: Discord's own moderators need no mona role for /mod, and nothing else."""
    options = {"target": ("user", SPAMMER_ID), "reason": "calm down"}
    warned = live.command("mod warn", options, by=MODERATOR_ID, users=(SPAMMER_ID,))
    assert embed_of(warned.body["data"])["description"] == "Case 1: warn @Spammy."
    other = live.command("artist add", {"name": "Alex"}, by=MODERATOR_ID)
    assert "Your role is viewer" in embed_text(embed_of(other.body["data"]))
    plain = live.command("mod warn", options, by=VIEWER_ID, users=(SPAMMER_ID,))
    assert "Your role is viewer" in embed_text(embed_of(plain.body["data"]))


class WarnGuard:
    """Deletes a message with a link and warns its author: the warning says it was removed."""

    def on_message(self, event: ChatEvent) -> Outcome:
        if "http" not in event.text:
            return Outcome()
        return Outcome(actions=(
            ModAction("delete", event.community, event.user_id, event.channel_id, event.message_id, reason="link"),
            ModAction("warn", event.community, event.user_id, event.channel_id, reason="link",
                      notice="Spammy, your message was removed (a link not allowed).")))


@pytest.mark.parametrize(("guard", "refused", "claim"), [
    (SpamGuard(), ("PATCH", f"/members/{SPAMMER_ID}"), "timed out"),
    (WarnGuard(), ("DELETE", "/messages/1400000000000000300"), "your message was removed"),
])
def test_no_public_notice_claims_an_action_discord_refused(moderated: Mona, guard: Any, refused: tuple[str, str],
                                                           claim: str):
    with LiveDiscord(moderated, guard=guard) as live:
        stand_in = live.stand_in
        stand_in.fail(*refused)
        live.send("MESSAGE_CREATE", message_create("buy followers http://spam.example", by=SPAMMER_ID,
                                                   message_id="1400000000000000300"))
        stand_in.wait_for(refused[0], refused[1])
    # Leaving waited for every handler: whatever mona was going to post is posted.
    notices = stand_in.requests_to("POST", f"/channels/{CHANNEL_ID}/messages")
    assert not any(claim in (r.body.get("content") or "") for r in notices)
