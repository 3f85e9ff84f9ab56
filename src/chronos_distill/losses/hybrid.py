"""The design note's hybrid loss: ``alpha * output + beta * feature + gamma * attention + rest * hard``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss components; the truth (hard) term gets what the others leave, ``1 - a - b - g``.

    ``output`` is ``alpha``, ``feature`` is ``feature_weight`` (beta), ``attention`` is ``attention_weight`` (gamma).
    """

    output: float
    feature: float = 0.0
    attention: float = 0.0

    def __post_init__(self) -> None:
        names = {"output": "alpha", "feature": "feature_weight", "attention": "attention_weight"}
        for field, option in names.items():
            value = getattr(self, field)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"option `{option}` (--{option.replace('_', '-')}) must be within [0, 1], got {value}")
        if self.output + self.feature + self.attention > 1.0 + 1e-9:
            raise ConfigError(
                f"alpha + feature_weight + attention_weight = {self.output + self.feature + self.attention:g} exceeds 1: "
                "the truth (hard) term would get a negative weight"
            )

    @property
    def hard(self) -> float:
        return max(0.0, 1.0 - self.output - self.feature - self.attention)

    def combine(self, components: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted sum of the components present: ``distill`` (output), ``feature``, ``attention``, ``hard``."""
        total = self.output * components["distill"] + self.hard * components["hard"]
        if "feature" in components:
            total = total + self.feature * components["feature"]
        if "attention" in components:
            total = total + self.attention * components["attention"]
        return total
