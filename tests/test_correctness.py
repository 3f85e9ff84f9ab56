"""Bugs users would hit (issue 21, section 1), each reproduced: every test here failed on f76a788.

- a short training series made the run forget its columns (known covariates) in ``distillation.json``;
- the teacher cache key did not change when the drawn rows changed (only when the options did);
- forecasting and exporting changed the caller's model in place (dtype, train mode);
- under torchrun every rank put the teacher cache's teacher on GPU 0 and built the whole cache itself (now each
  rank labels its own share of the shards, issue 32);
- building a ``DistillConfig`` imported torch;
- ``predict(config, **options)`` ignored ``options``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import PREDICTION_LENGTH, TINY_STUDENT
from safetensors.torch import load_file

import chronos_distill.data.transfer as transfer_module
from chronos_distill import distill
from chronos_distill.chronos2.loading import load_chronos2, load_teacher
from chronos_distill.config import PredictConfig, TransferShares
from chronos_distill.data.series import load_series
from chronos_distill.data.synthetic import seasonal_long_table
from chronos_distill.data.teacher_cache import cached_transfer_set, windows_fingerprint
from chronos_distill.errors import DataError

WINDOWS = dict(context_length=128, prediction_length=PREDICTION_LENGTH, batch_size=16, output_patch_size=16, min_past=12)


def test_a_short_series_does_not_make_the_student_forget_its_known_covariates(tmp_path, teacher_dir):
    table = seasonal_long_table(n_series=8, length=120, seed=3, covariate=True)
    short = table[table["item_id"] == "s000"].head(10)  # shorter than min_past + prediction_length: dropped
    table = pd.concat([table[table["item_id"] != "s000"], short], ignore_index=True)
    result = distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                     output=str(tmp_path / "run"), known_covariates=["price"], max_steps=1, batch_size=8,
                     **TINY_STUDENT)
    record = json.loads((result.model_dir / "distillation.json").read_text())
    assert record["data"]["train"]["n_series"] == 7
    assert record["data"]["train"]["columns"]["known_covariates"] == ["price"]
    assert "known covariates `price`" in (result.model_dir / "README.md").read_text()
    # ... so predict still asks for the covariate's future values
    history = tmp_path / "history.csv"
    table.to_csv(history, index=False)
    from chronos_distill.deploy.predict import predict

    with pytest.raises(DataError, match=r"distilled with known covariate\(s\) \['price'\]"):
        predict(model=str(tmp_path / "run"), data=str(history), prediction_length=PREDICTION_LENGTH,
                output=str(tmp_path / "f.csv"))


def _series():
    return load_series(seasonal_long_table(n_series=6, length=160, seed=0), PREDICTION_LENGTH, target=["target"])


def test_the_fingerprint_of_drawn_rows_is_pinned():
    """If this fails, the windows or transfer rows drawn from the same options changed: the cache key changes
    with them (that is the point), and this pin is updated with the new value."""
    series = _series()
    shares = TransferShares(future=0.25, mixup=0.125, synthetic=0.125)
    assert windows_fingerprint(series, 0, shares=shares, **WINDOWS) == PINNED_FINGERPRINT


PINNED_FINGERPRINT = "88aa7107a1c2853f22e259c0211984befa54b363143f5c0b289ff7e706731652"


def test_the_cache_key_changes_when_the_synthetic_rows_change_and_options_do_not(tmp_path, teacher_dir, monkeypatch):
    teacher = load_teacher(teacher_dir)
    series = _series()
    shares = TransferShares(synthetic=0.25)
    _, first, reused = cached_transfer_set(tmp_path, teacher, series, 2, 0, shares=shares, **WINDOWS)
    assert not reused
    _, again, reused = cached_transfer_set(tmp_path, teacher, series, 2, 0, shares=shares, **WINDOWS)
    assert reused and again == first
    original = transfer_module.synthetic_series
    monkeypatch.setattr(transfer_module, "synthetic_series", lambda rng, length: 2.0 * original(rng, length))
    _, changed, reused = cached_transfer_set(tmp_path, teacher, series, 2, 0, shares=shares, **WINDOWS)
    assert not reused and changed != first  # the old cache, built with other rows, is not reused


def test_forecasting_and_exporting_leave_the_callers_model_as_it_was(tmp_path, teacher_dir):
    pytest.importorskip("onnxruntime")
    from chronos_distill.data.competition import Benchmark
    from chronos_distill.deploy.onnx_export import export_onnx
    from chronos_distill.evaluation.scoring import forecast_quantiles
    from chronos_distill.evaluation.seasonality_suite import SUITE, make_case, score_case

    model = load_chronos2(teacher_dir).to(torch.bfloat16).train()
    model.requires_grad_(True)
    weights = {k: v.clone() for k, v in model.state_dict().items()}

    def unchanged(what):
        assert all(p.dtype == torch.bfloat16 for p in model.parameters()), what
        assert model.training and all(m.training for m in model.modules()), what
        for key, value in model.state_dict().items():
            assert torch.equal(value, weights[key]), (what, key)

    rng = np.random.default_rng(0)
    bench = Benchmark("b", ["a", "b"], [rng.normal(size=40), rng.normal(size=50)], rng.normal(size=(2, 8)), 1, 8)
    assert np.isfinite(forecast_quantiles(model, bench)).all()
    unchanged("forecast_quantiles")
    score_case(model, make_case(SUITE[0], n_series=2, context=64, horizon=16))
    unchanged("seasonality suite")
    export_onnx(model, tmp_path / "m.onnx")
    unchanged("export_onnx")
    assert (tmp_path / "m.onnx").stat().st_size > 0


def test_building_and_validating_configs_imports_no_torch(tmp_path):
    code = (
        "import sys\n"
        "from chronos_distill.config import DistillConfig, PretrainConfig, PredictConfig, EvaluateConfig\n"
        "c = DistillConfig(teacher='reference', train_data='x.csv', prediction_length=12, output='o',\n"
        "                  transfer_future=0.2, transfer_synthetic=0.1, layer_map='uniform', feature_weight=0.1,\n"
        "                  trainer_args={'gradient_accumulation_steps': 2})\n"
        "assert c.transfer_shares().total > 0.29\n"
        "PretrainConfig(output='o', trainer_args={'save_total_limit': 3}, context_buckets='512,128')\n"
        "PredictConfig(model='m', data='d.csv', prediction_length=3, output='f.csv', timestamp_format='%d/%m/%Y')\n"
        "EvaluateConfig(model=['reference'])\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_predict_with_a_config_applies_the_keyword_options(tmp_path, monkeypatch):
    import chronos_distill.deploy.predict as predict_module

    seen = {}

    def fake_check_table(df, source, layout, **_):  # stop right after the options are read
        seen.update(vars(layout))
        raise DataError("stop")

    monkeypatch.setattr(predict_module, "check_table", fake_check_table)
    data = tmp_path / "d.csv"
    seasonal_long_table(n_series=2, length=30).rename(columns={"target": "sales"}).to_csv(data, index=False)
    cfg = PredictConfig(model="reference", data=str(data), prediction_length=4, output=str(tmp_path / "f.csv"))
    with pytest.raises(DataError, match="stop"):
        predict_module.predict(cfg, target=["sales"], timestamp_format="%Y-%m-%d %H:%M:%S")
    assert seen["target"] == ["sales"] and seen["timestamp_format"] == "%Y-%m-%d %H:%M:%S"


@pytest.mark.slow
def test_torchrun_restarts_a_worker_killed_while_labelling_and_the_cache_is_completed_not_rebuilt(teacher_dir, tmp_path):
    """Issue 49: rank 1 dies (SIGKILL) right after writing its first of two shards, under ``torchrun --max-restarts
    1``; the restarted job (the same ``--resume auto`` command, no checkpoint yet: it starts again in place) labels
    only the shards still missing, so each of the four is labelled once, and the run finishes."""
    worker = Path(__file__).with_name("ddp_cache_worker.py")
    out, cache, trace = tmp_path / "student", tmp_path / "cache", tmp_path / "trace"
    trace.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(worker.parent), "SHARDS": "4", "KILL_RANK": "1",
           "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}  # as docs/operations.md says: see training.restarts
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--max-restarts",
           "1", str(worker), teacher_dir, str(out), str(cache), str(trace), "2", "auto"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    written = (trace / "shards.txt").read_text().split()
    assert sorted(line.split(":")[1] for line in written) == [f"shard-{k:05d}.parquet" for k in range(4)]
    assert "0/rank1:shard-00001.parquet" in written and "1/rank1:shard-00003.parquet" in written
    (key,) = [p.name for p in cache.iterdir()]
    assert json.loads((cache / key / "manifest.json").read_text())["n_batches"] == 8
    record = json.loads((out / "model" / "distillation.json").read_text())
    assert record["training"]["steps"] == 2
    assert [r["from_step"] for r in record["training"]["restarts"]] == [0]


@pytest.mark.slow
def test_torchrun_ranks_label_their_share_of_the_teacher_cache_which_equals_one_process_and_resume(teacher_dir, tmp_path):
    worker = Path(__file__).with_name("ddp_cache_worker.py")
    out, cache, trace = tmp_path / "student", tmp_path / "cache", tmp_path / "trace"
    trace.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(worker.parent)}

    def run(max_steps: int, resume: bool, ranks: int = 2, output=out, cache_folder=cache, trace_folder=trace):
        launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"] if ranks == 2 else []
        cmd = [sys.executable, *launcher, str(worker), teacher_dir, str(output), str(cache_folder), str(trace_folder),
               str(max_steps), "1" if resume else "0"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    run(2, resume=False)
    labelled = sorted((trace / "builds.txt").read_text().split())
    assert labelled == ["rank0/2:shard-00000.parquet", "rank1/2:shard-00001.parquet"]  # each rank its own shard
    used = sorted(p.name for p in trace.glob("device-*"))
    assert used == ["device-rank0", "device-rank1"]  # both ranks read the cache (and put the teacher on their device)
    assert all((trace / name).read_text().startswith("cpu") for name in used)
    first = load_file(out / "model" / "model.safetensors")
    run(4, resume=True)
    assert sorted((trace / "builds.txt").read_text().split()) == labelled  # the resumed run reuses it

    # one process, a fresh cache folder: the same key, the same shards, the same manifest
    alone, alone_trace = tmp_path / "cache-1", tmp_path / "trace-1"
    alone_trace.mkdir()
    run(2, resume=False, ranks=1, output=tmp_path / "student-1", cache_folder=alone, trace_folder=alone_trace)
    assert (alone_trace / "builds.txt").read_text().split() == ["rank0/1:shard-00000.parquet,shard-00001.parquet"]
    (key,) = [p.name for p in cache.iterdir()]
    assert [p.name for p in alone.iterdir()] == [key]
    alone_manifest, manifest = (json.loads((folder / key / "manifest.json").read_text()) for folder in (alone, cache))
    del alone_manifest["build_seconds"], manifest["build_seconds"]  # the labelling's wall time differs
    assert alone_manifest == manifest
    for shard in ("shard-00000.parquet", "shard-00001.parquet"):  # byte for byte (Table.equals has NaN != NaN)
        assert (alone / key / shard).read_bytes() == (cache / key / shard).read_bytes()
    # and one process on the cache the two ranks built labels nothing
    later = tmp_path / "trace-later"
    later.mkdir()
    run(2, resume=False, ranks=1, output=tmp_path / "student-later", cache_folder=cache, trace_folder=later)
    assert not (later / "builds.txt").exists() and (later / "device-rank0").is_file()
    record = json.loads((out / "model" / "distillation.json").read_text())
    assert record["training"]["steps"] == 4 and record["training"]["resumed_from"].endswith("checkpoint-2")
    assert any(not torch.equal(first[k], v) for k, v in load_file(out / "model" / "model.safetensors").items())
