"""Output distillation: the student's forecast against the teacher's and against the truth.

All tensors are in the normalised space (see :mod:`.normalised`). Every loss here reduces like
``Chronos2Model._compute_loss``: masked positions are zeroed, then mean over the horizon, sum over quantile
levels, mean over the batch. The hard quantile loss is therefore exactly Chronos-2's own training loss, and
``alpha`` mixes terms of the same scale.

Two modes (``output_loss``):

``quantile``
    distill = sum over levels of mean |student_q - teacher_q|. Summed over a quantile grid, the absolute
    differences of two quantile functions estimate the 1-Wasserstein distance between the two predictive
    distributions, so the student learns the teacher's whole distribution, not only its centre.
    hard = Chronos-2's quantile (pinball) loss on the truth.
``median_mse``
    The design note's: distill = MSE(student median, teacher median), hard = MSE(student median, truth).

How the two are weighted (``alpha``) is decided in one place, :mod:`chronos_distill.distillation.objective`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from chronos.utils import interpolate_quantiles
from einops import rearrange
from torch import nn

from chronos_distill.config import HORIZON_WEIGHTINGS
from chronos_distill.distillation.losses.normalised import NormalisedTruth


def _reduce(per_position: torch.Tensor) -> torch.Tensor:
    """Chronos-2's reduction of a masked (batch, quantile, horizon) or (batch, horizon) loss."""
    loss = per_position.mean(dim=-1)
    if loss.ndim == 2:
        loss = loss.sum(dim=-1)
    return loss.mean()


def pinball_loss(pred: torch.Tensor, truth: NormalisedTruth, levels: torch.Tensor) -> torch.Tensor:
    """Chronos-2's quantile loss.

    pred: (batch, num_quantiles, horizon); levels: (num_quantiles,). Returns a scalar.
    """
    target = truth.values.unsqueeze(1)
    levels = rearrange(levels.to(pred), "q -> 1 q 1")
    loss = 2 * torch.abs((target - pred) * ((target <= pred).to(pred.dtype) - levels))
    return _reduce(loss * truth.mask.unsqueeze(1))


def quantile_distance(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over levels of the masked mean |student - teacher|; both (batch, num_quantiles, horizon)."""
    return _reduce(torch.abs(student - teacher) * mask.unsqueeze(1))


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean squared error of (batch, horizon) tensors."""
    return _reduce(torch.square(pred - target) * mask)


def align_quantiles(values: torch.Tensor, levels: Sequence[float], target_levels: Sequence[float]) -> torch.Tensor:
    """Re-express (batch, len(levels), horizon) quantiles at ``target_levels`` by linear interpolation.

    Returns ``values`` itself when the two level sets are equal. Levels outside the range of ``levels``
    would be extrapolated flat, which invents tails, so they are refused.
    """
    if list(levels) == list(target_levels):
        return values
    if min(target_levels) < min(levels) or max(target_levels) > max(levels):
        raise ValueError(
            f"quantile levels {list(target_levels)} reach outside the teacher's range "
            f"[{min(levels)}, {max(levels)}]; they cannot be interpolated"
        )
    moved = interpolate_quantiles(
        query_quantile_levels=list(target_levels),
        original_quantile_levels=list(levels),
        original_values=rearrange(values, "b q h -> b h q"),
    )
    return rearrange(moved, "b h q -> b q h").to(values.dtype)


def horizon_weights(kind: str, tau: float, length: int, horizon: int) -> torch.Tensor | None:
    """Per-position weights (horizon,) of the distillation term, or None for uniform ones.

    ``exp`` (DistilTS): ``w_h`` proportional to ``exp((h + 1) / (tau * length))`` for the ``length`` requested
    steps, normalised to mean 1 over them, so that late, harder steps are not drowned out by the easy early
    ones while the term keeps its scale; a smaller ``tau`` tilts more (``tau`` 1: the last step weighs e times
    the first, ``tau`` 0.5: e^2). Positions past ``length`` (padding to whole patches) get 0.
    """
    if kind == "none":
        return None
    if kind != "exp":
        raise ValueError(f"unknown horizon weighting {kind!r}; expected one of {HORIZON_WEIGHTINGS}")
    steps = torch.arange(1, length + 1, dtype=torch.float32)
    weights = torch.exp(steps / (tau * length))
    return nn.functional.pad(weights / weights.mean(), (0, horizon - length))


class OutputDistillationLoss:
    """The output family for one ``output_loss`` mode: ``distill`` (student vs teacher) and ``hard`` (student vs
    truth). How they are weighted is the objective's business (:mod:`chronos_distill.distillation.objective`).

    Parameters
    ----------
    mode
        ``"quantile"`` or ``"median_mse"``.
    student_levels, teacher_levels
        Quantile levels of the two models; the teacher's predictions are interpolated onto the student's.
    """

    def __init__(self, mode: str, student_levels: Sequence[float], teacher_levels: Sequence[float]):
        if mode not in ("quantile", "median_mse"):
            raise ValueError(f"unknown output loss {mode!r}")
        self.mode = mode
        self.student_levels = [float(q) for q in student_levels]
        self.teacher_levels = [float(q) for q in teacher_levels]
        self._levels = torch.tensor(self.student_levels)
        if mode == "median_mse":  # the options guarantee the 0.5 level (DistillConfig checks it)
            self._median = self.student_levels.index(0.5)

    def align(self, teacher: torch.Tensor) -> torch.Tensor:
        """Teacher quantiles (batch, num_teacher_quantiles, horizon) at the student's levels, detached."""
        if teacher.shape[1] != len(self.teacher_levels):
            raise ValueError(f"got {teacher.shape[1]} teacher quantiles, expected {len(self.teacher_levels)}")
        return align_quantiles(teacher.detach(), self.teacher_levels, self.student_levels)

    def distill(self, student: torch.Tensor, teacher_aligned: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Student (batch, q_s, horizon) against the aligned teacher (batch, q_s, horizon) where ``mask`` (batch,
        horizon) counts: sum over levels of mean |difference|, or the MSE of the medians."""
        if student.shape != teacher_aligned.shape:
            raise ValueError(
                f"student predictions {tuple(student.shape)} and teacher predictions {tuple(teacher_aligned.shape)} "
                "do not cover the same series, levels and horizon"
            )
        self._check_student(student)
        if self.mode == "quantile":
            return quantile_distance(student, teacher_aligned, mask)
        return masked_mse(student[:, self._median], teacher_aligned[:, self._median], mask)

    def hard(self, student: torch.Tensor, truth: NormalisedTruth) -> torch.Tensor:
        """Student (batch, q_s, horizon) against the truth: Chronos-2's quantile loss, or the median's MSE."""
        if truth.values.shape != (student.shape[0], student.shape[-1]):
            raise ValueError(
                f"truth has shape {tuple(truth.values.shape)}, predictions cover {(student.shape[0], student.shape[-1])}"
            )
        self._check_student(student)
        if self.mode == "quantile":
            return pinball_loss(student, truth, self._levels)
        return masked_mse(student[:, self._median], truth.values, truth.mask)

    def __call__(
        self, student: torch.Tensor, teacher: torch.Tensor, truth: NormalisedTruth,
        distill_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``{"distill", "hard"}`` for one batch; ``distill_mask`` defaults to where the truth counts."""
        hard = self.hard(student, truth)  # (checks the truth's shape first)
        aligned = self.align(teacher)
        return {"distill": self.distill(student, aligned, truth.mask if distill_mask is None else distill_mask),
                "hard": hard}

    def _check_student(self, student: torch.Tensor) -> None:
        if student.shape[1] != len(self.student_levels):
            raise ValueError(f"got {student.shape[1]} student quantiles, expected {len(self.student_levels)}")
