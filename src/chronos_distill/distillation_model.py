"""The module the Trainer trains: the student plus its training-only feature projections.

``DistillationModel`` holds the student ``Chronos2Model`` as ``.student`` and, when feature distillation is on,
one :class:`~chronos_distill.losses.FeatureProjection` per matched block pair as ``.projections``. Wrapping them
in one ``nn.Module`` is what lets transformers' ``Trainer`` optimise, checkpoint, resume and (under
``torchrun`` / ``accelerate``) synchronise the projections together with the student, with no code of ours;
the export takes ``.student`` only, so the projections never reach the exported model.

Its forward pass runs the student once under :func:`chronos_distill.taps.tap`, with the taps the objective needs
(:mod:`chronos_distill.objective`), and returns its normalised quantiles, projected hidden states and
attention projections (:class:`StudentPass`). The losses themselves live in the objective.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.config import Chronos2CoreConfig
from torch import nn

from .errors import ConfigError
from .forward import normalised_quantiles
from .layer_map import resolve_layer_map
from .losses import FeatureProjection, default_relation_heads
from .objective import Needs
from .pruning import channel_embedding
from .taps import Tapped, check_token_alignment, tap


@dataclass(frozen=True)
class IntermediatePlan:
    """What feature and attention distillation compare, resolved against both models.

    pairs: (student block, teacher block) matches (:mod:`chronos_distill.layer_map`); features: whether hidden
    states are distilled; attention_kinds: ``()``, ``("time",)``, ``("group",)`` or both.
    """

    pairs: tuple[tuple[int, int], ...]
    features: bool = False
    attention_kinds: tuple[str, ...] = ()
    feature_loss: str = "mse"
    feature_projection: str = "linear"
    attention_loss: str = "kl"
    relation_heads: int | None = None

    @property
    def active(self) -> bool:
        return self.features or bool(self.attention_kinds)

    def needs(self, side: str) -> Needs:
        """The hidden states and attention projections this plan compares on ``side`` (student or teacher)."""
        index = {"student": 0, "teacher": 1}[side]
        blocks = tuple(pair[index] for pair in self.pairs) if self.features else ()
        return Needs(blocks, tuple((kind, pair[index]) for kind in self.attention_kinds for pair in self.pairs))


def projection_key(student_block: int, teacher_block: int) -> str:
    return f"student{student_block}_to_teacher{teacher_block}"


@dataclass
class StudentPass:
    """One student forward pass: quantiles (batch, quantiles, horizon) in normalised space, projected hidden
    states per matched pair (batch, tokens, teacher d_model), and what the hooks recorded."""

    quantiles: torch.Tensor
    features: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    tapped: Tapped = field(default_factory=Tapped)


class DistillationModel(nn.Module):
    """Student ``Chronos2Model`` + training-only projections (student d_model -> teacher d_model).

    Parameters
    ----------
    student
        The student being trained; exported alone.
    teacher_config
        The teacher's config (its d_model sizes the projections).
    plan
        Feature / attention distillation plan; ``None`` for output distillation only.
    """

    def __init__(self, student: Chronos2Model, teacher_config: Chronos2CoreConfig, plan: IntermediatePlan | None = None,
                 needs: Needs | None = None):
        super().__init__()
        self.student = student
        self.plan = plan
        # the student-side taps the objective needs (default: the plan's, for use without an objective)
        self.needs = needs if needs is not None else (plan.needs("student") if plan is not None else Needs())
        self.projections: nn.ModuleDict | None = None
        if plan is not None and plan.features:
            self.projections = nn.ModuleDict(
                {
                    projection_key(s, t): FeatureProjection(
                        student.config.d_model, teacher_config.d_model, normalise=plan.feature_projection == "linear_norm"
                    )
                    for s, t in plan.pairs
                }
            )

    @torch.no_grad()
    def init_projections_from_channels(self, channels: torch.Tensor) -> None:
        """Start every projection as the embedding of a pruned student's kept channels back into the teacher's
        width (student channel j -> teacher channel channels[j]), so the feature loss starts from the pruning
        residual instead of from noise."""
        if self.projections is None:
            return
        for projection in self.projections.values():
            weight = projection.linear.weight  # (teacher width, student width)
            weight.copy_(channel_embedding(channels, weight.shape[0]))

    def forward(
        self,
        context: torch.Tensor,
        group_ids: torch.Tensor | None = None,
        future_covariates: torch.Tensor | None = None,
        num_output_patches: int = 1,
    ) -> StudentPass:
        """context (batch, context_length); group_ids (batch,); future_covariates (batch, H) or None."""
        batch = {"context": context, "group_ids": group_ids, "future_covariates": future_covariates,
                 "num_output_patches": num_output_patches}
        with tap(self.student, self.needs.blocks, self.needs.attention) as tapped:
            quantiles = normalised_quantiles(self.student, batch)
        features = {}
        if self.projections is not None:
            for s, t in self.plan.pairs:
                features[(s, t)] = self.projections[projection_key(s, t)](tapped.hidden[s])
        return StudentPass(quantiles=quantiles, features=features, tapped=tapped)


def plan_from_config(cfg, teacher_config: Chronos2CoreConfig, student_config: Chronos2CoreConfig) -> IntermediatePlan | None:
    """The :class:`IntermediatePlan` of a :class:`~chronos_distill.config.DistillConfig`, checked against both
    models (layer map within both depths, tokens aligned, relation heads dividing both attention widths);
    ``None`` when feature_weight and attention_weight are both 0."""
    features = cfg.feature_weight > 0
    kinds = cfg.attention_kinds()
    if not features and not kinds:
        return None
    check_token_alignment(teacher_config, student_config)
    pairs = resolve_layer_map(cfg.layer_map, student_config.num_layers, teacher_config.num_layers)
    relation_heads = None
    if kinds and cfg.attention_loss == "relation":
        widths = (student_config.num_heads * student_config.d_kv, teacher_config.num_heads * teacher_config.d_kv)
        relation_heads = cfg.relation_heads or default_relation_heads(
            *widths, student_config.num_heads, teacher_config.num_heads
        )
        if any(w % relation_heads for w in widths):
            raise ConfigError(
                f"relation_heads {relation_heads} must divide both attention widths (student {widths[0]}, "
                f"teacher {widths[1]})"
            )
    return IntermediatePlan(
        pairs=tuple(pairs),
        features=features,
        attention_kinds=kinds,
        feature_loss=cfg.feature_loss,
        feature_projection=cfg.feature_projection,
        attention_loss=cfg.attention_loss,
        relation_heads=relation_heads,
    )
