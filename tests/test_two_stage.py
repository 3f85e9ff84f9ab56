"""Two-stage distillation (issue 30): a student that starts from an existing Chronos-2 checkpoint (``--student``),
and general students (``--general``) that learn every horizon and share one labelled teacher cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline
from conftest import (
    PREDICTION_LENGTH,
    TINY_STUDENT,
    assert_one_line_errors_without_torch,
    fake_hub_cache,
    straight_and_resumed,
    tiny_teacher_config,
)

from chronos_distill import distill
from chronos_distill.config import DistillConfig
from chronos_distill.distillation.trainer import DistillationTrainer

FAST = dict(batch_size=16, learning_rate=3e-3, logging_steps=1)


@pytest.fixture(scope="module")
def start_dir(tmp_path_factory) -> str:
    """A Chronos-2 checkpoint of another width (48), depth (1) and context length (64) than the 64-d, 2-layer,
    128-context teacher, with the teacher's patching and quantiles: a user's earlier small model."""
    torch.manual_seed(7)
    model = Chronos2Model(tiny_teacher_config(d_model=48, num_layers=1, num_heads=3, d_ff=96, context_length=64))
    folder = tmp_path_factory.mktemp("start")
    Chronos2Pipeline(model).save_pretrained(folder)
    return str(folder)


def _forecast(model: Chronos2Model, table) -> torch.Tensor:
    contexts = [torch.tensor(g["target"].to_numpy(), dtype=torch.float32) for _, g in table.groupby("item_id")][:6]
    with torch.no_grad():
        return torch.stack(Chronos2Pipeline(model).predict(contexts, prediction_length=PREDICTION_LENGTH))


def test_a_student_started_from_a_checkpoint_keeps_its_weights_config_and_resumes_exactly(
        teacher_dir, start_dir, table, tmp_path):
    options = dict(teacher=teacher_dir, student=start_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                   save_steps=2, **FAST)
    start = Chronos2Pipeline.from_pretrained(start_dir).model
    # nothing re-initialised: before the first step the student forecasts exactly as the checkpoint does
    trainer = DistillationTrainer(args=DistillConfig(output=str(tmp_path / "before"), max_steps=4, **options))
    student = trainer.model.student
    for name, tensor in start.state_dict().items():
        assert torch.equal(student.state_dict()[name], tensor), name
    torch.testing.assert_close(_forecast(student.eval(), table), _forecast(start, table), rtol=0, atol=0)

    straight, _ = straight_and_resumed(options, tmp_path)

    # a plain Chronos2Model with the starting checkpoint's own config, trained (its weights moved)
    exported = Chronos2Pipeline.from_pretrained(straight.model_dir).model
    assert type(exported) is Chronos2Model
    config = exported.config
    assert (config.d_model, config.num_layers, config.num_heads, config.d_ff) == (48, 1, 3, 96)
    assert exported.chronos_config.context_length == 64  # not raised to the teacher's 128
    assert exported.chronos_config.max_output_patches == start.chronos_config.max_output_patches
    assert not torch.equal(exported.state_dict()["output_patch_embedding.output_layer.weight"],
                           start.state_dict()["output_patch_embedding.output_layer.weight"])
    record = straight.record
    assert record["student"]["started_from"]["name"] == Path(start_dir).name and record["student"]["init"] == "checkpoint"
    assert record["teacher"]["name"] == Path(teacher_dir).name and record["options"]["student"] == Path(start_dir).name
    card = (straight.model_dir / "README.md").read_text()
    assert f"- started from: {Path(start_dir).name}" in card and f"- teacher: {Path(teacher_dir).name}" in card


def test_a_shorter_context_student_is_compared_in_the_teachers_space(teacher_dir, start_dir, table, tmp_path):
    """The 64-step student reads the last 64 steps of a 128-step window and normalises by them; its quantiles are
    mapped into the teacher's space, so a student that forecasts exactly what the teacher forecasts (in the data's
    units) has distance 0 whatever the two contexts' statistics."""
    from chronos_distill.chronos2.forward import reexpress

    teacher = Chronos2Pipeline.from_pretrained(teacher_dir).model
    student = Chronos2Pipeline.from_pretrained(start_dir).model
    context = torch.linspace(0, 50, 128)[None, :] + 10 * torch.sin(torch.arange(128.0))[None, :]
    values = torch.randn(1, 21, 16)
    _, teacher_stats = teacher.instance_norm(context)
    _, student_stats = student.instance_norm(context[..., -64:])
    assert not torch.allclose(teacher_stats[0], student_stats[0])  # the two spaces differ
    in_units = student.instance_norm.inverse(values.flatten(1), student_stats)
    expected = teacher.instance_norm(in_units, teacher_stats)[0].reshape(values.shape)
    torch.testing.assert_close(reexpress(values, student, teacher, context), expected)

    # the trainer compares the student's quantiles in the teacher's space, never in its own
    from chronos_distill.chronos2.forward import normalised_quantiles

    trainer = DistillationTrainer(args=DistillConfig(teacher=teacher_dir, student=start_dir, train_data=table,
                                    prediction_length=PREDICTION_LENGTH, output=str(tmp_path / "space"), max_steps=1,
                                    **FAST))
    batch = next(iter(trainer.train_dataset))
    seen = {}
    components = trainer.objective.components
    trainer.objective.components = lambda inputs: (seen.setdefault("q", inputs.student.quantiles),
                                                       components(inputs))[1]
    trainer.model.eval()  # no dropout: the two passes below are the same computation
    trainer.compute_loss(trainer.model, batch)
    model = trainer.model.student
    with torch.no_grad():
        own = normalised_quantiles(model, batch)
    torch.testing.assert_close(seen["q"].detach(), reexpress(own, model, trainer.models.teacher, batch["context"]))
    assert not torch.allclose(seen["q"].detach(), own)
    # and training with feature and attention terms across the pair works once both read the same window
    result = distill(teacher=teacher_dir, student=start_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                     context_length=64, feature_weight=0.1, attention_weight=0.1, attention_kind="both",
                     output=str(tmp_path / "features"), max_steps=2, **FAST)
    assert np.isfinite(result.record["final_losses"]["feature"]) and np.isfinite(result.record["final_losses"]["attention"])


def test_student_refusals_are_one_line_before_torch(tmp_path, teacher_dir, start_dir):
    other_patch = tmp_path / "patch8"
    shutil.copytree(start_dir, other_patch)
    config = json.loads((other_patch / "config.json").read_text())
    config["chronos_config"].update(input_patch_size=8, input_patch_stride=8)
    (other_patch / "config.json").write_text(json.dumps(config))
    not_chronos = tmp_path / "bert"
    not_chronos.mkdir()
    (not_chronos / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert"}))
    data = tmp_path / "train.csv"
    from chronos_distill.data.synthetic import seasonal_long_table

    seasonal_long_table(n_series=4, length=60).to_csv(data, index=False)
    base = ["distill", "--teacher", teacher_dir, "--train-data", str(data), "--prediction-length", "12",
            "--output", str(tmp_path / "out")]
    assert_one_line_errors_without_torch({
        "patch size": ([*base, "--student", str(other_patch)],
                       r"student .*patch8 has input_patch_size 8 and the teacher 16"),
        "shape option": ([*base, "--student", start_dir, "--student-d-model", "64"],
                         r"keeps that checkpoint's own shape and quantiles; drop --student-d-model"),
        "other init": ([*base, "--student", start_dir, "--student-init", "pruned"],
                       r"--student-init pruned builds a new student from the teacher: give one of the two"),
        "missing": ([*base, "--student", str(tmp_path / "nowhere")], r"student folder .*nowhere does not exist"),
        "not chronos-2": ([*base, "--student", str(not_chronos)],
                          r"student folder .*bert is not a Chronos-2 checkpoint: its config.json describes \['BertModel'\]"),
        "features across contexts": ([*base, "--student", start_dir, "--feature-weight", "0.1"],
                                     r"reads 64 context steps and the run's windows have 128.*--context-length 64"),
    })


def test_a_general_run_learns_every_horizon_mixing_kd_with_the_truth_and_resumes_exactly(teacher_dir, tmp_path):
    options = dict(teacher=teacher_dir, general=True, save_steps=2, **TINY_STUDENT, **FAST)
    straight, _ = straight_and_resumed(options, tmp_path)  # seeded and exactly resumable
    # by default the teacher's forecasts and the generator's continuation weigh half each (issue 48)
    history = [e for e in straight.trainer.state.log_history if "distill_loss" in e]
    assert history and all(e["total_loss"] == pytest.approx(0.5 * e["distill_loss"] + 0.5 * e["hard_loss"], rel=1e-5)
                           for e in history)
    terms = straight.record["loss"]["terms"]
    assert (terms["distill"]["weight"], terms["hard"]["weight"]) == (0.5, 0.5)
    assert straight.record["student"]["horizon"] == 64  # the teacher's 4 output patches of 16
    dataset = straight.trainer.train_dataset
    np.random.seed(0)
    horizons = {batch["future_target"].shape[-1] for batch, _ in zip(dataset, range(12))}
    assert len(horizons) > 1 and max(horizons) <= 64
    # a general run mixes the teacher's forecasts with the stream's truth by default, as a task run does (issue 48)
    assert DistillConfig(teacher="t", general=True, output="o").alpha == 0.5
    assert DistillConfig(teacher="t", train_data="x.csv", prediction_length=4, output="o").alpha == 0.5
    # and starts pruned from the teacher (chosen on validation, issue 40), unless it starts from a checkpoint
    assert straight.record["student"]["init"] == "pruned"
    assert DistillConfig(teacher="t", general=True, output="o").student_init == "pruned"
    assert DistillConfig(teacher="t", general=True, student="s", output="o").student_init == "random"
    assert DistillConfig(teacher="t", train_data="x.csv", prediction_length=4, output="o").student_init == "random"


class _Recorded:
    """The batches a run trained on at chosen steps (context and future, as the trainer received them)."""

    def __init__(self, steps):
        self.steps, self.batches = set(steps), {}

    def __call__(self, trainer, inputs):
        step = trainer.state.global_step + 1
        if step in self.steps:
            self.batches[step] = {k: inputs[k].clone() for k in ("context", "future_target")}


def _train_recording(options: dict, tmp_path: Path, name: str, steps, monkeypatch, teacher_forward=None):
    """``DistillationTrainer`` + ``train`` of ``options``, recording the batches of ``steps``; ``teacher_forward``
    replaces the teacher's forward."""
    from chronos_distill.distillation.trainer import DistillationTrainer

    recorded = _Recorded(steps)
    original = DistillationTrainer.compute_loss

    def compute_loss(self, model, inputs, *args, **kwargs):
        recorded(self, inputs)
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(DistillationTrainer, "compute_loss", compute_loss)
    trainer = DistillationTrainer(args=DistillConfig(output=str(tmp_path / name), **options))
    if teacher_forward is not None:
        trainer.teacher.forward = teacher_forward
    trainer.train()
    monkeypatch.setattr(DistillationTrainer, "compute_loss", original)
    return trainer, recorded.batches


def test_general_alpha_0_trains_on_the_truth_of_the_same_batches_without_any_teacher_forward(
        teacher_dir, tmp_path, monkeypatch):
    """The truth-only control: ``--general --alpha 0`` never runs the teacher (one whose forward raises still
    trains), and it draws exactly the KD run's batches (context and future at steps 1 and 50), so that the two
    differ only in the target."""
    # a random start: the default pruned start reads the teacher on calibration batches before training
    options = dict(teacher=teacher_dir, general=True, student_init="random", max_steps=50, save_steps=100, seed=3,
                   **TINY_STUDENT, **FAST)

    def refuse(*args, **kwargs):
        raise AssertionError("the truth-only run ran the teacher")

    truth_trainer, truth_batches = _train_recording({**options, "alpha": 0.0}, tmp_path, "truth", (1, 50), monkeypatch,
                                                teacher_forward=refuse)
    kd_trainer, kd_batches = _train_recording(options, tmp_path, "kd", (1, 50), monkeypatch)
    for step in (1, 50):
        for key in ("context", "future_target"):
            torch.testing.assert_close(truth_batches[step][key], kd_batches[step][key], rtol=0, atol=0, equal_nan=True)
    # the truth is there: the generator's continuation of the target rows
    assert torch.isfinite(truth_batches[50]["future_target"]).any()
    history = [e for e in truth_trainer.state.log_history if "total_loss" in e]
    assert history and all(e["total_loss"] == pytest.approx(e["hard_loss"], rel=1e-6) for e in history)
    assert not any("distill_loss" in e for e in history)
    assert truth_trainer.objective.weights == {"hard": 1.0}
    assert kd_trainer.objective.weights == {"distill": 0.5, "hard": 0.5}  # the default mix, on the same batches


def test_general_alpha_half_weighs_the_teacher_and_the_truth_and_records_both(teacher_dir, tmp_path):
    result = distill(teacher=teacher_dir, general=True, alpha=0.5, max_steps=3, output=str(tmp_path / "mixed"),
                     general_bank_size=5, **TINY_STUDENT, **FAST)
    assert len(result.trainer.train_dataset.source.bank) == 5  # --general-bank-size reaches the stream
    history = [e for e in result.trainer.state.log_history if "total_loss" in e]
    assert history
    for entry in history:
        assert entry["distill_loss"] > 0 and entry["hard_loss"] > 0
        assert entry["total_loss"] == pytest.approx(0.5 * entry["distill_loss"] + 0.5 * entry["hard_loss"], rel=1e-5)
    terms = result.record["loss"]["terms"]
    assert (terms["distill"]["weight"], terms["hard"]["weight"]) == (0.5, 0.5)


def test_general_students_of_other_shapes_and_seeds_share_one_cache_labelled_once(teacher_dir, tmp_path):
    cache = str(tmp_path / "cache")
    common = dict(teacher=teacher_dir, general=True, teacher_cache=cache, cache_batches=3, max_steps=2, **FAST)
    first = distill(output=str(tmp_path / "a"), seed=0, **TINY_STUDENT, **common)
    second = distill(output=str(tmp_path / "b"), seed=1, student_d_model=48, student_num_heads=3, student_num_layers=2,
                     **common)
    a, b = first.record["training"]["teacher_cache"], second.record["training"]["teacher_cache"]
    assert (a["reused"], b["reused"]) == (False, True) and a["folder"] == b["folder"]
    assert len(list(Path(cache).iterdir())) == 1
    assert first.record["student"]["config"]["d_model"] != second.record["student"]["config"]["d_model"]


def test_a_student_from_a_hub_id_names_it_as_the_base_model(teacher_dir, start_dir, table, tmp_path, monkeypatch):
    """``--student autogluon/chronos-2-small`` (here from a local Hugging Face cache, offline): the card's
    base_model is the starting checkpoint, and the record names both it and the teacher."""
    fake_hub_cache(tmp_path, monkeypatch, "autogluon/chronos-2-small", start_dir)
    result = distill(teacher=teacher_dir, student="autogluon/chronos-2-small", train_data=table,
                     prediction_length=PREDICTION_LENGTH, output=str(tmp_path / "out"), max_steps=1, **FAST)
    started = result.record["student"]["started_from"]
    assert started == {"name": "autogluon/chronos-2-small", "hub_id": "autogluon/chronos-2-small",
                       "license": "apache-2.0"}
    card = (result.model_dir / "README.md").read_text()
    assert "base_model: autogluon/chronos-2-small" in card
    assert result.record["student"]["config"]["d_model"] == 48


def test_a_general_run_starts_pruned_and_a_depth_only_prune_forecasts_as_the_teachers_kept_layers(teacher_dir, tmp_path):
    """``--general`` starts ``--student-init pruned`` by default (Minitron: prune, then distil): calibrated on the general stream, and
    nothing the prune kept is re-initialised. A student of the teacher's width with one of its two blocks forecasts,
    before the first step, exactly as the teacher does with only that block."""
    import copy

    from torch import nn

    from chronos_distill.chronos2.forward import normalised_quantiles

    teacher = Chronos2Pipeline.from_pretrained(teacher_dir).model.eval()
    trainer = DistillationTrainer(args=DistillConfig(
        teacher=teacher_dir, general=True, student_d_model=64, student_num_layers=1,
        student_num_heads=4, student_d_ff=128, calibration_batches=2, max_steps=1, output=str(tmp_path / "pruned"),
        **FAST))
    student = trainer.model.student.eval()
    assert student.config.num_layers == 1 and student.config.d_model == teacher.config.d_model
    kept = [k for k, block in enumerate(teacher.encoder.block)
            if all(torch.equal(a, b) for a, b in zip(block.state_dict().values(),
                                                     student.encoder.block[0].state_dict().values()))]
    assert len(kept) == 1
    reference = copy.deepcopy(teacher)
    reference.encoder.block = nn.ModuleList([reference.encoder.block[kept[0]]])
    np.random.seed(0)
    first = next(iter(trainer.train_dataset))
    with torch.no_grad():
        torch.testing.assert_close(normalised_quantiles(student, first), normalised_quantiles(reference, first))
        # and not the whole teacher's forecast: the dropped block mattered
        assert not torch.allclose(normalised_quantiles(student, first), normalised_quantiles(teacher, first))
