"""The plan of intermediate-layer distillation: which student block learns from which teacher block, what each
side's forward pass must record for it (:class:`Needs`), and what a student pass returns (:class:`StudentPass`).

The objective (which terms need what) and the trained model (which projections exist) both read it; it reads
neither of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from chronos.chronos2.config import Chronos2CoreConfig

from chronos_distill.chronos2.layer_map import resolve_layer_map
from chronos_distill.chronos2.taps import Tapped, check_token_alignment
from chronos_distill.distillation.losses.attention import default_relation_heads
from chronos_distill.errors import ConfigError


@dataclass(frozen=True)
class Needs:
    """What a term reads from one model's forward pass besides its quantiles: the hidden state after these
    ``blocks``, and the q/k/v projections of these ``(kind, block)`` attentions (kind ``time`` or ``group``)."""

    blocks: tuple[int, ...] = ()
    attention: tuple[tuple[str, int], ...] = ()

    def __or__(self, other: Needs) -> Needs:
        return Needs(tuple(dict.fromkeys(self.blocks + other.blocks)),
                     tuple(dict.fromkeys(self.attention + other.attention)))


@dataclass(frozen=True)
class IntermediatePlan:
    """What feature and attention distillation compare, resolved against both models.

    pairs: (student block, teacher block) matches (:mod:`chronos_distill.chronos2.layer_map`); features: whether hidden
    states are distilled; attention_kinds: ``()``, ``("time",)``, ``("group",)`` or both.
    """

    pairs: tuple[tuple[int, int], ...]
    features: bool = False
    attention_kinds: tuple[str, ...] = ()
    feature_loss: str = "mse"
    feature_projection: str = "linear"
    attention_loss: str = "kl"
    relation_heads: int | None = None


@dataclass
class StudentPass:
    """One student forward pass: quantiles (batch, quantiles, horizon) in normalised space, and what the hooks
    recorded (hidden states and attention projections of the blocks the objective needs)."""

    quantiles: torch.Tensor
    tapped: Tapped = field(default_factory=Tapped)


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
