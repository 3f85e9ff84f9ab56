"""Training and validation windows of a :class:`~chronos_distill.data.series.SeriesSet`: the one place that builds
the ``Chronos2Dataset`` windows a run trains and validates on, as ``Chronos2Pipeline.fit`` does, with the
teacher-only transfer rows appended when the run has transfer sources. (``series`` uses ``Chronos2Dataset`` too,
only to convert ``fit``-style in-memory inputs.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from chronos.chronos2.dataset import Chronos2Dataset, DatasetMode

from chronos_distill.config import DEFAULT_GENERAL_CONTEXT
from chronos_distill.data.series import SeriesSet
from chronos_distill.data.transfer import GeneralBatches, TransferBatches

#: The key of a prepared series' season length, and of a batch's per-row season lengths (rows,): set where a
#: statistical teacher fits each window with its own series' season
SEASON_KEY = "season_length"


class SeasonTaggedDataset(Chronos2Dataset):
    """``Chronos2Dataset`` whose batches also carry :data:`SEASON_KEY`: the season length of the series each row was
    cut from ``(rows,)``, read from the prepared series' own :data:`SEASON_KEY`. A batch of ``Chronos2Dataset``
    does not say which series a row came from (and the dataset drops short series, so indices would not do), so
    the tag is added where the batch is built, from the very series chosen; windows and draws are unchanged."""

    def _build_batch(self, input_indices: list[int]) -> dict[str, Any]:
        batch = super()._build_batch(input_indices)
        rows = torch.tensor([int(self.inputs[i]["context"].shape[0]) for i in input_indices])
        seasons = torch.tensor([int(self.inputs[i][SEASON_KEY]) for i in input_indices])
        batch[SEASON_KEY] = torch.repeat_interleave(seasons, rows)
        return batch


def make_dataset(
    series: SeriesSet,
    *,
    context_length: int,
    prediction_length: int,
    batch_size: int,
    output_patch_size: int,
    min_past: int,
    mode: DatasetMode,
) -> Chronos2Dataset:
    """A ``Chronos2Dataset`` over ``series``: random windows for TRAIN, each series' last window for VALIDATION (a
    :class:`SeasonTaggedDataset` when the series carry their season lengths)."""
    tagged = bool(series.inputs) and SEASON_KEY in series.inputs[0]
    return (SeasonTaggedDataset if tagged else Chronos2Dataset)(
        inputs=series.inputs,
        context_length=context_length,
        prediction_length=prediction_length,
        batch_size=batch_size,
        output_patch_size=output_patch_size,
        min_past=min_past,
        mode=mode,
    )


def training_batches(series: SeriesSet, shares=None, general_context: str = DEFAULT_GENERAL_CONTEXT,
                     general_bank_size: int | None = None, general_real_share: float = 0.0, **dataset_options: Any):
    """The endless training batches: ``Chronos2Dataset`` windows of the user's series, with the teacher-only rows
    of the transfer sources appended when ``shares`` (:class:`chronos_distill.data.transfer.TransferShares`) has any;
    ``general_context`` / ``general_bank_size``: how the general source draws its context lengths and how many
    KernelSynth samples it crops from (``--general-context``, ``--general-bank-size``). A ``--general`` run's
    batches: every row from the general source, or (``general_real_share`` > 0, ``series`` its corpus) that share
    of the rows real contexts of ``series``."""
    if not series.inputs or general_real_share > 0:  # a --general run
        return GeneralBatches(general_context=general_context, general_bank_size=general_bank_size,
                              corpus=series if general_real_share > 0 else None,
                              general_real_share=general_real_share, **dataset_options)
    if shares is None or shares.total == 0:
        return make_dataset(series, mode=DatasetMode.TRAIN, **dataset_options)
    batch_size = dataset_options["batch_size"]
    labelled = make_dataset(series, mode=DatasetMode.TRAIN,
                            **{**dataset_options, "batch_size": TransferBatches.labelled_rows(shares, batch_size)})
    return TransferBatches(labelled, series, shares, batch_size=batch_size,
                           context_length=dataset_options["context_length"], general_context=general_context,
                           general_bank_size=general_bank_size)


def draw_windows(series: SeriesSet, n_batches: int, seed: int, shares=None, **dataset_options: Any) -> list[dict[str, Any]]:
    """``n_batches`` batches of :func:`training_batches` drawn from numpy seeded with ``seed``, leaving the
    global numpy RNG as it was."""
    dataset = training_batches(series, shares, **dataset_options)
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        iterator = iter(dataset)
        return [next(iterator) for _ in range(n_batches)]
    finally:
        np.random.set_state(state)
