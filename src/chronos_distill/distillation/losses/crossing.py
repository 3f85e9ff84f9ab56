"""Quantile crossing: a penalty on a student whose quantiles cross (a higher level below a lower one), which the
teacher's never do and which a user of ``predict_df`` sees as quantiles out of order.

The exported model stays a plain ``Chronos2Model``: the penalty only shapes training (Chronos-2 sorts nothing at
inference, so the order has to be learnt).
"""

from __future__ import annotations

import torch


def crossing_penalty(quantiles: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean amount by which each quantile falls below the one under it, summed over the level pairs.

    ``quantiles``: (batch, levels, horizon) at increasing levels, in the teacher's normalised space; ``mask``:
    (batch, horizon) weights of the compared steps (Chronos-2's future mask, as the distillation term's). Zero on
    sorted quantiles, positive as soon as one pair crosses; reduced as Chronos-2 reduces its loss (mean over the
    horizon, sum over the pairs, mean over the batch)."""
    gaps = torch.relu(quantiles[:, :-1, :] - quantiles[:, 1:, :])  # (batch, levels - 1, horizon)
    return (gaps * mask[:, None, :]).mean(dim=-1).sum(dim=-1).mean()
