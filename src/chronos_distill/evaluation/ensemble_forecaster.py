"""An ensemble of teachers scored directly: ``chronos-distill evaluate --ensemble A,B --ensemble-weights w1,w2``.

The combination is the distillation target's (:mod:`chronos_distill.distillation.ensemble`): every member's
quantiles at the requested levels, sorted across levels, brought into the first teacher's normalised space (the
arcsinh of the context-standardised values, with the first teacher's statistics of each series' context),
averaged level by level with the weights, and mapped back to the data's units. So a student can be compared
with exactly the forecast it was distilled towards.

Members are Chronos-2 checkpoints (any ``--model`` source) or ``statsforecast:<model>``; a statistical member
uses each data set's season length.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from chronos.chronos2 import Chronos2Pipeline

from chronos_distill.config import STATISTICAL_PREFIX
from chronos_distill.deploy.onnx_forecaster import load_forecaster
from chronos_distill.distillation.ensemble import quantile_average
from chronos_distill.distillation.statistical_teacher import StatisticalTeacher
from chronos_distill.errors import ConfigError


class EnsembleForecaster:
    """Weighted quantile average of several forecasters (see the module doc)."""

    def __init__(self, members: Sequence[tuple[str, Any]], weights: Sequence[float] | None = None):
        if not members or not isinstance(members[0][1], Chronos2Pipeline):
            raise ConfigError("--ensemble: the first member must be a Chronos-2 checkpoint (its normalisation is the "
                              "common space)")
        weights = list(weights) if weights is not None else [1.0] * len(members)
        if len(weights) != len(members) or any(w < 0 for w in weights) or sum(weights) == 0:
            raise ConfigError(f"--ensemble-weights: {len(members)} weights at least 0, not all 0, expected; got {weights}")
        kept = [(m, w) for m, w in zip(members, weights) if w > 0]
        self.members = [m for m, _ in kept]
        self.weights = [w / sum(w for _, w in kept) for _, w in kept]
        first = members[0][1].model
        self.instance_norm, self.context_length = first.instance_norm, first.chronos_config.context_length
        self.season_length = 1

    @classmethod
    def from_names(cls, names: Sequence[str], weights: Sequence[float] | None = None,
                   device: str | None = None) -> "EnsembleForecaster":
        members = []
        for name in names:
            if name.startswith(STATISTICAL_PREFIX):
                members.append((name, StatisticalTeacher(name[len(STATISTICAL_PREFIX):], 1, [0.5])))
            else:
                members.append((name, load_forecaster(name, device)))
        return cls(members, weights)

    def with_season(self, season_length: int) -> "EnsembleForecaster":
        """Statistical members use ``season_length`` (each data set's)."""
        self.season_length = season_length
        return self

    @torch.no_grad()
    def predict_quantiles(self, inputs: Sequence[torch.Tensor], prediction_length: int,
                          quantile_levels: Sequence[float], batch_size: int = 256, **_: Any):
        """``(quantiles, means)`` like ``Chronos2Pipeline.predict_quantiles`` for univariate series: one tensor
        (1, prediction_length, len(levels)) per series; ``means`` is the combined median."""
        levels = list(quantile_levels)
        per_member = []
        for _, forecaster in self.members:
            if isinstance(forecaster, StatisticalTeacher):
                forecaster.season_length, forecaster.levels = self.season_length, levels
                rows = [forecaster.raw_quantiles(torch.as_tensor(c, dtype=torch.float32)[None], prediction_length)
                        .permute(0, 2, 1) for c in inputs]  # (1, h, q)
            else:
                rows, _ = forecaster.predict_quantiles(list(inputs), prediction_length=prediction_length,
                                                       quantile_levels=levels, batch_size=batch_size)
            per_member.append(rows)
        combined = []
        for i, context in enumerate(inputs):
            context = torch.as_tensor(context, dtype=torch.float32).reshape(1, -1)[..., -self.context_length:]
            _, loc_scale = self.instance_norm(context)
            # each member's (1, h, q) in the first teacher's normalised space (a monotone map: sorting commutes)
            normalised = [self.instance_norm(rows[i].float().reshape(1, -1), loc_scale)[0].reshape(rows[i].shape)
                          for rows in per_member]
            total = quantile_average(normalised, self.weights, dim=-1)
            combined.append(self.instance_norm.inverse(total.reshape(1, -1), loc_scale)
                            .reshape(1, prediction_length, len(levels)))
        median = levels.index(0.5) if 0.5 in levels else len(levels) // 2
        return combined, [c[..., median] for c in combined]
