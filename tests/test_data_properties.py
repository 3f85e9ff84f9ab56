"""Property-based tests of the data adapters: random lengths, NaN patterns and covariate layouts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from chronos.chronos2.dataset import DatasetMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronos_distill.data.series import drop_short_series, load_series
from chronos_distill.data.windows import make_dataset
from chronos_distill.errors import DataError

H = 4


@st.composite
def tables(draw):
    n_series = draw(st.integers(1, 4))
    n_targets = draw(st.integers(1, 2))
    n_past = draw(st.integers(0, 2))
    n_known = draw(st.integers(0, 1))
    frames, expected = [], {}
    for i in range(n_series):
        length = draw(st.integers(1, 40))
        seed = draw(st.integers(0, 2**16))
        rng = np.random.default_rng(seed)
        nan_rate = draw(st.sampled_from([0.0, 0.2, 0.6, 1.0]))
        frame = {"item_id": f"id{i}", "timestamp": pd.date_range("2020-01-01", periods=length, freq="D")}
        targets = rng.normal(size=(n_targets, length))
        targets[rng.random((n_targets, length)) < nan_rate] = np.nan
        for t in range(n_targets):
            frame[f"y{t}"] = targets[t]
        for c in range(n_past):
            values = rng.normal(size=length)
            values[rng.random(length) < nan_rate] = np.nan  # past-only covariates may have gaps
            frame[f"past{c}"] = values
        for c in range(n_known):
            frame[f"known{c}"] = rng.normal(size=length)
        frames.append(pd.DataFrame(frame))
        expected[f"id{i}"] = targets
    df = pd.concat(frames, ignore_index=True)
    # shuffle rows: the adapters must not rely on the file's order
    df = df.sample(frac=1.0, random_state=draw(st.integers(0, 1000))).reset_index(drop=True)
    return df, expected, [f"y{t}" for t in range(n_targets)], [f"known{c}" for c in range(n_known)], n_past


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_load_series_keeps_every_observed_series_exactly(case):
    df, expected, target, known, n_past = case
    observed = [i for i, values in expected.items() if not np.isnan(values).all()]
    if not observed:
        with pytest.raises(DataError, match="only missing target values"):
            load_series(df, H, target=target, known_covariates=known)
        return
    series = load_series(df, H, target=target, known_covariates=known)
    assert sorted(series.ids) == sorted(observed)
    for item_id, prepared in zip(series.ids, series.inputs):
        truth = expected[item_id]
        context = prepared["context"].numpy()
        assert context.shape == (len(target) + n_past + len(known), truth.shape[1])
        np.testing.assert_allclose(context[: len(target)], truth.astype(np.float32), equal_nan=True)
        assert int(prepared["n_targets"]) == len(target)
        assert int(prepared["n_covariates"]) == n_past + len(known)
        assert int(prepared["n_future_covariates"]) == len(known)
        if known:  # known covariates come last and have no gaps
            assert not np.isnan(context[-1]).any()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.integers(1, 30))
def test_short_series_are_dropped_and_batches_are_well_formed(case, min_past):
    df, expected, target, known, n_past = case
    if all(np.isnan(v).all() for v in expected.values()):
        return
    series = load_series(df, H, target=target, known_covariates=known)
    lengths = {i: p["context"].shape[-1] for i, p in zip(series.ids, series.inputs)}
    long_enough = sorted(i for i, n in lengths.items() if n >= min_past + H)
    if not long_enough:
        with pytest.raises(DataError, match="no series is long enough"):
            drop_short_series(series, min_past + H, "train_data", "test")
        return
    kept = drop_short_series(series, min_past + H, "train_data", "test")
    assert sorted(kept.ids) == long_enough
    dataset = make_dataset(kept, context_length=32, prediction_length=H, batch_size=4, output_patch_size=16,
                           min_past=min_past, mode=DatasetMode.TRAIN)
    batch = next(iter(dataset))
    rows = batch["context"].shape[0]
    assert batch["context"].shape[1] <= 32
    assert batch["future_target"].shape == (rows, H) and batch["future_covariates"].shape == (rows, H)
    assert batch["group_ids"].shape == (rows,)
    per_group = len(target) + n_past + len(known)
    assert rows % per_group == 0  # whole groups only: targets and their covariates travel together
