"""The distillation objective: every loss term of a run, its weight and what it needs, in one place.

A run optimises ``sum_i weight_i * term_i`` (the design note's hybrid loss ``alpha * output + beta * feature +
gamma * attention + rest * hard``). :meth:`DistillationObjective.from_config` builds the terms once from the
options, through the builders registered in :data:`TERMS` (in the spirit of torchdistill's loss registry). The
registry is the one home of a term: its weight comes from one rule (:func:`chronos_distill.config.term_weight`:
its own option for a built-in term, ``term_weights[name]`` for one registered elsewhere; the truth term ``hard``
gets 1 minus the sum, and a sum above 1 is refused), and the objective alone owns

- which taps each side needs (:meth:`DistillationObjective.needs`): hidden states and attention projections of
  which blocks, read through hooks by :func:`chronos_distill.chronos2.taps.tap`;
- the terms' trainable modules (:meth:`DistillationObjective.modules`: the feature term's projections), which the
  trained model holds so that the Trainer optimises, checkpoints and synchronises them, and which are never
  exported;
- computing and weighting the terms (:meth:`DistillationObjective.__call__`);
- the names under which the terms are logged (``<name>_loss``), recorded in ``distillation.json`` and on the model
  card (:meth:`DistillationObjective.record`); the loss options are fixed on resume
  (:data:`chronos_distill.config.LOSS_OPTIONS`, part of ``DISTILL_FIXED_ON_RESUME``).

Adding a term means registering one builder; its weight is ``term_weights: {spread: 0.1}`` (or
``--term-weights '{"spread": 0.1}'``)::

    @register_term("spread")
    def spread_term(ctx: BuildContext) -> Term | None:
        def compute(x: LossInputs) -> torch.Tensor:   # the student's 10-90% width against the teacher's
            width = lambda q: q[:, -3] - q[:, 2]
            return masked_mse(width(x.student.quantiles), width(x.teacher_aligned), x.distill_mask)
        return Term("spread", ctx.weight("spread"), compute)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from chronos_distill.config import TERM_WEIGHT_OPTIONS, term_weight
from chronos_distill.distillation.losses.attention import attention_loss
from chronos_distill.distillation.losses.crossing import crossing_penalty
from chronos_distill.distillation.losses.feature import FeatureProjections, feature_loss, projection_key
from chronos_distill.distillation.losses.normalised import NormalisedTruth, distillation_mask
from chronos_distill.distillation.losses.output import OutputDistillationLoss, horizon_weights
from chronos_distill.distillation.plan import IntermediatePlan, Needs, StudentPass
from chronos_distill.errors import ConfigError

if TYPE_CHECKING:
    from chronos_distill.chronos2.taps import Tapped
    from chronos_distill.config import DistillConfig



@dataclass
class LossInputs:
    """Everything a term may read for one batch (shapes: batch rows, quantiles, horizon in patches' steps).

    student: the student's pass (quantiles (b, q_s, h) in normalised space, projected features, taps);
    teacher_aligned: the teacher's quantiles re-expressed at the student's levels (b, q_s, h), no gradient;
    teacher: the teacher's taps; truth: the normalised truth and its mask (b, h); distill_mask: where (and how
    much) student and teacher are compared (b, h); teacher_rows: (b,) rows without truth (transfer data) or None.
    """

    student: StudentPass
    teacher_aligned: torch.Tensor
    teacher: Tapped
    truth: NormalisedTruth
    distill_mask: torch.Tensor
    teacher_rows: torch.Tensor | None = None


@dataclass(frozen=True)
class Term:
    """One weighted loss term: logged as ``<name>_loss``; ``student`` / ``teacher``: the taps it needs;
    ``modules``: the trainable modules it owns (trained with the student, checkpointed, never exported);
    ``reads_teacher``: False for a term of the student and the truth alone (the truth term, the crossing penalty),
    so that a run with no other term runs no teacher forward."""

    name: str
    weight: float
    compute: Callable[[LossInputs], torch.Tensor]
    student: Needs = field(default_factory=Needs)
    teacher: Needs = field(default_factory=Needs)
    modules: nn.Module | None = None
    reads_teacher: bool = True


@dataclass(frozen=True)
class BuildContext:
    """What term builders read: the options, both models' quantile levels and configs, and the
    intermediate-layer plan."""

    cfg: DistillConfig
    output: OutputDistillationLoss
    plan: IntermediatePlan | None
    student_config: Any = None
    teacher_config: Any = None

    def weight(self, name: str) -> float:
        """Term ``name``'s weight under the one rule of :func:`chronos_distill.config.term_weight`."""
        return term_weight(self.cfg, name)


#: Term builders by term name.
TERMS: dict[str, Callable[[BuildContext], Term | None]] = {}


def register_term(name: str):
    """Register a builder ``(BuildContext) -> Term | None`` (None: the term is off for these options). A term
    registered outside chronos-distill takes its weight from ``term_weights[name]``."""

    def register(builder: Callable[[BuildContext], Term | None]):
        TERMS[name] = builder
        return builder

    return register


def weight_option(name: str) -> str:
    """The option that sets term ``name``'s weight, as a user writes it."""
    return TERM_WEIGHT_OPTIONS.get(name, f"term_weights.{name}")


@register_term("distill")
def output_term(ctx: BuildContext) -> Term:
    """The student's forecast against the teacher's (``output_loss``: whole quantile sets, or the median)."""
    return Term("distill", ctx.weight("distill"),
                lambda x: ctx.output.distill(x.student.quantiles, x.teacher_aligned, x.distill_mask))


@register_term("feature")
def feature_term(ctx: BuildContext) -> Term | None:
    """Projected student hidden states against the teacher's, matched block pair by pair. The term owns the
    projections (student width -> teacher width), one per pair."""
    plan = ctx.plan
    if ctx.weight("feature") == 0 or plan is None or not plan.features:
        return None
    projections = FeatureProjections(plan.pairs, ctx.student_config.d_model, ctx.teacher_config.d_model,
                                     normalise=plan.feature_projection == "linear_norm")

    def compute(x: LossInputs) -> torch.Tensor:
        mask = _aligned_token_mask(x)
        terms = []
        for s, t in plan.pairs:
            projection = projections[projection_key(s, t)]
            target = projection.teacher_side(x.teacher.hidden[t].detach())
            terms.append(feature_loss(projection(x.student.tapped.hidden[s]), target, mask, plan.feature_loss))
        return torch.stack(terms).mean()

    return Term("feature", ctx.weight("feature"), compute, student=Needs(blocks=tuple(s for s, _ in plan.pairs)),
                teacher=Needs(blocks=tuple(t for _, t in plan.pairs)), modules=projections)


@register_term("attention")
def attention_term(ctx: BuildContext) -> Term | None:
    """Time and/or group attention of matched blocks (KL of maps, or MiniLM relations)."""
    plan = ctx.plan
    if ctx.weight("attention") == 0 or plan is None or not plan.attention_kinds:
        return None

    def compute(x: LossInputs) -> torch.Tensor:
        _aligned_token_mask(x)
        return attention_loss(x.student.tapped, x.teacher, list(plan.pairs), plan.attention_kinds,
                              plan.attention_loss, plan.relation_heads)

    return Term("attention", ctx.weight("attention"), compute,
                student=Needs(attention=tuple((k, s) for k in plan.attention_kinds for s, _ in plan.pairs)),
                teacher=Needs(attention=tuple((k, t) for k in plan.attention_kinds for _, t in plan.pairs)))


@register_term("crossing")
def crossing_term(ctx: BuildContext) -> Term | None:
    """A penalty on the student's crossing quantiles (``term_weights: {crossing: W}``): zero while they are in
    order (:func:`~chronos_distill.distillation.losses.crossing.crossing_penalty`). Reads no teacher."""
    if ctx.weight("crossing") == 0:
        return None
    return Term("crossing", ctx.weight("crossing"),
                lambda x: crossing_penalty(x.student.quantiles, (x.distill_mask > 0).to(x.distill_mask.dtype)),
                reads_teacher=False)


def _union(needs) -> Needs:
    total = Needs()
    for one in needs:
        total = total | one
    return total


def _aligned_token_mask(x: LossInputs) -> torch.Tensor:
    """The student's token mask, once checked to line up with the teacher's (same patching, same context give the
    same mask; comparing the values too would make every step wait for the device)."""
    s_mask, t_mask = x.student.tapped.token_mask, x.teacher.token_mask
    if s_mask.shape != t_mask.shape:
        raise RuntimeError(
            f"student tokens {tuple(s_mask.shape)} and teacher tokens {tuple(t_mask.shape)} do not line up; "
            "the two models must read the same context with the same patching"
        )
    return s_mask


def truth_term(output: OutputDistillationLoss, weight: float, teacher_rows_have_truth: bool = False) -> Term:
    """Chronos-2's own loss on the truth, averaged over the rows that have one (teacher-only rows would dilute it).
    ``teacher_rows_have_truth``: a ``--general`` batch, whose teacher rows carry the generator's continuation: the
    loss is Chronos-2's own over the whole batch."""

    def compute(x: LossInputs) -> torch.Tensor:
        hard = output.hard(x.student.quantiles, x.truth)
        rows = x.teacher_rows
        if rows is None or teacher_rows_have_truth:
            return hard
        # rows / rows-with-truth, as a device tensor: reading the count on the host would stall every step
        return hard * (rows.numel() / (rows.numel() - rows.sum()))

    return Term("hard", weight, compute, reads_teacher=False)


class DistillationObjective:
    """The weighted terms of a run (see the module doc). Call it on :class:`LossInputs` for the components and
    their weighted ``total``."""

    def __init__(self, terms: list[Term], output: OutputDistillationLoss, horizon_weighting: str = "none",
                 horizon_tau: float = 1.0, plan: IntermediatePlan | None = None):
        self.terms = tuple(terms)
        self.plan = plan  # the matched blocks the intermediate terms compare (recorded with the run)
        self.output = output
        self.horizon_weighting, self.horizon_tau = horizon_weighting, horizon_tau
        self._needs = {side: _union(getattr(t, side) for t in self.terms) for side in ("student", "teacher")}

    @classmethod
    def from_config(cls, cfg: DistillConfig, output: OutputDistillationLoss, plan: IntermediatePlan | None,
                    student_config: Any = None, teacher_config: Any = None):
        """The registered terms that the options turn on (a zero weight turns a term off), and the truth term
        with the remaining weight. ``term_weights`` may name only registered terms (the weights' sum was checked
        when the config was built)."""
        unknown = sorted(set(cfg.term_weights) - set(TERMS))
        if unknown:
            raise ConfigError(f"option `term_weights` (--term-weights) names {unknown}, which no registered term "
                              f"has (registered: {sorted(TERMS)}); register it with register_term before the run")
        context = BuildContext(cfg, output, plan, student_config, teacher_config)
        terms = [term for name, build in TERMS.items()
                 if context.weight(name) > 0 and (term := build(context)) is not None]
        hard = max(0.0, 1.0 - sum(t.weight for t in terms))
        if getattr(cfg, "general", False):
            # the truth is the generator's continuation of each task; with alpha 1 its weight is 0 and the term is
            # left out (``total`` is ``distill``), and alpha 0 leaves the truth term alone
            truth = [truth_term(output, hard, teacher_rows_have_truth=True)] if hard > 0 else []
            return cls([*terms, *truth], output, cfg.horizon_weighting, cfg.horizon_tau, plan)
        return cls([*terms, truth_term(output, hard)], output, cfg.horizon_weighting, cfg.horizon_tau, plan)

    def modules(self) -> nn.ModuleDict:
        """The terms' trainable modules by term name (empty when no term owns any)."""
        return nn.ModuleDict({t.name: t.modules for t in self.terms if t.modules is not None})

    @property
    def needs_teacher(self) -> bool:
        """Whether any term reads the teacher: False for a truth-only run (``--alpha 0`` and no other teacher term),
        which then runs no teacher forward at all."""
        return any(t.reads_teacher for t in self.terms)

    def needs(self, side: str) -> Needs:
        """The taps the terms need on ``side`` (``"student"`` or ``"teacher"``)."""
        return self._needs[side]

    @property
    def weights(self) -> dict[str, float]:
        return {t.name: t.weight for t in self.terms}

    @property
    def log_names(self) -> dict[str, str]:
        """Component -> logged name (``distill_loss``, ..., ``total_loss``)."""
        return {**{t.name: f"{t.name}_loss" for t in self.terms}, "total": "total_loss"}

    def align_teacher(self, teacher_quantiles: torch.Tensor | None) -> torch.Tensor | None:
        """The teacher's quantiles (b, q_t, h) at the student's levels (b, q_s, h), detached (None: a truth-only
        run has none)."""
        return None if teacher_quantiles is None else self.output.align(teacher_quantiles)

    def distill_mask(self, truth: NormalisedTruth, teacher_rows: torch.Tensor | None, length: int) -> torch.Tensor:
        """Where and how much student and teacher are compared (batch, horizon): labelled rows where their truth
        counts, teacher-only rows over the ``length`` requested steps, times the horizon weights."""
        mask = distillation_mask(truth.mask, teacher_rows, length)
        weights = horizon_weights(self.horizon_weighting, self.horizon_tau, length, mask.shape[-1])
        return mask if weights is None else mask * weights.to(mask)

    def __call__(self, student: StudentPass, teacher_quantiles: torch.Tensor | None, teacher: Tapped,
                 truth: NormalisedTruth, *, length: int, teacher_rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``{term name: value, ..., "total": sum of weight * value}`` (scalars) for one batch whose requested
        horizon is ``length`` steps."""
        return self.components(LossInputs(
            student=student, teacher_aligned=self.align_teacher(teacher_quantiles), teacher=teacher, truth=truth,
            distill_mask=self.distill_mask(truth, teacher_rows, length), teacher_rows=teacher_rows,
        ))

    def components(self, inputs: LossInputs) -> dict[str, torch.Tensor]:
        """Every term's value on ``inputs``, and their weighted ``total``."""
        losses = {term.name: term.compute(inputs) for term in self.terms}
        total = sum(term.weight * losses[term.name] for term in self.terms)
        losses["total"] = total if torch.is_tensor(total) else torch.tensor(float(total))
        return losses

    def record(self) -> dict[str, Any]:
        """What ``distillation.json`` and the model card say about the objective: every term with its weight, the
        option that set it and its logged name (the truth term's weight is the rest)."""
        return {"terms": {t.name: {"weight": round(t.weight, 12), "logged_as": f"{t.name}_loss",
                                   "option": "the rest (1 - the other weights)" if t.name == "hard" else weight_option(t.name)}
                          for t in self.terms},
                "horizon_weighting": self.horizon_weighting,
                "horizon_tau": self.horizon_tau if self.horizon_weighting != "none" else None}
