"""`chronos-distill evaluate --fev`: fev's own windows and scores, on local tasks (no network)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from chronos.chronos2 import Chronos2Pipeline

from chronos_distill import ConfigError, DataError
from chronos_distill.chronos2.loading import load_chronos2
from chronos_distill.cli import main
from chronos_distill.data.competition import load_m3
from chronos_distill.evaluation.fev_models import Chronos2FevModel
from chronos_distill.evaluation.fev_tasks import competition_task, load_tasks
from chronos_distill.evaluation.leaderboard import published_summaries
from chronos_distill.evaluation.metrics import PUBLISHED_M3_SEASONAL_NAIVE
from chronos_distill.evaluation.scoring import evaluate_models

fev = pytest.importorskip("fev")  # the [fev] extra, part of the test install


def write_fev_parquet(path, n_series=4, length=120, covariate=None, future_change=None, horizon=16):
    """A fev data set (one row per series: id, timestamp sequence, target sequence[, promo sequence])."""
    rng = np.random.default_rng(0)
    t = np.arange(length)
    rows = {"id": [], "timestamp": [], "target": []}
    if covariate:
        rows[covariate] = []
    for i in range(n_series):
        promo = (rng.random(length) < 0.2).astype(np.float64)
        if future_change is not None:
            promo[-horizon:] = future_change
        rows["id"].append(f"s{i}")
        rows["timestamp"].append(pd.date_range("2020-01-01", periods=length, freq="D").to_pydatetime().tolist())
        rows["target"].append((10 + 3 * np.sin(2 * np.pi * t / 7 + i) + 5 * promo + rng.normal(0, 0.3, length)).tolist())
        if covariate:
            rows[covariate].append(promo.tolist())
    types = {"id": pa.string(), "timestamp": pa.list_(pa.timestamp("us")), "target": pa.list_(pa.float64()),
             covariate: pa.list_(pa.float64())}
    pq.write_table(pa.table({k: pa.array(v, types[k]) for k, v in rows.items()}), path)
    return str(path)


@pytest.mark.slow
def test_local_m3_monthly_task_end_to_end_matches_published_naive_and_our_evaluate(teacher_dir, tmp_path, capsys):
    from chronos_distill import distill

    table = pd.DataFrame({"item_id": np.repeat(["a", "b"], 80), "timestamp": np.tile(pd.date_range("2000-01-01",
                          periods=80, freq="MS"), 2), "target": np.tile(np.sin(np.arange(80) / 2) + 5, 2)})
    student = distill(teacher=teacher_dir, train_data=table, prediction_length=18, output=str(tmp_path / "run"),
                      max_steps=2, batch_size=8, student_d_model=32, student_num_heads=2, student_d_ff=64).model_dir
    out = tmp_path / "fev"
    assert main(["evaluate", "--model", f"student={student},teacher={teacher_dir}", "--fev", "m3-monthly-local",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    summaries = pd.read_csv(out / "fev_summaries.csv")
    assert sorted(summaries["model_name"]) == ["seasonal_naive", "student", "teacher"]
    assert len(pd.read_parquet(out / "fev_summaries.parquet")) == 3
    by_model = summaries.set_index("model_name")
    published = PUBLISHED_M3_SEASONAL_NAIVE["monthly"]
    assert round(by_model.loc["seasonal_naive", "WQL"], 4) == published["WQL"]
    assert round(by_model.loc["seasonal_naive", "MASE"], 3) == published["MASE"]
    assert by_model.loc["seasonal_naive", "test_error"] == by_model.loc["seasonal_naive", "WQL"]  # WQL is the metric
    # the same windows through our own evaluate (cross-learning off in both): the same WQL
    ours, _ = evaluate_models({"teacher": Chronos2Pipeline(load_chronos2(teacher_dir))}, {"m3_monthly": load_m3("monthly")})
    assert by_model.loc["teacher", "WQL"] == pytest.approx(ours["datasets"]["m3_monthly"]["scores"]["teacher"]["WQL"],
                                                           abs=1e-6)
    board = pd.read_csv(out / "fev_leaderboard.csv", index_col=0)
    assert set(board.index) == {"seasonal_naive", "student", "teacher"}
    assert board.loc["seasonal_naive", "skill_score"] == pytest.approx(0.0)
    expected_skill = 1 - by_model.loc["teacher", "test_error"] / by_model.loc["seasonal_naive", "test_error"]
    assert board.loc["teacher", "skill_score"] == pytest.approx(expected_skill)
    assert "| teacher |" in printed and "skill_score" in printed


def test_a_task_with_a_known_covariate_passes_it_to_the_model(teacher_dir, tmp_path):
    horizon = 16
    model = Chronos2FevModel(Chronos2Pipeline(load_chronos2(teacher_dir)), cross_learning=False)
    forecasts = []
    for future in (0.0, 1.0):  # only the covariate's future values differ
        path = write_fev_parquet(tmp_path / f"promo{future}.parquet", covariate="promo", future_change=future,
                                 horizon=horizon)
        task = fev.Task(dataset_path=path, horizon=horizon, seasonality=7, quantile_levels=[0.1, 0.5, 0.9],
                        eval_metric="WQL", known_dynamic_columns=["promo"])
        predictions = model.fit_predict(task)
        forecasts.append(np.asarray(predictions[0]["target"]["0.5"]))
        summary = task.evaluation_summary(predictions, model_name="tiny")
        assert np.isfinite(summary["test_error"]) and summary["known_dynamic_columns"] == ["promo"]
    assert forecasts[0].shape == (4, horizon)
    assert not np.allclose(forecasts[0], forecasts[1])  # the known future reached the model


def test_a_horizon_beyond_the_teachers_is_unrolled_by_the_pipeline(teacher_dir, tmp_path):
    teacher = load_chronos2(teacher_dir)
    own = teacher.chronos_config.max_output_patches * teacher.chronos_config.output_patch_size
    horizon = own + 16
    path = write_fev_parquet(tmp_path / "long.parquet", length=400)
    task = fev.Task(dataset_path=path, horizon=horizon, seasonality=7, quantile_levels=[0.1, 0.5, 0.9], eval_metric="WQL")
    predictions = Chronos2FevModel(Chronos2Pipeline(teacher)).fit_predict(task)
    median = np.asarray(predictions[0]["target"]["0.5"])
    assert median.shape == (4, horizon) and np.isfinite(median).all()
    assert np.isfinite(task.evaluation_summary(predictions, model_name="tiny")["test_error"])


def test_cross_learning_makes_a_series_forecast_depend_on_the_others(teacher_dir, tmp_path):
    path = write_fev_parquet(tmp_path / "group.parquet", n_series=6)
    task = fev.Task(dataset_path=path, horizon=16, seasonality=7, quantile_levels=[0.5], eval_metric="WQL")
    pipeline = Chronos2Pipeline(load_chronos2(teacher_dir))
    alone = np.asarray(Chronos2FevModel(pipeline, cross_learning=False).fit_predict(task)[0]["target"]["0.5"])
    shared = np.asarray(Chronos2FevModel(pipeline, cross_learning=True).fit_predict(task)[0]["target"]["0.5"])
    assert not np.allclose(alone, shared)
    # off, a series' forecast is its own: the same as when it is the task's only series
    first = tmp_path / "first.parquet"
    pq.write_table(pq.read_table(path).slice(0, 1), first)
    single = fev.Task(dataset_path=str(first), horizon=16, seasonality=7, quantile_levels=[0.5], eval_metric="WQL")
    np.testing.assert_allclose(np.asarray(Chronos2FevModel(pipeline).fit_predict(single)[0]["target"]["0.5"])[0],
                               alone[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("problem", ["missing file", "no target column"])
def test_a_task_with_a_bad_dataset_is_one_line_naming_the_task(problem, teacher_dir, tmp_path, capsys):
    data = tmp_path / "data.parquet"
    if problem == "no target column":
        pq.write_table(pa.table({"id": ["a"], "timestamp": pa.array([[0]], pa.list_(pa.timestamp("us"))),
                                 "sales": pa.array([[1.0]], pa.list_(pa.float64()))}), data)
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(yaml.safe_dump({"tasks": [{"dataset_path": str(data), "horizon": 4, "task_name": "my_sales"}]}))
    with pytest.raises(DataError, match="my_sales") as raised:
        load_tasks(str(tasks), tmp_path / "fev_data")
    assert ("does not exist" if problem == "missing file" else "no column 'target'") in str(raised.value)
    assert main(["evaluate", "--model", teacher_dir, "--fev", str(tasks), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "my_sales" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_task_files_and_presets_are_read_or_refused_clearly(tmp_path):
    path = write_fev_parquet(tmp_path / "d.parquet")
    as_list = tmp_path / "list.yaml"
    as_list.write_text(yaml.safe_dump([{"dataset_path": path, "horizon": 8, "seasonality": 7}]))
    (task,) = load_tasks(str(as_list), tmp_path)
    assert task.horizon == 8 and task.seasonality == 7
    with pytest.raises(ConfigError, match="neither a task file nor a preset"):
        load_tasks("no-such-preset", tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"tasks": [{"dataset_path": path, "horizon": 8, "no_such_field": 1}]}))
    with pytest.raises(ConfigError, match="task 0 .* not a valid fev task"):
        load_tasks(str(bad), tmp_path)
    with pytest.raises(ConfigError, match="only apply with --fev"):
        from chronos_distill.config import EvaluateConfig

        EvaluateConfig(model=["reference"], cross_learning=True)


def test_the_local_m3_task_is_the_official_split(tmp_path):
    task = competition_task("M3", "quarterly", tmp_path)
    (window,) = list(task.iter_windows())
    past, _ = window.get_input_data()
    truth = window.get_ground_truth()
    m3 = load_m3("quarterly")
    assert task.horizon == 8 and task.seasonality == 4 and len(past) == len(m3)
    order = {f"M3/{sn}": i for i, sn in enumerate(m3.item_ids)}
    for row, future in zip(past.select(range(5)), truth.select(range(5))):
        i = order[row["id"]]
        np.testing.assert_allclose(row["target"], m3.contexts[i])
        np.testing.assert_allclose(future["target"], m3.truth[i])


def test_published_results_without_network_are_left_out_in_one_line(monkeypatch, caplog):
    def offline(url, *args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(pd, "read_csv", offline)
    ours = pd.DataFrame({"task_name": ["m3_monthly"], "horizon": [18], "model_name": ["student"]})
    assert published_summaries(["chronos-2"], ours) is None
    (record,) = [r for r in caplog.records if "published fev results left out" in r.getMessage()]
    assert "chronos-2.csv" in record.getMessage() and "\n" not in record.getMessage()


def test_trained_on_this_dataset_is_true_where_the_model_or_its_teacher_saw_the_data(teacher_dir, tmp_path):
    """The reference teachers pretrained on M1 and M3, and a student distilled from one inherits what its teacher
    saw: their fev summaries on the local M1 / M3 tasks say trained_on_this_dataset; a model of unknown corpus
    does not."""
    import json
    import shutil

    from chronos_distill.chronos2.checkpoints import training_corpus
    from chronos_distill.evaluation.fev_tasks import competition_of, load_tasks
    from chronos_distill.evaluation.leaderboard import run_fev

    assert training_corpus("reference") == training_corpus("reference-v0") == {"M1", "M3"}
    student = tmp_path / "student"
    shutil.copytree(teacher_dir, student)
    (student / "distillation.json").write_text(json.dumps({"teacher": {"name": "chronos-distill reference teacher v2"}}))
    assert training_corpus(student) == {"M1", "M3"} and training_corpus(teacher_dir) == set()
    tasks = load_tasks("m3-monthly-local", tmp_path / "data")
    assert [competition_of(t) for t in tasks] == ["M3"]
    model = Chronos2Pipeline(load_chronos2(teacher_dir))
    summaries = run_fev({"seen": model, "unseen": model}, tasks, corpora={"seen": {"M3"}, "unseen": set()})
    flags = dict(zip(summaries["model_name"], summaries["trained_on_this_dataset"]))
    assert flags == {"seasonal_naive": False, "seen": True, "unseen": False}
