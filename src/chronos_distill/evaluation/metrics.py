"""Forecast accuracy scores comparable with published Chronos / fev / GluonTS benchmark tables.

Conventions (those of GluonTS' ``MeanWeightedSumQuantileLoss`` and ``MASE``, which the Chronos benchmark
uses); they reproduce the published seasonal-naive scores on M3 (see ``tests/test_metrics.py``):

* WQL, :func:`weighted_quantile_loss`: per quantile level q,
  ``2 * sum_{series, steps} pinball_q(y, yhat_q) / sum_{series, steps} |y|``, then the mean over the levels
  (0.1, ..., 0.9). Sums run over the whole data set at once; it is not a mean of per-series scores.
* MASE, :func:`mase`: per series, the mean absolute error of the point forecast (the median, level 0.5)
  divided by the in-sample mean absolute error of the seasonal naive forecast on the series' context (lag m,
  or lag 1 when the context has no more than m values); then the mean over series.
* Seasonal naive, :func:`seasonal_naive` and :func:`seasonal_naive_quantiles`: the last season of the context
  repeated; as a probabilistic forecast, that point forecast at every quantile level.
* :func:`geometric_mean_relative_score`: a model's score divided by the seasonal naive score on each data set,
  then the geometric mean across data sets (the Chronos papers' aggregate).

Array shapes: ``truth`` is ``(n_series, horizon)``; ``quantile_forecasts`` is ``(n_series, horizon, n_levels)``
(levels last, as ``Chronos2Pipeline.predict_quantiles`` returns them, with the variate axis removed);
``contexts`` is a sequence of ``n_series`` 1-D arrays of varying lengths. Inputs must be finite: no missing
values are masked.

Plain numpy rather than a library: GluonTS (the reference implementation) needs pandas < 3, which this
project does not pin; ``utilsforecast.losses`` scores per series (its ``scaled_crps`` is a per-series WQL),
works on long DataFrames only and has no lag-1 fallback for short series. ``tests/test_metrics.py``
cross-checks these functions against ``utilsforecast`` where it is installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: Quantile levels of the published WQL.
QUANTILE_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _as_2d(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (n_series, horizon), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return array


def _levels(quantile_levels: Sequence[float]) -> np.ndarray:
    levels = np.asarray(quantile_levels, dtype=np.float64)
    if levels.ndim != 1 or levels.size == 0 or ((levels <= 0) | (levels >= 1)).any():
        raise ValueError(f"quantile_levels must be a non-empty list of levels in (0, 1), got {quantile_levels}")
    return levels


def pinball_loss(truth: np.ndarray, forecast: np.ndarray, level: float) -> np.ndarray:
    """Elementwise pinball (quantile) loss ``max(q * (y - yhat), (q - 1) * (y - yhat))`` of level ``q``."""
    error = np.asarray(truth, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    return np.maximum(level * error, (level - 1.0) * error)


#: Seasonal naive on M3 with the official horizons (6 / 8 / 18), as published in the Chronos benchmark tables:
#: what our metric implementation must reproduce.
PUBLISHED_M3_SEASONAL_NAIVE = {
    "yearly": {"WQL": 0.1665, "MASE": 3.172},
    "quarterly": {"WQL": 0.1013, "MASE": 1.425},
    "monthly": {"WQL": 0.1485, "MASE": 1.146},
}


def weighted_quantile_loss(
    truth: np.ndarray,
    quantile_forecasts: np.ndarray,
    quantile_levels: Sequence[float] = QUANTILE_LEVELS,
) -> float:
    """WQL of one data set: ``mean_q [2 * sum pinball_q / sum |y|]``, sums over all series and steps.

    ``truth``: ``(n_series, horizon)``; ``quantile_forecasts``: ``(n_series, horizon, len(quantile_levels))``.
    Equals GluonTS' ``mean_weighted_sum_quantile_loss``.
    """
    y = _as_2d("truth", truth)
    levels = _levels(quantile_levels)
    forecasts = np.asarray(quantile_forecasts, dtype=np.float64)
    if forecasts.shape != (*y.shape, levels.size):
        raise ValueError(
            f"quantile_forecasts must have shape {(*y.shape, levels.size)} (n_series, horizon, n_levels), "
            f"got {forecasts.shape}"
        )
    if not np.isfinite(forecasts).all():
        raise ValueError("quantile_forecasts holds NaN or infinite values")
    denominator = np.abs(y).sum()
    if denominator == 0:
        raise ValueError("WQL is undefined when every truth value is 0")
    losses = pinball_loss(y[..., None], forecasts, levels).sum(axis=(0, 1))  # (n_levels,)
    return float(np.mean(2.0 * losses / denominator))


def seasonal_scale(context: np.ndarray, season_length: int) -> float:
    """Mean absolute seasonal difference of ``context``: ``mean |x[t] - x[t - m]|``, the MASE denominator.

    Uses m = 1 when the context has no more than ``season_length`` values (as GluonTS' ``seasonal_error``).
    Missing values (NaN) leave out the differences they take part in; with none left the scale is NaN.
    """
    x = np.asarray(context, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"a context must be 1-D with at least 2 values, got shape {x.shape}")
    m = season_length if x.size > season_length else 1
    differences = np.abs(x[m:] - x[:-m])
    differences = differences[~np.isnan(differences)]
    return float(differences.mean()) if differences.size else float("nan")


def mase(
    truth: np.ndarray,
    point_forecast: np.ndarray,
    contexts: Sequence[np.ndarray],
    season_length: int,
) -> float:
    """Mean over series of ``mean_t |y - yhat| / seasonal_scale(context, season_length)``.

    ``truth`` and ``point_forecast``: ``(n_series, horizon)``; ``contexts``: ``n_series`` 1-D arrays. For the
    published scores the point forecast is the median (see :func:`median_forecast`). A context whose scale is
    0 (a constant series) gives an infinite score, as in GluonTS.
    """
    y = _as_2d("truth", truth)
    yhat = _as_2d("point_forecast", point_forecast)
    if yhat.shape != y.shape:
        raise ValueError(f"point_forecast has shape {yhat.shape}, truth {y.shape}")
    if len(contexts) != y.shape[0]:
        raise ValueError(f"{len(contexts)} contexts for {y.shape[0]} series")
    scales = np.array([seasonal_scale(c, season_length) for c in contexts])
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(np.abs(y - yhat).mean(axis=1) / scales))


def median_forecast(quantile_forecasts: np.ndarray, quantile_levels: Sequence[float] = QUANTILE_LEVELS) -> np.ndarray:
    """The level-0.5 slice ``(n_series, horizon)`` of ``quantile_forecasts`` ``(n_series, horizon, n_levels)``."""
    levels = _levels(quantile_levels)
    index = np.flatnonzero(np.isclose(levels, 0.5))
    if index.size != 1:
        raise ValueError(f"quantile_levels {list(quantile_levels)} must contain 0.5 once")
    return np.asarray(quantile_forecasts, dtype=np.float64)[..., int(index[0])]


def seasonal_naive(contexts: Sequence[np.ndarray], horizon: int, season_length: int) -> np.ndarray:
    """The last ``season_length`` values of each context repeated over ``horizon`` steps: ``(n_series, horizon)``.

    A context shorter than ``season_length`` falls back to its last value (naive forecast). Missing values
    (NaN) take the last observed value before them.
    """
    forecasts = np.empty((len(contexts), horizon), dtype=np.float64)
    for i, context in enumerate(contexts):
        x = np.asarray(context, dtype=np.float64)
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"context {i} must be a non-empty 1-D array, got shape {x.shape}")
        if np.isnan(x).any():
            x = pd.Series(x).ffill().bfill().to_numpy()
        season = x[-season_length:] if x.size >= season_length else x[-1:]
        forecasts[i] = np.resize(season, horizon)  # np.resize repeats the season cyclically
    return forecasts


def seasonal_naive_quantiles(
    contexts: Sequence[np.ndarray],
    horizon: int,
    season_length: int,
    quantile_levels: Sequence[float] = QUANTILE_LEVELS,
) -> np.ndarray:
    """The seasonal naive point forecast at every quantile level: ``(n_series, horizon, n_levels)``.

    This degenerate distribution is the one behind the published seasonal naive WQL.
    """
    point = seasonal_naive(contexts, horizon, season_length)
    return np.repeat(point[..., None], _levels(quantile_levels).size, axis=-1)


def score_forecasts(
    benchmark,
    quantile_forecasts: np.ndarray,
    quantile_levels: Sequence[float] = QUANTILE_LEVELS,
) -> dict[str, float]:
    """``{"WQL": ..., "MASE": ...}`` of ``quantile_forecasts`` ``(n_series, horizon, n_levels)`` on ``benchmark``.

    ``benchmark`` is a :class:`chronos_distill.data.competition.Benchmark` (anything with ``truth``, ``contexts``
    and ``season_length``); MASE scores the median.
    """
    return {
        "WQL": weighted_quantile_loss(benchmark.truth, quantile_forecasts, quantile_levels),
        "MASE": mase(
            benchmark.truth,
            median_forecast(quantile_forecasts, quantile_levels),
            benchmark.contexts,
            benchmark.season_length,
        ),
    }


def geometric_mean_relative_score(scores: Mapping[str, float], baseline_scores: Mapping[str, float]) -> float:
    """Geometric mean over data sets of ``scores[d] / baseline_scores[d]`` (baseline: seasonal naive).

    Both mappings are keyed by data set name and must have the same keys; every score must be positive
    and finite. Below 1 means better than the baseline on (geometric) average.
    """
    if set(scores) != set(baseline_scores):
        raise ValueError(f"data sets differ: {sorted(scores)} vs baseline {sorted(baseline_scores)}")
    if not scores:
        raise ValueError("no data sets to aggregate")
    names = sorted(scores)
    model = np.array([scores[n] for n in names], dtype=np.float64)
    baseline = np.array([baseline_scores[n] for n in names], dtype=np.float64)
    if not (np.isfinite(model).all() and np.isfinite(baseline).all() and (model > 0).all() and (baseline > 0).all()):
        raise ValueError("relative scores need positive finite scores for the model and the baseline")
    return float(np.exp(np.mean(np.log(model / baseline))))


def quantile_crossing(quantile_forecasts: np.ndarray) -> dict[str, float]:
    """How often and how much a forecast's quantiles cross (a higher level below a lower one).

    ``quantile_forecasts``: ``(n_series, horizon, n_levels)``, levels increasing. Returns ``rows_crossing``, the
    share of series with any crossing at any step, and ``crossing_mass``, the mean over series of the summed
    amount by which a level falls below the one under it (over steps and level pairs), divided by the horizon and
    by the series' mean absolute forecast (so that it is unit-free: 0.01 is 1% of the forecast's level)."""
    forecasts = np.asarray(quantile_forecasts, dtype=np.float64)
    if forecasts.ndim != 3:
        raise ValueError(f"quantile_forecasts must be (n_series, horizon, n_levels), got {forecasts.shape}")
    gaps = np.maximum(forecasts[:, :, :-1] - forecasts[:, :, 1:], 0.0)  # (series, horizon, levels - 1)
    scale = np.abs(forecasts).mean(axis=(1, 2))
    mass = gaps.sum(axis=(1, 2)) / forecasts.shape[1] / np.where(scale > 0, scale, 1.0)
    return {"rows_crossing": float((gaps.sum(axis=(1, 2)) > 0).mean()), "crossing_mass": float(mass.mean())}
