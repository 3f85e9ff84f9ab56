"""Every setting a user gives is kept, or refused in one line when the configuration is built (issue 47): each
``TrainingArguments`` field set on a ``DistillationConfig``, an option left out of a resumed run, an override of
``distill(config, ...)``, a misspelt name."""

from __future__ import annotations

import dataclasses
import enum
import json
import signal
import typing

import pytest
import torch
from conftest import PREDICTION_LENGTH, TINY_STUDENT
from transformers import TrainerCallback, TrainingArguments

from chronos_distill import ConfigError, DistillationConfig, DistillationTrainer, DistillConfig, distill
from chronos_distill.distillation.build import distill_training_arguments
from chronos_distill.errors import StoppedBySignal
from chronos_distill.training.arguments import RUN_CHOSEN

#: Values for the fields whose type alone does not give a valid one other than the default.
SPECIAL_VALUES = {
    "optim": "adafactor", "lr_scheduler_type": "constant", "logging_strategy": "no", "save_strategy": "no",
    "eval_strategy": "steps", "hub_strategy": "end", "report_to": ["tensorboard"], "debug": "underflow_overflow",
    "include_num_input_tokens_seen": "all", "log_level": "info", "log_level_replica": "error",
    "accelerator_config": {"split_batches": True}, "fsdp": "full_shard", "deepspeed": "ds_config.json",
    "fsdp_config": {"min_num_params": 10}, "lr_scheduler_kwargs": {"num_cycles": 2},
    "label_names": ["future_target", "other"], "include_for_metrics": ["inputs"], "optim_target_modules": ["attn"],
    "torch_compile_backend": "eager", "torch_compile_mode": "reduce-overhead", "trackio_static_space_id": "space",
    "ddp_backend": "gloo", "dataloader_multiprocessing_context": "spawn", "train_sampling_strategy": "sequential",
    "parallelism_config": object(), "liger_kernel_config": {"rope": True}, "metric_for_best_model": "eval_hard_loss",
    "gradient_checkpointing_kwargs": {"use_reentrant": False}, "activation_checkpointing_kwargs": {"x": 1},
    "local_rank": 0, "dataloader_prefetch_factor": 3,
}


class SignalDuringStep(TrainerCallback):
    """SIGTERM to this process while step ``step`` runs (the run then checkpoints that step and stops)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.step - 1:
            signal.raise_signal(signal.SIGTERM)


def _value_other_than_default(f: dataclasses.Field) -> typing.Any:
    """A value of ``f``'s type that is not its default."""
    if f.name in SPECIAL_VALUES:
        return SPECIAL_VALUES[f.name]
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    hint = str(typing.get_type_hints(TrainingArguments)[f.name])
    if isinstance(default, bool) or "bool" in hint:
        return not default
    if isinstance(default, int) or hint.startswith("int"):
        return (default or 0) + 3
    if isinstance(default, float) or hint.startswith("float"):
        return (default or 0.0) + 0.25
    return "chosen"


def _comparable(value: typing.Any) -> typing.Any:
    """A field's value as transformers normalises it, comparable across two ``TrainingArguments``."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return value


def test_every_training_arguments_field_set_on_a_distillation_config_reaches_the_run_or_is_refused(tmp_path):
    """Over every field of the class (not a hand-picked list): set to a value other than its default, it is either
    the value of that field in the run's TrainingArguments, or refused in one line when the config is built."""
    reached, refused = [], []
    for f in dataclasses.fields(TrainingArguments):
        if not f.init or f.name == "output_dir":
            continue
        value = _value_other_than_default(f)
        try:
            config = DistillationConfig(output_dir=str(tmp_path / "run"), teacher="reference",
                                        prediction_length=PREDICTION_LENGTH, **{f.name: value})
        except ConfigError as exc:
            assert "\n" not in str(exc), f.name
            refused.append(f.name)
            continue
        run = distill_training_arguments(config.checked_options(), tmp_path / "run" / "checkpoints",
                                         has_validation=False)
        # the value transformers makes of it (an enum, a list, ...), on this machine (a CPU: use_cpu, as the run)
        alone = TrainingArguments(output_dir=str(tmp_path / "alone"), **{"use_cpu": True, f.name: value})
        assert _comparable(getattr(run, f.name)) == _comparable(getattr(alone, f.name)), f.name
        reached.append(f.name)
    # the ones a run cannot honour, and those that follow an option, are refused
    assert {"num_train_epochs", "push_to_hub", "hub_token", "hub_model_id", "per_device_eval_batch_size",
            "eval_steps", "warmup_steps", "parallelism_config"} <= set(refused)
    assert {"bf16", "gradient_accumulation_steps", "max_grad_norm", "torch_compile", "optim", "max_steps",
            "per_device_train_batch_size", "learning_rate", "seed", "report_to", "ignore_data_skip"} <= set(reached)
    assert len(reached) + len(refused) == sum(f.init for f in dataclasses.fields(TrainingArguments)) - 1


def test_a_field_the_run_would_choose_is_kept_when_set_to_transformers_own_default(tmp_path):
    """bf16=False, use_cpu=False, ...: equal to transformers' default, but the run would choose otherwise on some
    device, so setting it is what counts (a value equal to the default used to be dropped)."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainingArguments)}
    for name in RUN_CHOSEN:
        value = defaults[name] if defaults[name] is not None else SPECIAL_VALUES.get(name, True)
        try:
            config = DistillationConfig(output_dir=str(tmp_path / "run"), teacher="reference",
                                        prediction_length=PREDICTION_LENGTH, **{name: value})
        except ConfigError:  # e.g. load_best_model_at_end without validation: refused, not dropped
            continue
        assert name in config.passed_through(), name
        assert config.passed_through()[name] == config.to_dict()[name]
    unset = DistillationConfig(output_dir=str(tmp_path / "run"), teacher="reference",
                               prediction_length=PREDICTION_LENGTH)
    assert set(unset.run_chooses) == set(RUN_CHOSEN) and unset.passed_through() == {}


def test_distillation_options_and_misspelt_names_are_refused_when_the_config_is_built(tmp_path, monkeypatch):
    base = dict(output_dir=str(tmp_path / "run"), teacher="reference", prediction_length=PREDICTION_LENGTH)
    for wrong, message in [(dict(alpha=5), "option `alpha` (--alpha) must be within [0, 1], got 5"),
                           (dict(output_loss="nope"), "must be one of ['quantile', 'median_mse'], got 'nope'"),
                           (dict(max_step=3), "unknown field `max_step` (did you mean `max_steps`?)"),
                           (dict(save_strategy="epoch"), "`save_strategy` cannot be honoured")]:
        with pytest.raises(ConfigError) as caught:
            DistillationConfig(**base, **wrong)
        assert message in str(caught.value)
    for build in (lambda: DistillConfig(teacher="reference", general=True, output="x", max_step=3),
                  lambda: distill(teacher="reference", general=True, output="x", max_step=3)):
        with pytest.raises(ConfigError, match=r"unknown option `max_step` \(did you mean `max_steps`\?\)"):
            build()
    # the two vocabularies: each names the other's spelling
    with pytest.raises(ConfigError, match="`batch_size` is `per_device_train_batch_size` here"):
        DistillationConfig(**base, batch_size=8)
    with pytest.raises(ConfigError, match="`per_device_train_batch_size` is `batch_size` here"):
        DistillConfig(teacher="reference", general=True, output="x", per_device_train_batch_size=8)
    with pytest.raises(ConfigError, match="`output_dir` is `output` here"):
        DistillConfig(teacher="reference", general=True, output_dir="x")
    (tmp_path / "run.yaml").write_text("teacher: reference\ngeneral: true\noutput: x\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match=r"did you mean `learning_rate`"):
        DistillConfig.from_yaml(tmp_path / "run.yaml")
    with pytest.raises(ConfigError, match=r"did you mean `gradient_accumulation_steps`"):
        DistillConfig(teacher="reference", general=True, output="x", trainer_args={"gradient_acumulation_steps": 2})


def test_the_training_arguments_are_checked_before_the_teacher_is_loaded(teacher_dir, table, tmp_path, monkeypatch):
    """A setting transformers refuses (the best checkpoint needs evaluation) is one line before anything slow: the
    teacher, the student's calibration, the cache (the data's own errors come first, they are cheap)."""
    import chronos_distill.distillation.trainer as trainer_module

    def too_late(*args, **kwargs):
        raise AssertionError("the teacher was loaded before the TrainingArguments were checked")

    monkeypatch.setattr(trainer_module, "build_models", too_late)
    with pytest.raises(ConfigError, match="TrainingArguments refuses these settings") as caught:
        DistillationTrainer(teacher_model=teacher_dir, train_dataset=table,
                            args={"output": str(tmp_path / "run"), "prediction_length": PREDICTION_LENGTH,
                                  "trainer_args": {"load_best_model_at_end": True}})
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_replace_and_distill_overrides_work_out_the_defaults_that_depend_on_them_again(monkeypatch):
    general = DistillConfig(teacher="reference", general=True, output="x")
    assert general.student_init == "pruned"
    assert general.replace(student="some/folder").student_init == "random"  # no pruned-start error
    task = general.replace(general=False, train_data="d.csv", prediction_length=4)
    assert task.student_init == "random"
    assert general.replace(alpha=0.3).alpha == 0.3 and general.replace().given == general.given

    import chronos_distill.distillation.run as run_module

    seen = {}

    class Stop(Exception):
        pass

    def capture(args, checked):
        seen["cfg"] = args
        raise Stop

    monkeypatch.setattr(run_module, "DistillationTrainer", capture)
    with pytest.raises(Stop):
        distill(general, student="some/folder")
    assert seen["cfg"].student_init == "random" and seen["cfg"].student == "some/folder"


def test_a_resumed_run_takes_every_option_left_out_from_its_record(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    recorded = DistillConfig(teacher="reference", train_data="d.csv", prediction_length=4, output=str(run),
                             batch_size=32, alpha=0.8, trainer_args={"gradient_accumulation_steps": 2}).to_dict()
    (run / "run_config.json").write_text(json.dumps(recorded))
    resumed = DistillConfig(output=str(run), resume=True, max_steps=2000)
    assert (resumed.batch_size, resumed.alpha, resumed.teacher, resumed.train_data) == (32, 0.8, "reference", "d.csv")
    assert resumed.trainer_args == {"gradient_accumulation_steps": 2} and resumed.max_steps == 2000
    assert DistillConfig(output=str(run), resume=True, batch_size=64).batch_size == 64  # given: kept (and checked)
    assert DistillConfig(teacher="reference", train_data="d.csv", prediction_length=4, output=str(run)).batch_size == 256
    # a --general run recorded before the pruned start was the default resumes with the start it had
    old_general = tmp_path / "old-general"
    old_general.mkdir()
    recorded = DistillConfig(teacher="reference", general=True, output=str(old_general), student_init="random")
    (old_general / "run_config.json").write_text(json.dumps(recorded.to_dict()))
    assert DistillConfig(output=str(old_general), resume=True, general=True).student_init == "random"
    assert DistillConfig(teacher="reference", output=str(old_general), general=True).student_init == "pruned"  # new run


def test_the_trainer_is_the_run_signal_resume_and_a_card_that_counts_the_session(teacher_dir, table, tmp_path):
    """train() is what the command runs: a signal checkpoints the step and stops; the folder is prepared at train
    time (overwrite deletes nothing when the trainer is built); train(resume_from_checkpoint=True) continues, and
    the record and card count that session's steps apart from the run's, with the effective batch."""
    run = tmp_path / "run"
    options = dict(teacher=teacher_dir, prediction_length=PREDICTION_LENGTH, save_steps=2, seed=1, **TINY_STUDENT)
    args = DistillationConfig(output_dir=str(run), max_steps=6, per_device_train_batch_size=8,
                              gradient_accumulation_steps=2, **options)

    first = DistillationTrainer(args=args, train_dataset=table, callbacks=[SignalDuringStep(3)])
    with pytest.raises(StoppedBySignal, match="at step 3: checkpoint-3 written"):
        first.train()
    assert (run / "checkpoints" / "checkpoint-3").is_dir()

    replacing = DistillationTrainer(args=dataclasses.replace(args, overwrite=True), train_dataset=table)
    assert (run / "checkpoints" / "checkpoint-3").is_dir()  # built: nothing deleted yet
    del replacing

    again = DistillationTrainer(args=dataclasses.replace(args, resume=True), train_dataset=table)
    with pytest.raises(ConfigError, match="contradicts resume=True"):
        again.train(resume_from_checkpoint=False)  # and nothing of the run is deleted
    assert (run / "checkpoints" / "checkpoint-3").is_dir()
    again.train(resume_from_checkpoint=True)
    again.save_model()
    training = again.published_record["training"]
    assert (training["steps"], training["session_steps"], training["effective_batch_size"]) == (6, 3, 16)
    card = (run / "model" / "README.md").read_text()
    assert "6 steps, the last 3 after resuming, effective batch 16 (8 x 2 accumulation x 1 process)" in card
    with pytest.raises(ConfigError, match="push_to_hub"):
        again.push_to_hub()


def test_a_pruned_start_calibrates_once_per_run_and_its_resumed_run_is_the_uninterrupted_one(teacher_dir, table,
                                                                                            tmp_path, monkeypatch):
    """Calibration runs when the run starts, not again on resume (its weights come from the checkpoint), and the
    resumed run still trains the very student of an uninterrupted one; an option left out of the resume (the
    batch size) is the run's, not the default."""
    from safetensors.torch import load_file

    import chronos_distill.chronos2.pruning as pruning

    options = dict(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH, save_steps=2, seed=2,
                   batch_size=8, student_init="pruned", feature_weight=0.2, **TINY_STUDENT)
    straight = distill(output=str(tmp_path / "straight"), max_steps=4, **options)
    stopped = DistillationTrainer(args=DistillConfig(output=str(tmp_path / "resumed"), max_steps=4, **options),
                                  callbacks=[SignalDuringStep(2)])
    with pytest.raises(StoppedBySignal, match="at step 2"):
        stopped.train()

    def no_calibration(*args, **kwargs):
        raise AssertionError("calibrated again on resume")

    monkeypatch.setattr(pruning, "estimate_importance", no_calibration)
    resumed = distill(output=str(tmp_path / "resumed"), resume=True, max_steps=4, teacher=teacher_dir, train_data=table)
    assert resumed.record["options"]["batch_size"] == 8 and resumed.record["student"]["init"] == "pruned"
    assert resumed.record["training"]["session_steps"] == 2
    a, b = (load_file(result.model_dir / "model.safetensors") for result in (straight, resumed))
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_the_teacher_cache_is_placed_on_the_trainers_device_not_on_whatever_gpu_is_visible(teacher_dir, table,
                                                                                          tmp_path, monkeypatch):
    """use_cpu=True keeps the cache on the CPU even where CUDA is visible: the Trainer's device decides."""
    from chronos_distill.config import DISTILL_FIXED_ON_RESUME
    from chronos_distill.distillation import build
    from chronos_distill.distillation.preflight import check_distill_inputs

    cfg = DistillConfig(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH, batch_size=8,
                        output=str(tmp_path / "run"), teacher_cache=str(tmp_path / "cache"), cache_batches=2,
                        **TINY_STUDENT)
    data = build.load_run_data(cfg)
    models = build.build_models(cfg, check_distill_inputs(cfg, DISTILL_FIXED_ON_RESUME), data)

    def no_gpu_here(*args, **kwargs):
        raise AssertionError("asked a GPU for its free memory: the cache followed torch.cuda, not the Trainer")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", no_gpu_here)
    batches, info = build.label_with_cache(cfg, data, models, device=torch.device("cpu"))
    assert info["held_on"] == "cpu" and batches.device.type == "cpu"


def test_the_type_stub_that_shows_ides_the_fields_is_the_rendering_of_the_field_list():
    """IDEs and type checkers read DistillationConfig's fields from distillation_config.pyi (a make_dataclass
    class shows them none); the stub is written from the same field list, so it cannot drift."""
    from pathlib import Path

    import chronos_distill.distillation.distillation_config as module

    stub = Path(module.__file__).with_suffix(".pyi")
    assert stub.read_text() == module.render_stub(), "run python scripts/render_sources.py"
    for name in ("alpha: float = ...", "student_init: str | None = ...", "train_data: Any = ...", "general: bool = ..."):
        assert f"    {name}" in stub.read_text()
