"""The two pipelines and their stages, as the business writes them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rapidfuzz import process

from core.errors import InvalidInput
from core.i18n import _
from core.text import fold


class Pipeline(enum.StrEnum):
    MONA = "mona"
    SPARK = "spark"

    @property
    def label(self) -> str:
        return self.value.upper()


STAGES: dict[Pipeline, tuple[str, ...]] = {
    Pipeline.MONA: ("Prospection", "Check-up", "Prescription", "Exécution", "Fidélisation"),
    Pipeline.SPARK: ("Qualification", "Villa Prep", "Live Stream", "Content Prod", "Showcase", "Monétisation"),
}

#: A MONA artist leaving Fidélisation is qualified into SPARK.
QUALIFY_FROM = (Pipeline.MONA, "Fidélisation")
QUALIFY_TO = (Pipeline.SPARK, "Qualification")


@dataclass(frozen=True)
class StageRef:
    pipeline: Pipeline
    stage: str

    @property
    def label(self) -> str:
        return f"{self.stage} ({self.pipeline.label})"


def _key(text: str) -> str:
    return fold(text).replace("-", " ").replace("_", " ")


def parse_pipeline(text: str) -> Pipeline:
    try:
        return Pipeline(text.strip().lower())
    except ValueError:
        raise InvalidInput(
            _("Unknown pipeline {name}. Pipelines: {choices}.", name=text, choices="mona, spark")
        ) from None


def first_stage(pipeline: Pipeline) -> str:
    return STAGES[pipeline][0]


def reachable(pipeline: Pipeline, stage: str) -> list[StageRef]:
    """Stages an artist at ``stage`` may be moved to: any of their pipeline, or SPARK when qualifying."""
    refs = [StageRef(pipeline, s) for s in STAGES[pipeline] if s != stage]
    if (pipeline, stage) == QUALIFY_FROM:
        refs.append(StageRef(*QUALIFY_TO))
    return refs


def next_stage(pipeline: Pipeline, stage: str) -> StageRef | None:
    stages = STAGES[pipeline]
    i = stages.index(stage)
    if i + 1 < len(stages):
        return StageRef(pipeline, stages[i + 1])
    if (pipeline, stage) == QUALIFY_FROM:
        return StageRef(*QUALIFY_TO)
    return None


def find_stage(pipeline: Pipeline, stage: str, text: str) -> StageRef:
    """The stage named ``text`` for an artist now at ``pipeline``/``stage``, or a message listing valid ones."""
    options = reachable(pipeline, stage) + [StageRef(pipeline, stage)]
    key = _key(text)
    if key == "next":
        nxt = next_stage(pipeline, stage)
        if nxt is None:
            raise InvalidInput(_("{stage} is the last stage of {pipeline}.", stage=stage, pipeline=pipeline.label))
        return nxt
    for ref in options:
        if _key(ref.stage) == key:
            return ref
    valid = ", ".join(r.stage for r in reachable(pipeline, stage))
    other = [s for p, stages in STAGES.items() if p != pipeline for s in stages if _key(s) == key]
    if other:
        raise InvalidInput(
            _("{stage} belongs to the other pipeline; from {current} ({pipeline}) the valid stages are: {valid}.",
              stage=other[0], current=stage, pipeline=pipeline.label, valid=valid)
        )
    close = process.extractOne(key, {r.stage: _key(r.stage) for r in options}, score_cutoff=70)
    hint = " " + _("Did you mean {stage}?", stage=close[2]) if close else ""
    raise InvalidInput(_("Unknown stage {name}. Valid stages: {valid}.", name=text, valid=valid) + hint)


def find_any_stage(text: str, pipeline: Pipeline | None = None) -> StageRef:
    """A stage by name in any pipeline (or the one given), for filters."""
    key = _key(text)
    pipelines = [pipeline] if pipeline else list(Pipeline)
    for p in pipelines:
        for s in STAGES[p]:
            if _key(s) == key:
                return StageRef(p, s)
    valid = ", ".join(s for p in pipelines for s in STAGES[p])
    raise InvalidInput(_("Unknown stage {name}. Valid stages: {valid}.", name=text, valid=valid))


def is_stage_prefix(words: list[str]) -> int:
    """How many trailing words of ``words`` name a stage (of any pipeline), 0 if none; used to split
    ``/artist move Alex Blue Villa Prep`` into a name and a stage without quotes."""
    for n in (3, 2, 1):
        if len(words) > n:
            key = _key(" ".join(words[-n:]))
            if key == "next" or any(_key(s) == key for stages in STAGES.values() for s in stages):
                return n
    return 1 if len(words) > 1 else 0
