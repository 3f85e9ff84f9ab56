"""A synthetic seasonality suite: does a model continue seasonal patterns it has never seen?

Each case is a set of seeded series from :func:`chronos_distill.data.synthetic.seasonal_series` with a known
seasonal structure (periods 4, 7, 12, 24 and 52 with noise, two periods at once, a multiplicative season on
a trend, a clean period-12 sine). A model forecasts the last ``horizon`` steps from the ``context`` steps
before; its median is scored by mean absolute error relative to two baselines that need no model:

- the **mean forecast** (the context's mean): a model that ignores the season scores about 1;
- **seasonal naive** (the last cycle repeated, the case's known period): on noisy series a model that
  averages the cycles it has seen beats it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline

from chronos_distill.chronos2.forward import fp32_eval
from chronos_distill.data.synthetic import seasonal_series
from chronos_distill.evaluation.metrics import seasonal_naive


@dataclass(frozen=True)
class SeasonalCase:
    """Series of one seasonal structure; ``season_length`` is what seasonal naive repeats."""

    name: str
    periods: tuple[int, ...]
    season_length: int
    noise_scale: float = 0.3
    multiplicative: bool = False
    trend: bool = False
    amplitudes: tuple[float, ...] | None = None
    sine: bool = False  # a pure sine instead of the generator's random cycle shapes


SUITE = (
    SeasonalCase("period 4", (4,), 4),
    SeasonalCase("period 7", (7,), 7),
    SeasonalCase("period 12", (12,), 12),
    SeasonalCase("period 24", (24,), 24),
    SeasonalCase("period 52", (52,), 52),
    SeasonalCase("periods 7 + 24", (7, 24), 168, amplitudes=(1.0, 1.0)),
    SeasonalCase("multiplicative 12 on a trend", (12,), 12, multiplicative=True, trend=True),
    SeasonalCase("clean sine, period 12", (12,), 12, noise_scale=0.0, sine=True),
)


@dataclass
class SuiteData:
    case: SeasonalCase
    contexts: np.ndarray  # (n_series, context)
    truth: np.ndarray  # (n_series, horizon)
    extra: dict = field(default_factory=dict)


def make_case(case: SeasonalCase, n_series: int = 32, context: int = 512, horizon: int = 64,
              seed: int = 0) -> SuiteData:
    """Seeded series of ``case`` split into contexts and truth (the same for every model scored)."""
    rng = np.random.default_rng([seed, zlib.crc32(case.name.encode())])  # stable across processes
    rows = []
    for _ in range(n_series):
        if case.sine:
            t = np.arange(context + horizon)
            phase = rng.uniform(0, 2 * np.pi)
            rows.append(10 + 5 * sum(np.sin(2 * np.pi * t / p + phase) for p in case.periods))
            continue
        rows.append(seasonal_series(rng, context + horizon, periods=case.periods, amplitudes=case.amplitudes,
                                    multiplicative=case.multiplicative, noise_scale=case.noise_scale,
                                    trend=case.trend, shifts=False, outliers=False))
    values = np.stack(rows)
    return SuiteData(case, values[:, :context], values[:, context:])


@torch.no_grad()
def median_forecast(model: Chronos2Model, contexts: np.ndarray, horizon: int) -> np.ndarray:
    with fp32_eval(model) as fp32:
        quantiles, _ = Chronos2Pipeline(fp32).predict_quantiles(
            [torch.tensor(c, dtype=torch.float32) for c in contexts], prediction_length=horizon, quantile_levels=[0.5]
        )
    return torch.cat(quantiles)[:, :, 0].numpy().astype(np.float64)


def score_case(model: Chronos2Model, data: SuiteData) -> dict[str, float]:
    """MAE of the model's median, of the mean forecast and of seasonal naive, and the model's ratios."""
    horizon = data.truth.shape[1]
    model_mae = float(np.abs(median_forecast(model, data.contexts, horizon) - data.truth).mean())
    mean_mae = float(np.abs(data.contexts.mean(axis=1, keepdims=True) - data.truth).mean())
    naive_mae = float(np.abs(seasonal_naive(data.contexts, horizon, data.case.season_length) - data.truth).mean())
    return {"MAE": model_mae, "mean_MAE": mean_mae, "seasonal_naive_MAE": naive_mae,
            "vs_mean": model_mae / mean_mae, "vs_seasonal_naive": model_mae / naive_mae if naive_mae else float("inf")}


def score_suite(model: Chronos2Model, cases=SUITE, **make_options) -> dict[str, dict[str, float]]:
    """:func:`score_case` for every case of the suite."""
    return {case.name: score_case(model, make_case(case, **make_options)) for case in cases}
