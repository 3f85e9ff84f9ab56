"""The library's front door: ``DistillationTrainer(model, teacher_model, args, train_dataset)`` takes objects, as
TRL's trainers do, and ``distill(config)`` and the command line are the same trainer built from names."""

from __future__ import annotations

import pytest
import torch
from chronos import BaseChronosPipeline
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline
from conftest import PREDICTION_LENGTH, TINY_STUDENT
from safetensors.torch import load_file

from chronos_distill import ConfigError, DistillationConfig, DistillationTrainer, DistillConfig, distill
from chronos_distill.cli import main

OPTIONS = dict(prediction_length=PREDICTION_LENGTH, max_steps=5, save_steps=5, batch_size=16, seed=3, **TINY_STUDENT)


def _flags(options: dict) -> list[str]:
    return [text for name, value in options.items() for text in (f"--{name.replace('_', '-')}", str(value))]


def test_a_pipeline_and_a_dataframe_train_save_and_load_and_distill_and_the_cli_give_the_same_weights(
        teacher_dir, table, table_parquet, tmp_path):
    pipeline = Chronos2Pipeline.from_pretrained(teacher_dir)
    trainer = DistillationTrainer(model=None, teacher_model=pipeline.model,
                                  args={"output": str(tmp_path / "objects"), **OPTIONS}, train_dataset=table)
    trainer.train()
    trainer.save_model(str(tmp_path / "published"))

    loaded = BaseChronosPipeline.from_pretrained(tmp_path / "published")
    assert type(loaded.model) is Chronos2Model and loaded.model.config.d_model == TINY_STUDENT["student_d_model"]
    forecast = loaded.predict_df(table, prediction_length=PREDICTION_LENGTH)
    assert forecast["predictions"].notna().all()
    record = trainer.published_record
    assert record["training"]["steps"] == 5 and record["teacher"]["name"] == pipeline.model.config._name_or_path.split("/")[-1]

    by_config = distill(DistillConfig(teacher=teacher_dir, train_data=table, output=str(tmp_path / "config"), **OPTIONS))
    assert main(["distill", "--teacher", teacher_dir, "--train-data", table_parquet, "--output",
                 str(tmp_path / "cli"), *_flags(OPTIONS)]) == 0
    # TRL's way: TrainingArguments with the distillation fields (batch_size is per_device_train_batch_size there)
    as_arguments = {"per_device_train_batch_size" if k == "batch_size" else k: v for k, v in OPTIONS.items()}
    hf_trainer = DistillationTrainer(teacher_model=pipeline, train_dataset=table,
                                     args=DistillationConfig(output_dir=str(tmp_path / "hf"), **as_arguments))
    hf_trainer.train()
    hf_trainer.save_model()
    weights = [load_file(folder / "model.safetensors") for folder in (
        tmp_path / "published", by_config.model_dir, tmp_path / "cli" / "model", tmp_path / "hf" / "model")]
    assert all(w.keys() == weights[0].keys() for w in weights)
    for name in weights[0]:
        assert all(torch.equal(weights[0][name], w[name]) for w in weights[1:]), name


def test_a_distillation_config_is_training_arguments_whose_other_fields_reach_the_trainer(teacher_dir, table, tmp_path):
    """DistillationConfig is a TrainingArguments subclass (as TRL's GKDConfig): the command's defaults where they
    differ from transformers', the distillation options by their own names, and any other field passed through."""
    from transformers import TrainingArguments

    args = DistillationConfig(output_dir=str(tmp_path / "run"), prediction_length=PREDICTION_LENGTH, alpha=0.7,
                              max_steps=2, gradient_accumulation_steps=2, max_grad_norm=0.25,
                              lr_scheduler_type="linear", **TINY_STUDENT)
    assert isinstance(args, TrainingArguments)
    assert (args.learning_rate, args.per_device_train_batch_size, args.seed) == (3e-4, 256, 0)  # the command's
    trainer = DistillationTrainer(teacher_model=teacher_dir, args=args, train_dataset=table)
    assert trainer.distill_config.alpha == 0.7 and trainer.distill_config.output == str(tmp_path / "run")
    assert trainer.distill_config.trainer_args == {"gradient_accumulation_steps": 2, "max_grad_norm": 0.25,
                                                   "lr_scheduler_type": "linear"}
    assert (trainer.args.gradient_accumulation_steps, trainer.args.max_grad_norm) == (2, 0.25)
    assert trainer.args.lr_scheduler_type == "linear" and trainer.args.output_dir == str(tmp_path / "run" / "checkpoints")
    with pytest.raises(ConfigError, match=r"per_device_eval_batch_size -> batch_size"):
        DistillationConfig(output_dir=str(tmp_path / "x"), per_device_eval_batch_size=3)


def test_a_distillation_config_parses_with_hf_argument_parser_as_trl_scripts_parse_theirs(tmp_path):
    from transformers import HfArgumentParser

    (parsed,) = HfArgumentParser(DistillationConfig).parse_args_into_dataclasses([
        "--output_dir", str(tmp_path), "--teacher", "reference", "--train_data", "d.csv", "--prediction_length", "8",
        "--alpha", "0.7", "--target", "a", "b", "--student_quantiles", "0.1", "0.5", "0.9",
        "--term_weights", '{"spread": 0.1}', "--gradient_accumulation_steps", "2", "--lr_scheduler_type", "linear",
        "--resume", "auto"])
    in_python = DistillationConfig(output_dir=str(tmp_path), teacher="reference", train_data="d.csv",
                                   prediction_length=8, alpha=0.7, target=["a", "b"], student_quantiles=[0.1, 0.5, 0.9],
                                   term_weights={"spread": 0.1}, gradient_accumulation_steps=2, lr_scheduler_type="linear",
                                   resume="auto")
    assert DistillConfig(**parsed.distill_options()) == DistillConfig(**in_python.distill_options())


def test_a_student_object_is_trained_in_place_from_its_own_weights(teacher_dir, table, tmp_path):
    """``model``: a Chronos2Model to start from keeps its config and weights (as ``--student`` does); the default
    ``args`` is a mapping, and a Chronos2Pipeline teacher is frozen in place."""
    teacher = Chronos2Pipeline.from_pretrained(teacher_dir)
    student = Chronos2Pipeline.from_pretrained(teacher_dir).model  # a student of the teacher's own shape
    before = {k: v.clone() for k, v in student.state_dict().items()}
    options = {k: v for k, v in OPTIONS.items() if not k.startswith("student_")}
    trainer = DistillationTrainer(student, teacher, {"output": str(tmp_path / "own"), **options}, table)
    assert trainer.student is student and trainer.distill_config.student_init == "random"
    assert not any(p.requires_grad for p in teacher.model.parameters()) and not teacher.model.training
    trainer.train()
    assert any(not torch.equal(before[k], v) for k, v in student.state_dict().items())
    trainer.save_model()  # the run folder's model/
    assert (tmp_path / "own" / "model" / "distillation.json").is_file()
    assert trainer.published_record["student"]["init"] == "checkpoint"


def test_the_front_door_refuses_what_it_cannot_train_in_one_line(teacher_dir, table, tmp_path):
    with pytest.raises(ConfigError, match="teacher_model must be a Chronos2Model or a Chronos2Pipeline"):
        DistillationTrainer(teacher_model=42, args={"output": str(tmp_path / "x"), **OPTIONS}, train_dataset=table)
    with pytest.raises(ConfigError, match="args must be a DistillationConfig, a DistillConfig or a mapping"):
        DistillationTrainer(teacher_model=teacher_dir, args=["output"], train_dataset=table)
    trainer = DistillationTrainer(teacher_model=teacher_dir, args={"output": str(tmp_path / "y"), **OPTIONS},
                                  train_dataset=table)
    with pytest.raises(ConfigError, match=r"call trainer.train\(\) first"):
        trainer.save_model(str(tmp_path / "nothing"))
