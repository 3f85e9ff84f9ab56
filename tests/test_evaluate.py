"""`chronos-distill evaluate`: M3 and a user's file, markdown / JSON / PNG report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import PREDICTION_LENGTH

from chronos_distill import ConfigError, DataError
from chronos_distill.chronos2.loading import load_chronos2
from chronos_distill.cli import main
from chronos_distill.data.synthetic import seasonal_long_table
from chronos_distill.evaluation.metrics import PUBLISHED_M3_SEASONAL_NAIVE, quantile_crossing
from chronos_distill.evaluation.scoring import evaluate, forecast_quantiles, holdout_benchmark


@pytest.mark.slow
def test_evaluate_on_m3_writes_table_json_and_plots(teacher_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["evaluate", "--model", f"tiny={teacher_dir}", "--output", str(out)]) == 0
    published = [PUBLISHED_M3_SEASONAL_NAIVE[s] for s in ("yearly", "quarterly", "monthly")]
    row = (" | ".join(f"{p['WQL']:.4f}" for p in published) + " | " + " | ".join(f"{p['MASE']:.3f}" for p in published))
    assert f"| seasonal_naive | {row} | 1.000 | 1.000 |" in capsys.readouterr().out
    results = json.loads((out / "scores.json").read_text())
    assert set(results["datasets"]) == {"m3_yearly", "m3_quarterly", "m3_monthly"}
    assert results["datasets"]["m3_monthly"]["n_series"] == 1428 and results["datasets"]["m3_monthly"]["horizon"] == 18
    tiny = results["relative"]["tiny"]
    ratios = [results["datasets"][d]["scores"]["tiny"]["WQL"] / results["datasets"][d]["scores"]["seasonal_naive"]["WQL"]
              for d in results["datasets"]]
    assert tiny["WQL"] == pytest.approx(float(np.exp(np.mean(np.log(ratios)))))
    assert results["models"]["tiny"]["parameters"] > 0
    for name in ("scores.md", "plot_m3_yearly.png", "plot_m3_quarterly.png", "plot_m3_monthly.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "plot_m3_monthly.png").read_bytes()[:4] == b"\x89PNG"


def test_holdout_of_a_users_file(tmp_path, teacher_dir):
    table = seasonal_long_table(n_series=6, length=100, seed=4)
    table.loc[(table["item_id"] == "s002") & (table.index % 100 == 95), "target"] = np.nan  # hole in its last 12
    path = tmp_path / "mine.parquet"
    table.to_parquet(path)
    benchmark = holdout_benchmark(str(path), PREDICTION_LENGTH, season_length=24)
    assert benchmark.item_ids == ["s000", "s001", "s003", "s004", "s005"]
    first = table[table["item_id"] == "s000"]["target"].to_numpy()
    np.testing.assert_allclose(benchmark.truth[0], first[-PREDICTION_LENGTH:])
    np.testing.assert_allclose(benchmark.contexts[0], first[:-PREDICTION_LENGTH])

    results = evaluate(model=[teacher_dir], data=str(path), prediction_length=PREDICTION_LENGTH, season_length=24,
                       output=str(tmp_path / "report"))
    assert list(results["datasets"]) == ["mine"]
    # a model given without NAME= is named after its folder
    name = Path(teacher_dir).name
    assert set(results["relative"]) == {"seasonal_naive", name}
    assert (tmp_path / "report" / "plot_mine.png").is_file()
    # every scored model's quantile crossing, as a predict_df user gets its quantiles, and in the table
    forecasts = forecast_quantiles(load_chronos2(teacher_dir), benchmark)
    assert results["crossing"][name] == pytest.approx(quantile_crossing(forecasts))
    assert results["datasets"]["mine"]["crossing"][name] == results["crossing"][name]
    assert results["crossing"]["seasonal_naive"]["rows_crossing"] == 0.0
    table = (tmp_path / "report" / "scores.md").read_text()
    assert "quantiles cross |" in table.splitlines()[0]
    assert f"| {results['crossing'][name]['rows_crossing']:.1%} |" in table


def test_evaluate_refuses_bad_options(tmp_path):
    with pytest.raises(ConfigError, match="--prediction-length"):
        evaluate(model=["x"], data="file.csv")
    with pytest.raises(ConfigError, match="give one of --fev or --data"):
        evaluate(model=["x"], data="file.csv", fev="m3-local", prediction_length=3)
    with pytest.raises(ConfigError, match="names no checkpoint"):
        evaluate(model=[])
    short = seasonal_long_table(n_series=2, length=10, seed=0)
    with pytest.raises(DataError, match="no series has 12 complete steps"):
        holdout_benchmark(short, PREDICTION_LENGTH)
