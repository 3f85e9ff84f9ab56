"""Feature distillation across the d_model gap: student hidden states, projected to the teacher's width.

The design note's improvement 1: a learned projection (student d_model -> teacher d_model) per matched block
pair, then a distance to the teacher's hidden state at the same token. The projections are trained with the
student, saved in training checkpoints and never exported; the feature term of :mod:`chronos_distill.distillation.objective` owns them.
"""

from __future__ import annotations

import torch
from chronos.chronos2.layers import Chronos2LayerNorm
from torch import nn
from torch.nn import functional as F

from chronos_distill.chronos2.pruning import channel_embedding
from chronos_distill.config import FEATURE_LOSSES, FEATURE_PROJECTIONS  # noqa: F401  (the option choices)


class FeatureProjection(nn.Module):
    """Map student hidden states (..., student_width) to the teacher's width (..., teacher_width).

    ``normalise=True`` (``feature_projection: linear_norm``) ends the map with an RMS norm with a learned gain,
    Chronos-2's own normalisation, and the loss then compares with the teacher's hidden state RMS-normalised
    the same way (:func:`teacher_side`): the loss sees directions, not the residual stream's growing scale.
    """

    def __init__(self, student_width: int, teacher_width: int, normalise: bool = False):
        super().__init__()
        self.linear = nn.Linear(student_width, teacher_width, bias=False)
        self.norm = Chronos2LayerNorm(teacher_width) if normalise else None

    @property
    def normalise(self) -> bool:
        return self.norm is not None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        projected = self.linear(hidden)
        return self.norm(projected) if self.norm is not None else projected

    def teacher_side(self, hidden: torch.Tensor) -> torch.Tensor:
        """The teacher hidden state in the space the projection maps into (RMS-normalised for linear_norm)."""
        if self.norm is None:
            return hidden
        return hidden * torch.rsqrt(hidden.float().pow(2).mean(-1, keepdim=True) + 1e-6).to(hidden.dtype)


def projection_key(student_block: int, teacher_block: int) -> str:
    return f"student{student_block}_to_teacher{teacher_block}"


class FeatureProjections(nn.ModuleDict):
    """The feature term's projections, one :class:`FeatureProjection` per matched (student, teacher) block pair,
    keyed by :func:`projection_key`."""

    def __init__(self, pairs, student_width: int, teacher_width: int, normalise: bool = False):
        super().__init__({projection_key(s, t): FeatureProjection(student_width, teacher_width, normalise)
                          for s, t in pairs})

    @torch.no_grad()
    def init_from_channels(self, channels: torch.Tensor) -> None:
        """Start every projection as the embedding of a pruned student's kept channels back into the teacher's
        width (student channel j -> teacher channel channels[j]), so the feature loss starts from the pruning
        residual instead of from noise."""
        for projection in self.values():
            weight = projection.linear.weight  # (teacher width, student width)
            weight.copy_(channel_embedding(channels, weight.shape[0]))


def feature_loss(projected: torch.Tensor, teacher: torch.Tensor, token_mask: torch.Tensor, kind: str) -> torch.Tensor:
    """Distance between projected student and teacher hidden states, averaged over real tokens.

    projected, teacher: (batch, tokens, teacher_width); token_mask: (batch, tokens), 1 for real tokens and 0 for
    padding patches (which the model's attention ignores, so their states carry no knowledge).
    ``mse``: mean squared difference per token (mean over channels); ``cosine``: 1 - cosine similarity.
    """
    if projected.shape != teacher.shape:
        raise ValueError(f"projected student states {tuple(projected.shape)} and teacher states {tuple(teacher.shape)} differ")
    if token_mask.shape != projected.shape[:2]:
        raise ValueError(f"token mask {tuple(token_mask.shape)} does not cover states {tuple(projected.shape)}")
    projected, teacher = projected.float(), teacher.float()
    if kind == "mse":
        per_token = (projected - teacher).pow(2).mean(-1)
    elif kind == "cosine":
        per_token = 1.0 - F.cosine_similarity(projected, teacher, dim=-1, eps=1e-8)
    else:
        raise ValueError(f"unknown feature loss {kind!r}; expected one of {FEATURE_LOSSES}")
    weight = token_mask.to(per_token.dtype)
    return (per_token * weight).sum() / weight.sum().clamp_min(1.0)
