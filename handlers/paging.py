"""Pagination shared by list commands: the page asked for, the page count, Previous/Next buttons
that re-run the same command one page over."""

from __future__ import annotations

from pydantic import field_validator

from core.app import Command
from core.errors import InvalidInput
from core.i18n import _
from handlers.args import Count, opt
from handlers.registry import RERUN
from handlers.reply import Button


class Page(Command):
    """A list command's page (the first unless ``--page`` says otherwise)."""

    page: Count = opt("Which page of the list to show", default=1)

    @field_validator("page")
    @classmethod
    def _from_one(cls, page: int) -> int:
        if page < 1:
            raise InvalidInput(_("--page starts at 1."))
        return page


def page_count(page: int, total: int, size: int) -> int:
    """How many pages ``total`` rows make; refuses a page past the last."""
    pages = max(1, -(-total // size))
    if page > pages:
        raise InvalidInput(_("There are only {pages} pages.", pages=pages))
    return pages


def page_buttons(command: str, page: int, pages: int) -> tuple[Button, ...]:
    """Previous / Next for ``command`` (the list command with its filters, without --page)."""
    buttons = []
    if page > 1:
        buttons.append(Button(_("Previous"), RERUN, f"{command} --page {page - 1}"))
    if page < pages:
        buttons.append(Button(_("Next"), RERUN, f"{command} --page {page + 1}"))
    return tuple(buttons)
