"""Members, roles and permissions."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.console import ConsoleBot
from core.app import Application
from core.config import Settings
from core.notify import Reminder
from core.outbox import OutboxEvent
from core.refs import Mention
from core.team import AuditEntry, Identity, Member
from handlers.artists import AddArtist, ListArtists
from handlers.mona import GiveRole
from handlers.ops import Remind
from handlers.registry import Dispatcher, build
from handlers.reply import Invocation


def test_a_new_member_is_a_viewer_and_may_read_but_not_write(bot):
    bot.run("/artist add Alex")
    newcomer = bot.as_user("U999", "Sam")
    assert newcomer.run("/artist show Alex").title == "Alex (#1)"
    r = newcomer.run("/artist add Nova")
    assert r.error and "Your role is viewer" in r.text and "Ask an admin" in r.text
    assert "Role: viewer" in newcomer.run("/mona whoami").plain_text()


def test_an_admin_gives_roles_and_the_member_can_then_write(bot):
    sam = bot.as_user("U999", "Sam")
    sam.run("/mona whoami")
    r = bot.run("/mona role @Sam member")
    assert r.text == "Sam is now member."
    assert not sam.run("/artist add Nova").error


def test_roles_are_checked_and_unknown_roles_listed(bot):
    bot.as_user("U999", "Sam").run("/mona whoami")
    assert "Unknown role boss. Roles: admin, manager, member, moderator, viewer." in bot.run("/mona role @Sam boss").text


def test_a_manager_cannot_make_admins(bot):
    bot.as_user("U1", "Mia").run("/mona whoami")
    bot.as_user("U2", "Sam").run("/mona whoami")
    bot.run("/mona role @Mia manager")
    mia = bot.as_user("U1", "Mia")
    assert mia.run("/mona role @Sam member").text == "Sam is now member."
    assert "Only an admin" in mia.run("/mona role @Sam admin").text


def test_admins_come_from_mona_admins_and_nobody_else(mona):
    slack_admin = ConsoleBot(mona.dispatcher, user_id="UADMIN01", user_name="Ada", platform="slack")
    assert "Role: admin" in slack_admin.run("/mona whoami").plain_text()
    first = ConsoleBot(mona.dispatcher, user_id="UFIRST", user_name="First", platform="slack")
    assert "Role: viewer" in first.run("/mona whoami").plain_text()


def test_with_no_admin_configured_mona_says_how_to_set_one(mona, settings):
    bare = Settings(database_url=settings.database_url)
    someone = ConsoleBot(Dispatcher(Application(mona.db, bare)), user_id="U5", user_name="Joe", platform="slack")
    r = someone.run("/artist add Alex")
    assert r.error and "No admin is configured yet: set MONA_ADMINS" in r.text


def test_help_lists_every_command_and_explains_one(bot):
    r = bot.run("/mona help")
    text = r.plain_text()
    for cmd in ("/artist add", "/artist show", "/artist list", "/artist move", "/artist note", "/artist deal",
                "/artist deal-status", "/artist edit", "/artist archive", "/pipeline", "/mona help", "/mona whoami", "/mona role"):
        assert cmd in text
    one = bot.run("/mona help artist move")
    assert one.title == "/artist move ARTIST STAGE [--reason TEXT]"
    assert "qualifies them into SPARK" in one.plain_text()
    assert ("Who may use it", "admin, manager, member") in [(f.label, f.value) for f in one.sections[0].fields]
    assert "Did you mean /artist move?" in bot.run("/mona help artist mvoe").text


def test_help_on_one_command_explains_each_of_its_arguments(bot):
    move = bot.run("/mona help artist move")
    arguments = next(s for s in move.sections if s.title == "Arguments").text.splitlines()
    assert arguments == ["ARTIST — Artist name, or an id like #12", "STAGE — The stage to move them to, or next",
                         "--reason TEXT — Why, kept in the stage history"]
    role = next(s for s in bot.run("/mona help mona role").sections if s.title == "Arguments").text
    assert "@member — The team member to give a role to" in role
    assert "ROLE — The role to give them (admin, manager, member, moderator, viewer)" in role
    listing = next(s for s in bot.run("/mona help artist list").sections if s.title == "Arguments").text
    assert "--archived — Show archived artists instead" in listing  # a switch takes no value
    assert [s.title for s in bot.run("/mona help mona whoami").sections] == [None]  # nothing to explain


def test_help_on_a_group_lists_its_commands(bot):
    r = bot.run("/mona help mona")
    assert r.title == "/mona"
    assert "/mona role @member ROLE\n    Give a team member a role" in r.text and "/mona jobs retry ID" in r.text
    remind = bot.run("/mona help remind")  # a command of its own as well as a group: explained
    assert remind.title == "/remind @member|#channel|me WHEN TEXT"
    assert "WHEN — When, e.g. in 2h, tomorrow 9:00" in remind.plain_text()


def test_a_role_change_is_written_once_to_the_audit_log_with_the_old_role_and_announced(bot, mona):
    bot.as_user("U999", "Sam").run("/mona whoami")
    bot.run("/mona role @Sam member")
    with mona.db.uow() as uow:
        entries = [(a.action, a.target) for a in uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        [event] = uow.session.scalars(select(OutboxEvent).where(OutboxEvent.type == "member.role_changed")).all()
    assert entries == [("mona role", "Sam: viewer -> member")]
    assert (event.payload["name"], event.payload["before"], event.payload["role"]) == ("Sam", "viewer", "member")


def test_help_lists_the_events_with_their_fields(bot):
    r = bot.run("/mona help events")
    text = r.plain_text()
    assert r.title == "Events" and "artist.stage_changed: An artist moved to another stage" in text
    assert "from_stage (The stage before the move)" in text and "request.delivered" in text


# ---------------------------------------------------------------- naming people
# Slack and Discord send a mention as the person's platform id (``<@U777|sam>``, a Discord user
# option); the console and people typing write ``@sam``. Every command naming a member takes them
# all, for someone mona has seen before as for someone named for the first time.


def _slack_admin(mona) -> ConsoleBot:
    admin = ConsoleBot(mona.dispatcher, user_id="UADMIN01", user_name="Ada", platform="slack")
    admin.run("/mona whoami")
    return admin


def _members(mona) -> int:
    with mona.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(Member)) or 0


def _every_command_names(admin: ConsoleBot, mona, mention: str, *, name: str, external_id: str) -> None:
    """/mona role, /artist add --owner, /artist list --owner and /remind, all naming ``mention``."""
    assert admin.run(f"/mona role {mention} member").text == f"{name} is now member."
    card = admin.run(f"/artist add Alex --owner {mention}")
    assert not card.error, card.text
    assert ("Owner", name) in [(f.label, f.value) for f in card.sections[0].fields]
    listed = admin.run(f"/artist list --owner {mention}")
    assert listed.text.startswith("Alex (#1) · MONA · Prospection"), listed.text
    reminded = admin.run(f"/remind {mention} in 2h call Alex")
    assert reminded.text.startswith(f"I will remind @{name} on "), reminded.text
    with mona.db.uow() as uow:
        [reminder] = uow.session.scalars(select(Reminder))
        assert (reminder.platform, reminder.target) == ("slack", f"user:{external_id}")


@pytest.mark.parametrize("mention", ["<@U777|sam>", "<@U777>", "@sam"],
                         ids=["by Slack id and name", "by Slack id alone", "by name"])
def test_a_member_seen_before_is_named_by_their_slack_id_or_their_name(mona, mention):
    admin = _slack_admin(mona)
    admin.as_user("U777", "sam").run("/mona whoami")
    before = _members(mona)
    _every_command_names(admin, mona, mention, name="sam", external_id="U777")
    assert _members(mona) == before


def test_a_member_named_by_their_slack_id_for_the_first_time_joins_once_as_a_viewer(mona):
    admin = _slack_admin(mona)
    before = _members(mona)
    _every_command_names(admin, mona, "<@U888|newbie>", name="newbie", external_id="U888")
    assert _members(mona) == before + 1
    newbie = admin.as_user("U888", "newbie")
    assert "Role: member" in newbie.run("/mona whoami").plain_text()  # the role given when first named


def test_a_member_first_named_by_id_alone_learns_their_name_when_named_again(mona):
    admin = _slack_admin(mona)
    assert admin.run("/mona role <@U888> member").text == "U888 is now member."
    assert admin.run("/mona role <@U888|newbie> viewer").text == "newbie is now viewer."
    assert admin.run("/mona role @newbie member").text == "newbie is now member."


def test_a_member_named_by_a_discord_user_option_is_found_by_their_id(mona):
    """Discord's user options arrive as a Mention carrying the member's id: built straight into the command."""
    def run(cls, **values):
        inv = Invocation(platform="discord", user_id="DADMIN01", user_name="Ada", channel_id="1300")
        return mona.dispatcher.run(inv, build(cls, values))

    ConsoleBot(mona.dispatcher, user_id="900777", user_name="Sam", platform="discord").run("/mona whoami")
    ConsoleBot(mona.dispatcher, user_id="DADMIN01", user_name="Ada", platform="discord").run("/mona whoami")
    before = _members(mona)
    sam = Mention("900777", "Sam")
    assert run(GiveRole, member=sam, role="member").text == "Sam is now member."
    card = run(AddArtist, name="Alex", owner=sam)
    assert ("Owner", "Sam") in [(f.label, f.value) for f in card.sections[0].fields]
    assert run(ListArtists, owner=sam).text.startswith("Alex (#1)")
    assert run(Remind, target="<@900777>", when="in 2h", text="call Alex").text.startswith("I will remind @Sam on ")
    assert _members(mona) == before
    with mona.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Identity).where(Identity.platform == "discord")) == 2
