"""/pipeline: the figures of one or both pipelines."""

from __future__ import annotations

from typing import Annotated, Literal

from core.app import Command, Context
from core.i18n import _, ngettext, number, percent
from core.pipeline_stats import PipelineFigures, pipeline_figures
from core.pipelines import Pipeline, parse_pipeline
from core.team import Permission
from handlers.args import ChatType, arg
from handlers.registry import RERUN, registry
from handlers.render import days, totals
from handlers.reply import Button, Reply, Section


def _pipeline(raw: str, label: str) -> str:
    return parse_pipeline(raw).value  # "Unknown pipeline jazz. Pipelines: mona, spark."


PipelineChoice = Annotated[Literal["mona", "spark"], ChatType(_pipeline, "mona|spark", "mona or spark")]


@registry.command("pipeline", permission=Permission.READ)
class ShowPipeline(Command):
    """Count and open deal value per stage, conversion to the next stage, median days in stage,
    and the artists stuck longer than MONA_STUCK_DAYS."""

    pipeline: PipelineChoice | None = arg("Only this pipeline (both when left out)", default=None)

    def run(self, ctx: Context) -> Reply:
        chosen = [Pipeline(self.pipeline)] if self.pipeline else list(Pipeline)
        sections: list[Section] = []
        for figures in pipeline_figures(ctx.uow, chosen, stuck_days=ctx.settings.stuck_days):
            sections += _sections(figures)
        buttons = tuple(Button(p.label, RERUN, f"/pipeline {p.value}") for p in Pipeline if [p] != chosen)
        return Reply(title=_("Pipeline"), sections=tuple(sections), actions=buttons,
                     replace_original=ctx.caller.via == "action")


def _sections(fig: PipelineFigures) -> list[Section]:
    lines = []
    for s in fig.stages:
        parts = [f"{s.stage}: {s.count}", totals(s.value)]
        if s.conversion is not None:
            parts.append(_("{rate} to next", rate=percent(s.conversion)))
        if s.median_days is not None:
            parts.append(_("median {days}", days=days(round(s.median_days))))
        lines.append(" · ".join(parts))
    out = [Section(title=ngettext("{pipeline}: {n} artist", "{pipeline}: {n} artists", fig.total, pipeline=fig.pipeline.label), text="\n".join(lines))]
    if fig.stuck_total:
        stuck = "\n".join(f"{a.name} (#{a.id}) · {a.stage} · {days(a.days)}" for a in fig.stuck)
        more = fig.stuck_total - len(fig.stuck)
        if more > 0:
            stuck += "\n" + _("and {n} more", n=number(more))
        out.append(Section(title=_("Stuck for more than {days} ({n})", days=days(fig.stuck_days), n=number(fig.stuck_total)),
                           text=stuck))
    return out
