"""Moderation as moderators use it: /mod commands (console, with --in) and the real guard on
Discord's chat, through the real discord.py client against the local stand-in."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import func, select, update

from bot.app import Mona, bootstrap
from bot.console import ConsoleBot
from core.config import Settings
from core.effects import PlatformEffect
from core.moderation.store import Community, ModerationCase
from core.team import AuditEntry
from handlers.chat import ChatEvent
from handlers.reply import Invocation
from tests.discord_gateway_stub import (
    CHANNEL_ID,
    GUILD_ID,
    MODLOG_ID,
    SPAMMER_ID,
    VIEWER_ID,
    LiveDiscord,
    message_create,
)

IN = "--in discord:G1"



def platform_effects(mona) -> list[PlatformEffect]:
    """The actions commands asked to carry out on a platform (core.effects), oldest first."""
    with mona.db.uow() as uow:
        rows = list(uow.session.scalars(select(PlatformEffect).order_by(PlatformEffect.id)))
        uow.session.expunge_all()
        return rows

def event(text: str, *, user: str = "U1", moderator: bool = False, message_id: str = "M1") -> ChatEvent:
    return ChatEvent(platform="discord", community="G1", channel_id="C1", message_id=message_id, user_id=user,
                     user_name=f"user{user}", text=text, is_moderator=moderator)


def cases(mona: Mona) -> list[ModerationCase]:
    with mona.db.uow() as uow:
        return list(uow.session.scalars(select(ModerationCase).order_by(ModerationCase.id)))


def test_banned_words_are_caught_even_disguised_and_escalate(bot, mona):
    assert bot.run(f"/mod words add mona scam {IN}").text == "Banned: mona, scam."
    assert "Already banned: mona." in bot.run(f"/mod words add mona {IN}").text
    bot.run(f"/mod modlog #mods {IN}")
    guard = mona.guard
    assert guard.on_message(event("bonjour à tous, Monaco c'est beau")).actions == ()
    first = guard.on_message(event("m0na", message_id="M2"))
    assert [a.kind for a in first.actions] == ["delete", "warn"]
    assert first.actions[1].notice == "@userU1, your message was removed (a banned word). Warning 1."
    assert first.modlog[0].channel_id == "mods" and first.modlog[0].undo_action_id is None
    for i, text in enumerate(("m o n a", "ḿona"), start=3):
        assert guard.on_message(event(text, message_id=f"M{i}")).actions[1].kind == "warn"
    fourth = guard.on_message(event("s\u200bcam", message_id="M8"))
    assert [(a.kind, a.duration_s) for a in fourth.actions] == [("delete", None), ("timeout", 600)]
    assert fourth.modlog[0].undo_action_id == "mod.undo"
    fifth = guard.on_message(event("MONA!!", message_id="M9"))
    assert fifth.actions[1].duration_s == 3600
    assert guard.on_message(event("mona", moderator=True)).actions == ()
    assert [c.action for c in cases(mona)] == ["warn", "warn", "warn", "timeout", "timeout"]


def test_strikes_stop_counting_after_the_window_but_stay_on_record(bot, mona):
    bot.run(f"/mod words add scam {IN}")
    for i in range(3):
        mona.guard.on_message(event("scam", message_id=f"M{i}"))
    with mona.db.uow() as uow:
        uow.session.execute(update(ModerationCase).values(created_at=func.now() - dt.timedelta(days=2)))
        uow.commit()
    again = mona.guard.on_message(event("scam", message_id="M9"))
    assert again.actions[1].kind == "warn" and again.actions[1].notice.endswith("Warning 1.")
    assert "4" in bot.run(f"/mod cases @U1 {IN}").title


def test_rules_changed_by_command_apply_to_the_next_message(bot, mona):
    bot.run(f"/mod words add hello {IN}")
    assert mona.guard.on_message(event("hello there")).actions
    bot.run(f"/mod words remove hello {IN}")
    assert mona.guard.on_message(event("hello there", message_id="M2")).actions == ()


def test_links_policy_allow_list_and_permit(bot, mona):
    assert "Links: block." in bot.run(f"/mod links block {IN}").text
    assert mona.guard.on_message(event("look https://evil.example/x")).actions
    r = bot.run(f"/mod links allow youtube.com {IN}")
    assert "Allowed domains: youtube.com." in r.text
    assert mona.guard.on_message(event("https://m.youtube.com/watch?v=1", message_id="M2")).actions == ()
    assert mona.guard.on_message(event("https://evil.example", message_id="M3")).actions
    bot.run(f"/mod permit @U2 {IN}")
    assert mona.guard.on_message(event("https://evil.example", user="U2", message_id="M4")).actions == ()
    assert mona.guard.on_message(event("https://evil.example", user="U2", message_id="M5")).actions


def test_stream_mode_tightens_the_limits(bot, mona):
    bot.run(f"/mod limits --caps 70 {IN}")
    loud = "THIS IS LOUD enough"  # 62 % capitals over 16 letters
    assert mona.guard.on_message(event(loud)).actions == ()
    assert "Stream mode is on" in bot.run(f"/mod stream on {IN}").text
    assert mona.guard.on_message(event("THAT IS LOUD enough", message_id="M2")).actions
    assert "already on" in bot.run(f"/mod stream on {IN}").text
    stats = bot.run(f"/mod stats {IN}").plain_text()
    assert "1 actions" in stats and "caps: 1" in stats


@pytest.mark.parametrize(("command", "message"), [
    ("/mod patterns add (free {IN}", "invalid pattern '(free'"),
    ("/mod timeout @U1 10x spam {IN}", "10x is not a duration; write it like 10m"),
    ("/mod links allow not_a_domain {IN}", "not_a_domain is not a domain"),
    ("/mod warn @U1 {IN}", "Something is missing. Usage: /mod warn @user REASON"),
    ("/mod words add mona", "Use /mod in a Discord server or a Twitch chat"),
    ("/mod limits --caps loud {IN}", "--caps takes a number or off"),
    ("/mod limits --flood 6 {IN}", "--flood takes MESSAGES/SECONDS"),
])
def test_bad_moderation_input_gets_a_specific_message_and_changes_nothing(bot, mona, command, message):
    r = bot.run(command.format(IN=IN))
    assert r.error and message in r.text, r.text
    with mona.db.uow() as uow:
        community = uow.session.scalars(select(Community)).one_or_none()
        assert community is None or community.version == 1
    assert cases(mona) == []


def test_moderators_and_unknown_users_are_refused(mona):
    from bot.console import ConsoleBot

    admin = ConsoleBot(mona.dispatcher, user_id="DADMIN01", user_name="Ada", platform="discord")

    def run(text: str, protected: frozenset[str] = frozenset()):
        return mona.dispatcher.dispatch(Invocation(platform="discord", user_id="DADMIN01", user_name="Ada", text=text,
                                                   community="G1", protected_ids=protected))

    assert "moderates this community" in run("/mod timeout <@777|Mo> 10m test", frozenset({"777"})).text
    assert "I do not know @ghost here" in run("/mod ban @ghost spam").text
    assert admin  # a Discord admin from MONA_ADMINS
    assert cases(mona) == []


def test_a_discord_moderator_may_moderate_without_a_mona_role(mona):
    inv = Invocation(platform="discord", user_id="D555", user_name="Mod", text="/mod warn <@42|Spammy> calm down",
                     community="G1", platform_roles=frozenset({"moderator"}))
    r = mona.dispatcher.dispatch(inv)
    assert r.text == "Case 1: warn @Spammy."
    [effect] = platform_effects(mona)
    assert (effect.kind, effect.user_id, effect.notice) == ("warn", "42", "@Spammy, a moderator warns you: calm down")
    viewer = dataclasses.replace(inv, user_id="D556", platform_roles=frozenset())
    assert "Your role is viewer" in mona.dispatcher.dispatch(viewer).text


def test_manual_timeouts_are_logged_with_undo_and_undone(bot, mona):
    bot.run(f"/mod modlog #mods manual {IN}")
    r = bot.run(f"/mod timeout @7007 10m spamming links {IN}")
    assert r.text == "Case 1: timeout @7007."
    [action] = platform_effects(mona)
    assert (action.kind, action.duration_s, action.undo_action) == ("timeout", 600, "mod.undo")
    assert action.modlog_title == "Case 1: timeout 7007" and "spamming links" in action.modlog_text
    case = bot.run(f"/mod case 1 --note appeal: it was a joke {IN}")
    assert "appeal: it was a joke" in case.plain_text()
    undone = bot.click(case, "Undo")
    assert undone.text.startswith("Case 1 undone by Lina") and platform_effects(mona)[-1].kind == "untimeout"
    assert "already undone" in bot.click(case, "Undo").text


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, admins=settings.admins | {"discord:900000000000000001"},
                               discord_guild_ids=(int(GUILD_ID),))


def test_on_discord_a_banned_word_is_deleted_warned_then_timed_out_and_logged(bot, mona):
    bot.run(f"/mod words add scam --in discord:{GUILD_ID}")
    bot.run(f"/mod modlog <#{MODLOG_ID}> --in discord:{GUILD_ID}")
    with mona.db.uow() as uow:  # three earlier warnings: the next offence is a timeout
        c = uow.session.scalars(select(Community)).one()
        for _ in range(3):
            uow.session.add(ModerationCase(community_id=c.id, platform="discord", user_id=SPAMMER_ID, user_name="Spammy",
                                           action="warn", rule="banned_word", reason="earlier"))
        uow.commit()
    with LiveDiscord(mona, guard=mona.guard) as live:
        s = live.stand_in
        live.send("MESSAGE_CREATE", message_create("hello", by=VIEWER_ID, message_id="1400000000000000300"))
        live.send("MESSAGE_CREATE", message_create("s c a m here", by=SPAMMER_ID, message_id="1400000000000000301"))
        assert len(s.wait_for("DELETE", rf"^/channels/{CHANNEL_ID}/messages/1400000000000000301$")) == 1
        patched = s.wait_for("PATCH", rf"^/guilds/{GUILD_ID}/members/{SPAMMER_ID}$")[0]
        assert patched.body["communication_disabled_until"]
        posts = s.wait_for("POST", r"^/channels/\d+/messages$", count=2)
        logged = [p for p in posts if p.path == f"/channels/{MODLOG_ID}/messages"]
        assert logged and "timeout" in str(logged[0].body)
        assert s.requests_to("DELETE", "1400000000000000300") == []
    assert cases(mona)[-1].action == "timeout"


# ---------------------------------------------------------------- cases as moderators read them


def test_the_mod_log_and_the_case_show_the_message_as_it_was_written(bot, mona):
    bot.run(f"/mod words add arnaque {IN}")
    bot.run(f"/mod modlog #mods {IN}")
    [post] = mona.guard.on_message(event("Attention, c'est une ARNAQUÉ !")).modlog
    assert post.title == "Case 1: warn userU1"
    assert post.text.splitlines() == ["banned word: arnaque", "Message: ARNAQUÉ", "Rule: a banned word"]
    shown = {f.label: f.value for f in bot.run(f"/mod case 1 {IN}").sections[0].fields}
    assert (shown["Message"], shown["Reason"], shown["Rule"]) == ("ARNAQUÉ", "banned word: arnaque", "a banned word")


@pytest.fixture
def fr_mona(mona: Mona, settings: Settings) -> Mona:
    return bootstrap(dataclasses.replace(settings, lang="fr"), migrate=False, db=mona.db)


def test_with_mona_lang_fr_the_mod_log_and_the_case_log_are_in_french(fr_mona):
    moderator = ConsoleBot(fr_mona.dispatcher, user_name="Lina")
    moderator.run(f"/mod words add arnaque {IN}")
    moderator.run(f"/mod modlog #mods {IN}")
    outcome = fr_mona.guard.on_message(event("c'est une ARNAQUE"))
    [post] = outcome.modlog
    assert post.title == "Cas 1 : avertissement userU1"
    assert post.text.splitlines() == ["mot interdit : arnaque", "Message : ARNAQUE", "Règle : un mot interdit"]
    assert {a.reason for a in outcome.actions} == {"mot interdit : arnaque"}  # what Discord's audit log keeps
    shown = {f.label: f.value for f in moderator.run(f"/mod case 1 {IN}").sections[0].fields}
    assert (shown["Action"], shown["Motif"], shown["Règle"]) == ("avertissement", "mot interdit : arnaque", "un mot interdit")
    line = moderator.run(f"/mod cases {IN}").text
    assert " · avertissement · userU1 · un mot interdit · mot interdit : arnaque" in line
    manual = moderator.run(f"/mod ban @2002 spam {IN}")
    assert manual.text == "Cas 2 : bannissement @2002."


def test_a_phrase_in_quotes_is_banned_as_one_and_a_word_without_letters_is_refused(bot, mona):
    assert bot.run(f'/mod words add "free nitro" scam {IN}').text == "Banned: free nitro, scam."
    assert mona.guard.on_message(event("FREE  NITRO here")).actions
    refused = bot.run(f"/mod words add !!! {IN}")
    assert refused.error and refused.text == "!!! has no letter or digit to match."
    assert bot.run(f"/mod words remove !!! {IN}").text == "None of those words was banned."


def _in_server(server: str, text: str = "", **kw) -> Invocation:
    return Invocation(platform="discord", user_id="D555", user_name="Mod", text=text, community=server,
                      platform_roles=frozenset({"moderator"}), **kw)


def test_a_moderator_of_one_server_neither_sees_nor_undoes_the_cases_of_another(bot, mona):
    bot.run(f"/mod timeout @7007 10m spamming {IN}")
    bot.run("/mod words add scam --in discord:G2")
    elsewhere = mona.dispatcher.dispatch(_in_server("G2", "/mod case 1"))
    assert elsewhere.error and elsewhere.text == "No case has the id 1."
    click = mona.dispatcher.dispatch(_in_server("G2", kind="action", name="mod.undo", value="1"))
    assert click.error and click.text == "No case has the id 1."
    assert cases(mona)[0].undone_at is None
    assert mona.dispatcher.dispatch(_in_server("G1", "/mod case 1")).title == "Case 1"
    undone = mona.dispatcher.dispatch(_in_server("G1", kind="action", name="mod.undo", value="1"))
    assert undone.text.startswith("Case 1 undone by Mod") and platform_effects(mona)[-1].kind == "untimeout"


def test_rule_changes_bans_and_timeouts_are_audited_with_the_community(bot, mona):
    bot.run(f"/mod words add scam {IN}")
    mona.dispatcher.dispatch(_in_server("G1", "/mod timeout <@42|Spammy> 10m spam"))
    mona.dispatcher.dispatch(_in_server("G1", "/mod warn <@42|Spammy> calm down"))
    with mona.db.uow() as uow:
        entries = [(e.action, e.target.split()[0]) for e in uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert entries == [("mod words add", "discord:G1"), ("mod timeout", "discord:G1")]


def test_on_discord_the_mod_commands_do_not_offer_in_which_only_the_console_and_slack_need(mona):
    from bot.discord_commands import command_shapes

    shapes = [s for s in command_shapes(mona.dispatcher.registry) if s.names[0] == "mod"]
    assert len(shapes) == len(mona.dispatcher.registry.in_group("mod"))
    assert all("in" not in {o.name for o in s.options} for s in shapes)
    ban = next(s for s in shapes if s.names == ("mod", "ban"))
    assert [(o.name, o.kind, o.required) for o in ban.options] == [("target", "user", True), ("reason", "string", True)]
    assert "[--in PLATFORM:ID]" in mona.dispatcher.registry.commands[("mod", "ban")].full_usage


class QueueDown:
    """An effect runner whose queue is unreachable (Redis down at commit)."""

    def start(self, effect_id: int) -> None:
        raise ConnectionError("redis is down")

    def outcome(self, effect_id: int, *, wait_s: float) -> PlatformEffect | None:
        raise AssertionError("not asked when nothing was enqueued")


@pytest.mark.probe("jobs: an after-commit step that fails says what was saved")
def test_a_ban_whose_job_cannot_be_enqueued_is_saved_queued_and_swept_later(mona):
    from core.app import Application, Services
    from handlers.registry import Dispatcher
    from jobs.effects import sweep_effects_once

    down = ConsoleBot(Dispatcher(Application(mona.db, mona.settings, Services(effects=QueueDown()))), user_name="Lina")
    r = down.run(f"/mod ban @7007 raid {IN}")
    assert not r.error and r.text == "Case 1: ban @7007."
    assert r.footer == "Queued: Discord will carry it out as soon as a worker is free."
    [effect] = platform_effects(mona)
    assert effect.status == "queued"
    with mona.db.uow() as uow:  # half a minute later the sweep hands it to a worker
        uow.session.execute(update(PlatformEffect).values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
        uow.commit()
    assert sweep_effects_once(mona.runtime) == 1
    mona.run_pending_jobs()
    assert platform_effects(mona)[0].status == "failed"  # tried: no Discord credentials in the tests


def test_a_cases_reason_and_a_timeouts_length_are_edited_afterwards_with_the_old_ones_kept(bot, mona):
    bot.run(f"/mod timeout @7007 10m spamming links {IN}")
    r = bot.run(f'/mod case edit 1 --reason "raid bot" --duration 2h {IN}')
    assert r.text.startswith("Case 1 edited: reason, duration. The timeout now ends in 1h59m")
    [first, again] = platform_effects(mona)
    assert (again.kind, again.user_id) == ("timeout", "7007") and 7100 <= again.duration_s <= 7200
    shown = bot.run(f"/mod case 1 {IN}").plain_text()
    assert "Reason: raid bot" in shown and "reason was: spamming links" in shown and "duration was: 600 s" in shown
    short = bot.run(f"/mod case edit 1 --duration 1s {IN}")
    assert "the timeout is over: it is lifted" in short.text and platform_effects(mona)[-1].kind == "untimeout"
    bot.run(f"/mod warn @7008 be nice {IN}")
    assert bot.run(f"/mod case edit 2 --duration 1h {IN}").text == "Only a timeout has a duration; case 2 is a warn."
    assert bot.run(f"/mod case edit 2 {IN}").text.startswith("Say what to change")
    assert "timeout 1s · 7007 · moderator · raid bot" in bot.run(f"/mod cases @7007 {IN}").text  # the history, one command away
