"""/artist metrics: an artist's metrics, set from chat (one flag per metric of the catalogue) or shown
with the day each was observed and where it came from."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from pydantic import create_model

from core import artists as crm
from core import metrics as catalogue
from core.app import Command, Context
from core.errors import InvalidInput
from core.i18n import _, number
from core.team import Permission
from handlers.args import ArtistRef, ChatType, Day, FileArg, Text, arg, opt
from handlers.registry import RERUN, registry
from handlers.reply import Button, Field, Reply, Section


def _measure(raw: str, label: str) -> Decimal:
    value = catalogue.read_measure(raw)
    if value is None:
        raise InvalidInput(_("{label} must be a number, not {value}.", label=label, value=raw))
    return value


Measure = Annotated[Decimal, ChatType(_measure, "N", "A number")]


class _MetricsBase(Command):
    """Set an artist's metrics (each kept with the day observed and its source), or show them.

    With no metric given, shows the latest value of each with its date and source."""

    artist: ArtistRef = arg("Artist name, or an id like #12", rest=True)
    on: Day | None = opt("The day the values were observed (today unless you say)")
    source: Text | None = opt("Where the values come from, e.g. Spotify for Artists (the platform you type on by default)")

    def given(self) -> dict[str, Decimal]:
        return {name: getattr(self, name) for name in catalogue.METRICS if getattr(self, name) is not None}

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist)
        values = self.given()
        if values:
            today = dt.datetime.now(dt.UTC).date()
            rows = catalogue.record(ctx.uow, ctx.actor, artist, values, observed_on=self.on or today,
                                    source=self.source or ctx.caller.platform)
            note = _("Recorded {n} metrics for {name}.", n=len(rows), name=artist.name)
        else:
            note = ""
        return _shown(ctx, artist, note)


def _shown(ctx: Context, artist: crm.Artist, note: str) -> Reply:
    current = catalogue.latest(ctx.uow, artist)
    fields = tuple(Field(_(catalogue.METRICS[m.metric].description), _value(m)) for m in current)
    text = note or (_("No metrics yet: set some with /artist metrics {name} --instagram-followers 12000.",
                      name=artist.name) if not current else "")
    footer = _("Latest value of each, with the day observed and the source; {n} values kept in all.",
               n=sum(m.history for m in current)) if current else None
    return Reply(title=_("Metrics of {name} (#{id})", name=artist.name, id=artist.id), text=text,
                 sections=(Section(fields=fields),) if fields else (), footer=footer, ephemeral=not note,
                 actions=(Button(_("Show card"), RERUN, f"/artist show #{artist.id}"),))


def _value(m: catalogue.Latest) -> str:
    kind = catalogue.METRICS[m.metric].kind
    if kind == "count":
        shown = number(int(m.value))
    elif kind in ("percent", "growth"):
        shown = f"{'+' if kind == 'growth' and m.value > 0 else ''}{m.value.normalize():f} %"
    else:
        shown = f"€{m.value:,.2f}"
    return f"{shown} · {m.observed_on.isoformat()} · {m.source}"


_fields: dict[str, Any] = {name: (Measure | None, opt(spec.description)) for name, spec in catalogue.METRICS.items()}
ArtistMetrics = registry.command("artist metrics", permission=Permission.EDIT_ARTISTS)(
    create_model("ArtistMetrics", __base__=_MetricsBase, __module__=__name__, __doc__=_MetricsBase.__doc__, **_fields))
"""The declared command: ``_MetricsBase`` with one ``--flag`` per metric of ``core.metrics.METRICS``."""


@registry.command("artist import", permission=Permission.EDIT_ARTISTS)
class ImportMetrics(Command):
    """Import a CSV file of metrics: a line of column names (artist, date, source and metric names
    such as instagram_followers), then one line per artist and day.

    Each line is imported whole or refused whole, with the reason; the report lists both."""

    file: FileArg = arg("The CSV file (UTF-8 or Latin-1), attached")

    def run(self, ctx: Context) -> Reply:
        today = dt.datetime.now(dt.UTC).date()
        report = catalogue.import_csv(ctx.uow, ctx.actor, self.file.content, filename=self.file.name, today=today)
        lines = [_("Line {line} ({artist}): {why}", line=r.line, artist=r.artist or "?", why=r.refused)
                 for r in report.refused]
        sections = (Section(title=_("Refused ({n})", n=len(lines)), text="\n".join(lines[:50])),) if lines else ()
        done = len(report.rows) - len(lines)
        return Reply(title=_("Imported {file}", file=self.file.name), sections=sections,
                     text=_("{values} values imported from {rows} lines; {refused} lines refused.",
                            values=report.imported, rows=done, refused=len(lines)),
                     footer="\n".join(report.notes) or None, ephemeral=False, error=done == 0 and bool(lines))
