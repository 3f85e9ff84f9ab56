"""Seeded synthetic series: small tables for the demo and tests, and the generators of the pretraining mix.

Generators take a ``numpy.random.Generator`` and return float64 arrays, so a stream seeded once is
reproducible. They are cheap enough to run inside the data pipeline, except Gaussian-process sampling
(a Cholesky factorisation per kernel), which fills a bank once and is then reused through random crops
and TSMixup combinations.

Generators of the pretraining mix (the Chronos papers' recipe where it applies):

- :func:`kernel_synth`: KernelSynth, GP samples from random sums and products of kernels from a bank
  (periodic, RBF, linear, rational quadratic, white noise);
- :func:`trend_seasonality`: piecewise-linear trend, several seasonalities, level shifts, noise;
- :func:`ar_process`: stationary AR(p) with random coefficients;
- :func:`seasonal_series`: seasonality first (the reference teacher v1's addition): 1-3 seasonal patterns
  of any period, from shorter than a patch (2-15) and the calendar ones (4, 7, 12, 24, 52) to long ones,
  sine harmonics or free-form cycle shapes, additive or multiplicative (amplitude grows with the level),
  on trends with change points, with level shifts, outliers and noise;
- :func:`intermittent_series`: count-like and intermittent demand with a seasonal rate;
- :func:`ts_mixup`: TSMixup, a convex combination (Dirichlet weights) of standardised series;
- :func:`multivariate_group`: a group of variates driven by shared latent factors with same-time and
  lead-lag dependence, some of them known covariates that the targets depend on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# ----------------------------------------------------------------------------------------------------------
# small tables for the demo and the tests


def seasonal_long_table(
    n_series: int = 64,
    length: int = 400,
    seed: int = 0,
    freq: str = "h",
    covariate: bool = False,
) -> pd.DataFrame:
    """Long table of seasonal series with trend and noise at very different scales.

    Columns: ``item_id``, ``timestamp``, ``target`` (and ``price``, a known covariate that moves the target,
    when ``covariate``). Scales range over five orders of magnitude, which is what normalised-space losses
    are for.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    frames = []
    for i in range(n_series):
        period = rng.choice([7, 12, 24, 48])
        phase = rng.uniform(0, 2 * np.pi)
        amplitude = rng.uniform(0.5, 2.0)
        trend = rng.normal(0, 0.004) * t
        ar = np.zeros(length)
        noise = rng.normal(0, rng.uniform(0.05, 0.4), length)
        for k in range(1, length):
            ar[k] = 0.6 * ar[k - 1] + noise[k]
        y = amplitude * np.sin(2 * np.pi * t / period + phase) + trend + ar
        frame = {"item_id": f"s{i:03d}", "timestamp": pd.date_range("2024-01-01", periods=length, freq=freq)}
        if covariate:
            price = rng.normal(0, 1, length)
            y = y - 0.8 * price
            frame["price"] = price
        scale = 10 ** rng.uniform(0, 5)
        frame["target"] = (y + 5) * scale
        frames.append(pd.DataFrame(frame))
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------------------------------------
# KernelSynth

#: Periods (in steps) of the periodic kernels, as in KernelSynth: daily, weekly, monthly, yearly cycles of
#: common sampling frequencies, relative to a unit-length time axis of ``length`` steps.
_PERIODS = (4, 6, 7, 12, 14, 24, 28, 30, 48, 52, 60, 96, 168, 336, 365)


def _kernel(rng: np.random.Generator, x: np.ndarray, length: int) -> np.ndarray:
    """One random kernel matrix from the bank, evaluated on ``x`` (length,) in [0, 1]."""
    kind = rng.choice(["periodic", "rbf", "linear", "rq", "white"], p=[0.35, 0.2, 0.15, 0.2, 0.1])
    d = x[:, None] - x[None, :]
    if kind == "periodic":
        period = rng.choice(_PERIODS) / length
        return np.exp(-2 * np.sin(np.pi * np.abs(d) / period) ** 2 / rng.choice([0.5, 1.0, 2.0]) ** 2)
    if kind == "rbf":
        return np.exp(-0.5 * d**2 / rng.choice([0.02, 0.05, 0.1, 0.3, 1.0]) ** 2)
    if kind == "linear":
        c = rng.uniform(-0.5, 1.0)
        return (x[:, None] - c) * (x[None, :] - c) + rng.choice([0.0, 0.1, 1.0])
    if kind == "rq":
        alpha = rng.choice([0.1, 1.0, 10.0])
        return (1 + d**2 / (2 * alpha * rng.choice([0.05, 0.1, 0.5]) ** 2)) ** (-alpha)
    return rng.choice([0.01, 0.1]) * np.eye(len(x))


def kernel_synth(rng: np.random.Generator, length: int = 512, max_kernels: int = 5) -> np.ndarray:
    """A GP sample (length,) whose kernel is a random + / x composition of 1..max_kernels bank kernels."""
    x = np.linspace(0, 1, length)
    kernel = _kernel(rng, x, length)
    for _ in range(rng.integers(0, max_kernels)):
        other = _kernel(rng, x, length)
        kernel = kernel + other if rng.random() < 0.5 else kernel * other
    kernel = kernel + 1e-6 * np.eye(length)
    try:
        factor = np.linalg.cholesky(kernel)
    except np.linalg.LinAlgError:  # numerically indefinite product: fall back on its eigendecomposition
        values, vectors = np.linalg.eigh(kernel)
        factor = vectors * np.sqrt(np.clip(values, 0, None))
    return factor @ rng.standard_normal(length)


# ----------------------------------------------------------------------------------------------------------
# structural generators


def trend_seasonality(rng: np.random.Generator, length: int) -> np.ndarray:
    """Piecewise-linear trend + 1-3 seasonalities (additive or multiplicative) + level shifts + noise."""
    t = np.arange(length, dtype=float)
    knots = np.sort(rng.choice(length, size=rng.integers(0, 4), replace=False))
    slopes = rng.normal(0, 0.01, size=len(knots) + 1)
    trend = np.zeros(length)
    start = 0
    for k, slope in zip([*knots, length], slopes):
        trend[start:k] = (trend[start - 1] if start else 0) + slope * (t[start:k] - start + 1)
        start = k
    season = np.zeros(length)
    for _ in range(rng.integers(1, 4)):
        period = float(rng.choice(_PERIODS[:10]))
        harmonics = rng.integers(1, 4)
        for h in range(1, harmonics + 1):
            season += rng.normal(0, 1 / h) * np.sin(2 * np.pi * h * t / period + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.3:
        shifts = np.zeros(length)
        where = rng.integers(1, length, size=rng.integers(1, 3))
        shifts[where] = rng.normal(0, 2, size=len(where))
        trend += np.cumsum(shifts)
    level = 5 + trend
    y = level * (1 + 0.1 * season) if rng.random() < 0.3 else level + season
    return y + rng.normal(0, rng.uniform(0.02, 0.5), length)


#: Periods of :func:`seasonal_series`: every period shorter than a 16-step patch, the calendar periods
#: (quarterly 4, days of a week 7, months of a year 12, hours of a day 24, weeks of a year 52) and longer ones.
SHORT_PERIODS = tuple(range(2, 16))
CALENDAR_PERIODS = (4, 7, 12, 24, 52)
LONG_PERIODS = (30, 48, 60, 96, 168, 365)


def seasonal_period(rng: np.random.Generator) -> int:
    """A period: 40% shorter than a patch (2-15), 40% calendar, 20% long."""
    u = rng.random()
    pool = SHORT_PERIODS if u < 0.4 else CALENDAR_PERIODS if u < 0.8 else LONG_PERIODS
    return int(rng.choice(pool))


def seasonal_pattern(rng: np.random.Generator, period: int) -> np.ndarray:
    """One cycle (period,) with zero mean and unit standard deviation (a constant cycle stays 0).

    Half are 1-4 sine harmonics; half are free-form shapes (independent values per phase, lightly smoothed
    around the cycle), like weekday or month-of-year effects that no sine describes.
    """
    phase = np.arange(period)
    if period <= 2 or rng.random() < 0.5:
        cycle = np.zeros(period)
        for h in range(1, int(rng.integers(1, 5)) + 1):
            cycle += rng.normal(0, 1 / h) * np.sin(2 * np.pi * h * phase / period + rng.uniform(0, 2 * np.pi))
    else:
        cycle = rng.normal(0, 1, period)
        if period > 4 and rng.random() < 0.5:
            cycle = (np.roll(cycle, 1) + 2 * cycle + np.roll(cycle, -1)) / 4
    cycle = cycle - cycle.mean()
    std = cycle.std()
    return cycle / std if std > 1e-9 else np.zeros(period)


def seasonal_series(
    rng: np.random.Generator,
    length: int,
    *,
    periods: tuple[int, ...] | None = None,
    amplitudes: tuple[float, ...] | None = None,
    multiplicative: bool | None = None,
    noise_scale: float | None = None,
    trend: bool = True,
    shifts: bool = True,
    outliers: bool = True,
) -> np.ndarray:
    """A seasonal series (length,), finite everywhere, whose seasonality dominates its other structure.

    - ``periods``: 1-3 periods from :func:`seasonal_period` unless given; each gets a
      :func:`seasonal_pattern` at a random phase and an amplitude (``amplitudes``, default 0.5-2 for the
      first, 0.2-1 for the others).
    - Level: 10 plus a piecewise-linear trend with 0-2 change points that drifts by about 1.5 seasonal
      amplitudes over the series (``trend``), plus 1-2 level shifts of about one amplitude (20% of series,
      ``shifts``): the season stays the series' main structure.
    - ``multiplicative`` (default: 30% of series): the season scales with the level,
      ``level * (1 + 0.15 * season)``, on a level that grows or decays exponentially (``trend``); otherwise
      ``level + season``.
    - Gaussian noise of ``noise_scale`` times the first amplitude (default 0-0.5), and 1-3 outliers of 3-6 noise
      standard deviations in 15% of series (``outliers``).

    With ``trend=shifts=outliers=False`` and ``noise_scale=0``, ``y[t + p] == y[t]`` for a single period p.
    """
    t = np.arange(length, dtype=float)
    if periods is None:
        periods = tuple(seasonal_period(rng) for _ in range(int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))))
    if amplitudes is None:
        amplitudes = tuple(rng.uniform(0.5, 2.0) if i == 0 else rng.uniform(0.2, 1.0) for i in range(len(periods)))
    season = np.zeros(length)
    for period, amplitude in zip(periods, amplitudes):
        cycle = seasonal_pattern(rng, period)
        season += amplitude * cycle[(np.arange(length) + int(rng.integers(period))) % period]
    level = np.full(length, 10.0)
    if trend:  # a drift of about one seasonal amplitude over the series: the season stays what stands out
        knots = np.sort(rng.choice(np.arange(1, length), size=int(rng.integers(0, 3)), replace=False))
        slopes = rng.normal(0, 1.5 * amplitudes[0] / length, size=len(knots) + 1)
        slope_at = slopes[np.searchsorted(knots, t, side="right")]
        level = level + np.cumsum(slope_at)
    if shifts and rng.random() < 0.2:
        jumps = np.zeros(length)
        where = rng.integers(1, length, size=int(rng.integers(1, 3)))
        jumps[where] = rng.normal(0, amplitudes[0], size=len(where))
        level = level + np.cumsum(jumps)
    if multiplicative is None:
        multiplicative = bool(rng.random() < 0.3)
    if multiplicative:  # growth (or decay) by a factor of up to about e^2 over the series, season in proportion
        growth = np.cumsum(np.full(length, rng.normal(0, 1.0) / length)) if trend else 0.0
        level = 10.0 * np.exp(growth + (level - 10.0) / 10.0)
        y = level * (1 + 0.15 * season)
    else:
        y = level + season
    scale = amplitudes[0] * (rng.uniform(0, 0.5) if noise_scale is None else noise_scale)
    y = y + (rng.normal(0, scale, length) if scale > 0 else 0.0)
    if outliers and rng.random() < 0.15:
        where = rng.integers(0, length, size=int(rng.integers(1, 4)))
        y[where] += rng.choice([-1, 1], len(where)) * rng.uniform(3, 6, len(where)) * max(scale, 0.1 * amplitudes[0])
    return y


def intermittent_series(rng: np.random.Generator, length: int) -> np.ndarray:
    """Counts (length,), non-negative integers as float: demand occurs with a probability per step (0.05-1)
    and its size is Poisson or negative binomial around a seasonal rate (period from
    :func:`seasonal_period`), so both sparse intermittent demand and dense low counts appear."""
    period = seasonal_period(rng)
    rate = rng.uniform(0.5, 20) * np.exp(0.5 * rng.uniform(0, 1) * seasonal_pattern(rng, period)[
        (np.arange(length) + int(rng.integers(period))) % period])
    occurs = rng.random(length) < rng.uniform(0.05, 1.0)
    if rng.random() < 0.5:
        sizes = rng.poisson(rate)
    else:
        dispersion = rng.uniform(0.5, 5)
        sizes = rng.negative_binomial(dispersion, dispersion / (dispersion + rate))
    return (occurs * sizes).astype(float)


def ar_process(rng: np.random.Generator, length: int, max_order: int = 3) -> np.ndarray:
    """A stationary AR(p) sample: roots drawn inside the unit circle, Gaussian innovations."""
    order = int(rng.integers(1, max_order + 1))
    roots = rng.uniform(0.1, 0.97, order) * rng.choice([-1, 1], order)
    coefficients = -np.poly(roots)[1:]  # x_t = sum_k a_k x_{t-k} + e_t
    burn = 50
    noise = rng.standard_normal(length + burn)
    x = np.zeros(length + burn)
    for i in range(order, length + burn):
        x[i] = coefficients @ x[i - order : i][::-1] + noise[i]
    return x[burn:]


def ts_mixup(rng: np.random.Generator, pool: list[np.ndarray], length: int, max_components: int = 3) -> np.ndarray:
    """TSMixup: a Dirichlet-weighted combination of 1..max_components standardised crops from ``pool``."""
    k = int(rng.integers(1, max_components + 1))
    weights = rng.dirichlet(np.full(k, 1.5))
    out = np.zeros(length)
    for w in weights:
        series = pool[rng.integers(len(pool))]
        crop = _crop(rng, series, length)
        out[-len(crop):] += w * _standardise(crop)
    return out


def _crop(rng: np.random.Generator, series: np.ndarray, length: int) -> np.ndarray:
    if len(series) <= length:
        return series
    start = rng.integers(0, len(series) - length + 1)
    return series[start : start + length]


def _standardise(x: np.ndarray) -> np.ndarray:
    scale = np.nanstd(x)
    return (x - np.nanmean(x)) / (scale if scale > 0 else 1.0)


# ----------------------------------------------------------------------------------------------------------
# multivariate groups


@dataclass
class SyntheticGroup:
    """One forecasting task: ``values`` (n_variates, length), targets first, known covariates last."""

    values: np.ndarray
    n_targets: int
    n_known_covariates: int


def multivariate_group(rng: np.random.Generator, length: int, max_variates: int = 5) -> SyntheticGroup:
    """Targets that depend on each other (same time and with lags) and on known covariates.

    Latent factors (seasonal/AR) drive every variate; each target mixes the factors with its own lag and
    noise, and half of the groups have 1-2 known covariates (e.g. price, promotion, temperature) that enter
    the targets linearly with a lag of 0-3 steps. A model that reads the covariates' future values can do
    better than one that only extrapolates the targets, which is what group attention has to learn.
    """
    n_targets = int(rng.integers(1, max_variates))
    n_known = int(rng.integers(1, 3)) if rng.random() < 0.5 else 0
    burn = 8
    total = length + burn
    factors = np.stack([trend_seasonality(rng, total) - 5, ar_process(rng, total)])
    covariates = []
    for _ in range(n_known):
        if rng.random() < 0.5:  # promotion-like: sparse on/off events
            cov = (rng.random(total) < rng.uniform(0.05, 0.3)).astype(float)
        else:  # price/temperature-like: smooth
            cov = _standardise(ar_process(rng, total, max_order=2) + trend_seasonality(rng, total))
        covariates.append(cov)
    targets = []
    for _ in range(n_targets):
        lag = int(rng.integers(0, 6))
        mix = rng.normal(0, 1, size=len(factors))
        y = np.roll(mix @ factors, lag)
        for cov in covariates:
            y += rng.normal(0, 2) * np.roll(cov, int(rng.integers(0, 4)))
        targets.append(y + rng.normal(0, rng.uniform(0.05, 0.5), total))
    values = np.stack([*targets, *covariates])[:, burn:]
    return SyntheticGroup(values=values, n_targets=n_targets, n_known_covariates=n_known)
