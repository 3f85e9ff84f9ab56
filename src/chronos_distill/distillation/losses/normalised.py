"""The truth in the teacher's normalised space, with the mask Chronos-2's own loss uses.

Chronos-2 standardises each series by the mean and standard deviation of its (truncated) context and
applies arcsinh. Comparing forecasts there instead of in raw units keeps a series in the millions from
drowning a series in the tens. The statistics are computed once per batch, from the context, by the
teacher's own ``InstanceNorm`` module; teacher and student share the patching and normalisation config, so
this is the space both models predict in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class NormalisedTruth:
    """Truth and loss mask over the model's output horizon.

    values: (batch, horizon) normalised truth, 0 wherever ``mask`` is 0.
    mask: (batch, horizon) float; 1 where a position counts in the loss.
    """

    values: torch.Tensor
    mask: torch.Tensor


def normalise_truth(
    instance_norm: nn.Module,
    context: torch.Tensor,
    context_length: int,
    future_target: torch.Tensor,
    future_covariates: torch.Tensor | None,
    horizon: int,
) -> NormalisedTruth:
    """Normalise ``future_target`` with the context's statistics and build Chronos-2's loss mask.

    Parameters
    ----------
    instance_norm
        The model's ``InstanceNorm`` (``model.instance_norm``).
    context
        (batch, time) raw context, NaN where missing; truncated to ``context_length`` as the model does.
    future_target
        (batch, H) raw truth; NaN for missing values and for covariate rows.
    future_covariates
        (batch, H) known future covariate values, NaN where unknown (targets, past-only covariates).
    horizon
        Length the model predicts, ``num_output_patches * output_patch_size`` (>= H).

    Returns
    -------
    The truth padded to ``horizon`` and its mask: a position counts when the truth is observed and the row
    is not a known covariate there (Chronos2Model._compute_loss), and padding beyond H never counts.
    """
    length = future_target.shape[-1]
    if length > horizon:
        raise ValueError(
            f"future_target has {length} steps but the model predicts only {horizon}: "
            "num_output_patches is too small for this batch"
        )
    _, loc_scale = instance_norm(context[..., -context_length:])
    values, _ = instance_norm(future_target, loc_scale)
    mask = ~torch.isnan(future_target)
    if future_covariates is not None:
        if future_covariates.shape != future_target.shape:
            raise ValueError(
                f"future_covariates has shape {tuple(future_covariates.shape)}, "
                f"future_target {tuple(future_target.shape)}: they must match"
            )
        mask &= torch.isnan(future_covariates)
    values = torch.where(mask, values, torch.zeros_like(values))
    pad = horizon - length
    if pad:
        values = nn.functional.pad(values, (0, pad))
        mask = nn.functional.pad(mask, (0, pad))
    return NormalisedTruth(values=values, mask=mask.to(values.dtype))


def distillation_mask(truth_mask: torch.Tensor, teacher_rows: torch.Tensor | None, length: int) -> torch.Tensor:
    """Where the student is compared with the teacher: (batch, horizon) float.

    Labelled rows count where their truth counts (``truth_mask``), as before; a teacher-only row
    (``teacher_rows`` (batch,) bool: no truth, e.g. a window beyond the end of the data) counts over its
    whole requested horizon, the first ``length`` positions. Padding beyond ``length`` never counts.
    """
    if teacher_rows is None:
        return truth_mask
    within = torch.zeros_like(truth_mask)
    within[:, :length] = 1
    return torch.where(teacher_rows.to(truth_mask.device)[:, None], within, truth_mask)
