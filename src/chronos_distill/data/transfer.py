"""Teacher-labelled transfer data: rows that have no truth, where the teacher's forecast is the only target.

The user's labelled windows (drawn by ``Chronos2Dataset``) come with the truth, so on them the teacher adds
little that the truth does not already give. The teacher can label any input, and four sources add such
inputs to every batch, each supplying a fixed share of the batch's rows (the rest are the user's windows):

``future`` (``transfer_future``)
    windows whose context ends at a series' last observation: the horizon lies in the unknown future. A whole
    group comes along (its targets, and its covariates as past-only covariates: the future of a known
    covariate is not known past the end of the data).
``mixup`` (``transfer_mixup``)
    TSMixup: convex mixtures (Dirichlet weights) of 2-3 of the user's target series, each first divided by its
    mean absolute value (the Chronos recipe), aligned at their ends. Univariate: mixing groups with different
    numbers of variates, or a target with a covariate, has no meaning, so covariates are left out.
``synthetic`` (``transfer_synthetic``)
    series from the project's generators (:mod:`chronos_distill.data.synthetic`: seasonal, trend + seasonality, AR,
    intermittent), univariate, each as long as one of the user's series drawn at random (at most
    ``context_length``): inputs shaped like the user's, and no longer than the batch's own windows, which
    would otherwise be padded to the synthetic length (on short series such as M3's, several times the compute).
``general`` (``transfer_general``)
    tasks of the pretraining mix (:mod:`chronos_distill.data.tasks`: seasonal of every period, KernelSynth,
    intermittent, multivariate groups with their covariates, TSMixup), with contexts as long as the teacher
    reads, not as long as the user's series: the teacher's skill beyond the user's data, where a student kept
    only to the user's windows loses it. Each draw's generator is seeded from numpy's global RNG.

A teacher-only row has no truth: its ``future_target`` is NaN, so the hard (truth) loss never counts it, and
the batch's ``teacher_rows`` flag (rows,) tells the distillation loss to count its whole horizon. Every random
draw comes from numpy's global RNG, like ``Chronos2Dataset``'s own: the Trainer seeds it (offset by rank
under ``torchrun``) and saves it in checkpoints, so runs are reproducible and resume exactly.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from chronos.chronos2.dataset import left_pad_and_cat_2D
from torch.utils.data import IterableDataset

from chronos_distill.config import (
    DEFAULT_GENERAL_BANK_SIZE,
    DEFAULT_GENERAL_CONTEXT,
    GENERAL_CONTEXTS,
    TRANSFER_SOURCES,
    TransferShares,
)
from chronos_distill.data.series import SeriesSet
from chronos_distill.data.synthetic import kernel_synth
from chronos_distill.data.tasks import MixOptions, TaskMix


class TransferBatches(IterableDataset):
    """The user's training windows with teacher-only rows appended to every batch.

    Each batch is a ``Chronos2Dataset`` batch (``context``, ``future_target``, ``future_covariates``,
    ``group_ids``, ``num_output_patches``) of about ``batch_size - teacher-only rows`` labelled rows, followed by
    the teacher-only rows of each source, plus ``teacher_rows`` (rows,) bool: True for the rows whose whole
    horizon the teacher labels.
    """

    def __init__(self, labelled: IterableDataset, series: SeriesSet, shares: TransferShares, *, batch_size: int,
                 context_length: int, general_context: str = DEFAULT_GENERAL_CONTEXT,
                 general_bank_size: int | None = None):
        """``labelled``: the user's windows, :func:`chronos_distill.data.windows.make_dataset` with
        :meth:`labelled_rows` rows per batch; ``series``: the series they come from (for the teacher-only rows)."""
        self.series = series
        self.shares = shares
        self.batch_size = batch_size  # read by Chronos2Trainer
        self.context_length = context_length
        self.general_context = general_context
        self.general_bank_size = general_bank_size
        self.source_rows = shares.rows(batch_size)
        self.labelled = labelled
        self._general_source: GeneralSource | None = None  # built on first use (its KernelSynth bank takes time)
        self._targets = [(i, row) for i, item in enumerate(series.inputs) for row in range(int(item["n_targets"]))]
        self._lengths = [min(int(item["context"].shape[-1]), context_length) for item in series.inputs]

    @staticmethod
    def labelled_rows(shares: TransferShares, batch_size: int) -> int:
        """Rows of a ``batch_size``-row batch left to the user's labelled windows."""
        labelled = batch_size - sum(shares.rows(batch_size).values())
        if labelled < 1:
            raise ValueError(f"transfer shares {shares.to_dict()} leave no row of a {batch_size}-row batch to the user's data")
        return labelled

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.labelled:
            yield self.extend(batch)

    def extend(self, batch: dict[str, Any]) -> dict[str, Any]:
        """``batch`` with the teacher-only rows of every source appended (see the class docstring)."""
        horizon = batch["future_target"].shape[-1]
        groups: list[torch.Tensor] = []  # each (rows, time): one group of the batch
        targets: list[int] = []  # rows of each group the teacher labels
        for name in TRANSFER_SOURCES:
            budget = self.source_rows[name]
            while budget > 0:
                group, n_targets = getattr(self, f"_{name}")(budget)
                groups.append(group)
                targets.append(n_targets)
                budget -= group.shape[0]
        if not groups:
            return {**batch, "teacher_rows": torch.zeros(batch["context"].shape[0], dtype=torch.bool)}
        extra = assemble_groups(groups, targets, horizon, first_group=int(batch["group_ids"].max()) + 1)
        n_labelled = batch["context"].shape[0]
        return {
            "context": left_pad_and_cat_2D([batch["context"], extra["context"]]),
            "future_target": torch.cat([batch["future_target"], extra["future_target"]]),
            "future_covariates": torch.cat([batch["future_covariates"], extra["future_covariates"]]),
            "group_ids": torch.cat([batch["group_ids"], extra["group_ids"]]),
            "num_output_patches": batch["num_output_patches"],
            "teacher_rows": torch.cat([torch.zeros(n_labelled, dtype=torch.bool), extra["teacher_rows"]]),
        }

    # -- sources: each returns one group (rows, time) of at most ``budget`` rows and how many of them are targets

    def _future(self, budget: int) -> tuple[torch.Tensor, int]:
        item = self.series.inputs[np.random.randint(len(self.series.inputs))]
        context = item["context"][:, -self.context_length:].float()
        n_targets = int(item["n_targets"])
        if context.shape[0] > budget:  # the whole group does not fit: one of its targets alone
            row = np.random.randint(n_targets)
            return context[row : row + 1], 1
        return context, n_targets

    def _mixup(self, budget: int) -> tuple[torch.Tensor, int]:
        k = np.random.randint(2, 4)
        parts = []
        for _ in range(k):
            index, row = self._targets[np.random.randint(len(self._targets))]
            parts.append(self.series.inputs[index]["context"][row, -self.context_length:].double().numpy())
        return torch.from_numpy(mix(parts, np.random.dirichlet(np.full(k, 1.5)))).float()[None, :], 1

    def _general(self, budget: int) -> tuple[torch.Tensor, int]:
        if self._general_source is None:
            self._general_source = GeneralSource(self.context_length, self.general_context, self.general_bank_size)
        context, n_targets, _ = self._general_source.draw(budget)  # a teacher-only row: its continuation is unused
        return context, n_targets

    def _synthetic(self, budget: int) -> tuple[torch.Tensor, int]:
        length = self._lengths[np.random.randint(len(self._lengths))]
        rng = np.random.default_rng(np.random.randint(2**31))
        return torch.from_numpy(synthetic_series(rng, length)).float()[None, :], 1


def assemble_groups(groups: list[torch.Tensor], targets: list[int], horizon: int, first_group: int = 0) -> dict[str, Any]:
    """Teacher-only groups (each (rows, time), its first ``targets[i]`` rows the targets) as batch entries: contexts
    left-padded with NaN, no truth and no known future (NaN, (rows, horizon)), one group id per group from
    ``first_group``, and ``teacher_rows`` True on the targets."""
    teacher_rows, group_ids = [], []
    for offset, (group, n_targets) in enumerate(zip(groups, targets)):
        flags = torch.zeros(group.shape[0], dtype=torch.bool)
        flags[:n_targets] = True
        teacher_rows.append(flags)
        group_ids.append(torch.full((group.shape[0],), first_group + offset))
    rows = sum(g.shape[0] for g in groups)
    nan = torch.full((rows, horizon), torch.nan)
    return {"context": left_pad_and_cat_2D(groups), "future_target": nan, "future_covariates": nan.clone(),
            "group_ids": torch.cat(group_ids), "teacher_rows": torch.cat(teacher_rows)}


class GeneralSource:
    """Tasks of the pretraining mix (:mod:`chronos_distill.data.tasks`, real series left out) whose contexts reach
    ``context_length``: the rows of the ``general`` source and of a ``--general`` run.

    Each task's longest context is drawn log-uniformly from :data:`GENERAL_MIN_CONTEXT` (16) steps to
    ``context_length`` (:func:`context_cap`), and the task is generated and cut for that cap. With a 512-step
    context, 40% of the caps are at most 64 steps: fewer than in the M1 + M3 training series (63% of which are
    that short: yearly and quarterly data), far more than in hourly or daily collections, and long contexts still
    reach what the teacher reads. A uniform draw of the length (the pretraining stream's) gives contexts of over
    100 steps about 90% of the time, and a student that never saw a yearly-length series forecasts them worst."""

    def __init__(self, context_length: int, lengths: str = DEFAULT_GENERAL_CONTEXT, bank_size: int | None = None):
        """``bank_size``: KernelSynth samples in the bank (default :data:`GENERAL_BANK_SIZE`)."""
        if lengths not in GENERAL_CONTEXTS:
            raise ValueError(f"general context lengths {lengths!r}: choose from {GENERAL_CONTEXTS}")
        self.context_length = context_length
        self.lengths = lengths
        self.mix = TaskMix(MixOptions(context_length=context_length), real=[])
        # the KernelSynth bank is part of the source, like its generators: drawn once, from its own fixed seed
        self.bank = [kernel_synth(np.random.default_rng([GENERAL_BANK_SEED, i]), context_length)
                     for i in range(bank_size or GENERAL_BANK_SIZE)]

    def draw(self, budget: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        """One task: its context (rows, <= context_length); how many of its first rows are targets (the whole
        group, or one of its targets when the group has more than ``budget`` rows); and the continuation the
        generator drew (rows, :data:`GENERAL_HORIZON`): the targets' truth, NaN where the task ends sooner and on
        every covariate row (their future is not given to the model)."""
        rng = np.random.default_rng(np.random.randint(2**31))  # from numpy's global RNG: seeded, resumed
        cap = context_cap(rng, self.context_length, self.lengths)
        values, n_targets, _ = self.mix.task(rng, self.bank, GENERAL_HORIZON, cap)
        context, future = self.mix.split(rng, values, GENERAL_HORIZON, cap)
        context = torch.from_numpy(np.ascontiguousarray(context)).float()
        future = torch.from_numpy(np.ascontiguousarray(future)).float()
        future[n_targets:] = torch.nan
        if context.shape[0] > budget:
            row = int(rng.integers(n_targets))
            return context[row : row + 1], 1, future[row : row + 1]
        return context, n_targets, future


class CorpusSource:
    """Real contexts for a ``--general`` run (``--general --train-data CORPUS``): one target of a random series of the
    corpus, cut at a random point, its context the last steps before the cut (capped as a general task's,
    :func:`context_cap`) and its continuation the truth (:data:`GENERAL_HORIZON` steps, NaN where the series
    ends). The same ``draw`` as :class:`GeneralSource`, so that a batch mixes the two row by row. Covariates are
    left out: a real row is a univariate context, labelled by the teacher like the generators' rows."""

    def __init__(self, corpus: SeriesSet, context_length: int, lengths: str = DEFAULT_GENERAL_CONTEXT):
        if not corpus.inputs:
            raise ValueError("a corpus source needs series")
        self.corpus, self.context_length, self.lengths = corpus, context_length, lengths

    def draw(self, budget: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        """One row: its context (1, <= context_length), 1 target, and its continuation (1, GENERAL_HORIZON)."""
        rng = np.random.default_rng(np.random.randint(2**31))  # from numpy's global RNG: seeded, resumed
        prepared = self.corpus.inputs[int(rng.integers(len(self.corpus.inputs)))]
        values = prepared["context"][int(rng.integers(int(prepared["n_targets"])))]
        values = torch.as_tensor(values, dtype=torch.float32)
        cut = int(rng.integers(1, values.shape[-1] + 1))  # at least one observed step; at the end: no truth left
        cap = context_cap(rng, self.context_length, self.lengths)
        context = values[max(0, cut - cap):cut]
        future = torch.full((GENERAL_HORIZON,), torch.nan)
        known = values[cut:cut + GENERAL_HORIZON]
        future[:known.shape[-1]] = known
        return context[None, :], 1, future[None, :]


class GeneralBatches(IterableDataset):
    """The batches of a ``--general`` run: every row from the general source (tasks of the pretraining mix with
    contexts up to ``context_length``), labelled by the teacher. Each batch's horizon is drawn uniformly from 1 to
    ``ceil(prediction_length / output_patch_size)`` output patches (numpy's global RNG: seeded, resumed), as
    Chronos-2 varies its horizon in training, so a general student learns every horizon it can output; the
    batch's ``num_output_patches`` and the width of its (rows, patches x patch) ``future_target`` say which.

    ``future_target`` holds the continuation each task's generator drew (the truth of its target rows; NaN past
    the task's end and on covariate rows), which the truth term of ``--general --alpha A`` (A < 1) is scored
    on; ``teacher_rows`` is True on every target row, whose whole horizon the teacher labels. Keeping the truth
    draws no random number, so the stream is the same whatever the loss."""

    def __init__(self, *, batch_size: int, context_length: int, prediction_length: int, output_patch_size: int,
                 general_context: str = DEFAULT_GENERAL_CONTEXT, general_bank_size: int | None = None,
                 corpus: SeriesSet | None = None, general_real_share: float = 0.0, **_: Any):
        """``corpus`` and ``general_real_share``: each task is a real context of the corpus
        (:class:`CorpusSource`) with that probability, else a generator's."""
        self.batch_size = batch_size  # read by Chronos2Trainer
        self.output_patch_size = output_patch_size
        self.max_output_patches = -(-prediction_length // output_patch_size)
        self.source = GeneralSource(context_length, general_context, general_bank_size)
        self.real_share = general_real_share if corpus is not None else 0.0
        self.real = CorpusSource(corpus, context_length, general_context) if self.real_share > 0 else None

    def _draw(self, budget: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        """A real context with probability ``real_share`` (one draw of numpy's global RNG, only when there is a
        corpus: a run without one draws exactly the stream it drew before), else a generator's task."""
        if self.real is not None and np.random.random() < self.real_share:
            return self.real.draw(budget)
        return self.source.draw(budget)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            num_output_patches = int(np.random.randint(1, self.max_output_patches + 1))
            groups, targets, futures, budget = [], [], [], self.batch_size
            while budget > 0:
                group, n_targets, future = self._draw(budget)
                groups.append(group)
                targets.append(n_targets)
                futures.append(future)
                budget -= group.shape[0]
            horizon = num_output_patches * self.output_patch_size
            truth = torch.cat(futures)[:, :horizon]  # beyond the generator's horizon the truth is unknown (NaN)
            truth = torch.nn.functional.pad(truth, (0, horizon - truth.shape[-1]), value=torch.nan)
            yield {**assemble_groups(groups, targets, horizon), "future_target": truth,
                   "num_output_patches": num_output_patches}


def context_cap(rng: np.random.Generator, context_length: int, lengths: str = "log-uniform") -> int:
    """A general task's longest context (see :class:`GeneralSource`): ``log-uniform`` from
    :data:`GENERAL_MIN_CONTEXT` to ``context_length``; ``uniform``: ``context_length`` itself (the task's own
    length, drawn uniformly from 48 steps, decides: the pretraining stream's draw); ``mixed``: either, with equal
    chances."""
    if lengths == "mixed":
        lengths = "log-uniform" if rng.random() < 0.5 else "uniform"
    if lengths == "uniform":
        return context_length
    low = min(GENERAL_MIN_CONTEXT, context_length)
    return int(round(np.exp(rng.uniform(np.log(low), np.log(context_length)))))


#: KernelSynth samples of the general source's bank, and the seed they are drawn from (fixed: the bank is part of
#: the source, like its generators).
GENERAL_BANK_SIZE = DEFAULT_GENERAL_BANK_SIZE
GENERAL_BANK_SEED = 20261130
#: Shortest context cap of a general task (one input patch).
GENERAL_MIN_CONTEXT = 16
#: Horizon the general source's tasks are cut with; only their contexts are used (the teacher labels the run's
#: horizon).
GENERAL_HORIZON = 64


def mix(parts: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """TSMixup of 1-D series: each divided by its mean absolute observed value, aligned at their ends (the
    shortest decides the length), combined with ``weights`` (summing to 1). NaN in a part stays NaN."""
    length = min(len(p) for p in parts)
    scaled = []
    for part in parts:
        part = part[len(part) - length:]
        scale = np.nanmean(np.abs(part)) if np.isfinite(part).any() else 1.0
        scaled.append(part / (scale if scale > 0 else 1.0))
    return np.sum([w * p for w, p in zip(weights, scaled)], axis=0)


def synthetic_series(rng: np.random.Generator, length: int) -> np.ndarray:
    """One series (length,) from a generator of the pretraining mix picked at random (cheap ones only)."""
    from chronos_distill.data.synthetic import ar_process, intermittent_series, seasonal_series, trend_seasonality

    generators = (seasonal_series, trend_seasonality, ar_process, intermittent_series)
    chosen = generators[rng.choice(len(generators), p=[0.5, 0.25, 0.15, 0.1])]
    return np.asarray(chosen(rng, length), dtype=np.float64)
