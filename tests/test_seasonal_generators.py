"""The generators the reference teacher v1 added to the pretraining mix: seeded, and shaped as documented."""

from __future__ import annotations

import numpy as np
import pytest

from chronos_distill.config import PretrainConfig
from chronos_distill.data.synthetic import (
    CALENDAR_PERIODS,
    LONG_PERIODS,
    SHORT_PERIODS,
    intermittent_series,
    seasonal_pattern,
    seasonal_period,
    seasonal_series,
)
from chronos_distill.errors import ConfigError
from chronos_distill.evaluation.metrics import seasonal_naive
from chronos_distill.evaluation.seasonality_suite import SUITE, make_case
from chronos_distill.pretraining.stream import PretrainStream


def test_same_seed_same_series_other_seed_other_series():
    for make in (lambda rng: seasonal_series(rng, 300), lambda rng: intermittent_series(rng, 300)):
        a, b = make(np.random.default_rng(5)), make(np.random.default_rng(5))
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, make(np.random.default_rng(6)))


@pytest.mark.parametrize("period", [2, 4, 7, 12, 15, 24, 52])
def test_a_single_clean_season_repeats_with_its_period_and_its_amplitude(period):
    rng = np.random.default_rng(period)
    y = seasonal_series(rng, 10 * period, periods=(period,), amplitudes=(1.5,), multiplicative=False,
                        noise_scale=0.0, trend=False, shifts=False, outliers=False)
    np.testing.assert_allclose(y[period:], y[:-period], atol=1e-12)
    # level 10 plus a cycle of unit standard deviation scaled by the amplitude, over whole cycles
    assert y.mean() == pytest.approx(10.0) and y.std() == pytest.approx(1.5)


def test_a_multiplicative_season_grows_with_the_level():
    rng = np.random.default_rng(0)
    swings = []
    for _ in range(20):
        y = seasonal_series(rng, 480, periods=(12,), multiplicative=True, noise_scale=0.0, shifts=False,
                            outliers=False)
        level = np.convolve(y, np.ones(12) / 12, mode="valid")  # one whole cycle averages the season out
        swing = np.abs(y[6:-5] - level)
        order = np.argsort(level)
        low, high = order[: len(order) // 4], order[-len(order) // 4:]
        if level[high].mean() > 1.5 * level[low].mean():  # only series whose trend moved the level enough
            swings.append(swing[high].mean() / swing[low].mean())
    assert swings and np.median(swings) > 1.3


def test_pattern_and_period_rules():
    rng = np.random.default_rng(1)
    for period in (2, 3, 7, 12, 52):
        cycle = seasonal_pattern(rng, period)
        assert cycle.shape == (period,) and abs(cycle.mean()) < 1e-12 and cycle.std() == pytest.approx(1.0)
    periods = [seasonal_period(rng) for _ in range(2000)]
    assert set(periods) <= set(SHORT_PERIODS) | set(CALENDAR_PERIODS) | set(LONG_PERIODS)
    short = np.mean([p in SHORT_PERIODS for p in periods])
    assert 0.58 <= short <= 0.70  # 40% drawn below a patch, plus 3 of the 5 calendar periods (4, 7, 12): 64%


def test_generators_never_emit_missing_values_and_counts_are_counts():
    rng = np.random.default_rng(2)
    for _ in range(200):
        assert np.isfinite(seasonal_series(rng, int(rng.integers(48, 600)))).all()
        counts = intermittent_series(rng, 200)
        assert np.isfinite(counts).all() and (counts >= 0).all() and np.array_equal(counts, np.round(counts))
    sparse = [np.mean(intermittent_series(rng, 500) == 0) for _ in range(200)]
    assert max(sparse) > 0.8 and min(sparse) < 0.2  # both intermittent and dense count series occur


def test_the_pretraining_stream_draws_seasonal_and_intermittent_tasks_by_their_weights():
    cfg = PretrainConfig(output="unused", real_data=[], real_weight=0.0, multivariate_weight=0.0,
                         seasonal_weight=0.5, intermittent_weight=0.5, kernel_bank_size=2, context_length=128)
    stream = PretrainStream(cfg, [])
    rng = np.random.default_rng(0)
    tasks = [stream.task(rng, [], 32) for _ in range(200)]
    integer_tasks = sum(np.array_equal(v, np.round(v)) and (v >= 0).all() for v, _, _ in tasks)
    assert 60 < integer_tasks < 140  # the intermittent half (seasonal series are augmented floats)
    with pytest.raises(ConfigError, match="must not exceed 1"):
        PretrainConfig(output="x", real_weight=0.5, seasonal_weight=0.4, intermittent_weight=0.2)


def test_the_seasonality_suite_is_fixed_and_seasonal_naive_is_exact_on_a_clean_season():
    case = next(c for c in SUITE if c.name == "clean sine, period 12")
    a, b = make_case(case), make_case(case)
    np.testing.assert_array_equal(a.contexts, b.contexts)
    np.testing.assert_allclose(seasonal_naive(a.contexts, 64, 12), a.truth, atol=1e-9)
