"""A statistical member of a teacher ensemble: a ``statsforecast`` model fitted on each window's context.

``--teacher reference,statsforecast:AutoETS`` adds it (AutoETS, AutoTheta or SeasonalNaive; the ``[stats]``
extra). For every row of a batch it is fitted on that row's context alone, never on its truth: leading missing
values are cut and inner ones carry the last observation forward (statsforecast takes no gaps). Its quantiles
come from its prediction intervals: a level q below 0.5 is the lower bound of the central (1 - 2q) interval, a
level above 0.5 the upper bound of the (2q - 1) interval, and 0.5 the point forecast.

Each row is fitted with its own season when the batch says it (``season_length`` per row, the season of the series
the window was cut from: :class:`chronos_distill.data.windows.SeasonTaggedDataset`), else with one season for all.

Fallbacks, so that every window gets a forecast:

- a context shorter than two seasons is fitted without seasonality (season length 1);
- a context with fewer than :data:`MIN_OBSERVATIONS` observations, or a fit that fails, gets the last observed
  value at every level and step (a context with none gets 0).

Fitting is per row; :meth:`StatisticalTeacher.raw_quantiles` fits the rows of a batch in a process pool of
``n_jobs`` workers (1: in this process). With the teacher cache each window is fitted once.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ProcessPoolExecutor
from typing import Sequence

import numpy as np
import torch

from chronos_distill.errors import ConfigError

#: Fewer observed context values than this get the flat last-value forecast.
MIN_OBSERVATIONS = 3
#: GluonTS' seasonal periods with what a statistical teacher needs instead: daily data's weekly season (as
#: statsforecast users set it; GluonTS gives 1) and the business anchors GluonTS leaves at 1.
SEASON_OVERRIDES = {"D": 7, "B": 5, "bh": 9, "BME": 12, "BQE": 4, "SME": 24}


def season_length_of(frequency: str | None) -> int:
    """The seasonal period a statistical teacher uses for data of ``frequency`` (a pandas offset alias, multiples
    and anchors included: ``2h`` is 12, ``QS-JAN`` 4), 1 if none: GluonTS' ``get_seasonality`` with
    :data:`SEASON_OVERRIDES`."""
    if not frequency:
        return 1
    try:
        from gluonts.time_feature import get_seasonality
        from gluonts.time_feature.seasonality import DEFAULT_SEASONALITIES
    except ImportError as exc:
        raise ConfigError("a statistical teacher takes its season length from GluonTS: pip install "
                          "'chronos-distill[stats]' (or give --season-length)") from exc
    with warnings.catch_warnings():  # pandas' deprecation of upper-case aliases (H, BH) is not the user's fault
        warnings.simplefilter("ignore", FutureWarning)
        return int(get_seasonality(frequency, {**DEFAULT_SEASONALITIES, **SEASON_OVERRIDES}))


def _model(name: str, season_length: int):
    try:
        from statsforecast import models
    except ImportError as exc:
        raise ConfigError(f"the statistical teacher statsforecast:{name} needs statsforecast: "
                          "pip install 'chronos-distill[stats]'") from exc
    return getattr(models, name)(season_length=season_length)


def _interval_levels(levels: Sequence[float]) -> list[float]:
    """statsforecast interval levels (percent) that give the quantile ``levels``."""
    return sorted({round(100 * abs(2 * q - 1), 6) for q in levels if q != 0.5})


def fit_one(name: str, season_length: int, context: np.ndarray, horizon: int, levels: Sequence[float]) -> np.ndarray:
    """Quantiles ``(len(levels), horizon)`` of model ``name`` fitted on one ``context`` (NaN where missing)."""
    observed = np.flatnonzero(~np.isnan(context))
    if observed.size == 0:
        return np.zeros((len(levels), horizon))
    y = context[observed[0]:].astype(np.float64)
    if np.isnan(y).any():  # carry the last observation forward through inner gaps
        index = np.where(~np.isnan(y), np.arange(len(y)), 0)
        y = y[np.maximum.accumulate(index)]
    flat = np.full((len(levels), horizon), y[-1])
    if len(y) < MIN_OBSERVATIONS:
        return flat
    season = season_length if len(y) >= 2 * season_length else 1
    intervals = _interval_levels(levels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = _model(name, season).forecast(y=y, h=horizon, level=intervals)
    except ConfigError:
        raise
    except Exception:  # a fit that fails (statsforecast raises many kinds): the documented fallback
        return flat
    rows = []
    for q in levels:
        if q == 0.5:
            rows.append(out["mean"])
        else:
            width = round(100 * abs(2 * q - 1), 6)  # the very float passed in `intervals`: it names the key
            rows.append(out[f"{'lo' if q < 0.5 else 'hi'}-{width}"])
    quantiles = np.asarray(rows, dtype=np.float64)
    return quantiles if np.isfinite(quantiles).all() else flat


def _fit_rows(args) -> np.ndarray:
    name, seasons, contexts, horizon, levels = args
    return np.stack([fit_one(name, int(season), c, horizon, levels) for season, c in zip(seasons, contexts)])


class StatisticalTeacher:
    """A statsforecast model as a teacher: per-row fits, quantiles in the data's units."""

    def __init__(self, name: str, season_length: int, levels: Sequence[float], n_jobs: int = 1,
                 per_series: bool = False):
        _model(name, 1)  # refuses a missing statsforecast now, not at the first batch
        self.name, self.season_length, self.levels, self.n_jobs = name, season_length, list(levels), n_jobs
        self.per_series = per_series

    def raw_quantiles(self, context: torch.Tensor, horizon: int, season_lengths: torch.Tensor | None = None
                      ) -> torch.Tensor:
        """Quantiles ``(batch, len(levels), horizon)`` in raw units of every row of ``context`` ``(batch, time)``;
        ``season_lengths`` ``(batch,)``: each row's own season (its series'), else :attr:`season_length` for all."""
        rows = context.detach().float().cpu().numpy()
        seasons = (season_lengths.cpu().numpy() if season_lengths is not None
                   else np.full(len(rows), self.season_length))
        if self.n_jobs > 1 and len(rows) > 1:
            chunks = np.array_split(np.arange(len(rows)), min(self.n_jobs, len(rows)))
            with ProcessPoolExecutor(max_workers=len(chunks)) as pool:
                parts = list(pool.map(_fit_rows, [(self.name, seasons[c], rows[c], horizon, self.levels)
                                                  for c in chunks]))
            out = np.concatenate(parts)
        else:
            out = _fit_rows((self.name, seasons, rows, horizon, self.levels))
        return torch.from_numpy(out).float()

    def describe(self) -> dict:
        """What the forecasts depend on (the record, the card and the teacher cache key): with ``per_series``, each
        window's season is its series' and ``season_length`` only the fallback for rows that carry none."""
        return {"kind": "statsforecast", "model": self.name, "season_length": self.season_length,
                **({"per_series": True} if self.per_series else {})}
