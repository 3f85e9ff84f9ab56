"""Loss families of chronos-distill, one module each."""

from .attention import ATTENTION_LOSSES, attention_loss, default_relation_heads, row_kl
from .feature import FEATURE_LOSSES, FEATURE_PROJECTIONS, FeatureProjection, feature_loss
from .normalised import NormalisedTruth, normalise_truth
from .output import OutputDistillationLoss, align_quantiles, masked_mse, pinball_loss, quantile_distance

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
