"""The pretraining recipe: generators, the batch stream, and a tiny end-to-end run that resumes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from chronos import BaseChronosPipeline
from chronos.chronos2 import Chronos2Pipeline

from chronos_distill.cli import main
from chronos_distill.config import PretrainConfig
from chronos_distill.data.synthetic import (
    ar_process,
    kernel_synth,
    multivariate_group,
    seasonal_series,
    trend_seasonality,
    ts_mixup,
)
from chronos_distill.errors import DistillError
from chronos_distill.pretraining.run import pretrain
from chronos_distill.pretraining.stream import PretrainStream

TINY = dict(d_model=32, num_layers=1, num_heads=2, d_kv=16, d_ff=64, context_length=64, kernel_bank_size=8,
            batch_size=16, logging_steps=1)


def test_generators_are_seeded_finite_and_sized():
    for make in (lambda r: kernel_synth(r, 128), lambda r: trend_seasonality(r, 128), lambda r: ar_process(r, 128)):
        a, b = make(np.random.default_rng(5)), make(np.random.default_rng(5))
        assert a.shape == (128,) and np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(0)
    pool = [kernel_synth(rng, 64) for _ in range(4)]
    mixed = ts_mixup(rng, pool, 48)
    assert mixed.shape == (48,) and np.isfinite(mixed).all()


def test_multivariate_groups_put_known_covariates_last_and_targets_depend_on_them():
    rng = np.random.default_rng(3)
    groups = [multivariate_group(rng, 200) for _ in range(40)]
    assert all(g.values.shape[0] == g.n_targets + g.n_known_covariates for g in groups)
    with_covariates = [g for g in groups if g.n_known_covariates]
    assert with_covariates and any(g.n_known_covariates == 0 for g in groups)
    # the targets are built from the covariates: regressing a target on its covariates (and their short lags)
    # explains a sizeable part of its variance in most groups
    explained = []
    for g in with_covariates:
        covs = g.values[g.n_targets:]
        design = np.concatenate([np.roll(covs, lag, axis=1) for lag in range(4)] + [np.ones((1, 200))]).T[10:]
        y = g.values[0][10:]
        residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
        explained.append(1 - residual.var() / y.var())
    assert np.median(explained) > 0.1


def test_stream_batches_follow_chronos2_dataset_format():
    cfg = PretrainConfig(output="unused", **TINY, real_weight=0.3, multivariate_weight=0.4, seasonal_weight=0.2)
    real = [np.arange(20.0) + 100, np.arange(300.0)]
    stream = PretrainStream(cfg, real)
    batches = []
    for _, batch in zip(range(20), stream):
        batches.append(batch)
        rows, horizon = batch["future_target"].shape
        assert rows >= cfg.batch_size and horizon == 16 * batch["num_output_patches"]
        assert batch["num_output_patches"] in (1, 2, 4)
        assert batch["context"].shape[0] == rows and batch["context"].shape[1] <= cfg.context_length
        assert batch["future_covariates"].shape == (rows, horizon) and batch["group_ids"].shape == (rows,)
        # a row is either a target (truth, no known future) or a known covariate (future known, no truth)
        known = ~torch.isnan(batch["future_covariates"])
        assert not (known & ~torch.isnan(batch["future_target"])).any()
    assert any(b["group_ids"].unique().numel() < b["group_ids"].numel() for b in batches)  # some multivariate groups
    again = next(iter(PretrainStream(cfg, real)))
    torch.testing.assert_close(again["context"], batches[0]["context"], equal_nan=True)


def test_short_series_keep_a_context_and_pad_the_future_with_nan():
    cfg = PretrainConfig(output="unused", **TINY)
    stream = PretrainStream(cfg, [])
    rng = np.random.default_rng(0)
    context, future = stream.split(rng, np.arange(10.0)[None, :], horizon=32)
    assert context.shape[1] >= 5 and future.shape == (1, 32)
    observed = future[0][~np.isnan(future[0])]
    np.testing.assert_array_equal(observed, np.arange(10.0)[context.shape[1]:])


def test_tiny_pretraining_saves_a_loadable_bf16_model_and_resumes(tmp_path):
    out = tmp_path / "teacher"
    assert main(["pretrain", "--output", str(out), "--max-steps", "2", "--save-steps", "2", "--d-model", "32",
                 "--num-layers", "1", "--num-heads", "2", "--d-kv", "16", "--d-ff", "64", "--context-length", "64",
                 "--kernel-bank-size", "8", "--batch-size", "16", "--real-data", "M3"]) == 0
    record = json.loads((out / "model" / "pretraining.json").read_text())
    assert record["steps"] == 2 and record["options"]["real_data"] == ["M3"]
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["dtype"] == config["torch_dtype"] == "bfloat16"
    assert config["chronos_pipeline_class"] == "Chronos2Pipeline"
    model = BaseChronosPipeline.from_pretrained(out / "model").model.float()
    assert model.config.d_model == 32
    quantiles, _ = Chronos2Pipeline(model).predict_quantiles([torch.randn(50)], prediction_length=8)
    assert torch.isfinite(quantiles[0]).all()

    pretrain(PretrainConfig(output=str(out), max_steps=4, save_steps=2, resume=True, real_data=["M3"], **TINY))
    assert json.loads((out / "model" / "pretraining.json").read_text())["steps"] == 4
    with pytest.raises(DistillError, match="not empty"):
        pretrain(PretrainConfig(output=str(out), max_steps=1, **TINY))


V2_STREAM = dict(seasonal_weight=0.5, focus_periods=[7, 12, 24], focus_share=0.5, few_cycles_share=0.3,
                 multiplicative_share=0.4, context_buckets=[64, 32])


def test_v2_stream_options_change_what_is_drawn_and_leave_v1s_stream_alone():
    horizon = 16
    # defaults: no extra random number, so v1's seasonal tasks are seasonal_series' own draws
    v1 = PretrainStream(PretrainConfig(output="unused", **TINY), [])
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(v1.seasonal_task(a, 80, horizon, 64), seasonal_series(b, 80))
    assert a.random() == b.random()
    # every seasonal task has a focus period and only 2-4 of its cycles before the horizon
    cfg = PretrainConfig(output="unused", **dict(TINY, context_length=512), focus_periods=[7, 12],
                         focus_share=1.0, few_cycles_share=1.0)
    stream, rng = PretrainStream(cfg, []), np.random.default_rng(0)
    lengths = [len(stream.seasonal_task(rng, 400, horizon, 512)) - horizon for _ in range(200)]
    assert min(lengths) >= 2 * 7 and max(lengths) <= 4 * 12
    # one longest context per batch, from the buckets
    stream = PretrainStream(PretrainConfig(output="unused", **TINY, **V2_STREAM), [np.arange(300.0)])
    widths = {batch["context"].shape[1] for _, batch in zip(range(30), stream)}
    assert widths <= set(range(1, 65)) and any(w <= 32 for w in widths) and any(w > 32 for w in widths)


def test_every_split_holds_series_out_by_one_rule():
    """hold_out is the project's one rule for holding series out whole (a share of the ids, at least one, drawn
    without replacement); the pretraining validation and the benchmarks' splits each call it with their own seed.
    Checked by the series each holds out (the rule's draw under its caller's seed and grouping, pinned to the series
    drawn today, which the recorded results rest on), not by recording the calls a stub sees, which any seed passed."""
    import sys
    from pathlib import Path

    import pandas as pd

    import chronos_distill.data.competition as competition

    ids = [f"s{i:03d}" for i in range(50)]
    held = competition.hold_out(ids, 0.2, np.random.default_rng(7))
    assert len(held) == 10 == len(set(held)) and set(held) <= set(ids)
    assert held == competition.hold_out(ids, 0.2, np.random.default_rng(7))
    assert len(competition.hold_out(ids[:2], 0.01, np.random.default_rng(0))) == 1  # never none

    # the pretraining validation: a tenth of each data set, by the data set's own fixed seed, so M3's series are the
    # same whether M1 is asked for too
    m3 = competition.holdout_series_ids(["M3"], 0.1)
    assert len(m3) == 300 and sorted(m3)[:6] == ["M3/N0008", "M3/N0011", "M3/N0017", "M3/N0018", "M3/N0035",
                                                 "M3/N0053"]
    both = competition.holdout_series_ids(["M1", "M3"], 0.1)
    assert len(both) == 400 and {i for i in both if i.startswith("M3/")} == m3
    assert sorted(both)[:4] == ["M1/MNB31", "M1/MNB46", "M1/MNB60", "M1/MNB71"]

    # the benchmarks' split (bench/harness.py): the rule over the sorted series ids with the split's seed (0), and
    # every row of a held-out series in validation, whatever the order of the rows
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import harness

    rows = ["s0", "s5", "s9", "s8", "s3", "s5", "s6", "s8", "s7", "s1", "s1", "s2", "s2", "s4", "s0", "s4", "s7", "s6",
            "s3", "s9"]  # ten series of two rows each, shuffled
    table = pd.DataFrame({"item_id": rows, "target": np.arange(20.0)})
    train, validation = harness.hold_out_series(table, share=0.3)
    assert set(validation["item_id"]) == {"s5", "s6", "s9"} == set(
        competition.hold_out(sorted(set(rows)), 0.3, np.random.default_rng(0)))
    assert list(validation["target"]) == [1.0, 2.0, 5.0, 6.0, 17.0, 19.0]  # both rows of each, in table order
    assert list(train["target"]) == [float(t) for t in range(20) if rows[t] not in {"s5", "s6", "s9"}]
    assert set(harness.hold_out_series(table, share=0.3, seed=1)[1]["item_id"]) == {"s3", "s4", "s7"}  # its seed
    backwards = table.iloc[::-1].reset_index(drop=True)
    assert set(harness.hold_out_series(backwards, share=0.3)[1]["item_id"]) == {"s5", "s6", "s9"}


def test_held_out_real_series_are_never_in_the_stream_and_are_the_validation_series():
    from chronos_distill.data.competition import holdout_series_ids, training_table, validation_benchmarks
    from chronos_distill.pretraining.stream import real_series

    held_out = holdout_series_ids(["M3"], 0.1)
    assert len(held_out) == 300 and held_out == holdout_series_ids(["M3"], 0.1)
    table = training_table(("M3",))
    kept = real_series(["M3"], 0.1)
    assert len(kept) == 3003 - 300
    ids = [i for i, _ in table.groupby("item_id", sort=False)["target"] if i not in held_out]
    full = {i: g.to_numpy() for i, g in table.groupby("item_id")["target"]}
    assert len(ids) == len(kept) and all(np.array_equal(full[i], x) for i, x in zip(ids, kept))
    validation = validation_benchmarks(["M3"], 0.1)
    assert set(validation) == {"m3_yearly", "m3_quarterly", "m3_monthly"}
    for bench in validation.values():
        assert {f"M3/{i}" for i in bench.item_ids} <= held_out
        # the truth is the end of the training portion: the test portion is never read
        x = full[f"M3/{bench.item_ids[0]}"]
        np.testing.assert_array_equal(np.concatenate([bench.contexts[0], bench.truth[0]]), x)


def test_an_interrupted_pretraining_run_resumed_equals_a_straight_one(tmp_path):
    """The stream is seeded, so a run killed after its step-2 checkpoint and resumed draws the same batches and
    ends with the same weights as a run that was never stopped. Both run the one command a cluster restarts
    (``resume="auto"``): it starts the new folder and continues the interrupted one."""
    from safetensors.torch import load_file

    options = dict(TINY, **V2_STREAM, real_data=["M3"], real_holdout=0.1, max_steps=4, save_steps=2, save_dtype="float32",
                   resume="auto")
    straight = tmp_path / "straight"
    pretrain(PretrainConfig(output=str(straight), **options))
    interrupted = tmp_path / "interrupted"
    shutil.copytree(straight, interrupted)  # as if killed right after the checkpoint of step 2:
    shutil.rmtree(interrupted / "model")
    shutil.rmtree(interrupted / "checkpoints" / "checkpoint-4")
    pretrain(PretrainConfig(output=str(interrupted), **options))
    assert json.loads((straight / "model" / "pretraining.json").read_text())["resumed_from"] is None
    assert json.loads((interrupted / "model" / "pretraining.json").read_text())["resumed_from"].endswith("checkpoint-2")
    a = load_file(straight / "model" / "model.safetensors")
    b = load_file(interrupted / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
