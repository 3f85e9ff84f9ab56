"""The distillation objective: every loss term of a run, its weight and what it needs, in one place.

A run optimises ``sum_i weight_i * term_i`` (the design note's hybrid loss ``alpha * output + beta * feature +
gamma * attention + rest * hard``). :meth:`DistillationObjective.from_config` builds the terms once from the
options, through the builders registered in :data:`TERMS` (in the spirit of torchdistill's loss registry); the
truth term (``hard``) gets what the others leave, ``1 - sum of their weights``. The objective alone owns:

- which taps each side needs (:meth:`DistillationObjective.needs`): hidden states and attention projections of
  which blocks, read through hooks by :func:`chronos_distill.chronos2.taps.tap`;
- computing and weighting the terms (:meth:`DistillationObjective.__call__`);
- the names under which the terms are logged (``<name>_loss``), recorded in ``distillation.json`` and fixed
  on resume (:data:`FIXED_ON_RESUME`).

Adding a term means writing one builder and its option::

    @register_term("spread", option="spread_weight")
    def spread_term(ctx: BuildContext) -> Term | None:
        if ctx.cfg.spread_weight == 0:
            return None
        def compute(x: LossInputs) -> torch.Tensor:   # the student's 10-90% width against the teacher's
            width = lambda q: q[:, -3] - q[:, 2]
            return masked_mse(width(x.student.quantiles), width(x.teacher_aligned), x.distill_mask)
        return Term("spread", ctx.cfg.spread_weight, compute)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from chronos_distill.config import LOSS_OPTIONS
from chronos_distill.distillation.losses.attention import attention_loss
from chronos_distill.distillation.losses.feature import feature_loss
from chronos_distill.distillation.losses.normalised import NormalisedTruth, distillation_mask
from chronos_distill.distillation.losses.output import OutputDistillationLoss, horizon_weights
from chronos_distill.distillation.plan import IntermediatePlan, Needs, StudentPass, projection_key

if TYPE_CHECKING:
    from chronos_distill.chronos2.taps import Tapped
    from chronos_distill.config import DistillConfig

#: Options that shape the objective or its trainable state (the projections): a resumed run keeps them.
FIXED_ON_RESUME = LOSS_OPTIONS


@dataclass
class LossInputs:
    """Everything a term may read for one batch (shapes: batch rows, quantiles, horizon in patches' steps).

    student: the student's pass (quantiles (b, q_s, h) in normalised space, projected features, taps);
    teacher_aligned: the teacher's quantiles re-expressed at the student's levels (b, q_s, h), no gradient;
    teacher: the teacher's taps; truth: the normalised truth and its mask (b, h); distill_mask: where (and how
    much) student and teacher are compared (b, h); teacher_rows: (b,) rows without truth (transfer data) or None;
    projections: the student's training-only projections (student width -> teacher width) or None.
    """

    student: StudentPass
    teacher_aligned: torch.Tensor
    teacher: Tapped
    truth: NormalisedTruth
    distill_mask: torch.Tensor
    teacher_rows: torch.Tensor | None = None
    projections: Any = None


@dataclass(frozen=True)
class Term:
    """One weighted loss term: logged as ``<name>_loss``; ``student`` / ``teacher``: the taps it needs."""

    name: str
    weight: float
    compute: Callable[[LossInputs], torch.Tensor]
    student: Needs = field(default_factory=Needs)
    teacher: Needs = field(default_factory=Needs)


@dataclass(frozen=True)
class BuildContext:
    """What term builders read: the options, both models' quantile levels and the intermediate-layer plan."""

    cfg: DistillConfig
    output: OutputDistillationLoss
    plan: IntermediatePlan | None


#: Term builders by term name, with the option that sets each one's weight.
TERMS: dict[str, tuple[str, Callable[[BuildContext], Term | None]]] = {}


def register_term(name: str, *, option: str):
    """Register a builder ``(BuildContext) -> Term | None`` (None: the term is off for these options)."""

    def register(builder: Callable[[BuildContext], Term | None]):
        TERMS[name] = (option, builder)
        return builder

    return register


@register_term("distill", option="alpha")
def output_term(ctx: BuildContext) -> Term:
    """The student's forecast against the teacher's (``output_loss``: whole quantile sets, or the median)."""
    return Term("distill", ctx.cfg.alpha,
                lambda x: ctx.output.distill(x.student.quantiles, x.teacher_aligned, x.distill_mask))


@register_term("feature", option="feature_weight")
def feature_term(ctx: BuildContext) -> Term | None:
    """Projected student hidden states against the teacher's, matched block pair by pair."""
    plan = ctx.plan
    if ctx.cfg.feature_weight == 0 or plan is None or not plan.features:
        return None
    def compute(x: LossInputs) -> torch.Tensor:
        mask = _aligned_token_mask(x)
        terms = []
        for s, t in plan.pairs:
            target = x.projections[projection_key(s, t)].teacher_side(x.teacher.hidden[t].detach())
            terms.append(feature_loss(x.student.features[(s, t)], target, mask, plan.feature_loss))
        return torch.stack(terms).mean()

    return Term("feature", ctx.cfg.feature_weight, compute,
                student=Needs(blocks=tuple(s for s, _ in plan.pairs)), teacher=Needs(blocks=tuple(t for _, t in plan.pairs)))


@register_term("attention", option="attention_weight")
def attention_term(ctx: BuildContext) -> Term | None:
    """Time and/or group attention of matched blocks (KL of maps, or MiniLM relations)."""
    plan = ctx.plan
    if ctx.cfg.attention_weight == 0 or plan is None or not plan.attention_kinds:
        return None

    def compute(x: LossInputs) -> torch.Tensor:
        _aligned_token_mask(x)
        return attention_loss(x.student.tapped, x.teacher, list(plan.pairs), plan.attention_kinds,
                              plan.attention_loss, plan.relation_heads)

    return Term("attention", ctx.cfg.attention_weight, compute,
                student=Needs(attention=tuple((k, s) for k in plan.attention_kinds for s, _ in plan.pairs)),
                teacher=Needs(attention=tuple((k, t) for k in plan.attention_kinds for _, t in plan.pairs)))


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


def truth_term(output: OutputDistillationLoss, weight: float) -> Term:
    """Chronos-2's own loss on the truth, averaged over the rows that have one (teacher-only rows would dilute it)."""

    def compute(x: LossInputs) -> torch.Tensor:
        hard = output.hard(x.student.quantiles, x.truth)
        rows = x.teacher_rows
        if rows is None:
            return hard
        # rows / rows-with-truth, as a device tensor: reading the count on the host would stall every step
        return hard * (rows.numel() / (rows.numel() - rows.sum()))

    return Term("hard", weight, compute)


class DistillationObjective:
    """The weighted terms of a run (see the module doc). Call it on :class:`LossInputs` for the components and
    their weighted ``total``."""

    def __init__(self, terms: list[Term], output: OutputDistillationLoss, horizon_weighting: str = "none",
                 horizon_tau: float = 1.0):
        self.terms = tuple(terms)
        self.output = output
        self.horizon_weighting, self.horizon_tau = horizon_weighting, horizon_tau
        self._needs = {side: _union(getattr(t, side) for t in self.terms) for side in ("student", "teacher")}

    @classmethod
    def from_config(cls, cfg: DistillConfig, output: OutputDistillationLoss, plan: IntermediatePlan | None):
        """The registered terms that the options turn on, and the truth term with the remaining weight."""
        context = BuildContext(cfg, output, plan)
        terms = [term for _, build in TERMS.values() if (term := build(context)) is not None]
        hard = max(0.0, 1.0 - sum(t.weight for t in terms))
        return cls([*terms, truth_term(output, hard)], output, cfg.horizon_weighting, cfg.horizon_tau)

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

    def align_teacher(self, teacher_quantiles: torch.Tensor) -> torch.Tensor:
        """The teacher's quantiles (b, q_t, h) at the student's levels (b, q_s, h), detached."""
        return self.output.align(teacher_quantiles)

    def distill_mask(self, truth: NormalisedTruth, teacher_rows: torch.Tensor | None, length: int) -> torch.Tensor:
        """Where and how much student and teacher are compared (batch, horizon): labelled rows where their truth
        counts, teacher-only rows over the ``length`` requested steps, times the horizon weights."""
        mask = distillation_mask(truth.mask, teacher_rows, length)
        weights = horizon_weights(self.horizon_weighting, self.horizon_tau, length, mask.shape[-1])
        return mask if weights is None else mask * weights.to(mask)

    def __call__(self, student: StudentPass, teacher_quantiles: torch.Tensor, teacher: Tapped,
                 truth: NormalisedTruth, *, length: int, teacher_rows: torch.Tensor | None = None,
                 projections: Any = None) -> dict[str, torch.Tensor]:
        """``{term name: value, ..., "total": sum of weight * value}`` (scalars) for one batch whose requested
        horizon is ``length`` steps."""
        return self.components(LossInputs(
            student=student, teacher_aligned=self.align_teacher(teacher_quantiles), teacher=teacher, truth=truth,
            distill_mask=self.distill_mask(truth, teacher_rows, length), teacher_rows=teacher_rows,
            projections=projections,
        ))

    def components(self, inputs: LossInputs) -> dict[str, torch.Tensor]:
        """Every term's value on ``inputs``, and their weighted ``total``."""
        losses = {term.name: term.compute(inputs) for term in self.terms}
        total = sum(term.weight * losses[term.name] for term in self.terms)
        losses["total"] = total if torch.is_tensor(total) else torch.tensor(float(total))
        return losses

    def record(self) -> dict[str, Any]:
        """What ``distillation.json`` says about the objective."""
        return {"terms": {t.name: {"weight": t.weight, "option": TERMS.get(t.name, (None,))[0]} for t in self.terms},
                "horizon_weighting": self.horizon_weighting,
                "horizon_tau": self.horizon_tau if self.horizon_weighting != "none" else None}
