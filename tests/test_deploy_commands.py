"""The deployment commands tried as a new user would (issue 21, sections 3 and 5): ``predict``, ``export-onnx``
and ``evaluate`` on a run folder; each failure is one line with exit 2, before any slow work."""

from __future__ import annotations

import importlib.metadata
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import PREDICTION_LENGTH, TINY_STUDENT
from test_onnx import covariate_frames

import chronos_distill.deploy.predict as predict_module
from chronos_distill import distill
from chronos_distill.chronos2.loading import load_chronos2
from chronos_distill.cli import main
from chronos_distill.data.synthetic import seasonal_long_table
from chronos_distill.data.tables import TableLayout, check_table
from chronos_distill.errors import DataError, DistillError


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("chronos-distill: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


@pytest.fixture
def history(tmp_path):
    frame, future = covariate_frames()
    frame.to_csv(tmp_path / "history.csv", index=False)
    future.to_csv(tmp_path / "future.csv", index=False)
    return tmp_path


def _never(*args, **kwargs):
    raise AssertionError("the slow part ran before the output was checked")


def test_an_unwritable_output_is_refused_before_any_work(history, capsys, monkeypatch):
    monkeypatch.setattr(predict_module, "load_forecaster", _never)
    assert main(["predict", "--model", "reference", "--data", str(history / "history.csv"), "--prediction-length",
                 "6", "--output", "/proc/chronos-distill-x.csv"]) == 2
    assert "output /proc/chronos-distill-x.csv cannot be written" in _one_error_line(capsys)
    monkeypatch.setattr(torch.onnx, "export", _never)
    monkeypatch.setattr("chronos_distill.chronos2.loading.load_chronos2", _never)
    assert main(["export-onnx", "reference", "--output", "/proc/chronos-distill-m.onnx"]) == 2
    assert "output /proc/chronos-distill-m.onnx cannot be written" in _one_error_line(capsys)


def test_a_series_with_no_observed_value_is_named_and_left_out(history, teacher_dir, caplog):
    frame = pd.read_csv(history / "history.csv")
    empty = frame[frame["item_id"] == "s0"].assign(item_id="nothing", target=np.nan)
    pd.concat([frame, empty]).to_csv(history / "with_empty.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="chronos_distill"):
        predict_module.predict(model=teacher_dir, data=str(history / "with_empty.csv"), prediction_length=6,
                               output=str(history / "f.csv"))
    assert "skipping 1 series whose targets are all missing: 'nothing'" in caplog.text
    assert set(pd.read_csv(history / "f.csv")["item_id"]) == {"s0", "s1", "s2"}


def test_a_duplicated_timestamp_gets_the_same_message_as_in_distill(history, capsys):
    frame = pd.read_csv(history / "history.csv")
    pd.concat([frame, frame.iloc[[3]]]).to_csv(history / "dup.csv", index=False)
    assert main(["predict", "--model", "reference", "--data", str(history / "dup.csv"), "--prediction-length", "6",
                 "--output", str(history / "f.csv")]) == 2
    line = _one_error_line(capsys)
    with pytest.raises(DataError) as distill_side:
        check_table(pd.read_csv(history / "dup.csv"), str(history / "dup.csv"), TableLayout())
    assert line == f"chronos-distill: error: {distill_side.value}"
    assert "series 's0' has more than one row for timestamp" in line


def test_predict_says_where_the_forecasts_went_once(history, teacher_dir, capsys):
    assert main(["predict", "--model", teacher_dir, "--data", str(history / "history.csv"), "--prediction-length",
                 "6", "--ignore-columns", "price", "--output", str(history / "f.csv")]) == 0
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("written to") == 1


def test_predict_reads_day_first_timestamps_with_timestamp_format(history, teacher_dir):
    frame = pd.read_csv(history / "history.csv", parse_dates=["timestamp"])
    frame.assign(timestamp=frame["timestamp"].dt.strftime("%d/%m/%Y")).to_csv(history / "day_first.csv", index=False)
    assert main(["predict", "--model", teacher_dir, "--data", str(history / "day_first.csv"), "--prediction-length",
                 "6", "--ignore-columns", "price", "--timestamp-format", "%d/%m/%Y",
                 "--output", str(history / "f.csv")]) == 0
    forecasts = pd.read_csv(history / "f.csv", parse_dates=["timestamp"])
    last = frame.groupby("item_id")["timestamp"].max()
    assert (forecasts.groupby("item_id")["timestamp"].min() == last + pd.Timedelta(days=1)).all()


def test_day_first_timestamps_without_a_format_are_one_line(history, capsys):
    frame = pd.read_csv(history / "history.csv", parse_dates=["timestamp"])
    frame.assign(timestamp=frame["timestamp"].dt.strftime("%d/%m/%Y")).to_csv(history / "day_first.csv", index=False)
    assert main(["predict", "--model", "reference", "--data", str(history / "day_first.csv"), "--prediction-length",
                 "6", "--output", str(history / "f.csv")]) == 2
    assert "does not hold timestamps (pass --timestamp-format)" in _one_error_line(capsys)


def test_too_few_future_rows_name_the_future_file_and_the_series(history, capsys):
    future = pd.read_csv(history / "future.csv")
    future[~((future["item_id"] == "s1") & (future.index % 6 == 0))].to_csv(history / "short.csv", index=False)
    assert main(["predict", "--model", "reference", "--data", str(history / "history.csv"), "--future-data",
                 str(history / "short.csv"), "--prediction-length", "6", "--output", str(history / "f.csv")]) == 2
    line = _one_error_line(capsys)
    assert f"future_data file {history / 'short.csv'}: series 's1' has 5 row(s) of future values" in line
    assert "needs exactly 6 per series" in line


def test_the_predictions_column_is_the_median(history, teacher_dir):
    predict_module.predict(model=teacher_dir, data=str(history / "history.csv"), prediction_length=6,
                           ignore_columns=["price"], quantile_levels=[0.1, 0.5, 0.9], output=str(history / "f.csv"))
    forecasts = pd.read_csv(history / "f.csv")
    np.testing.assert_allclose(forecasts["predictions"], forecasts["0.5"])


def test_evaluate_a_run_folder_scores_its_distilled_target_under_the_runs_name(tmp_path, teacher_dir):
    from chronos_distill.evaluation.scoring import evaluate

    table = seasonal_long_table(n_series=6, length=120, seed=2).rename(columns={"target": "sales"})
    table.to_csv(tmp_path / "sales.csv", index=False)
    distill(teacher=teacher_dir, train_data=str(tmp_path / "sales.csv"), target=["sales"],
            prediction_length=PREDICTION_LENGTH, output=str(tmp_path / "sales-student"), max_steps=1, batch_size=8,
            **TINY_STUDENT)
    for model in (tmp_path / "sales-student", tmp_path / "sales-student" / "model"):
        results = evaluate(model=[str(model)], data=str(tmp_path / "sales.csv"),
                           prediction_length=PREDICTION_LENGTH, output=str(tmp_path / "evaluation"))
        assert list(results["models"]) == ["sales-student"]


# ----------------------------------------------------------------------------------------------------------
# ONNX export guards


def test_the_nan_check_override_answers_only_the_nan_check():
    from chronos_distill.deploy.onnx_export import _NoNaNAfterMasking

    values = torch.tensor([1.0, float("nan")])
    with _NoNaNAfterMasking():
        assert not bool(torch.isnan(values).any())  # the check the export stands in for
        assert bool(torch.tensor(True)) and bool((values > 0).any())  # every other truth test is the tensor's own
        assert bool(torch.isnan(values).any()) is False


def test_the_float_einsum_applies_to_the_group_mask_only(teacher_dir):
    from chronos_distill.deploy.onnx_export import onnx_exportable

    model = load_chronos2(teacher_dir)
    group_ids, attention_mask = torch.tensor([0, 0, 1]), torch.ones(3, 4)
    expected = model.encoder._construct_and_invert_group_time_mask(group_ids, attention_mask, torch.float32)
    with onnx_exportable(model):
        # no torch-function mode is active outside the two patched methods: every other einsum is torch's own
        assert not torch._C._is_torch_function_mode_enabled()
        torch.testing.assert_close(
            model.encoder._construct_and_invert_group_time_mask(group_ids, attention_mask, torch.float32), expected)
    assert "_construct_and_invert_group_time_mask" not in model.encoder.__dict__


@pytest.mark.parametrize("release", ["3.0.0", "2.4.0"])
def test_an_untested_chronos_release_line_is_refused(monkeypatch, tmp_path, release):
    from chronos_distill.deploy import onnx_export

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: release if name == "chronos-forecasting" else real(name))
    with pytest.raises(DistillError, match=rf"chronos-forecasting {release} is installed, which they were not tested "
                                           r"with; install 'chronos-forecasting>=2.3,<2.4'"):
        onnx_export.export_onnx("reference", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_the_device_is_checked_before_torch_and_a_gpu_that_is_not_there_is_one_line(history, teacher_dir, capsys,
                                                                                      monkeypatch, tmp_path):
    """``--device`` (evaluate, predict): its spelling is refused with the other option errors; asking for a GPU this
    machine does not have is one line; left out, a model forecasts on the GPU when one is visible."""
    from conftest import assert_one_line_errors_without_torch

    from chronos_distill.chronos2.loading import inference_device
    from chronos_distill.errors import ConfigError

    spelling = r"`device` \(--device\) must be cpu, cuda or cuda:N, got 'gpu'"
    assert_one_line_errors_without_torch({
        "evaluate": (["evaluate", "--model", "reference", "--device", "gpu"], spelling),
        "predict": (["predict", "--model", "reference", "--data", str(history / "history.csv"), "--prediction-length",
                     "6", "--output", str(tmp_path / "f.csv"), "--device", "gpu"], spelling)})
    capsys.readouterr()
    assert main(["predict", "--model", teacher_dir, "--data", str(history / "history.csv"), "--prediction-length", "6",
                 "--output", str(tmp_path / "g.csv"), "--device", "cuda"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "--device cuda: 0 GPU(s) visible here; use --device cpu" in err[0], err
    assert main(["predict", "--model", teacher_dir, "--data", str(history / "history.csv"), "--prediction-length", "6",
                 "--output", str(tmp_path / "h.csv"), "--device", "cpu"]) == 0

    assert inference_device() == torch.device("cpu")  # no GPU on this machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert inference_device() == torch.device("cuda") and inference_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ConfigError, match=r"--device cuda:2: 2 GPU\(s\) visible here"):
        inference_device("cuda:2")
