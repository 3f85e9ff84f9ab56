"""Several teachers, one student: the combined target, its weights, its cost, and the statistical member."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline
from conftest import PREDICTION_LENGTH, TINY_STUDENT, straight_and_resumed, tiny_teacher_config
from safetensors.torch import load_file

from chronos_distill import ConfigError, distill
from chronos_distill.chronos2.loading import load_chronos2
from chronos_distill.config import DistillConfig
from chronos_distill.data.series import load_series
from chronos_distill.data.synthetic import seasonal_long_table
from chronos_distill.data.teacher_cache import cache_key
from chronos_distill.data.windows import draw_windows
from chronos_distill.distillation.ensemble import Member, TeacherEnsemble, greedy_weights
from chronos_distill.distillation.losses.normalised import NormalisedTruth
from chronos_distill.distillation.statistical_teacher import MIN_OBSERVATIONS, StatisticalTeacher, fit_one
from chronos_distill.distillation.trainer import DistillationTrainer

LEVELS = [0.01, 0.05, *[round(0.1 * i, 1) for i in range(1, 10)], 0.95, 0.99]


def save_teacher(folder: Path, seed: int, scale: float = 4.0, **overrides) -> str:
    torch.manual_seed(seed)
    model = Chronos2Model(tiny_teacher_config(**overrides))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    Chronos2Pipeline(model).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def second_teacher(tmp_path_factory) -> str:
    return save_teacher(tmp_path_factory.mktemp("second"), seed=99)


def windows(table, n: int = 1, seed: int = 0, **options):
    series = load_series(table, PREDICTION_LENGTH, target=["target"])
    return draw_windows(series, n, seed, context_length=128, prediction_length=PREDICTION_LENGTH, batch_size=16,
                        output_patch_size=16, min_past=PREDICTION_LENGTH, **options)


def test_two_identical_teachers_give_exactly_the_single_teachers_targets(teacher_dir, table, tmp_path):
    options = dict(train_data=table, prediction_length=PREDICTION_LENGTH, max_steps=2, batch_size=16, **TINY_STUDENT)
    single = distill(teacher=teacher_dir, output=str(tmp_path / "single"), **options)
    twice = distill(teacher=[teacher_dir, teacher_dir], output=str(tmp_path / "twice"), **options)
    expected, got = load_file(single.model_dir / "model.safetensors"), load_file(twice.model_dir / "model.safetensors")
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0, msg=name)
    # ... and the ensemble itself, on a batch: one member, its quantiles unchanged
    first, again = load_chronos2(teacher_dir), load_chronos2(teacher_dir)
    ensemble = TeacherEnsemble([Member("a", 0.5, first), Member("b", 0.5, again)], first)
    (batch,) = windows(table)
    target, _ = ensemble(batch)
    from chronos_distill.chronos2.forward import normalised_quantiles

    torch.testing.assert_close(target, normalised_quantiles(first, batch), rtol=0, atol=0)
    assert len(ensemble) == 1 and ensemble.members[0].names == ["a", "b"] and ensemble.weights == {"a": 1.0}


def test_combined_quantiles_are_the_weighted_average_of_sorted_members_and_monotone(teacher_dir, second_teacher, table):
    first, second = load_chronos2(teacher_dir), load_chronos2(second_teacher)
    (batch,) = windows(table)
    ensemble = TeacherEnsemble([Member("a", 1.0, first), Member("b", 3.0, second)], first)  # normalised: 0.25 / 0.75
    assert ensemble.weights == {"a": 0.25, "b": 0.75}  # normalised
    quantiles = ensemble.member_quantiles(batch)
    raw_crossings = sum(int((q.diff(dim=1) < 0).sum()) for q in quantiles)
    target, distances = ensemble(batch)
    expected = 0.25 * quantiles[0].sort(dim=1).values + 0.75 * quantiles[1].sort(dim=1).values
    torch.testing.assert_close(target, expected)
    assert raw_crossings > 0  # the random members cross their levels; the combination never does
    assert bool((target.diff(dim=1) >= 0).all())
    assert distances.shape == (2,) and bool((distances > 0).all())


def test_a_weight_of_zero_leaves_the_teacher_out_and_weights_are_normalised(teacher_dir, second_teacher, table, tmp_path):
    trainer = DistillationTrainer(args=DistillConfig(teacher=f"{teacher_dir},{second_teacher}", teacher_weights="2,0", train_data=table,
                                    prediction_length=PREDICTION_LENGTH, output=str(tmp_path / "zero"), max_steps=1,
                                    batch_size=16, **TINY_STUDENT))
    assert trainer.models.teachers.ensemble is None and trainer.models.teachers.record["teachers"] == [
        {"name": Path(teacher_dir).name, "weight": 1.0, "kind": "chronos-2", "parameters": trainer.models.teachers.record["teachers"][0]["parameters"]}]
    cfg = DistillConfig(teacher=[teacher_dir, second_teacher], teacher_weights=[1, 3], train_data=table,
                        prediction_length=PREDICTION_LENGTH, output=str(tmp_path / "x"))
    assert cfg.teacher_weight_values() == [0.25, 0.75]


@pytest.mark.parametrize("weights, message", [
    ("1", "gives 1 weight"), ("1,-1", "at least 0"), ("0,0", "every weight is 0"), ("0,1", "cannot have weight 0"),
    ("a,b", "numbers or auto"),
])
def test_bad_teacher_weights_are_refused(weights, message):
    with pytest.raises(ConfigError, match=message):
        DistillConfig(teacher="a,b", teacher_weights=weights, train_data="d.csv", prediction_length=8, output="o")


@pytest.mark.parametrize("options, message", [
    ({"teacher": "statsforecast:AutoETS,reference"}, "must be a Chronos-2 model"),
    ({"teacher": "reference,statsforecast:Prophet"}, "unknown statistical teacher"),
    ({"teacher": "reference,statsforecast:AutoETS", "feature_teacher": "statsforecast:AutoETS"}, "no hidden states"),
    ({"teacher": "reference", "feature_teacher": "other"}, "not among the teachers"),
    ({"teacher": "reference", "teacher_weights": "auto"}, "at least two teachers"),
])
def test_teachers_that_cannot_play_their_part_are_refused_by_the_config(options, message):
    with pytest.raises(ConfigError, match=message):
        DistillConfig(train_data="d.csv", prediction_length=8, output="o", **options)


def test_an_incompatible_teacher_is_refused_before_any_training(teacher_dir, table, tmp_path):
    other_patch = save_teacher(tmp_path / "patch8", seed=3, patch_size=8)
    with pytest.raises(ConfigError, match=r"teacher .*patch8 has input_patch_size 8, the first teacher 16"):
        distill(teacher=[teacher_dir, other_patch], train_data=table, prediction_length=PREDICTION_LENGTH,
                output=str(tmp_path / "run"), max_steps=1, batch_size=16, **TINY_STUDENT)
    assert not (tmp_path / "run" / "checkpoints").exists()
    short = save_teacher(tmp_path / "short", seed=4, context_length=64)
    with pytest.raises(ConfigError, match="reads 64 context steps"):
        distill(teacher=[teacher_dir, short], train_data=table, prediction_length=PREDICTION_LENGTH,
                output=str(tmp_path / "run2"), max_steps=1, batch_size=16, **TINY_STUDENT)


def test_greedy_selection_gives_a_pure_noise_teacher_weight_zero():
    rng = np.random.default_rng(0)
    truth = torch.tensor(rng.normal(size=(64, 32)), dtype=torch.float32)
    offsets = torch.tensor(np.array([-2.3, -1.6, -1.3, -0.8, -0.5, -0.25, 0, 0.25, 0.5, 0.8, 1.3, 1.6, 2.3]) * 0.3)
    good = truth[:, None, :] + offsets[None, :, None] + 0.1 * torch.randn(64, 1, 32)
    noise = torch.randn(64, len(LEVELS), 32) * 5
    weights, record = greedy_weights([good, noise], NormalisedTruth(truth, torch.ones_like(truth)), LEVELS)
    assert weights == [1.0, 0.0]
    assert record["member_losses"][0] < record["member_losses"][1]


def test_auto_weights_are_chosen_on_validation_windows_of_the_training_data(teacher_dir, table, tmp_path):
    noisy = save_teacher(tmp_path / "noisy", seed=5, scale=40.0)  # a teacher whose forecasts are far off
    validation = seasonal_long_table(n_series=6, length=120, seed=11)
    trainer = DistillationTrainer(args=DistillConfig(teacher=[teacher_dir, noisy], teacher_weights="auto", train_data=table,
                                    validation_data=validation, prediction_length=PREDICTION_LENGTH,
                                    output=str(tmp_path / "auto"), max_steps=1, batch_size=16, **TINY_STUDENT))
    selection = trainer.models.teachers.record["selection"]
    assert selection["source"] == "validation_data" and selection["windows"] == 6  # one window per series
    assert selection["weights"][1] == 0.0 and trainer.models.teachers.ensemble is None  # the noisy teacher is left out
    without = DistillationTrainer(args=DistillConfig(teacher=[teacher_dir, noisy], teacher_weights="auto", train_data=table,
                                        prediction_length=PREDICTION_LENGTH, output=str(tmp_path / "auto2"),
                                        max_steps=1, batch_size=16, **TINY_STUDENT))
    assert without.models.teachers.record["selection"]["source"] == f"the last {PREDICTION_LENGTH} steps of each training series"


def test_the_cache_key_changes_with_a_teacher_or_a_weight(teacher_dir, second_teacher, table, tmp_path):
    first, second = load_chronos2(teacher_dir), load_chronos2(second_teacher)
    third = load_chronos2(save_teacher(tmp_path / "third", seed=7))
    series = load_series(table, PREDICTION_LENGTH, target=["target"])
    windowing = {"n_batches": 2}

    def key(members):
        return cache_key(TeacherEnsemble(members, first), series, windowing)

    base = key([Member("a", 0.5, first), Member("b", 0.5, second)])
    assert key([Member("a", 0.5, first), Member("b", 0.5, second)]) == base
    assert key([Member("a", 0.6, first), Member("b", 0.4, second)]) != base
    assert key([Member("a", 0.5, first), Member("c", 0.5, third)]) != base
    # a single teacher keeps the key it always had
    assert key([Member("a", 1.0, first)]) == cache_key(first, series, windowing)


@pytest.mark.slow
def test_resume_with_two_teachers_is_exact_and_the_record_names_both(teacher_dir, second_teacher, table, tmp_path):
    options = dict(teacher=f"{teacher_dir},{second_teacher}", teacher_weights="0.7,0.3", train_data=table,
                   prediction_length=PREDICTION_LENGTH, save_steps=2, batch_size=16, learning_rate=3e-3,
                   logging_steps=1, **TINY_STUDENT)
    straight, _ = straight_and_resumed(options, tmp_path)
    ensemble = straight.record["ensemble"]
    assert [(t["name"], round(t["weight"], 6)) for t in ensemble["teachers"]] == [
        (Path(teacher_dir).name, 0.7), (Path(second_teacher).name, 0.3)]
    assert ensemble["mode"] == "given" and set(ensemble["member_distances"]) == {Path(teacher_dir).name,
                                                                                  Path(second_teacher).name}
    logged = [e for e in straight.trainer.state.log_history if any(k.startswith("teacher_distance/") for k in e)]
    assert len(logged) == 4, "each teacher's distance to the combined target is logged at every log (each step)"
    for name, mean in ensemble["member_distances"].items():  # the record's mean is the mean of what was logged
        assert np.mean([e[f"teacher_distance/{name}"] for e in logged]) == pytest.approx(mean, rel=1e-5)
    assert len({e[f"teacher_distance/{Path(teacher_dir).name}"] for e in logged}) > 1  # each log its own steps
    card = (straight.model_dir / "README.md").read_text()
    assert f"{Path(second_teacher).name}: weight 0.300" in card


@pytest.mark.slow
def test_two_teachers_with_the_teacher_cache_label_once(teacher_dir, second_teacher, table, tmp_path):
    options = dict(teacher=f"{teacher_dir},{second_teacher}", train_data=table, prediction_length=PREDICTION_LENGTH,
                   batch_size=16, teacher_cache=str(tmp_path / "cache"), cache_batches=3, max_steps=3, **TINY_STUDENT)
    first = distill(output=str(tmp_path / "a"), **options)
    assert first.record["training"]["teacher_cache"]["reused"] is False
    assert set(first.record["ensemble"]["member_distances"]) == {Path(teacher_dir).name, Path(second_teacher).name}
    again = distill(output=str(tmp_path / "b"), **options)
    assert again.record["training"]["teacher_cache"]["reused"] is True


@pytest.mark.slow
def test_torchrun_two_processes_with_two_teachers(teacher_dir, second_teacher, tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    out, trace = tmp_path / "student", tmp_path / "trace"
    trace.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(worker.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker),
           f"{teacher_dir},{second_teacher}", str(out), str(trace), json.dumps({"teacher_weights": "0.6,0.4"})]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    seen = [(trace / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 3 and not set(seen[0]) & set(seen[1])
    record = json.loads((out / "model" / "distillation.json").read_text())
    assert [round(t["weight"], 6) for t in record["ensemble"]["teachers"]] == [0.6, 0.4]
    assert set(record["final_losses"]) >= {"feature", "attention"}  # the feature teacher (the first) still taps


# ----------------------------------------------------------------------------------------------------------
# the statistical member


def seasonal(length: int, seed: int = 0) -> np.ndarray:
    t = np.arange(length)
    return 20 + 5 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(seed).normal(0, 0.3, length)


@pytest.mark.parametrize("model", ["AutoETS", "AutoTheta", "SeasonalNaive"])
def test_a_statistical_member_brackets_the_truth_of_a_clean_seasonal_series(model):
    pytest.importorskip("statsforecast")
    series = seasonal(132)
    quantiles = fit_one(model, 12, series[:120], 12, LEVELS)
    truth = series[120:]
    assert quantiles.shape == (len(LEVELS), 12) and bool((np.diff(quantiles, axis=0) >= -1e-9).all())
    assert bool(((quantiles[0] <= truth) & (truth <= quantiles[-1])).all())  # the 1-99% band holds the truth
    assert np.abs(quantiles[LEVELS.index(0.5)] - truth).mean() < 1.0


def test_a_statistical_member_is_fitted_on_the_context_only():
    pytest.importorskip("statsforecast")
    teacher = StatisticalTeacher("AutoETS", 12, LEVELS)
    series = seasonal(144)
    context = torch.tensor(series[:120]).float()[None]
    # what lies after the context (the window's truth) cannot reach the fit: only `context` is passed in, and
    # a changed future leaves the forecast as it was
    before = teacher.raw_quantiles(context, 12)
    series[120:] += 100.0
    after = teacher.raw_quantiles(torch.tensor(series[:120]).float()[None], 12)
    torch.testing.assert_close(before, after)
    # a context with missing values: leading ones are cut, inner ones carried forward
    holes = series[:120].copy()
    holes[:10] = np.nan
    holes[50] = np.nan
    assert np.isfinite(fit_one("AutoETS", 12, holes, 12, LEVELS)).all()


def test_a_window_too_short_for_its_season_falls_back_as_documented():
    pytest.importorskip("statsforecast")
    short = seasonal(18)  # fewer than two seasons of 12: fitted without seasonality
    assert np.allclose(fit_one("AutoETS", 12, short, 6, LEVELS), fit_one("AutoETS", 1, short, 6, LEVELS))
    tiny = np.array([np.nan, 3.0, 5.0])[: MIN_OBSERVATIONS]  # fewer than MIN_OBSERVATIONS observed: flat last value
    assert np.all(fit_one("AutoETS", 12, tiny, 4, LEVELS) == 5.0)
    assert np.all(fit_one("AutoETS", 12, np.full(5, np.nan), 4, LEVELS) == 0.0)


def test_a_statistical_member_joins_a_run_and_its_quantiles_are_normalised_like_the_truth(teacher_dir, tmp_path):
    pytest.importorskip("statsforecast")
    table = seasonal_long_table(n_series=8, length=150, seed=2)
    trainer = DistillationTrainer(args=DistillConfig(teacher=[teacher_dir, "statsforecast:SeasonalNaive"], train_data=table,
                                    prediction_length=PREDICTION_LENGTH, output=str(tmp_path / "stats"), max_steps=1,
                                    batch_size=16, **TINY_STUDENT))
    ensemble = trainer.models.teachers.ensemble
    assert [m.name for m in ensemble.members] == [teacher_dir, "statsforecast:SeasonalNaive"]
    assert trainer.models.teachers.record["season_length"] == {"per_series": {"24": 8}}  # hourly data: each series' own
    (batch,) = windows(table)
    first = ensemble.first
    naive = ensemble.member_quantiles(batch)[1]
    # back in the data's units, the statistical member's median is its own raw forecast
    _, loc_scale = first.instance_norm(batch["context"][..., -first.chronos_config.context_length:])
    raw = first.instance_norm.inverse(naive.flatten(1), loc_scale).reshape(naive.shape)
    horizon = naive.shape[-1]
    own = ensemble.members[1].model.raw_quantiles(batch["context"], horizon)
    torch.testing.assert_close(raw, own, rtol=1e-4, atol=1e-3)
    # the statistical member keys the cache by its model and season: another season is another key
    def key(members_season: int) -> str:
        digest = hashlib.sha256()
        original = ensemble.members[1].model.season_length
        ensemble.members[1].model.season_length = members_season
        try:
            ensemble.fingerprint(digest)
        finally:
            ensemble.members[1].model.season_length = original
        return digest.hexdigest()

    assert key(24) == key(24) != key(12)


# ----------------------------------------------------------------------------------------------------------
# evaluate --ensemble


def test_an_ensemble_is_scored_directly_as_its_combined_forecast(teacher_dir, second_teacher, tmp_path):
    from chronos_distill.evaluation.ensemble_forecaster import EnsembleForecaster
    from chronos_distill.evaluation.scoring import evaluate

    contexts = [torch.tensor(seasonal(100, seed=i)).float() for i in range(3)]
    levels = [0.1, 0.5, 0.9]
    alone = Chronos2Pipeline(load_chronos2(teacher_dir)).predict_quantiles(contexts, prediction_length=12,
                                                                            quantile_levels=levels)[0]
    first_only = EnsembleForecaster.from_names([teacher_dir, second_teacher], [1.0, 0.0])
    got, _ = first_only.predict_quantiles(contexts, prediction_length=12, quantile_levels=levels)
    for mine, theirs in zip(got, alone):
        torch.testing.assert_close(mine, theirs.sort(dim=-1).values, rtol=1e-4, atol=1e-3)
    both, medians = EnsembleForecaster.from_names([teacher_dir, second_teacher]).predict_quantiles(
        contexts, prediction_length=12, quantile_levels=levels)
    assert all(bool((q.diff(dim=-1) >= 0).all()) for q in both) and medians[0].shape == (1, 12)

    table = seasonal_long_table(n_series=4, length=100, seed=4)
    table.to_parquet(tmp_path / "mine.parquet")
    results = evaluate(model=[f"t={teacher_dir}"], ensemble=[teacher_dir, second_teacher], ensemble_weights=[0.5, 0.5],
                       data=str(tmp_path / "mine.parquet"), prediction_length=12, season_length=24,
                       output=str(tmp_path / "report"))
    assert set(results["relative"]) == {"seasonal_naive", "t", "ensemble"}
    assert results["models"]["ensemble"]["source"] == f"{teacher_dir}+{second_teacher}"
    assert results["models"]["ensemble"]["parameters"] == 2 * results["models"]["t"]["parameters"]


@pytest.mark.parametrize("frequency, season", [
    ("MS", 12), ("ME", 12), ("2ME", 6), ("QS-JAN", 4), ("BME", 12), ("BQE", 4), ("D", 7), ("B", 5), ("bh", 9),
    ("h", 24), ("2h", 12), ("30min", 48), ("W-SUN", 1), ("YE", 1), (None, 1),
])
def test_a_statistical_teachers_season_follows_gluonts_with_daily_weeks(frequency, season):
    """Multiples and anchors parsed by GluonTS' get_seasonality (the hand-written prefix table gave BME and BQE the
    business-day season 5 and ignored multiples such as 2h)."""
    from chronos_distill.distillation.statistical_teacher import season_length_of

    assert season_length_of(frequency) == season


def test_each_window_is_fitted_with_the_season_of_its_own_series(teacher_dir, tmp_path):
    """M1 + M3 mix yearly, quarterly and monthly series: a statistical member fits every window with its own
    series' season (as evaluate scores each data set with its own), unless --season-length fixes one for all."""
    pytest.importorskip("statsforecast")
    import pandas as pd

    monthly = seasonal_long_table(n_series=6, length=150, seed=2, freq="MS")
    quarterly = seasonal_long_table(n_series=6, length=150, seed=3, freq="QS")
    quarterly["item_id"] = "q-" + quarterly["item_id"].astype(str)
    table = pd.concat([monthly, quarterly], ignore_index=True)
    options = dict(teacher=[teacher_dir, "statsforecast:SeasonalNaive"], train_data=table,
                   prediction_length=PREDICTION_LENGTH, max_steps=1, batch_size=16, **TINY_STUDENT)
    trainer = DistillationTrainer(args=DistillConfig(output=str(tmp_path / "own"), **options))
    assert trainer.models.teachers.record["season_length"] == {"per_series": {"4": 6, "12": 6}}
    season_of = {item_id: 4 if item_id.startswith("q-") else 12 for item_id in trainer.run_data.train.ids}
    assert [x["season_length"] for x in trainer.run_data.train.inputs] == [season_of[i] for i in trainer.run_data.train.ids]
    batch = next(iter(trainer.get_train_dataloader()))
    seasons = batch["season_length"]
    assert sorted(set(seasons.tolist())) == [4, 12]  # both kinds drawn in one batch of 16
    member = trainer.models.teachers.ensemble.members[1].model
    horizon = int(batch["num_output_patches"]) * trainer.models.teacher.chronos_config.output_patch_size
    own = member.raw_quantiles(batch["context"], horizon, seasons)
    for row in range(len(seasons)):  # row by row: what a fit with that row's own season gives
        expected = fit_one("SeasonalNaive", int(seasons[row]), batch["context"][row].numpy(), horizon, member.levels)
        np.testing.assert_allclose(own[row].numpy(), expected, rtol=1e-5)
    quarterly_rows = seasons == 4
    one_season = member.raw_quantiles(batch["context"], horizon)  # the first series' season (12) for all
    assert not torch.allclose(own[quarterly_rows], one_season[quarterly_rows])
    # the ensemble hands each row's season to the member
    target = trainer.models.teachers.ensemble.member_quantiles(batch)[1]
    _, loc_scale = trainer.models.teacher.instance_norm(batch["context"][..., -trainer.models.teacher.chronos_config.context_length:])
    raw = trainer.models.teacher.instance_norm.inverse(target.flatten(1), loc_scale).reshape(target.shape)
    torch.testing.assert_close(raw, own, rtol=1e-3, atol=1e-3)  # float32 round trip through the normalised space

    fixed = DistillationTrainer(args=DistillConfig(output=str(tmp_path / "fixed"), season_length=12, **options))
    assert fixed.models.teachers.record["season_length"] == 12
    assert "season_length" not in next(iter(fixed.get_train_dataloader()))
    digests = []
    for prepared in (trainer, fixed):  # per-series and fixed seasons label differently: another cache key
        digest = hashlib.sha256()
        prepared.models.teachers.ensemble.fingerprint(digest)
        digests.append(digest.hexdigest())
    assert digests[0] != digests[1]
