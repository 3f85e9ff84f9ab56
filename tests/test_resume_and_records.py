"""Resume and records that tell the truth, and option errors that cost no torch (issue 21, section 2)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import PREDICTION_LENGTH, TINY_STUDENT, assert_one_line_errors_without_torch

from chronos_distill import distill
from chronos_distill.chronos2.model_card import pretrained_card, student_card
from chronos_distill.config import DistillConfig, PretrainConfig
from chronos_distill.data.synthetic import seasonal_long_table
from chronos_distill.errors import ConfigError, DistillError


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, teacher_dir):
    root = tmp_path_factory.mktemp("finished")
    table = seasonal_long_table(n_series=8, length=120, seed=5, covariate=True)
    data = root / "train.csv"
    table.to_csv(data, index=False)
    options = dict(teacher=teacher_dir, train_data=str(data), prediction_length=PREDICTION_LENGTH,
                   output=str(root / "run"), max_steps=3, save_steps=3, batch_size=8, logging_steps=1,
                   known_covariates=["price"], alpha=0.3, **TINY_STUDENT)
    distill(**options)
    return root, options


def test_resuming_a_finished_run_trains_nothing(finished_run):
    root, options = finished_run
    weights = (root / "run" / "model" / "model.safetensors").read_bytes()
    with pytest.raises(DistillError, match=r"already finished at step 3 \(max_steps 3\); nothing to train"):
        distill(**options, resume=True)
    record = json.loads((root / "run" / "model" / "distillation.json").read_text())
    assert record["training"]["steps"] == 3
    assert (root / "run" / "model" / "model.safetensors").read_bytes() == weights
    assert not (root / "run" / "checkpoints" / "checkpoint-4").exists()


@pytest.mark.parametrize("change", [
    {"train_data": "other.csv"}, {"target": ["price"], "known_covariates": []}, {"known_covariates": []},
    {"alpha": 0.5},
    {"feature_weight": 0.1}, {"ignore_columns": ["price"]},
], ids=lambda c: next(iter(c)))
def test_resume_refuses_other_data_columns_or_loss_weights(finished_run, change):
    root, options = finished_run
    if change.get("train_data"):
        other = root / change["train_data"]
        seasonal_long_table(n_series=8, length=120, seed=6, covariate=True).to_csv(other, index=False)
        change = {"train_data": str(other)}
    name = next(iter(change))
    with pytest.raises(DistillError, match=rf"resume=True \(--resume\) with different options than the run being resumed \({name}:"):
        distill(**{**options, **change, "max_steps": 5}, resume=True)


@pytest.mark.parametrize("config_class", [DistillConfig, PretrainConfig])
def test_trainer_args_refuse_fields_that_have_their_own_options(config_class):
    required = (dict(teacher="t", train_data="d.csv", prediction_length=4, output="o") if config_class is DistillConfig
                else dict(output="o"))
    with pytest.raises(ConfigError, match=r"\['learning_rate', 'max_steps'\] have their own options "
                                          r"\(learning_rate -> --learning-rate, max_steps -> --max-steps\)"):
        config_class(**required, trainer_args={"max_steps": 2, "learning_rate": 0.01})
    config_class(**required, trainer_args={"gradient_accumulation_steps": 2})  # others pass through


def test_cards_round_the_numbers_people_read():
    record = {
        "teacher": {"name": "t", "hub_id": None, "license": None, "parameters": 10,
                    "config": {"d_model": 8, "num_layers": 1}},
        "student": {"parameters": 5, "config": {"d_model": 4, "num_layers": 1, "num_heads": 1, "d_ff": 8}},
        "options": {"prediction_length": 4, "batch_size": 8, "learning_rate": 3e-4},
        "training": {"steps": 3, "train_runtime_s": 1.0, "device": "cpu",
                     "exported": {"description": "the last step's", "losses": {"total": 12.074390411376953}}},
        "loss": {"output_loss": "quantile", "terms": {"distill": {"weight": 0.30000000000000004, "option": "alpha"},
                                                      "hard": {"weight": 0.7, "option": "the rest"}}},
        "data": {"train": {"n_series": 2, "n_observations": 20, "source": "d.csv"}},
        "card": {"license": None, "datasets": []},
    }
    card = student_card(record)
    assert "terms distill 0.3 (alpha), hard 0.7 (the rest)" in card and "total 12.07" in card
    assert "0.30000000000000004" not in card
    text = pretrained_card({"options": {"d_model": 8, "num_layers": 1, "num_heads": 1, "d_ff": 8, "real_data": [],
                                        "license": None}, "parameters": 5, "steps": 3, "train_runtime_s": 2.0,
                            "device": "cpu", "final_loss": 12.074390411376953})
    assert "final training loss 12.07)" in text


def test_option_errors_are_one_line_and_import_no_torch(tmp_path, teacher_dir):
    """Each case runs the real command line in one fresh interpreter and checks that it failed with exit 2
    and one line, and that torch was never imported: the check cost no training stack."""
    data = tmp_path / "train.csv"
    seasonal_long_table(n_series=4, length=60, covariate=True).to_csv(data, index=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something.txt").write_text("x")
    typo = tmp_path / "typo.yaml"
    typo.write_text(f"teacher: {teacher_dir}\nstudnet_d_model: 64\n")
    base = ["distill", "--teacher", teacher_dir, "--train-data", str(data), "--prediction-length", "12"]
    cases = {
        "yaml typo": (["distill", "--config", str(typo)], r"unknown option\(s\) \['studnet_d_model'\]"),
        "missing teacher": (["distill", "--train-data", str(data), "--prediction-length", "12", "--output",
                             str(tmp_path / "a")], r"option `teacher` \(--teacher\) is required"),
        "busy output": ([*base, "--output", str(busy)], "is not empty"),
        "bad trainer args": ([*base, "--output", str(tmp_path / "b"), "--trainer-args", '{"max_stpes": 2}'],
                             r"\['max_stpes'\] are not transformers.TrainingArguments fields"),
        "misspelt covariate": ([*base, "--output", str(tmp_path / "c"), "--known-covariates", "prcie"],
                               r"missing column\(s\) \['prcie'\]"),
        "horizon past the teacher's": ([*base[:-1], "100", "--output", str(tmp_path / "d")],
                                       "prediction_length 100 is beyond what the teacher was trained to predict"),
    }
    assert_one_line_errors_without_torch(cases)


@pytest.mark.parametrize("yaml_line, message", [
    ("target: 5", r"`target` \(--target\) must be a list \(or comma-separated text\), got 5"),
    ("max_steps: many", r"`max_steps` \(--max-steps\) must be an integer, got 'many'"),
    ("student_quantiles: [0.1, 1.5]", r"`student_quantiles` \(--student-quantiles\) element must be within \(0, 1\)"),
    ("known_covariates: [price, 3]", r"`known_covariates` \(--known-covariates\) element must be text, got 3"),
    ("train_data: 12", r"`train_data` \(--train-data\) must be a file path or a pandas DataFrame"),
    ("verbose: maybe", r"`verbose` \(--verbose\) must be true or false, got 'maybe'"),
    ("target: []", r"`target` \(--target\) names nothing"),
])
def test_a_wrong_type_in_yaml_names_the_option(tmp_path, yaml_line, message):
    path = tmp_path / "run.yaml"
    base = {"teacher": "t", "train_data": "d.csv", "prediction_length": 4, "output": "o"}
    key = yaml_line.split(":")[0]
    path.write_text("".join(f"{k}: {v}\n" for k, v in base.items() if k != key) + yaml_line + "\n")
    with pytest.raises(ConfigError, match=message):
        DistillConfig.from_yaml(path)


def test_training_options_are_defined_once_with_each_commands_defaults():
    from chronos_distill.cli import build_parser
    from chronos_distill.config import TrainingOptions

    shared = {f.name: f for f in dataclasses.fields(TrainingOptions)}
    for config_class in (DistillConfig, PretrainConfig):
        fields = {f.name: f for f in dataclasses.fields(config_class)}
        assert all(fields[name].metadata is shared[name].metadata for name in shared)  # the same field, not a copy
    distill_cfg = DistillConfig(teacher="t", train_data="d.csv", prediction_length=4, output="o")
    pretrain_cfg = PretrainConfig(output="o")
    assert (distill_cfg.max_steps, distill_cfg.learning_rate) == (1000, 3e-4)
    assert (pretrain_cfg.max_steps, pretrain_cfg.learning_rate) == (10000, 1e-3)
    assert PretrainConfig(output="o", max_steps=7).max_steps == 7
    commands = build_parser()._subparsers._group_actions[0].choices
    assert "[default: 10000]" in commands["pretrain"].format_help().replace("\n", " ").replace("  ", " ")
