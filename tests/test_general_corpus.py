"""Real contexts in the general stage (issue 48, item 2): ``--general --train-data CORPUS --general-real-share S``
mixes real contexts of an unlabelled corpus into the synthetic stream, labelled by the teacher like the rest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import PREDICTION_LENGTH, TINY_STUDENT

from chronos_distill import ConfigError, DistillConfig, distill
from chronos_distill.data.series import load_series
from chronos_distill.data.windows import draw_windows

OPTIONS = dict(batch_size=32, context_length=128, prediction_length=64, output_patch_size=16, min_past=1)


def _corpus(n_series: int = 6, length: int = 90) -> pd.DataFrame:
    """Series whose values name them: series i holds 1000 * (i + 1) + t at step t (no generator draws such)."""
    return pd.DataFrame({
        "item_id": np.repeat([f"s{i}" for i in range(n_series)], length),
        "timestamp": np.tile(pd.date_range("2020-01-01", periods=length, freq="D"), n_series),
        "target": np.concatenate([1000.0 * (i + 1) + np.arange(length) for i in range(n_series)]),
    })


def _real_rows(batch: dict) -> list[int]:
    """The rows whose context is a stretch of a corpus series (consecutive values above 999)."""
    found = []
    for row, context in enumerate(batch["context"]):
        values = context[~torch.isnan(context)]
        if len(values) and values.min() > 999 and torch.all(values.diff() == 1):
            found.append(row)
    return found


def test_the_real_rows_are_real_contexts_of_the_corpus_at_the_share_asked_with_their_continuation_as_truth():
    corpus = load_series(_corpus(), 1, target=["target"])
    batches = draw_windows(corpus, 24, 0, general_real_share=0.5, **OPTIONS)
    rows = sum(b["context"].shape[0] for b in batches)
    real = [(b, row) for b in batches for row in _real_rows(b)]
    # tasks, not rows, are drawn at the share: real tasks are one row, a generator's may be a group of several
    tasks = sum(len(torch.unique(b["group_ids"])) for b in batches)
    assert 0.4 < len(real) / tasks < 0.6 and len(real) < rows
    for batch, row in real:
        context = batch["context"][row][~torch.isnan(batch["context"][row])]
        series, start = int(context[0]) // 1000, int(context[0]) % 1000
        assert 1 <= series <= 6 and start + len(context) <= 90  # a stretch of that series, within it
        truth = batch["future_target"][row]
        known = truth[~torch.isnan(truth)]
        # its truth is what follows the context in the series, as far as the series goes
        expected = torch.arange(start + len(context), min(90, start + len(context) + len(truth)), dtype=torch.float32)
        assert torch.equal(known, expected + 1000 * series)
        assert batch["teacher_rows"][row]  # labelled by the teacher like every general row
    from chronos_distill.data.series import general_series

    generators = draw_windows(general_series(), 8, 0, **OPTIONS)  # the synthetic stream alone has no such rows
    assert not any(_real_rows(b) for b in generators)


def test_a_general_run_with_a_corpus_trains_caches_once_and_is_refused_without_its_share(teacher_dir, tmp_path):
    corpus = _corpus(n_series=8, length=120)
    options = dict(teacher=teacher_dir, general=True, train_data=corpus, general_real_share=0.5, max_steps=2,
                   save_steps=2, batch_size=16, prediction_length=PREDICTION_LENGTH, cache_batches=2,
                   teacher_cache=str(tmp_path / "cache"), **TINY_STUDENT)
    first = distill(output=str(tmp_path / "a"), **options)
    second = distill(output=str(tmp_path / "b"), **options)
    assert first.record["options"]["general_real_share"] == 0.5 and first.record["data"]["train"]["n_series"] == 8
    assert (first.record["training"]["teacher_cache"]["reused"], second.record["training"]["teacher_cache"]["reused"]) \
        == (False, True)
    other = distill(output=str(tmp_path / "c"), **{**options, "general_real_share": 0.25})
    assert other.record["training"]["teacher_cache"]["key"] != first.record["training"]["teacher_cache"]["key"]
    with pytest.raises(ConfigError, match="give --general-real-share"):
        DistillConfig(teacher="t", general=True, train_data="c.csv", output="o")
    with pytest.raises(ConfigError, match="needs --general and --train-data"):
        DistillConfig(teacher="t", train_data="c.csv", prediction_length=4, output="o", general_real_share=0.5)
