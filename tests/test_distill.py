"""End-to-end distillation runs on a tiny teacher: CLI, export, teacher untouched, learning, resume."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline
from conftest import PREDICTION_LENGTH, TINY_STUDENT
from safetensors import safe_open

from chronos_distill import DistillConfig, build_student, distill, load_teacher
from chronos_distill.cli import build_parser, main
from chronos_distill.data.series import load_series
from chronos_distill.data.synthetic import seasonal_long_table
from chronos_distill.errors import ConfigError
from chronos_distill.evaluation.scoring import agreement_scores

FAST = dict(batch_size=16, learning_rate=3e-3, logging_steps=1, **TINY_STUDENT)


def test_cli_end_to_end_exports_a_plain_chronos2_student(teacher_dir, table_csv, tmp_path):
    out = tmp_path / "student"
    cmd = [
        sys.executable, "-m", "chronos_distill", "distill", "--teacher", teacher_dir, "--train-data", table_csv,
        "--prediction-length", str(PREDICTION_LENGTH), "--output", str(out), "--max-steps", "4", "--save-steps", "2",
        "--batch-size", "16", "--student-d-model", "32", "--student-num-heads", "2", "--student-d-ff", "64",
        "--seed", "3",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "student exported to" in done.stdout

    for name in ("config.json", "model.safetensors", "distillation.json", "README.md"):
        assert (out / "model" / name).is_file(), name
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "model", "run_config.json"]
    record = json.loads((out / "model" / "distillation.json").read_text())
    assert record["training"]["steps"] == 4
    assert record["training"]["train_runtime_s"] > 0
    assert record["student"]["config"] == {"d_model": 32, "num_layers": 1, "num_heads": 2, "d_kv": 16, "d_ff": 64}
    assert record["options"]["alpha"] == 0.5 and record["options"]["output_loss"] == "quantile"
    assert record["loss"]["terms"]["hard"]["weight"] == 0.5 and record["loss"]["terms"]["distill"]["option"] == "alpha"
    assert record["data"]["train"]["n_series"] == 24
    assert set(record["final_losses"]) == {"distill", "hard", "total"}
    assert all(np.isfinite(v) for v in record["final_losses"].values())
    assert (out / "checkpoints" / "checkpoint-4").is_dir()

    # the export is a plain Chronos-2 model: it loads with chronos alone and forecasts
    pipeline = Chronos2Pipeline.from_pretrained(out / "model")
    assert type(pipeline.model) is Chronos2Model and pipeline.model.config.d_model == 32
    df = seasonal_long_table(n_series=3, length=100, seed=9)
    forecast = pipeline.predict_df(df, prediction_length=PREDICTION_LENGTH)
    assert len(forecast) == 3 * PREDICTION_LENGTH and forecast["predictions"].notna().all()
    quantiles, _ = pipeline.predict_quantiles([torch.randn(80)], prediction_length=PREDICTION_LENGTH)
    assert quantiles[0].shape == (1, PREDICTION_LENGTH, 9)

    # and it holds exactly the tensors of a Chronos2Model of its config: nothing that exists only for training
    with safe_open(out / "model" / "model.safetensors", "pt") as weights:
        exported = set(weights.keys())
    assert exported == set(Chronos2Model(pipeline.model.config).state_dict().keys())


def test_teacher_is_frozen_and_bitwise_unchanged(teacher_dir, table, tmp_path):
    result = distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                     output=str(tmp_path / "out"), max_steps=3, save_steps=3, **FAST)
    teacher = result.trainer.teacher
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    optimized = {id(p) for group in result.trainer.optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in teacher.parameters()}
    assert optimized == {id(p) for p in result.student.parameters()}

    on_disk = load_teacher(teacher_dir).state_dict()
    after = teacher.state_dict()
    assert on_disk.keys() == after.keys()
    for name, tensor in on_disk.items():
        assert torch.equal(tensor, after[name]), name


def test_student_agrees_with_teacher_better_after_training(teacher_dir, tmp_path):
    data = seasonal_long_table(n_series=40, length=160, seed=1)
    ids = data["item_id"].unique()
    train, heldout = data[data["item_id"].isin(ids[:32])], data[data["item_id"].isin(ids[32:])]
    cfg = DistillConfig(teacher=teacher_dir, train_data=train, prediction_length=PREDICTION_LENGTH,
                        output=str(tmp_path / "out"), max_steps=60, save_steps=60, **{**FAST, "logging_steps": 10})
    teacher = load_teacher(teacher_dir)
    heldout_series = load_series(heldout, PREDICTION_LENGTH, target=["target"])
    before = agreement_scores(teacher, build_student(teacher, cfg), heldout_series, PREDICTION_LENGTH)
    result = distill(cfg)
    after = agreement_scores(teacher, result.student, heldout_series, PREDICTION_LENGTH)
    assert after["agreement"] < 0.5 * before["agreement"], (before, after)
    assert result.record["final_losses"]["distill"] < result.record["training"]["first_distill_loss"]


def test_resume_continues_from_the_last_checkpoint(teacher_dir, table, tmp_path):
    options = dict(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                   output=str(tmp_path / "out"), save_steps=2, **FAST)
    distill(max_steps=2, **options)
    resumed = distill(max_steps=4, resume=True, **options)
    assert resumed.record["training"]["resumed_from"].endswith("checkpoint-2")
    assert resumed.record["training"]["steps"] == 4
    steps_logged = [e["step"] for e in resumed.trainer.state.log_history if "distill_loss" in e]
    assert steps_logged[-2:] == [3, 4]


def test_validation_keeps_the_best_checkpoint_and_median_mse_mode(teacher_dir, table, tmp_path):
    ids = table["item_id"].unique()
    result = distill(teacher=teacher_dir, train_data=table[table["item_id"].isin(ids[:16])],
                     validation_data=table[table["item_id"].isin(ids[16:])], prediction_length=PREDICTION_LENGTH,
                     output=str(tmp_path / "out"), max_steps=4, save_steps=2, output_loss="median_mse", alpha=0.7,
                     **FAST)
    record = result.record
    assert record["training"]["best_checkpoint"] is not None
    assert {"eval_distill", "eval_hard", "eval_total"} <= set(record["final_losses"])
    assert record["final_losses"]["eval_total"] == pytest.approx(
        0.7 * record["final_losses"]["eval_distill"] + 0.3 * record["final_losses"]["eval_hard"], rel=1e-5
    )
    eval_losses = {e["step"]: e["eval_hard_loss"] for e in result.trainer.state.log_history if "eval_hard_loss" in e}
    best_step = min(eval_losses, key=eval_losses.get)  # best on the truth, as Chronos2Pipeline.fit selects
    assert record["training"]["best_checkpoint"].endswith(f"checkpoint-{best_step}")
    assert record["training"]["exported"]["criterion"] == "eval_hard_loss"
    assert record["data"]["validation"]["n_series"] == 8


def test_known_covariates_multiple_targets_and_in_memory_inputs(teacher_dir, tmp_path):
    table = seasonal_long_table(n_series=12, length=160, seed=2, covariate=True)
    table["second"] = table["target"] * 0.5 + 1
    result = distill(teacher=teacher_dir, train_data=table, target=["target", "second"], known_covariates=["price"],
                     prediction_length=PREDICTION_LENGTH, output=str(tmp_path / "cov"), max_steps=2, save_steps=2,
                     **FAST)
    summary = result.record["data"]["train"]
    assert (summary["n_targets"], summary["n_covariates"], summary["n_known_covariates"]) == (2, 1, 1)

    arrays = [np.random.default_rng(i).normal(size=150).cumsum() for i in range(10)]
    result = distill(teacher=teacher_dir, train_data=arrays, prediction_length=PREDICTION_LENGTH,
                     output=str(tmp_path / "arrays"), max_steps=2, save_steps=2, **FAST)
    assert result.record["data"]["train"]["n_series"] == 10
    assert result.record["options"]["train_data"] == "<in-memory list>"


def test_yaml_options_with_flags_overriding(teacher_dir, table_parquet, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        f"teacher: {teacher_dir}\ntrain_data: {table_parquet}\nprediction_length: {PREDICTION_LENGTH}\n"
        f"output: {tmp_path / 'out'}\nmax_steps: 5\nsave_steps: 1\nbatch_size: 16\nstudent_d_model: 32\n"
        "student_num_heads: 2\nstudent_d_ff: 64\nalpha: 0.9\n"
    )
    assert main(["distill", "--config", str(config), "--max-steps", "2", "--alpha", "0.25"]) == 0
    record = json.loads((tmp_path / "out" / "model" / "distillation.json").read_text())
    assert record["training"]["steps"] == 2
    assert record["options"]["alpha"] == 0.25 and record["options"]["save_steps"] == 1


def test_every_option_has_the_same_name_and_meaning_on_the_cli_in_yaml_and_in_python(tmp_path):
    """Each DistillConfig field is a documented --flag (from --help, as a user reads it), and a set of non-default
    values of every kind of option (int, float, choice, text, lists, mapping, flag) gives the same config from
    flags, from a YAML file and from Python keywords."""
    import dataclasses

    import yaml

    helped = subprocess.run([sys.executable, "-m", "chronos_distill", "distill", "--help"], capture_output=True,
                            text=True, timeout=60).stdout
    for field in dataclasses.fields(DistillConfig):
        assert f"--{field.name.replace('_', '-')}" in helped, field.name
    values = dict(teacher="reference", train_data="sales.csv", prediction_length=28, output=str(tmp_path / "o"),
                  student_d_model=64, student_num_heads=4, alpha=0.3, output_loss="median_mse",
                  target=["sales", "returns"], known_covariates=["price"], student_quantiles=[0.1, 0.5, 0.9],
                  term_weights={}, trainer_args={"gradient_accumulation_steps": 2}, verbose=True,
                  general_context="log-uniform", best_metric="total_loss", max_steps=7, learning_rate=0.002)
    argv = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [flag, ",".join(str(v) for v in value)]
        elif isinstance(value, dict):
            argv += [flag, json.dumps(value)]
        else:
            argv += [flag, str(value)]
    from chronos_distill.cli import _config_from

    parsed = vars(build_parser().parse_args(["distill", *argv]))
    from_cli = _config_from(parsed, DistillConfig)
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(values))
    from_yaml = DistillConfig.from_yaml(config_file)
    assert from_cli.to_dict() == from_yaml.to_dict() == DistillConfig(**values).to_dict()
    assert from_cli.student_quantiles == [0.1, 0.5, 0.9] and from_cli.trainer_args == {"gradient_accumulation_steps": 2}


def test_a_list_option_given_as_comma_text_in_yaml_or_python_is_the_same_list(tmp_path):
    """YAML and Python may give a list option as comma-separated text, as on the command line."""
    import yaml

    base = dict(teacher="reference", train_data="sales.csv", prediction_length=8, output=str(tmp_path / "o"))
    as_lists = DistillConfig(**base, target=["sales", "returns"], student_quantiles=[0.1, 0.5, 0.9])
    as_text = DistillConfig(**base, target="sales, returns", student_quantiles="0.1,0.5,0.9")
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump({**base, "target": "sales,returns", "student_quantiles": "0.1, 0.5, 0.9"}))
    assert as_text.to_dict() == as_lists.to_dict() == DistillConfig.from_yaml(config_file).to_dict()
    assert as_text.target == ["sales", "returns"] and as_text.student_quantiles == [0.1, 0.5, 0.9]


def test_student_defaults_keep_the_teachers_design_narrower():
    from chronos_distill.chronos2.architecture import chronos2_config
    from chronos_distill.chronos2.student import build_student_config

    base = chronos2_config(d_model=768, num_layers=12, num_heads=12, d_kv=64, d_ff=3072)
    cfg = DistillConfig(teacher="t", train_data="d.csv", prediction_length=8, output="o")
    student = build_student_config(base, cfg)
    assert (student.d_model, student.num_layers, student.num_heads, student.d_kv, student.d_ff) == (384, 6, 6, 64, 1536)
    reference_like = chronos2_config(d_model=512, num_layers=4, num_heads=8, d_kv=64, d_ff=1024)
    assert build_student_config(reference_like, cfg).d_ff == 768  # the teacher's 2x MLP ratio, not a fixed 4x


def test_trainer_args_pass_through_to_training_arguments(teacher_dir, table, tmp_path):
    from chronos_distill.distillation.trainer import DistillationTrainer
    from chronos_distill.errors import ConfigError

    cfg = DistillConfig(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                        output=str(tmp_path / "out"), max_steps=2, trainer_args={"gradient_accumulation_steps": 2,
                                                                                  "max_grad_norm": 0.5}, **FAST)
    args = DistillationTrainer(args=cfg).args
    assert (args.gradient_accumulation_steps, args.max_grad_norm) == (2, 0.5)
    as_json = DistillConfig(teacher="t", train_data="d.csv", prediction_length=8, output="o",
                            trainer_args='{"gradient_accumulation_steps": 4}')
    assert as_json.trainer_args == {"gradient_accumulation_steps": 4}
    with pytest.raises(ConfigError, match=r"\['no_such_field'\] are not transformers.TrainingArguments fields"):
        DistillConfig(teacher="t", train_data="d.csv", prediction_length=8, output="o", trainer_args={"no_such_field": 1})
    with pytest.raises(ConfigError, match="set by chronos-distill"):
        DistillConfig(teacher="t", train_data="d.csv", prediction_length=8, output="o", trainer_args={"output_dir": "x"})
    with pytest.raises(ConfigError, match="not valid JSON"):
        DistillConfig(teacher="t", train_data="d.csv", prediction_length=8, output="o", trainer_args="{nope")


def test_the_listed_training_arguments_fields_are_the_installed_classes_and_another_version_is_checked_at_build(
        tmp_path, monkeypatch):
    """The option check reads TrainingArguments' field names from a list written from the class (no torch): it is
    the installed class's own (scripts/render_sources.py rewrites it); with another transformers the list is not
    trusted, and a wrong key is refused when TrainingArguments is built, in one line too."""
    import dataclasses
    import importlib.metadata
    from pathlib import Path

    from transformers import TrainingArguments

    import chronos_distill.config.training_arguments_fields as listed
    from chronos_distill.config.options import render_training_arguments_fields, training_arguments_fields
    from chronos_distill.errors import ConfigError
    from chronos_distill.training.arguments import training_arguments

    installed = importlib.metadata.version("transformers")
    fields = [f.name for f in dataclasses.fields(TrainingArguments) if f.init]
    if installed == listed.TRANSFORMERS_VERSION:
        assert Path(listed.__file__).read_text() == render_training_arguments_fields(fields, installed), \
            "stale: run python scripts/render_sources.py"
        assert training_arguments_fields() == set(fields)
    else:  # a newer transformers than the list's: the check waits for the class
        assert training_arguments_fields() is None

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0.1")
    assert training_arguments_fields() is None
    cfg = DistillConfig(teacher="t", train_data="d.csv", prediction_length=8, output="o",
                        trainer_args={"max_stpes": 2, "max_grad_norm": 0.5})  # passes the option check now
    with pytest.raises(ConfigError, match=r"\['max_stpes'\] are not transformers.TrainingArguments fields"):
        training_arguments(tmp_path, cfg)


def test_the_exported_checkpoint_is_best_on_the_truth_not_on_the_mixed_loss(teacher_dir, table, tmp_path):
    """A random teacher far from the truth and alpha 0.9: matching it lowers the total while the truth loss rises
    after its first steps. The export is the checkpoint with the lowest validation truth loss, and --best-metric
    picks another logged loss."""
    ids = table["item_id"].unique()
    options = dict(teacher=teacher_dir, train_data=table[table["item_id"].isin(ids[:16])],
                   validation_data=table[table["item_id"].isin(ids[16:])], prediction_length=PREDICTION_LENGTH,
                   max_steps=8, save_steps=1, alpha=0.9, student_d_model=32, student_num_heads=2, student_d_ff=64,
                   batch_size=16, learning_rate=1e-2, logging_steps=1)
    result = distill(output=str(tmp_path / "truth"), **options)
    history = [e for e in result.trainer.state.log_history if "eval_hard_loss" in e]
    hard = {e["step"]: e["eval_hard_loss"] for e in history}
    total = {e["step"]: e["eval_total_loss"] for e in history}
    assert min(hard, key=hard.get) != min(total, key=total.get)  # the two criteria disagree in this run
    exported = result.record["training"]["exported"]
    assert exported["step"] == min(hard, key=hard.get) and exported["criterion"] == "eval_hard_loss"
    assert exported["criterion_value"] == pytest.approx(min(hard.values()))
    assert "by the lowest eval_hard_loss" in (result.model_dir / "README.md").read_text()
    by_total = distill(output=str(tmp_path / "total"), best_metric="total_loss", **options)
    assert by_total.record["training"]["exported"]["step"] == min(total, key=total.get)
    with pytest.raises(ConfigError, match=r"`best_metric` \(--best-metric\) 'spread_loss' is not a loss this run logs"):
        distill(output=str(tmp_path / "bad"), best_metric="spread_loss", **options)


def test_the_warmup_is_what_the_option_says(teacher_dir, table, tmp_path):
    """warmup_ratio 0.25 of 8 steps: the learning rate rises linearly over 2 whole steps (0, half, then the peak at
    the third step: the Trainer logs the rate each step used), then decays."""
    result = distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH, output=str(tmp_path / "w"),
                     max_steps=8, warmup_ratio=0.25, learning_rate=1e-3, logging_steps=1, batch_size=8, **TINY_STUDENT)
    rates = {e["step"]: e["learning_rate"] for e in result.trainer.state.log_history if "learning_rate" in e}
    assert (rates[1], rates[2], rates[3]) == (0.0, pytest.approx(0.5e-3), pytest.approx(1e-3))
    assert max(rates.values()) == pytest.approx(1e-3) and rates[8] < rates[4] < rates[3]
