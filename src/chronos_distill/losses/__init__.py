"""Loss families of chronos-distill, one module each."""

from .normalised import NormalisedTruth, normalise_truth
from .output import OutputDistillationLoss, align_quantiles, masked_mse, pinball_loss, quantile_distance

__all__ = [
    "NormalisedTruth",
    "OutputDistillationLoss",
    "align_quantiles",
    "masked_mse",
    "normalise_truth",
    "pinball_loss",
    "quantile_distance",
]
