"""The mix of synthetic (and real) forecasting tasks that pretraining draws from, and that distillation can draw
teacher-labelled rows from (the ``general`` transfer source): one task is a group of variates (targets first, known
covariates last) from a generator picked by the mix's weights.

- ``real_weight``: a whole real series (M1/M3 training portions);
- ``multivariate_weight``: a synthetic group with lead-lag dependence and known covariates;
- ``seasonal_weight``: a seasonal series of any period (teacher v2's ``focus_periods``, ``few_cycles_share``
  and ``multiplicative_share`` weigh its weak spots);
- ``intermittent_weight``: counts with a seasonal rate;
- the rest: KernelSynth crops from a bank, trend + seasonality, AR, TSMixup.

Every draw comes from the ``numpy.random.Generator`` passed in, so a stream seeded once is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chronos_distill.data.synthetic import (
    ar_process,
    intermittent_series,
    multivariate_group,
    seasonal_period,
    seasonal_series,
    trend_seasonality,
    ts_mixup,
)

#: Main periods of the few-cycles seasonal tasks: 2-4 cycles of a shorter period fit in one or two patches.
FEW_CYCLES_PERIODS = (7, 9, 10, 11, 12, 13, 14, 24, 30, 48, 52)
FEW_CYCLES_MIN_PERIOD = 7


@dataclass(frozen=True)
class MixOptions:
    """The weights of a task mix (the fields ``PretrainConfig`` has under the same names). The defaults are the
    synthetic part of teacher v2's mix: no real series."""

    real_weight: float = 0.0
    multivariate_weight: float = 0.15
    seasonal_weight: float = 0.5
    intermittent_weight: float = 0.05
    focus_periods: list[int] = field(default_factory=lambda: [7, 12, 24])
    focus_share: float = 0.4
    few_cycles_share: float = 0.25
    multiplicative_share: float | None = 0.4
    context_length: int = 512


class TaskMix:
    """Draws tasks from the mix of ``cfg`` (a :class:`MixOptions`, or a ``PretrainConfig``) and ``real`` series."""

    def __init__(self, cfg: Any, real: list[np.ndarray]):
        self.cfg = cfg
        self.real = real

    def task(self, rng: np.random.Generator, bank: list[np.ndarray], horizon: int,
             context_length: int | None = None) -> tuple[np.ndarray, int, int]:
        """One task: values (n_variates, length), its number of targets and of known covariates (last rows);
        its context reaches at most ``context_length`` (by default the config's)."""
        context_length = context_length or self.cfg.context_length
        u = rng.random()
        if u < self.cfg.real_weight and self.real:
            return self.real[rng.integers(len(self.real))][None, :], 1, 0
        length = int(rng.integers(min(48, context_length), context_length + horizon + 1))
        u -= self.cfg.real_weight
        if u < self.cfg.multivariate_weight:
            group = multivariate_group(rng, length)
            return self._augment(rng, group.values), group.n_targets, group.n_known_covariates
        u -= self.cfg.multivariate_weight
        if u < self.cfg.seasonal_weight:
            return self._augment(rng, self.seasonal_task(rng, length, horizon, context_length)[None, :]), 1, 0
        u -= self.cfg.seasonal_weight
        if u < self.cfg.intermittent_weight:  # counts keep their scale and zeros: no standardising augmentation
            return intermittent_series(rng, length)[None, :], 1, 0
        kind = rng.choice(["kernel", "trend", "ar", "mixup"], p=[0.35, 0.25, 0.1, 0.3])
        if kind == "kernel":
            series = bank[rng.integers(len(bank))]
            series = series[-length:] if length <= len(series) else series
        elif kind == "trend":
            series = trend_seasonality(rng, length)
        elif kind == "ar":
            series = ar_process(rng, length)
        else:
            pool = [bank[rng.integers(len(bank))] for _ in range(3)] + [trend_seasonality(rng, length), ar_process(rng, length)]
            if self.cfg.seasonal_weight > 0:  # (with 0, v0's stream exactly)
                pool.append(seasonal_series(rng, length))
            series = ts_mixup(rng, pool, length)
        return self._augment(rng, series[None, :]), 1, 0

    def seasonal_task(self, rng: np.random.Generator, length: int, horizon: int, context_length: int) -> np.ndarray:
        """A seasonal series (length',): v1's draw, or v2's weak spots when their shares are set.

        - ``focus_share``: the main period is one of ``focus_periods`` (at a random phase, as every cycle);
        - ``few_cycles_share``: the context holds only 2-4 cycles of a main period of 7 or more;
        - ``multiplicative_share``: the chance of a multiplicative season on a growing or decaying level.
        With all three left at their defaults no extra random number is drawn, so v1's stream is unchanged.
        """
        cfg = self.cfg
        periods = None
        if cfg.focus_share and rng.random() < cfg.focus_share:
            periods = (int(rng.choice(cfg.focus_periods)),)
            if rng.random() < 0.3:  # sometimes with a second, weaker seasonality
                periods += (seasonal_period(rng),)
        if cfg.few_cycles_share and rng.random() < cfg.few_cycles_share:
            if periods is None or periods[0] < FEW_CYCLES_MIN_PERIOD:
                periods = (int(rng.choice(FEW_CYCLES_PERIODS)),)
            cycles = rng.uniform(2, 4)
            length = min(int(cycles * periods[0]), context_length) + horizon
        multiplicative = None
        if cfg.multiplicative_share is not None:
            multiplicative = bool(rng.random() < cfg.multiplicative_share)
        return seasonal_series(rng, length, periods=periods, multiplicative=multiplicative)

    @staticmethod
    def _augment(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
        """Random level, scale, occasional non-negativity and missing stretches (NaN) in the history."""
        values = values - np.nanmean(values, axis=1, keepdims=True)
        std = np.nanstd(values, axis=1, keepdims=True)
        values = values / np.where(std > 0, std, 1.0)
        values = values + rng.normal(0, 2, size=(len(values), 1))
        if rng.random() < 0.2:
            values = np.clip(values, 0, None)
        values = values * 10 ** rng.uniform(-1, 4, size=(len(values), 1))
        if rng.random() < 0.1:
            start = rng.integers(0, values.shape[1])
            values[:, start : start + rng.integers(1, 20)] = np.nan
        return values

    def split(self, rng: np.random.Generator, values: np.ndarray, horizon: int,
              context_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cut a task into context (<= ``context_length``, by default the config's) and a future of exactly
        ``horizon`` (NaN-padded)."""
        context_length = context_length or self.cfg.context_length
        length = values.shape[1]
        min_context = max(1, min(16, length // 2))
        longest = min(horizon, length - min_context)
        future_length = longest if rng.random() < 0.8 else int(rng.integers(1, longest + 1))
        cut = length - future_length
        context = values[:, max(0, cut - context_length) : cut]
        future = np.full((len(values), horizon), np.nan)
        future[:, :future_length] = values[:, cut : cut + future_length]
        return context, future
