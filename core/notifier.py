"""The one interface through which mona posts to chat outside a reply: notifications, reminders,
digests, job progress. Implementations live with the adapters (``bot/notify_*.py``) and use the
real clients (slack_sdk, Discord's REST API); tests point them at local stand-ins.

Delivery is exactly-once from the user's point of view: each message carries an idempotency
``key``. A notifier asked to send with ``possibly_sent_since`` (a retry after a crash mid-send, or an
answer lost on the way back) first looks for a message posted with that key since then and returns
it instead of posting again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Action:
    """A button on a notification; clicking it routes back through the dispatcher by ``action_id``."""

    label: str
    action_id: str
    value: str = ""


@dataclass(frozen=True)
class Message:
    """Plain text, escaped by each notifier for its platform; ``title`` shown bold."""

    text: str
    title: str | None = None
    actions: tuple[Action, ...] = ()
    #: Post as a reply in this thread: the ``ref`` a previous ``send`` returned.
    thread: str | None = None


class DeliveryError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(DeliveryError):
    """A passing failure (429, 5xx, network): try again after ``retry_after`` seconds, or with backoff."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentFailure(DeliveryError):
    """Retrying cannot help (channel_not_found, not_in_channel, missing permissions, invalid token)."""


class Notifier(Protocol):
    platform: str

    def send(self, target: str, message: Message, *, key: str, possibly_sent_since: dt.datetime | None = None) -> str:
        """Post ``message`` to ``target`` and return a reference to the posted message.

        ``possibly_sent_since``: an earlier attempt may have posted it (a worker died mid-send, an
        answer was lost): first look for a message carrying ``key`` posted since then, every page
        of it however busy the channel, and return that one instead of posting again.

        ``target`` is a channel id, or ``user:<platform user id>`` for a direct message.
        The reference (e.g. ``C123:1700000000.000100`` on Slack, ``<channel id>:<message id>`` on
        Discord) can be given to ``update`` or as a ``Message.thread``.
        Raises ``RetryLater`` or ``PermanentFailure``."""
        ...

    def update(self, ref: str, message: Message) -> None:
        """Replace the content of a message this notifier posted (progress, results)."""
        ...
