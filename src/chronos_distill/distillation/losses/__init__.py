"""Loss families of chronos-distill, one module each."""

from chronos_distill.config import ATTENTION_LOSSES, FEATURE_LOSSES, FEATURE_PROJECTIONS
from chronos_distill.distillation.losses.attention import attention_loss, default_relation_heads, row_kl
from chronos_distill.distillation.losses.feature import FeatureProjection, feature_loss
from chronos_distill.distillation.losses.normalised import NormalisedTruth, normalise_truth
from chronos_distill.distillation.losses.output import (
    OutputDistillationLoss,
    align_quantiles,
    masked_mse,
    pinball_loss,
    quantile_distance,
)

__all__ = [
    "ATTENTION_LOSSES",
    "FEATURE_LOSSES",
    "FEATURE_PROJECTIONS",
    "FeatureProjection",
    "NormalisedTruth",
    "OutputDistillationLoss",
    "align_quantiles",
    "attention_loss",
    "default_relation_heads",
    "feature_loss",
    "masked_mse",
    "normalise_truth",
    "pinball_loss",
    "quantile_distance",
    "row_kl",
]
