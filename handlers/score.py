"""/score and /prescribe: Mona Market Fit in chat — an artist's score explained, the model's
weights, batches on a worker, the distribution and the movers, and the written plan."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from core import artists as crm
from core import notify, scoring
from core import weights as model
from core.app import Command, Context
from core.i18n import _, ngettext, number
from core.prescription import PlanBlock, PlanFactor, PlanInput
from core.scoring import DIMENSIONS, FACTORS, Score, dimension_label, factor_label
from core.team import Permission
from handlers.args import ArtistRef, arg, opt
from handlers.marketplace import RequestForm
from handlers.ops import start_after_commit
from handlers.pipeline import PipelineChoice
from handlers.registry import RERUN, button, registry
from handlers.render import local_datetime
from handlers.reply import Button, Reply, Section

READ = Permission.READ


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def bar(score: float, width: int = 10) -> str:
    filled = max(0, min(width, round(score / 100 * width)))
    return "█" * filled + "░" * (width - filled)


def _signed(value: float) -> str:
    return f"{value:+.0f}"


@registry.command("score", permission=READ)
class ScoreArtist(Command):
    """Score an artist's market fit: four dimensions 0-100 and the overall, the factors that raised and
    lowered each (with the numbers behind them), the change since the last score, how sure it is, the
    funnel step they fit and the marketplace blocks that would help most."""

    artist: ArtistRef = arg("Artist name, or an id like #12", rest=True)

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist)
        score = scoring.score_artist(ctx.uow, artist, today=_today(), source=ctx.caller.platform,
                                     drop_points=ctx.settings.score_drop, actor=ctx.actor)
        return score_reply(ctx, artist, score)


def score_reply(ctx: Context, artist: crm.Artist, score: Score) -> Reply:
    lines = [_("Overall {score}/100 {bar} (model v{version}).", score=round(score.overall), bar=bar(score.overall),
               version=score.model_version)]
    if score.change is None:
        lines.append(_("First score of {name}.", name=artist.name))
    else:
        c = score.change
        moved = score.overall - c.previous
        when = local_datetime(c.previous_at, ctx.settings.timezone)
        if abs(moved) < 0.5 and abs(c.weights) < 0.5:
            lines.append(_("Unchanged since the last score ({when}).", when=when))
        else:
            lines.append(_("{change} since the last score ({when}): {data} from the data, {weights} from the weights "
                           "(v{before} → v{after}).", change=_signed(moved), when=when, data=_signed(c.data),
                           weights=_signed(c.weights), before=c.previous_version, after=score.model_version))
    lines.append(_confidence_line(score))
    pipeline, stage = score.recommended
    fits = f"{pipeline.upper()} · {stage}"
    now = f"{artist.pipeline.upper()} · {artist.stage}"
    lines.append(_("Fits {fits} (now at {now}).", fits=fits, now=now) if fits != now
                 else _("Fits {fits}, where they are.", fits=fits))
    sections = tuple(_dimension_section(score, d) for d in DIMENSIONS)
    actions: list[Button] = [button(RequestForm(block=b.key, artist=f"#{artist.id}"),
                                    _("Request {block} (+{gain})", block=b.name, gain=round(b.gain))[:75])
                             for b in score.blocks]
    if score.blocks:
        lines.append(_("Weakest: {dimension}; the blocks below would raise it most.",
                       dimension=dimension_label(score.weakest)))
    actions += [Button(_("Prescribe"), RERUN, f"/prescribe #{artist.id}"),
                Button(_("Show card"), RERUN, f"/artist show #{artist.id}")]
    return Reply(title=_("Market Fit of {name} (#{id})", name=artist.name, id=artist.id), text="\n".join(lines),
                 sections=sections, actions=tuple(actions), footer=_cohort_line(score), ephemeral=False)


def _confidence_line(score: Score) -> str:
    text = _("Confidence {pct} %.", pct=round(100 * score.confidence))
    if score.missing:
        text += " " + _("Not known (counted as the peers' average): {factors}.",
                        factors=", ".join(factor_label(f.key) for f in score.missing))
    if score.stale:
        text += " " + _("Old data counting less: {factors}.", factors=", ".join(
            _("{factor} ({days} days, counts {pct} %)", factor=factor_label(f.key), days=f.age,
              pct=round(100 * f.observed)) for f in score.stale))
    return text


def _dimension_section(score: Score, d: str) -> Section:
    factors = score.of(d)
    total = score.dimensions[d]
    whole = scoring.split_points([f.points for f in factors], total)
    shown = {f.key: p for f, p in zip(factors, whole, strict=True)}
    raised = sorted((f for f in factors if f.position >= 0.5), key=lambda f: -f.points)[:3]
    lowered = sorted((f for f in factors if f.position < 0.5), key=lambda f: -f.missed)[:3]
    lines = [_("▲ {label}: +{points} of {share} points", label=f.label, points=shown[f.key], share=round(f.share))
             for f in raised]
    lines += [_("▼ {label}: +{points} of {share} points", label=f.label, points=shown[f.key], share=round(f.share))
              for f in lowered]
    others = [f for f in factors if f not in raised and f not in lowered]
    if others:
        lines.append(ngettext("Other factor: +{points} points", "{n} other factors: +{points} points", len(others),
                              points=sum(shown[f.key] for f in others)))
    return Section(title=f"{dimension_label(d)} — {round(total)}/100 {bar(total)}", text="\n".join(lines))


def _cohort_line(score: Score) -> str:
    c = score.cohort
    genre = c.genre_key or _("no genre")
    peers = ngettext("{n} artist", "{n} artists", c.size)
    if c.enough:
        return _("Peers: {genre}, {career} ({peers}).", genre=genre, career=scoring.career_label(c.career), peers=peers)
    return _("Peers: {genre}, {career} ({peers}, fewer than {least}): Competitive Positioning uses the reference "
             "band of {career} artists.", genre=genre, career=scoring.career_label(c.career), peers=peers,
             least=scoring.COHORT_MIN)


@registry.command("score model", permission=READ)
class ScoreModelShow(Command):
    """The weights in force: their version, how many outcomes trained them, how well they do on the
    newest outcomes (AUC), and what changed since the version before."""

    def run(self, ctx: Context) -> Reply:
        current, *older = model.versions(ctx.uow)
        before = older[0] if older else None
        total = sum(current.weights.values())
        sections = []
        for d in DIMENSIONS:
            lines = []
            for f in (f for f in FACTORS if f.dimension == d):
                w = current.weights[f.key] / total
                text = _("{factor}: {pct} %", factor=factor_label(f.key), pct=f"{100 * w:.1f}")
                if before is not None:
                    was = before.weights.get(f.key, 0.0) / sum(before.weights.values())
                    if abs(w - was) >= 0.0005:
                        text += " " + _("(was {pct} %)", pct=f"{100 * was:.1f}")
                lines.append(text)
            share = sum(current.weights[f.key] for f in FACTORS if f.dimension == d) / total
            sections.append(Section(title=_("{dimension}: {pct} % of the overall", dimension=dimension_label(d),
                                            pct=round(100 * share)), text="\n".join(lines)))
        if current.version == 1 or not current.trained:
            about = _("Version {version}: the expert defaults (no refit yet; one needs {need} positive and {need} "
                      "negative outcomes).", version=current.version, need=model.MIN_EACH)
        else:
            t = current.trained
            kinds = "; ".join(_("{kind}: {pos} positive, {neg} negative", kind=_kind(k), pos=v[0], neg=v[1])
                              for k, v in t.get("kinds", {}).items() if v[0] or v[1])
            about = _("Version {version}, refit {when} from {n} outcomes ({kinds}). AUC on the newest {held}: {auc} "
                      "(version before: {old}).", version=current.version,
                      when=local_datetime(current.created_at, ctx.settings.timezone),
                      n=t.get("positives", 0) + t.get("negatives", 0), kinds=kinds, held=t.get("held_out", 0),
                      auc=f"{current.auc:.2f}" if current.auc is not None else "?",
                      old=f"{current.previous_auc:.2f}" if current.previous_auc is not None else "?")
        return Reply(title=_("Market Fit model"), text=about, sections=tuple(sections),
                     footer=_("Each weight moves at most {pct} % per refit; /score retrain refits now (admins).",
                              pct=round(100 * model.MAX_STEP)))


def _kind(k: str) -> str:
    return {"spark": _("reached SPARK"), "deal": _("deals"), "request": _("requests")}.get(k, k)


@registry.command("score retrain", permission=Permission.RUN_MAINTENANCE, sensitive=True)
class ScoreRetrain(Command):
    """Refit the weights now from the outcomes recorded (a job; it also runs every night)."""

    def run(self, ctx: Context) -> Reply:
        run = notify.create_run(ctx.uow, ctx.actor, kind="score_retrain", platform=ctx.caller.platform,
                                channel_id=ctx.caller.channel_id)
        start_after_commit(ctx, run.id)
        return Reply(text=_("Job {id} is queued: the weights are refit from the outcomes; the result will show here.",
                            id=run.id), ephemeral=False)


@registry.command("score batch", permission=Permission.MANAGE_SCORES)
class ScoreBatch(Command):
    """Score every live artist (or one pipeline's) on a worker; progress is shown here."""

    pipeline: PipelineChoice | None = opt("Only this pipeline's artists (mona or spark)")

    def run(self, ctx: Context) -> Reply:
        run = notify.create_run(ctx.uow, ctx.actor, kind="score_batch", platform=ctx.caller.platform,
                                channel_id=ctx.caller.channel_id,
                                args={"pipeline": self.pipeline, "drop": ctx.settings.score_drop})
        start_after_commit(ctx, run.id)
        return Reply(text=_("Job {id} is queued: scoring {who}; its progress will show in this channel.", id=run.id,
                            who=self.pipeline.upper() if self.pipeline else _("every artist")), ephemeral=False)


@registry.command("score stats", permission=READ)
class ScoreStats(Command):
    """The latest scores per stage (how many, median, middle half) and the biggest movers this week."""

    def run(self, ctx: Context) -> Reply:
        figures = scoring.stats(ctx.uow, now=dt.datetime.now(dt.UTC))
        lines = [_("{stage}: {n} scored, median {median} (middle half {low}–{high})", stage=f"{p.upper()} · {s}",
                   n=number(f.count), median=round(f.median), low=round(f.p25), high=round(f.p75))
                 for (p, s), f in figures.stages.items()]
        sections = [Section(title=_("By stage"), text="\n".join(lines) or _("Nobody is scored yet: /score NAME or "
                                                                             "/score batch."))]
        for title, movers in ((_("Up most this week"), figures.up), (_("Down most this week"), figures.down)):
            if movers:
                sections.append(Section(title=title, text="\n".join(
                    _("{name} (#{id}): {before} → {after} ({change})", name=m.name, id=m.artist_id,
                      before=round(m.before), after=round(m.after), change=_signed(m.after - m.before))
                    for m in movers)))
        return Reply(title=_("Market Fit across artists"), sections=tuple(sections),
                     footer=_("Latest score of each live artist; movers against their score a week ago."))


@registry.command("prescribe", permission=Permission.EDIT_ARTISTS)
class Prescribe(Command):
    """Write the "ordonnance": a short plan for an artist from their score, its factors and the blocks
    that would help, by the AI configured (a template when there is none); posted here with buttons
    that open those requests."""

    artist: ArtistRef = arg("Artist name, or an id like #12", rest=True)

    def run(self, ctx: Context) -> Reply:
        artist = crm.find(ctx.uow, self.artist)
        score = scoring.score_artist(ctx.uow, artist, today=_today(), source=ctx.caller.platform,
                                     drop_points=ctx.settings.score_drop, actor=ctx.actor)
        data = plan_input(ctx, artist, score)
        actions = [[b.label, b.action_id, b.value] for b in
                   (button(RequestForm(block=x.key, artist=f"#{artist.id}"), _("Request {block}", block=x.name)[:75])
                    for x in score.blocks)]
        run = notify.create_run(ctx.uow, ctx.actor, kind="prescribe", platform=ctx.caller.platform,
                                channel_id=ctx.caller.channel_id,
                                args={"input": asdict(data), "actions": actions, "title": _(
                                    "Prescription for {name}", name=artist.name)})
        start_after_commit(ctx, run.id)
        return Reply(text=_("Writing the prescription for {name} (job {id}); it will be posted here.",
                            name=artist.name, id=run.id), ephemeral=False)


def plan_input(ctx: Context, artist: crm.Artist, score: Score) -> PlanInput:
    """What the plan is written from: this artist's score and nothing else (notes are quoted as data)."""
    notes = tuple(i.text[:500] for i, _author in crm.card(ctx.uow, artist, recent=5).interactions)
    return PlanInput(
        artist_id=artist.id, artist_name=artist.name, genre=artist.genre, pipeline=artist.pipeline, stage=artist.stage,
        overall=round(score.overall, 1), dimensions={d: round(v, 1) for d, v in score.dimensions.items()},
        confidence=round(score.confidence, 2), weakest=score.weakest,
        recommended_step=f"{score.recommended[0].upper()} · {score.recommended[1]}",
        factors=tuple(PlanFactor(f.dimension, f.label, round(f.points, 1), round(f.missed, 1)) for f in score.factors),
        blocks=tuple(PlanBlock(b.key, b.name, b.dimension, round(b.gain, 1)) for b in score.blocks),
        notes=notes)
