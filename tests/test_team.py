"""Members, roles and permissions."""

from __future__ import annotations

from bot.console import ConsoleBot
from core.config import Settings
from handlers.registry import Dispatcher


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
    someone = ConsoleBot(Dispatcher(mona.db, bare), user_id="U5", user_name="Joe", platform="slack")
    r = someone.run("/artist add Alex")
    assert r.error and "No admin is configured yet: set MONA_ADMINS" in r.text


def test_help_lists_every_command_and_explains_one(bot):
    r = bot.run("/mona help")
    text = r.plain_text()
    for cmd in ("/artist add", "/artist show", "/artist list", "/artist move", "/artist note", "/artist deal",
                "/artist deal-status", "/artist edit", "/artist archive", "/pipeline", "/mona help", "/mona whoami", "/mona role"):
        assert cmd in text
    one = bot.run("/mona help artist move")
    assert one.title == "/artist move NAME STAGE [--reason TEXT]"
    assert "qualifies them into SPARK" in one.plain_text()
    assert "Did you mean /artist move?" in bot.run("/mona help artist mvoe").text
