"""Teacher-labelled transfer data and horizon weighting (issue 13): the rows each source adds, the losses that
count them, the cache key, exact resume, and clear refusals of bad values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PREDICTION_LENGTH, TINY_STUDENT, straight_and_resumed

from chronos_distill import ConfigError, DistillConfig, distill, load_teacher
from chronos_distill.config import TransferShares
from chronos_distill.data.series import load_series
from chronos_distill.data.teacher_cache import cached_transfer_set, load_cache
from chronos_distill.data.transfer import mix
from chronos_distill.data.windows import draw_windows, training_batches
from chronos_distill.distillation.losses.normalised import distillation_mask, normalise_truth
from chronos_distill.distillation.losses.output import OutputDistillationLoss, horizon_weights
from chronos_distill.distillation.objective import LossInputs, truth_term
from chronos_distill.distillation.plan import StudentPass

OPTIONS = dict(batch_size=32, context_length=128, prediction_length=PREDICTION_LENGTH, output_patch_size=16, min_past=16)
SHARES = TransferShares(future=0.25, mixup=0.125, synthetic=0.125)


@pytest.fixture(scope="module")
def series(table):
    return load_series(table, PREDICTION_LENGTH, target=["target"])


def _batches(series, shares, n=3, seed=0):
    return draw_windows(series, n, seed, shares=shares, **OPTIONS)


def test_each_source_supplies_its_share_of_rows_without_truth(series):
    for batch in _batches(series, SHARES):
        rows = batch["teacher_rows"]
        assert int(rows.sum()) == 8 + 4 + 4
        assert batch["context"].shape[0] == rows.numel() and rows.numel() >= 32
        assert torch.isnan(batch["future_target"][rows]).all()  # no truth reaches a teacher-only row
        assert torch.isnan(batch["future_covariates"][rows]).all()
        assert torch.isfinite(batch["future_target"][~rows]).any()
        groups = batch["group_ids"]
        assert len(set(groups[rows].tolist()) & set(groups[~rows].tolist())) == 0  # groups of their own


def test_future_rows_end_at_the_last_observation(series):
    batch = _batches(series, TransferShares(future=0.5), n=1)[0]
    ends = {tuple(item["context"][0, -8:].tolist()) for item in series.inputs}
    for context in batch["context"][batch["teacher_rows"]]:
        assert tuple(context[-8:].tolist()) in ends


def test_mixtures_stay_within_their_scaled_parts():
    rng = np.random.default_rng(0)
    for _ in range(50):
        parts = [rng.normal(rng.uniform(1, 100), rng.uniform(0.1, 10), rng.integers(20, 60)) for _ in range(3)]
        mixed = mix(parts, rng.dirichlet(np.ones(3)))
        length = min(len(p) for p in parts)
        scaled = np.stack([p[-length:] / np.mean(np.abs(p[-length:])) for p in parts])
        assert mixed.shape == (length,)
        assert (mixed >= scaled.min(axis=0) - 1e-9).all() and (mixed <= scaled.max(axis=0) + 1e-9).all()


def test_synthetic_rows_are_deterministic_for_a_seed(series):
    def synthetic_rows(seed):
        batch = _batches(series, TransferShares(synthetic=0.25), n=1, seed=seed)[0]
        return batch["context"][batch["teacher_rows"]]

    torch.testing.assert_close(synthetic_rows(3), synthetic_rows(3), equal_nan=True)
    assert not torch.equal(torch.nan_to_num(synthetic_rows(3)), torch.nan_to_num(synthetic_rows(4)))


def test_hard_loss_counts_only_rows_with_truth_and_distillation_counts_every_row(series, teacher_dir):
    teacher = load_teacher(teacher_dir)
    batch = _batches(series, SHARES, n=1)[0]
    rows = batch["teacher_rows"]
    horizon = int(batch["num_output_patches"]) * 16
    truth = normalise_truth(teacher.instance_norm, batch["context"], 128, batch["future_target"],
                            batch["future_covariates"], horizon)
    mask = distillation_mask(truth.mask, rows, PREDICTION_LENGTH)
    assert (mask[rows, :PREDICTION_LENGTH] == 1).all() and (mask[rows, PREDICTION_LENGTH:] == 0).all()
    assert torch.equal(mask[~rows], truth.mask[~rows])
    assert (truth.mask[rows] == 0).all()

    loss = OutputDistillationLoss("quantile", teacher.chronos_config.quantiles, teacher.chronos_config.quantiles)
    student_q = torch.randn(rows.numel(), 21, horizon)
    teacher_q = torch.randn(rows.numel(), 21, horizon)
    with_rows = loss(student_q, teacher_q, truth, mask)
    labelled = ~rows
    sub_truth = type(truth)(truth.values[labelled], truth.mask[labelled])
    alone = loss(student_q[labelled], teacher_q[labelled], sub_truth)
    # the objective's truth term rescales by rows / rows-with-truth: it then equals the labelled rows' loss alone
    hard = truth_term(loss, 0.5).compute(LossInputs(student=StudentPass(quantiles=student_q),
                                                    teacher_aligned=teacher_q, teacher=None, truth=truth,
                                                    distill_mask=mask, teacher_rows=rows))
    torch.testing.assert_close(hard, alone["hard"])
    torch.testing.assert_close(with_rows["hard"] * rows.numel() / int(labelled.sum()), alone["hard"])
    # a teacher-only row counts in the distillation term and not in the truth term
    moved = student_q.clone()
    moved[rows.nonzero()[0, 0]] += 1.0
    after = loss(moved, teacher_q, truth, mask)
    assert after["distill"] > with_rows["distill"] and torch.equal(after["hard"], with_rows["hard"])


def test_horizon_weights():
    """Behaviour, not the formula: mean 1 over the requested horizon and 0 past it, later steps weigh more, a
    smaller tau weighs them more still, a large tau is close to uniform, and "none" is no weighting."""
    weights = horizon_weights("exp", 1.0, 12, 16)
    assert weights[:12].mean().item() == pytest.approx(1.0) and (weights[12:] == 0).all()
    assert (weights[1:12] > weights[:11]).all()
    steep = horizon_weights("exp", 0.5, 12, 16)
    assert (steep[11] / steep[0]).item() > (weights[11] / weights[0]).item() > 2.0
    flat = horizon_weights("exp", 1e6, 12, 16)
    torch.testing.assert_close(flat[:12], torch.ones(12), rtol=1e-4, atol=1e-4)
    assert horizon_weights("none", 1.0, 12, 16) is None


def test_the_cache_key_changes_with_the_sources_and_their_shares(series, teacher_dir, tmp_path):
    teacher = load_teacher(teacher_dir)
    keys = set()
    for shares in (None, TransferShares(future=0.25), TransferShares(future=0.125), TransferShares(mixup=0.25)):
        _, folder, _ = cached_transfer_set(tmp_path, teacher, series, 2, 0, shares=shares, **OPTIONS)
        keys.add(folder.name)
    assert len(keys) == 4
    _, again, reused = cached_transfer_set(tmp_path, teacher, series, 2, 0, shares=TransferShares(future=0.25),
                                           **OPTIONS)
    assert reused and again.name in keys  # the same sources and shares find their cache


def test_a_cached_transfer_set_keeps_its_teacher_only_rows(series, teacher_dir, tmp_path, table):
    result = distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                     output=str(tmp_path / "out"), max_steps=2, save_steps=2, teacher_cache=str(tmp_path / "cache"),
                     cache_batches=2, transfer_mixup=0.25, **TINY_STUDENT, batch_size=16)
    cached = load_cache(Path(result.record["training"]["teacher_cache"]["folder"]))
    assert len(cached) == 2 and [int(b["teacher_rows"].sum()) for b in cached] == [4, 4]  # counted in the cache
    assert result.record["transfer"]["teacher_only_rows_per_batch"] == {"future": 0, "mixup": 4, "synthetic": 0, "general": 0}


@pytest.mark.slow
def test_resume_is_exact_with_sources_on(teacher_dir, table, tmp_path):
    options = dict(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH, save_steps=2,
                   transfer_future=0.2, transfer_mixup=0.1, transfer_synthetic=0.1, transfer_general=0.1, horizon_weighting="exp",
                   **TINY_STUDENT, batch_size=16, learning_rate=3e-3)
    straight, _ = straight_and_resumed(options, tmp_path)
    assert straight.record["transfer"]["shares"] == {"future": 0.2, "mixup": 0.1, "synthetic": 0.1, "general": 0.1}


@pytest.mark.parametrize("options, message", [
    ({"transfer_future": -0.1}, r"`transfer_future` \(--transfer-future\) must be within \[0, 1\]"),
    ({"transfer_mixup": 1.5}, r"`transfer_mixup` \(--transfer-mixup\) must be within \[0, 1\]"),
    ({"transfer_synthetic": "a lot"}, r"`transfer_synthetic` \(--transfer-synthetic\) must be a number"),
    ({"transfer_future": 0.5, "transfer_mixup": 0.3, "transfer_synthetic": 0.2}, "must sum to less than 1"),
    ({"horizon_weighting": "linear"}, r"`horizon_weighting` \(--horizon-weighting\) must be one of \['none', 'exp'\]"),
    ({"horizon_tau": 0}, r"`horizon_tau` \(--horizon-tau\) must be within \(0, inf\)"),
])
def test_bad_transfer_and_weighting_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        DistillConfig(teacher="t", train_data="d.csv", prediction_length=8, output="o", **options)


def test_shares_that_leave_no_labelled_row_in_a_tiny_batch_are_refused(series):
    with pytest.raises(ConfigError, match="leave no row of a 3-row batch"):
        DistillConfig(teacher="t", train_data="d.csv", prediction_length=8, output="o", batch_size=3,
                      transfer_future=0.4, transfer_mixup=0.4, transfer_synthetic=0.1)
    with pytest.raises(ValueError, match="leave no row"):  # the data layer refuses them too, for API users
        training_batches(series, TransferShares(future=0.4, mixup=0.4, synthetic=0.1), **{**OPTIONS, "batch_size": 3})


@pytest.mark.slow
def test_a_benchmark_run_whose_results_exist_is_not_trained_again(teacher_dir, table, tmp_path, monkeypatch):
    """bench/common.py's runs are resumable per variant (issue 23): the second call reads the record back."""
    import importlib.util

    bench_dir = Path(__file__).parents[1] / "bench"
    monkeypatch.syspath_prepend(str(bench_dir))
    spec = importlib.util.spec_from_file_location("bench_common", bench_dir / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    options = dict(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH, max_steps=2,
                   save_steps=2, batch_size=8, output=str(tmp_path / "variant"), overwrite=True, **TINY_STUDENT)
    first = common.train_in_subprocess(options)
    weights = Path(first["model_dir"]) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = common.train_in_subprocess(options)
    assert not first["reused"] and again["reused"] and weights.stat().st_mtime_ns == stamp
    assert again["record"]["training"]["steps"] == 2


def test_the_general_source_draws_teacher_only_rows_of_the_pretraining_mix_at_the_teachers_context(series):
    """The general stream (issue 23): teacher-only rows (no truth), contexts that reach the teacher's context
    length whatever the user's series are, seeded from numpy's global RNG (so it resumes with the Trainer's RNG
    state), and multivariate groups among its tasks."""
    shares = TransferShares(general=0.5)
    options = {**OPTIONS, "context_length": 128}
    batches = draw_windows(series, 12, 0, shares=shares, **options)
    again = draw_windows(series, 12, 0, shares=shares, **options)
    widths = []
    for batch, same in zip(batches, again):
        torch.testing.assert_close(batch["context"], same["context"], equal_nan=True)  # seeded
        rows = batch["teacher_rows"]
        assert int(rows.sum()) >= 1 and torch.isnan(batch["future_target"][rows]).all()
        general = batch["context"][batch["group_ids"] > batch["group_ids"][~rows].max()]
        widths += [int((~torch.isnan(row)).sum()) for row in general]
    # the contexts reach far beyond the user's series, and short ones (a yearly series' length) are common too
    assert max(widths) >= 100 > max(int(x["context"].shape[-1]) for x in series.inputs) // 2
    assert np.mean(np.asarray(widths) <= 64) >= 0.25
    groups = [b["group_ids"][b["group_ids"] > b["group_ids"][~b["teacher_rows"]].max()] for b in batches]
    assert any(g.unique().numel() < g.numel() for g in groups)  # some tasks are multivariate groups


def test_general_distills_without_training_data_and_refuses_data_it_would_ignore(teacher_dir, tmp_path, capsys):
    from chronos_distill.cli import main

    assert main(["distill", "--teacher", teacher_dir, "--general", "--prediction-length", str(PREDICTION_LENGTH),
                 "--output", str(tmp_path / "general"), "--max-steps", "2", "--batch-size", "16",
                 "--logging-steps", "1", "--student-d-model", "32", "--student-num-heads", "2",
                 "--student-d-ff", "64"]) == 0
    record = json.loads((tmp_path / "general" / "model" / "distillation.json").read_text())
    assert record["options"]["general"] and record["data"]["train"]["n_series"] == 0
    # the teacher's forecasts and the generator's continuation (the stream's own truth), half each by default
    assert {name: term["weight"] for name, term in record["loss"]["terms"].items()} == {"distill": 0.5, "hard": 0.5}
    assert record["training"]["steps"] == 2 and np.isfinite(record["final_losses"]["distill"])
    assert np.isfinite(record["final_losses"]["hard"])
    assert "labelled by the teacher (no user data)" in (tmp_path / "general" / "model" / "README.md").read_text()
    capsys.readouterr()
    assert main(["distill", "--teacher", teacher_dir, "--general", "--train-data", "x.csv", "--prediction-length",
                 "12", "--output", str(tmp_path / "both")]) == 2
    assert "--general distills on the teacher's pretraining task mix alone and would ignore --train-data" in \
        capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"`train_data` \(--train-data\) is required \(or --general"):
        DistillConfig(teacher="t", prediction_length=4, output="o")


def test_general_batches_are_all_teacher_rows_at_every_horizon_and_context_length():
    """A --general batch: teacher rows only (their truth the generator's continuation, none on covariate rows),
    a horizon drawn per batch from 1 patch up to the requested one (never beyond), contexts from one patch to the
    teacher's context length, and a seeded draw."""
    from chronos_distill.data.series import general_series
    from chronos_distill.data.transfer import GENERAL_MIN_CONTEXT, context_cap

    options = {**OPTIONS, "context_length": 128, "prediction_length": 64}
    batches = draw_windows(general_series(), 16, 0, **options)
    horizons, widths = [], []
    for batch, same in zip(batches, draw_windows(general_series(), 16, 0, **options)):
        torch.testing.assert_close(batch["context"], same["context"], equal_nan=True)  # seeded
        rows = batch["teacher_rows"]
        assert rows.any() and batch["context"].shape[0] >= OPTIONS["batch_size"]
        horizon = batch["future_target"].shape[-1]
        assert horizon == 16 * batch["num_output_patches"]
        assert torch.isnan(batch["future_target"][~rows]).all() and torch.isfinite(batch["future_target"][rows]).any()
        assert batch["context"].shape[-1] <= 128
        horizons.append(horizon)
        widths += (~torch.isnan(batch["context"][rows])).sum(-1).tolist()
    assert set(horizons) == {16, 32, 48, 64}  # every horizon the run can output, none past it
    assert min(widths) <= 32 and max(widths) >= 100
    caps = [context_cap(np.random.default_rng(i), 512) for i in range(4000)]
    assert min(caps) >= GENERAL_MIN_CONTEXT and max(caps) <= 512
    # log-uniform from 16 to 512: P(cap <= 64) = log(4) / log(32) = 0.4
    assert abs(np.mean(np.asarray(caps) <= 64) - 0.4) < 0.03
