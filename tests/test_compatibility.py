"""The drop-in contract, without the network: every folder the project saves loads through upstream's entry
points (``BaseChronosPipeline`` and ``Chronos2Pipeline``) with equal forecasts, survives upstream ``fit`` +
``save_pretrained``, and is publishable as it is (model card, no training state, no local paths)."""

from __future__ import annotations

import json
import shutil
import stat

import pytest
import torch
from chronos import BaseChronosPipeline
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline
from conftest import PREDICTION_LENGTH, TINY_STUDENT
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from chronos_distill import distill
from chronos_distill.chronos2.checkpoints import BUNDLED_TEACHERS, describe_teacher
from chronos_distill.chronos2.loading import load_chronos2
from chronos_distill.cli import main

CONTEXTS = [torch.sin(torch.arange(96.0) / 3) * 5 + 20, torch.linspace(0, 30, 70)]


@pytest.fixture(scope="module")
def hub_snapshot_teacher(teacher_dir, tmp_path_factory):
    """The tiny teacher laid out as the Hugging Face cache lays out a download of amazon/chronos-2."""
    snapshot = tmp_path_factory.mktemp("hf-cache") / "models--amazon--chronos-2" / "snapshots" / "0123abc"
    shutil.copytree(teacher_dir, snapshot)
    return snapshot


@pytest.fixture(scope="module")
def distilled(hub_snapshot_teacher, table, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "student"
    result = distill(teacher=str(hub_snapshot_teacher), train_data=table, prediction_length=PREDICTION_LENGTH,
                     output=str(out), max_steps=2, save_steps=2, batch_size=16, datasets=["autogluon/chronos_datasets"],
                     **TINY_STUDENT)
    return result


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "teacher"
    assert main(["pretrain", "--output", str(out), "--max-steps", "1", "--save-steps", "1", "--d-model", "32",
                 "--num-layers", "1", "--num-heads", "2", "--d-kv", "16", "--d-ff", "64", "--context-length", "64",
                 "--kernel-bank-size", "4", "--batch-size", "8", "--real-data", "M3", "--license", "mit"]) == 0
    return out / "model"


def _forecasts(pipeline):
    quantiles, _ = pipeline.predict_quantiles(CONTEXTS, prediction_length=PREDICTION_LENGTH)
    return torch.stack([q.float() for q in quantiles])


def _exports(distilled, pretrained):
    return {"student": distilled.model_dir, "pretrained": pretrained,
            **{alias: bundled.folder for alias, bundled in BUNDLED_TEACHERS.items()}}


def test_every_export_loads_through_both_entry_points_with_equal_forecasts(distilled, pretrained):
    """Each published folder loads through upstream's entry points, and forecasts exactly as a plain
    ``Chronos2Model`` built from its config.json with its safetensors weights loaded strictly (no key missing or
    left over: nothing training-only was exported). The distilled student also forecasts as the model in memory."""
    for name, folder in _exports(distilled, pretrained).items():
        config = json.loads((folder / "config.json").read_text())
        assert config["chronos_pipeline_class"] == "Chronos2Pipeline", name
        assert config["torch_dtype"] == config["dtype"], name  # transformers 4 reads torch_dtype, 5 reads dtype
        base = BaseChronosPipeline.from_pretrained(folder, device_map="cpu")
        assert type(base) is Chronos2Pipeline and type(base.model) is Chronos2Model, name
        plain = Chronos2Model(Chronos2Model.config_class.from_pretrained(folder))
        plain.load_state_dict(load_file(folder / "model.safetensors"), strict=True)
        # in fp32 both; a bf16 checkpoint loaded by from_pretrained keeps some buffers (RoPE) in bf16, hence rtol
        torch.testing.assert_close(_forecasts(Chronos2Pipeline(base.model.float().eval())),
                                   _forecasts(Chronos2Pipeline(plain.float().eval())), rtol=2e-3, atol=1e-3, msg=name)
    in_memory = Chronos2Pipeline(distilled.student.float().eval())
    torch.testing.assert_close(_forecasts(BaseChronosPipeline.from_pretrained(distilled.model_dir)),
                               _forecasts(in_memory), rtol=1e-6, atol=1e-6)


def test_upstream_fit_and_save_keep_the_student_loadable(distilled, table, tmp_path):
    pipeline = BaseChronosPipeline.from_pretrained(distilled.model_dir, device_map="cpu")
    inputs = [{"target": group["target"].to_numpy()} for _, group in table.groupby("item_id")][:8]
    tuned = pipeline.fit(inputs, prediction_length=PREDICTION_LENGTH, num_steps=2, batch_size=8,
                         output_dir=tmp_path / "fit", remove_printer_callback=True)
    tuned.model.eval()  # fit() hands its model back in train mode (dropout on): forecasts would be random
    tuned.save_pretrained(tmp_path / "saved")
    again = BaseChronosPipeline.from_pretrained(tmp_path / "saved", device_map="cpu")
    assert type(again) is Chronos2Pipeline
    assert torch.allclose(_forecasts(again), _forecasts(tuned), atol=1e-6)
    assert not torch.equal(_forecasts(again), _forecasts(pipeline))  # fit really changed the weights


def test_the_model_folder_is_publishable_and_training_state_sits_beside_it(distilled):
    run, model = distilled.output, distilled.model_dir
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "model", "run_config.json"]
    assert sorted(p.name for p in model.iterdir()) == ["README.md", "config.json", "distillation.json",
                                                       "model.safetensors"]
    # run_config.json is an ordinary file, readable like the rest (not mkstemp's private 0600)
    assert stat.S_IMODE((run / "run_config.json").stat().st_mode) & 0o044 == 0o044

    card = ModelCard.load(model / "README.md")
    assert card.data.license == "apache-2.0"  # amazon/chronos-2's, found from the cache snapshot's hub id
    assert card.data.base_model == "amazon/chronos-2"
    assert card.data.datasets == ["autogluon/chronos_datasets"]
    assert card.data.library_name == "chronos-forecasting"
    assert card.data.pipeline_tag == "time-series-forecasting"
    assert "knowledge-distillation" in card.data.tags
    assert "the last step (2)" in card.text
    published = (model / "README.md").read_text() + (model / "distillation.json").read_text()
    assert str(run.parent) not in published and "/tmp" not in published and "snapshots" not in published
    record = json.loads((model / "distillation.json").read_text())
    assert record["teacher"]["name"] == "amazon/chronos-2" and record["options"]["output"] == "student"


def test_the_card_names_the_bundled_teacher_and_the_best_checkpoint(table, tmp_path):
    ids = table["item_id"].unique()
    result = distill(teacher="reference", train_data=table[table["item_id"].isin(ids[:16])],
                     validation_data=table[table["item_id"].isin(ids[16:])], prediction_length=PREDICTION_LENGTH,
                     output=str(tmp_path / "out"), max_steps=4, save_steps=2, batch_size=8, student_num_layers=1,
                     **TINY_STUDENT)
    card = ModelCard.load(result.model_dir / "README.md")
    assert "chronos-distill reference teacher v2" in card.text and "`reference`" not in card.text
    assert card.data.license == "apache-2.0" and card.data.base_model is None
    exported = result.record["training"]["exported"]
    evaluations = [e for e in result.trainer.state.log_history if "eval_loss" in e]
    assert [e["step"] for e in evaluations] == [2, 4]
    best = min(evaluations, key=lambda e: e["eval_loss"])["step"]  # the exported one is the best, not just any
    assert exported["checkpoint"] == f"checkpoint-{best}"
    assert f"the best checkpoint by the lowest eval_hard_loss ({exported['criterion_value']:.4g}), " \
        f"{exported['checkpoint']} of 4 steps" in card.text
    assert "eval_total" in exported["losses"]


def test_a_local_teacher_without_a_known_license_takes_the_license_option(teacher_dir, table, tmp_path):
    assert describe_teacher(teacher_dir).license is None
    result = distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                     output=str(tmp_path / "out"), max_steps=1, save_steps=1, batch_size=8, license="cc-by-4.0",
                     **TINY_STUDENT)
    assert ModelCard.load(result.model_dir / "README.md").data.license == "cc-by-4.0"


def test_teacher_descriptions():
    assert describe_teacher("amazon/chronos-2").to_dict() == {
        "name": "amazon/chronos-2", "hub_id": "amazon/chronos-2", "license": "apache-2.0"}
    assert describe_teacher("someone/else").license is None
    assert describe_teacher("reference").name == "chronos-distill reference teacher v2"
    assert describe_teacher("reference-v1").name == "chronos-distill reference teacher v1"
    assert describe_teacher("reference-v0").name == "chronos-distill reference teacher v0"


def test_a_run_folder_loads_as_its_model(distilled):
    assert load_chronos2(distilled.output, role="student").config.d_model == TINY_STUDENT["student_d_model"]


def test_pretrained_card_parses(pretrained):
    card = ModelCard.load(pretrained / "README.md")
    assert card.data.license == "mit" and card.data.library_name == "chronos-forecasting"


def test_no_private_trainer_method_is_overridden_and_the_floor_is_what_ci_runs():
    """Issue 31: a transformers release changes private Trainer methods without notice (``_save_checkpoint``'s
    signature has), so the trainers override public API only; and the declared floor is a version CI installs
    (no 4.x release works: Trainer.log and the warmup options differ), so a user who installs it gets code that
    ran."""
    import re
    import tomllib
    from importlib.metadata import version
    from pathlib import Path

    from transformers import Trainer

    from chronos_distill.distillation.trainer import DistillationTrainer

    private = [name for name in vars(DistillationTrainer)
               if name.startswith("_") and not name.startswith("__") and hasattr(Trainer, name)]
    assert private == [], private
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    floors = {m.group(1): m.group(2) for d in project["dependencies"]
              if (m := re.match(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", d))}
    assert int(floors["transformers"].split(".")[0]) >= 5
    for name in ("transformers", "accelerate", "chronos-forecasting", "pandas"):
        installed = tuple(int(p) for p in re.findall(r"\d+", version(name))[:3])
        floor = tuple(int(p) for p in floors[name].split("."))
        assert installed >= floor, (name, installed, floor)
