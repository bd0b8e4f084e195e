"""References to people and channels as platforms send them: by platform id, by name, or both.

They are values, not records: ``core.app.Context.member`` turns a ``Mention`` into the team member
it names (creating one for a platform id seen for the first time, as on first contact).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mention:
    """``<@U123|sam>`` (Slack), ``<@123>`` (Discord) or ``@alice`` (a display name, console)."""

    external_id: str | None
    name: str | None

    def __str__(self) -> str:
        return f"@{self.name or self.external_id}"


@dataclass(frozen=True)
class ChannelRef:
    """``<#C123|crm>`` (Slack), ``<#123>`` (Discord) or ``#crm`` (a console channel name)."""

    external_id: str | None
    name: str | None

    @property
    def label(self) -> str:
        return f"#{self.name or self.external_id}"
