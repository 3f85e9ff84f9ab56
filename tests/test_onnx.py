"""ONNX export and the ONNX forecaster: parity with PyTorch, int8 quality, the CLI, and clear errors."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from chronos.chronos2 import Chronos2Pipeline

from chronos_distill.chronos2.loading import load_chronos2
from chronos_distill.cli import main
from chronos_distill.config import OnnxExportConfig, PredictConfig
from chronos_distill.deploy.onnx_export import export_onnx
from chronos_distill.deploy.onnx_forecaster import OnnxForecaster, load_onnx_model
from chronos_distill.deploy.predict import predict
from chronos_distill.errors import CheckpointError, ConfigError, DataError

TOLERANCE = 1e-4  # absolute, in the model's normalised (arcsinh) space


@pytest.fixture(scope="module")
def exported(teacher_dir, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    return {"fp32": export_onnx(teacher_dir, folder / "model.onnx"),
            "int8": export_onnx(teacher_dir, folder / "model-int8.onnx", quantize="int8")}


def normalised(model, context: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
    """Predictions (b, q, h) in the model's normalised space: its instance norm with the context's loc/scale."""
    context = context[:, -model.chronos_config.context_length:]
    _, loc_scale = model.instance_norm(context)
    b, q, h = preds.shape
    scaled, _ = model.instance_norm(preds.reshape(b, q * h), loc_scale)
    return scaled.reshape(b, q, h)


CASES = {
    # name: (group ids, context length, output patches, rows with known future covariates)
    "univariate, 1 row": ([0], 16, 1, []),
    "univariate, 5 rows, ragged context": ([0, 1, 2, 3, 4], 50, 2, []),
    "univariate, 33 rows, full context": (list(range(33)), 128, 4, []),
    "multivariate groups": ([0, 0, 0, 1, 1, 2], 96, 3, []),
    "known covariates": ([0, 0, 1, 1, 1, 2], 70, 2, [1, 3, 4]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_onnx_fp32_equals_pytorch_in_the_normalised_space(teacher_dir, exported, case):
    group_ids, length, patches, known = CASES[case]
    model = load_chronos2(teacher_dir)
    onnx_model = load_onnx_model(exported["fp32"])
    generator = torch.Generator().manual_seed(len(case))
    rows = len(group_ids)
    context = torch.randn(rows, length, generator=generator) * 5 + 3
    context[0, : length // 4] = torch.nan  # a short series, left-padded with NaN
    future = torch.full((rows, patches * 16), torch.nan)
    for row in known:
        future[row] = torch.randn(patches * 16, generator=generator)
    groups = torch.tensor(group_ids)
    with torch.no_grad():
        expected = model(context=context, group_ids=groups, future_covariates=future,
                         num_output_patches=patches).quantile_preds
    got = onnx_model(context=context, group_ids=groups, future_covariates=future,
                     num_output_patches=patches).quantile_preds
    assert got.shape == expected.shape == (rows, 21, patches * 16)
    gap = (normalised(model, context, got) - normalised(model, context, expected)).abs().max().item()
    assert gap < TOLERANCE, f"{case}: ONNX and PyTorch differ by {gap:.2e} in the normalised space"


def test_the_forecaster_is_the_pipeline_api(teacher_dir, exported, table):
    """predict_quantiles (with long-horizon unrolling and covariates) and predict_df equal the PyTorch pipeline's."""
    pipeline = Chronos2Pipeline(load_chronos2(teacher_dir))
    forecaster = OnnxForecaster.from_file(exported["fp32"])
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=40), rng.normal(size=(2, 300))]
    for horizon in (7, 80):  # 80 > 4 patches of 16: the pipeline unrolls, on the ONNX model too
        tasks = [{"target": rng.normal(size=90), "past_covariates": {"a": rng.normal(size=90), "b": rng.normal(size=90)},
                  "future_covariates": {"a": rng.normal(size=horizon)}}]
        for inputs in (arrays, tasks):
            expected, _ = pipeline.predict_quantiles(inputs, prediction_length=horizon)
            got, _ = forecaster.predict_quantiles(inputs, prediction_length=horizon)
            for a, b in zip(expected, got):
                np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-4)
    frame = table[table["item_id"].isin(table["item_id"].unique()[:5])]
    np.testing.assert_allclose(forecaster.predict_df(frame, prediction_length=12)["0.5"].to_numpy(),
                               pipeline.predict_df(frame, prediction_length=12)["0.5"].to_numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_int8_wql_is_within_2_percent_of_fp32(tmp_path):
    """On the bundled reference teacher (a trained model) and 60 M3 monthly series: int8 weights cost < 2% WQL."""
    from chronos_distill.data.competition import load_benchmarks
    from chronos_distill.evaluation.metrics import weighted_quantile_loss
    from chronos_distill.evaluation.scoring import forecast_quantiles

    monthly = load_benchmarks("M3", ("monthly",))["m3_monthly"]
    sample = type(monthly)("sample", monthly.item_ids[::24], monthly.contexts[::24], monthly.truth[::24],
                           monthly.season_length, monthly.horizon)
    wql = {}
    for quantize in ("none", "int8"):
        forecaster = OnnxForecaster.from_file(export_onnx("reference", tmp_path / f"{quantize}.onnx", quantize=quantize))
        wql[quantize] = weighted_quantile_loss(sample.truth, forecast_quantiles(forecaster, sample))
    assert (tmp_path / "int8.onnx").stat().st_size < 0.5 * (tmp_path / "none.onnx").stat().st_size
    assert abs(wql["int8"] / wql["none"] - 1) < 0.02, wql


def test_export_leaves_the_model_and_its_checkpoint_untouched(teacher_dir, tmp_path):
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(teacher_dir).iterdir()}
    model = load_chronos2(teacher_dir).to(torch.bfloat16).train()  # as a caller still training it has it
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, tmp_path / "m.onnx")
    assert model.training and all(m.training for m in model.modules())  # mode, dtype and weights as they were
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert "_prepare_patched_future" not in model.__dict__  # the export-time patch is gone
    assert not torch._C._is_torch_function_mode_enabled()
    with pytest.raises(ValueError, match="future_covariates contains NaN"):  # the model's own check works again
        model(context=torch.randn(1, 32), future_covariates=torch.tensor([[float("nan")] * 16]),
              future_covariates_mask=torch.ones(1, 16))
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(teacher_dir).iterdir()} == before


def test_cli_export_and_predict_from_folder_and_onnx(teacher_dir, tmp_path, capsys):
    history, future = covariate_frames()
    history.to_csv(tmp_path / "history.csv", index=False)
    future.to_csv(tmp_path / "future.csv", index=False)
    assert main(["export-onnx", teacher_dir, "--output", str(tmp_path / "m.onnx")]) == 0
    assert "ONNX model written" in capsys.readouterr().out
    for name, model in (("torch", teacher_dir), ("onnx", str(tmp_path / "m.onnx"))):
        assert main(["predict", "--model", model, "--data", str(tmp_path / "history.csv"), "--future-data",
                     str(tmp_path / "future.csv"), "--prediction-length", "6", "--quantile-levels", "0.1,0.5,0.9",
                     "--output", str(tmp_path / f"{name}.parquet")]) == 0
    torch_forecasts = pd.read_parquet(tmp_path / "torch.parquet")
    onnx_forecasts = pd.read_parquet(tmp_path / "onnx.parquet")
    assert list(onnx_forecasts.columns) == ["item_id", "timestamp", "target_name", "predictions", "0.1", "0.5", "0.9"]
    assert len(onnx_forecasts) == 3 * 6
    np.testing.assert_allclose(onnx_forecasts["0.5"], torch_forecasts["0.5"], rtol=1e-4, atol=1e-4)
    # the known covariate matters: without its future values the forecasts change
    assert main(["predict", "--model", str(tmp_path / "m.onnx"), "--data", str(tmp_path / "history.csv"),
                 "--ignore-columns", "price", "--prediction-length", "6", "--output", str(tmp_path / "plain.csv")]) == 0
    assert not np.allclose(pd.read_csv(tmp_path / "plain.csv")["0.5"], onnx_forecasts["0.5"])


def covariate_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    history, future = [], []
    for i, length in enumerate((40, 55, 70)):
        times = pd.date_range("2021-01-01", periods=length + 6, freq="D")
        price = rng.normal(size=length + 6)
        target = 2 * price + rng.normal(scale=0.1, size=length + 6)
        history.append(pd.DataFrame({"item_id": f"s{i}", "timestamp": times[:length], "target": target[:length],
                                     "price": price[:length]}))
        future.append(pd.DataFrame({"item_id": f"s{i}", "timestamp": times[length:], "price": price[length:]}))
    return pd.concat(history, ignore_index=True), pd.concat(future, ignore_index=True)


# ----------------------------------------------------------------------------------------------------------
# bad input: one clear line


def test_a_folder_that_is_not_chronos2_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(CheckpointError, match="not a Chronos-2"):
        export_onnx(tmp_path, tmp_path / "m.onnx")


def test_an_onnx_file_from_elsewhere_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), tmp_path / "other.onnx")
    with pytest.raises(CheckpointError, match="not a Chronos-2 forecaster written by `chronos-distill export-onnx`"):
        OnnxForecaster.from_file(tmp_path / "other.onnx")
    (tmp_path / "text.onnx").write_text("item_id,timestamp,target\n")
    with pytest.raises(CheckpointError, match="is not an ONNX file"):
        OnnxForecaster.from_file(tmp_path / "text.onnx")


def test_a_context_longer_than_the_export_is_refused(exported):
    onnx_model = load_onnx_model(exported["fp32"])
    with pytest.raises(DataError, match="longer than the 128 the ONNX model"):
        onnx_model(context=torch.randn(2, 129), num_output_patches=1)
    with pytest.raises(DataError, match="1 to 4 output patches"):
        onnx_model(context=torch.randn(2, 64), num_output_patches=5)


def test_a_missing_known_covariate_is_named(teacher_dir, tmp_path):
    history, future = covariate_frames()
    history.to_csv(tmp_path / "history.csv", index=False)
    future.drop(columns="price").to_csv(tmp_path / "future.csv", index=False)
    options = dict(data=str(tmp_path / "history.csv"), prediction_length=6, output=str(tmp_path / "f.csv"))
    with pytest.raises(DataError, match=r"known covariate 'price' \(--known-covariates\) is missing"):
        predict(PredictConfig(model=teacher_dir, future_data=str(tmp_path / "future.csv"), known_covariates=["price"],
                              **options))
    # a student distilled with a known covariate asks for its future values, as a folder and as ONNX
    student = tmp_path / "student"
    shutil.copytree(teacher_dir, student)
    (student / "distillation.json").write_text(json.dumps(
        {"data": {"train": {"columns": {"target": ["target"], "past_covariates": [], "known_covariates": ["price"]}}}}))
    export_onnx(student, tmp_path / "student.onnx")

    for model in (student, tmp_path / "student.onnx"):
        with pytest.raises(DataError, match=r"distilled with known covariate\(s\) \['price'\]; give their future values"):
            predict(model=str(model), **options)
    assert not (tmp_path / "f.csv").exists()


@pytest.mark.parametrize("options, message", [
    (dict(quantize="int4"), r"`quantize` \(--quantize\) must be one of \['none', 'int8'\]"),
    (dict(opset=12), r"`opset` \(--opset\) must be at least 18"),
    (dict(opset=30), r"`opset` \(--opset\) must be at most 23, got 30"),
    (dict(output="model.bin"), r"must name a .onnx file"),
])
def test_bad_export_options(options, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        OnnxExportConfig(**{"model": "reference", "output": "m.onnx", **options})
    with pytest.raises(ConfigError, match=message):  # the Python API checks the same way, before any work
        export_onnx(**{"model": "reference", "output": tmp_path / "m.onnx", **options})


@pytest.mark.parametrize("options, message", [
    (dict(output="forecasts.json"), r"must end in .csv or .parquet"),
    (dict(prediction_length=0), r"`prediction_length` \(--prediction-length\) must be at least 1"),
    (dict(quantile_levels=[0.5, 1.5]), r"`quantile_levels` \(--quantile-levels\) element must be within \(0, 1\), got 1.5"),
    (dict(known_covariates=["price"]), r"needs --future-data"),
])
def test_bad_predict_options(options, message):
    with pytest.raises(ConfigError, match=message):
        PredictConfig(**{"model": "reference", "data": "x.csv", "prediction_length": 6, "output": "f.csv", **options})


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    (tmp_path / "text.onnx").write_text("not a model")
    (tmp_path / "h.csv").write_text("item_id,timestamp,target\na,2020-01-01,1\n")
    code = main(["predict", "--model", str(tmp_path / "text.onnx"), "--data", str(tmp_path / "h.csv"),
                 "--prediction-length", "3", "--output", str(tmp_path / "f.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not an ONNX file" in err
