"""The one door: typed commands run through ``Application.execute`` without any chat text, and
every failure comes back as a typed error with a stable code (what the HTTP API will map to a
status), with nothing half-written."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from sqlalchemy import func, select

from core.app import Application, Caller, Services
from core.artists import Artist
from core.team import AuditEntry
from handlers.artists import AddArtist, MoveArtist, MoveFromCard, ShowArtist
from handlers.mona import GiveRole
from handlers.ops import RebuildStats

ADMIN = Caller(platform="slack", user_id="UADMIN01", user_name="Ada", via="api")
VIEWER = Caller(platform="slack", user_id="UVIEW", user_name="Vi", via="api")


def count_artists(mona) -> int:
    with mona.db.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Artist)) or 0)


def test_a_command_built_from_json_runs_like_the_same_command_typed_in_chat(mona, bot):
    added = mona.app.execute(ADMIN, AddArtist.model_validate_json('{"name": "Alex Blue", "genre": "pop", "followers": 1200}'))
    assert added.ok and added.value.text == "Added Alex Blue to MONA at Prospection."
    shown = mona.app.execute(ADMIN, ShowArtist(artist="alex blue"))
    assert shown.ok and shown.value.title == "Alex Blue (#1)"
    assert bot.run("/artist show Alex Blue").title == shown.value.title


@pytest.mark.parametrize(("caller", "command", "code"), [
    (ADMIN, ShowArtist(artist="Nobody"), "not_found"),
    (ADMIN, MoveArtist(artist="Alex", stage="Nowhere"), "invalid"),
    (VIEWER, AddArtist(name="Sam"), "forbidden"),
    (ADMIN, MoveFromCard(artist_id=1, version=0, stage="Check-up"), "conflict"),
])
def test_each_failure_has_its_stable_code_and_changes_nothing(mona, caller, command, code):
    mona.app.execute(ADMIN, AddArtist(name="Alex"))
    before = count_artists(mona)
    outcome = mona.app.execute(caller, command)
    assert not outcome.ok and outcome.error is not None
    assert outcome.error.code == code and outcome.error.message
    assert count_artists(mona) == before


def test_an_ambiguous_name_is_its_own_code_with_the_candidates(mona):
    mona.app.execute(ADMIN, AddArtist(name="Alex Blue"))
    mona.app.execute(ADMIN, AddArtist(name="Alex Red"))
    outcome = mona.app.execute(ADMIN, ShowArtist(artist="Alex"))
    assert outcome.error is not None and outcome.error.code == "ambiguous"
    labels = [c.label for c in outcome.error.candidates]  # type: ignore[attr-defined]
    assert len(labels) == 2 and labels[0].startswith("Alex Blue") and labels[1].startswith("Alex Red")


def test_a_service_that_is_not_there_is_unavailable(mona):
    bare = Application(mona.db, mona.settings, Services())
    outcome = bare.execute(ADMIN, RebuildStats())
    assert outcome.error is not None and outcome.error.code == "unavailable"


def test_a_bug_is_internal_with_a_ref_and_its_traceback_logged(mona, monkeypatch, caplog):
    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("db exploded")

    monkeypatch.setattr("core.artists.add_artist", boom)
    with caplog.at_level(logging.ERROR, logger="mona.app"):
        outcome = mona.app.execute(ADMIN, AddArtist(name="Alex"))
    assert outcome.error is not None and outcome.error.code == "internal"
    assert outcome.error.ref in outcome.error.message  # type: ignore[attr-defined]
    assert any(r.exc_info for r in caplog.records)


def test_sensitive_commands_are_audited_with_who_and_how_they_came(mona):
    mona.app.execute(VIEWER, ShowArtist(artist="x"))  # first contact: Vi becomes a viewer
    outcome = mona.app.execute(ADMIN, GiveRole.model_validate({"member": {"external_id": "UVIEW", "name": "Vi"},
                                                                "role": "member"}))
    assert outcome.ok, outcome.error
    with mona.db.uow() as uow:
        [entry] = uow.session.scalars(select(AuditEntry)).all()
    assert (entry.action, entry.target, entry.detail) == ("mona role", "Vi: viewer -> member", "slack api")


def test_the_caller_is_a_value_the_adapters_fill_in(mona):
    workflow = dataclasses.replace(ADMIN, via="workflow")
    assert mona.app.execute(workflow, AddArtist(name="Alex")).ok
