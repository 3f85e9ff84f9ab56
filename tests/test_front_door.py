"""The library's front door: ``DistillationTrainer(model, teacher_model, args, train_dataset)`` takes objects, as
TRL's trainers do, and ``distill(config)`` and the command line are the same trainer built from names."""

from __future__ import annotations

import pytest
import torch
from chronos import BaseChronosPipeline
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline
from conftest import PREDICTION_LENGTH, TINY_STUDENT
from safetensors.torch import load_file

from chronos_distill import ConfigError, DistillationTrainer, DistillConfig, distill
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
    weights = [load_file(folder / "model.safetensors")
               for folder in (tmp_path / "published", by_config.model_dir, tmp_path / "cli" / "model")]
    assert weights[0].keys() == weights[1].keys() == weights[2].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]) and torch.equal(weights[0][name], weights[2][name]), name


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
    with pytest.raises(ConfigError, match="args must be a DistillConfig or a mapping"):
        DistillationTrainer(teacher_model=teacher_dir, args=["output"], train_dataset=table)
    trainer = DistillationTrainer(teacher_model=teacher_dir, args={"output": str(tmp_path / "y"), **OPTIONS},
                                  train_dataset=table)
    with pytest.raises(ConfigError, match=r"call trainer.train\(\) first"):
        trainer.save_model(str(tmp_path / "nothing"))
