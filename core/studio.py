"""Studio Live: OBS Studio as the core sees it — a small gateway with plain answers and typed errors.

``Studio`` is the interface commands use; ``core.obs.ObsStudio`` is its implementation over the real
obsws-python client (one supervised connection, reconnecting by itself), built by the bootstrap from
``OBS_HOST`` / ``OBS_PORT`` / ``OBS_PASSWORD``. Names people type (scenes, sources, inputs) are
matched like artist names: without case or accents, by a unique part, else the candidates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from rapidfuzz import process

from core.errors import Ambiguous, Candidate, InvalidInput, NotFound, Unavailable, UserError
from core.i18n import _
from core.text import fold

HealthState = Literal["connected", "reconnecting", "wrong_password", "not_configured"]


@dataclass(frozen=True)
class Health:
    state: HealthState
    address: str
    #: Since when the state holds (reconnecting since …).
    since: dt.datetime | None = None
    #: The last reason a connection failed, in plain words.
    reason: str | None = None


@dataclass(frozen=True)
class Status:
    live: bool
    #: Seconds the stream has been live (``None`` when not live).
    uptime_s: float | None
    recording: bool
    scene: str
    #: Frames the stream output skipped (dropped) and the frames it sent.
    dropped_frames: int
    total_frames: int
    cpu_percent: float
    fps: float


class Studio(Protocol):
    """OBS, as commands use it. Every call answers within a few seconds or raises ``Unavailable``."""

    def health(self) -> Health: ...

    def status(self) -> Status: ...

    def scenes(self) -> tuple[list[str], str]: ...

    def switch_scene(self, scene: str, *, transition: str | None = None, duration_ms: int | None = None) -> None: ...

    def sources(self, scene: str) -> list[tuple[int, str, bool]]: ...

    def set_source(self, scene: str, item_id: int, visible: bool) -> None: ...

    def transitions(self) -> tuple[list[str], str]: ...

    def set_transition(self, name: str, duration_ms: int | None = None) -> None: ...

    def inputs(self) -> list[str]: ...

    def set_mute(self, name: str, muted: bool) -> None: ...

    def stream(self, start: bool) -> None: ...

    def record(self, start: bool) -> None: ...

    def close(self) -> None: ...


class StudioUnavailable(Unavailable):
    """OBS cannot be reached, or refused mona's password."""


class Refused(UserError):
    """OBS refused a request: its status code and comment, in plain words."""

    code = "conflict"
    #: OBS WebSocket's request status code (500: the output is already running, 501: it is not).
    status: int = 0


#: OBS WebSocket v5 request status codes people may meet, in plain words.
_CODES = {
    203: "OBS does not know that request",
    300: "a field is missing",
    400: "a value is not valid",
    500: "OBS is already doing that",
    501: "OBS is not doing that",
    502: "OBS cannot do that while not streaming or recording",
    600: "that does not exist in OBS",
    601: "that already exists in OBS",
    602: "that is not the right kind of thing",
    604: "OBS cannot do that right now",
    700: "OBS could not do that",
    702: "OBS could not do that",
}


def refused(request: str, code: int, comment: str | None) -> Refused:
    said = _CODES.get(code, "OBS refused it")
    text = _("OBS refused {request}: {why} (code {code}).", request=request, why=_(said), code=code)
    if comment:
        text += " " + _("OBS says: {comment}", comment=comment[:300])
    error = Refused(text)
    error.status = code
    return error


def no_studio() -> StudioUnavailable:
    return StudioUnavailable(_("No OBS is connected: set OBS_HOST, OBS_PORT and OBS_PASSWORD where mona runs "
                               "(OBS: Tools → WebSocket Server Settings)."))


def match_name(typed: str, names: Sequence[str], *, what: str) -> str:
    """The one of ``names`` that ``typed`` means: the same folded, else the only one containing it;
    several: ``Ambiguous`` with the candidates; none: ``NotFound`` naming the close ones."""
    key = fold(typed)
    if not key:
        raise InvalidInput(_("Say which {what}.", what=what))
    exact = [n for n in names if fold(n) == key]
    if len(exact) == 1:
        return exact[0]
    partial = exact or [n for n in names if key in fold(n)]
    if len(partial) == 1:
        return partial[0]
    if partial:
        raise Ambiguous(_("Several {what}s match {typed}; pick one:", what=what, typed=typed),
                        [Candidate(i, n, quoted(n)) for i, n in enumerate(partial)], typed, total=len(partial))
    close = [m[2] for m in process.extract(key, {n: fold(n) for n in names}, limit=3, score_cutoff=50)] \
        if names else []
    hint = " " + _("Close ones: {names}.", names=", ".join(str(c) for c in close)) if close else ""
    raise NotFound(_("OBS has no {what} called {typed}.", what=what, typed=typed) + hint)


def quoted(name: str) -> str:
    """A name as it can be typed back in a command line."""
    return f'"{name}"' if " " in name else name
