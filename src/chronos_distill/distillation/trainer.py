"""The distillation trainer: ``transformers.Trainer`` with a ``compute_loss`` that asks the teacher.

Like TRL's trainers, it subclasses ``Trainer`` and overrides ``compute_loss``, so checkpoints, resume,
logging, evaluation, mixed precision and ``torchrun`` / ``accelerate launch`` come from transformers. It
builds on chronos-forecasting's ``Chronos2Trainer`` for the data loaders (``Chronos2Dataset`` yields whole
batches). The trained model is a :class:`~chronos_distill.distillation.model.DistillationModel` (the student
and its training-only projections). The teacher is an attribute, not a submodule of it, so the optimizer,
the checkpoints and the exported student never see it; it runs once per step, under ``no_grad``, with hooks
only on the blocks the objective needs. ``compute_loss`` is the two forward passes and one call of the
:class:`~chronos_distill.distillation.objective.DistillationObjective`, which owns the terms, their weights and names.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline
from chronos.chronos2.trainer import Chronos2Trainer, EvaluateAndSaveFinalStepCallback
from transformers import TrainerCallback

from chronos_distill.chronos2.export import export_student
from chronos_distill.chronos2.forward import (
    MODEL_INPUT_KEYS,
    normalised_quantiles,
    reexpress,
    same_normalised_space,
    unwrap,
)
from chronos_distill.chronos2.loading import freeze
from chronos_distill.chronos2.model_card import scrub_local_paths, student_card
from chronos_distill.chronos2.student import count_parameters
from chronos_distill.chronos2.taps import Tapped, tap
from chronos_distill.config import DISTILL_FIXED_ON_RESUME, DistillConfig
from chronos_distill.config.options import NOT_HONOURED
from chronos_distill.config.training import resume_option
from chronos_distill.data.shards import FollowTheStep
from chronos_distill.distillation.build import (
    build_datasets,
    build_models,
    build_objective,
    distill_training_arguments,
    joined_across_processes,
    label_with_cache,
    load_run_data,
)
from chronos_distill.distillation.distillation_config import DistillationConfig
from chronos_distill.distillation.ensemble import TeacherEnsemble
from chronos_distill.distillation.losses.normalised import normalise_truth
from chronos_distill.distillation.plan import StudentPass
from chronos_distill.distillation.preflight import CheckedInputs, check_distill_inputs
from chronos_distill.distillation.record import run_record
from chronos_distill.errors import ConfigError, NonFiniteLossError
from chronos_distill.training.run_folder import (
    CHECKPOINTS,
    checkpoint_step,
    continues,
    is_main_process,
    last_complete_checkpoint,
    model_folder,
    prepare_output_folder,
    rank_and_world,
)
from chronos_distill.training.session import export_on_main, guarded_train
from chronos_distill.training.shared_paths import check_shared_folders

logger = logging.getLogger(__name__)

#: What the run config names a model object by when its config names no folder or hub id.
IN_MEMORY = "in-memory Chronos2Model"


class DistillationTrainer(Chronos2Trainer):
    """Trains a Chronos-2 student against a frozen Chronos-2 teacher; the library's front door, as TRL's trainers.

    ``DistillationTrainer(model, teacher_model, args, train_dataset, eval_dataset)``, then ``trainer.train()`` and
    ``trainer.save_model(folder)``, which writes the same publishable folder as ``chronos-distill distill`` (it
    loads with ``Chronos2Pipeline.from_pretrained`` and ``BaseChronosPipeline``). ``distill(config)`` and the
    command line are this trainer, built from names.

    Parameters
    ----------
    model
        The student: a ``Chronos2Model`` to start from (trained in place; its own config is kept), or None to
        build one from the teacher's config with the shape options of ``args`` (randomly or pruned).
    teacher_model
        The teacher: a ``Chronos2Model`` or a ``Chronos2Pipeline`` (frozen in place: eval mode, fp32, no
        gradients), or a hub id, folder or bundled name. None: ``args.teacher``.
    args
        A :class:`~chronos_distill.distillation.distillation_config.DistillationConfig` (``TrainingArguments``
        with the distillation options, as TRL's ``GKDConfig``), a
        :class:`~chronos_distill.config.DistillConfig` (the command's options) or a mapping of those options
        (``output``, ``max_steps``, ``alpha``, ...). The objects given here take the place of its ``teacher``, ``student``, ``train_data``
        and ``validation_data``, so a mapping may leave them out.
    train_dataset, eval_dataset
        What ``Chronos2Pipeline.fit`` accepts (a long ``DataFrame`` in ``predict_df`` layout, or its list of
        dicts) or a path to a file, folder or glob of shards. None: ``args.train_data`` / ``args.validation_data``.
    callbacks
        More ``TrainerCallback`` s, after the run's own.
    checked
        The inputs already checked and resolved by
        :func:`~chronos_distill.distillation.preflight.check_distill_inputs` (the command line does that before
        it imports torch), so that nothing is checked twice.

    The parts it is built from (:mod:`chronos_distill.distillation.build`) stay on it: ``distill_config`` (the
    validated options), ``run_data``, ``models`` (teacher, student, their teachers and horizon), ``objective``,
    ``teacher_cache`` (what the record says of the cache, or None). The teacher is an attribute, not a submodule
    of the trained :class:`~chronos_distill.distillation.model.DistillationModel` (the student and its
    training-only projections), so the optimizer, the checkpoints and the exported student never see it; it runs
    once per step, under ``no_grad``, with hooks only on the blocks the objective needs.
    """

    # compute_loss returns a per-batch mean: the Trainer divides it for gradient accumulation itself.
    loss_is_scaled_for_ga = False

    def __init__(self, model: Chronos2Model | None = None, teacher_model: Any = None,
                 args: DistillationConfig | DistillConfig | Mapping[str, Any] | None = None, train_dataset: Any = None,
                 eval_dataset: Any = None, callbacks: list[TrainerCallback] | None = None, *,
                 checked: CheckedInputs | None = None):
        cfg, teacher, student = distillation_inputs(model, teacher_model, args, train_dataset, eval_dataset)
        if checked is None:
            checked = check_distill_inputs(cfg, DISTILL_FIXED_ON_RESUME, teacher_model=teacher, student_model=student)
        output = Path(cfg.output).expanduser()
        data = load_run_data(cfg)  # the data's own errors first (a shard too few for the processes, a bad value)
        # the TrainingArguments with the device's choices, built and checked before anything slow (the teacher,
        # pruning calibration, the teacher cache): a conflicting setting costs a second, not hours
        arguments = distill_training_arguments(cfg, output / CHECKPOINTS, has_validation=cfg.validation_data is not None)
        # the processes have met (the arguments set the process group up): the folders rank 0 writes must be theirs
        check_shared_folders({"output": output, **({"teacher_cache": Path(cfg.teacher_cache).expanduser()}
                                                   if cfg.teacher_cache is not None else {})})
        models = build_models(cfg, checked, data, teacher=teacher, student=student)
        objective, module = build_objective(cfg, models, has_validation=data.validation is not None)
        train_set, eval_set = build_datasets(cfg, data, models)
        cache_info = None
        if cfg.teacher_cache is not None:
            train_set, cache_info = label_with_cache(cfg, data, models, device=arguments.device)
        has_validation = eval_set is not None
        if cache_info is not None and cache_info["held_on"] != "cpu":
            arguments = distill_training_arguments(cfg, output / CHECKPOINTS, has_validation=has_validation,
                                                   batches_on_gpu=True)
        super().__init__(
            model=module,
            args=arguments,
            train_dataset=train_set,
            eval_dataset=eval_set,
            callbacks=[SaveFinalStepCallback(evaluate=has_validation),
                       *([FollowTheStep(train_set)] if data.corpus is not None else []), *(callbacks or [])],
        )
        self.distill_config, self.checked, self.run_data, self.models = cfg, checked, data, models
        self.objective, self.teacher_cache = objective, cache_info
        self.train_output: Any = None  # the last train()'s TrainOutput, and the checkpoint it resumed from
        self.resumed_from: str | None = None
        self.session: dict[str, Any] | None = None  # the last train()'s own steps and seconds (a run may resume)
        self.published_record: dict[str, Any] | None = None  # the record the last export wrote
        self._place_teachers(models.teacher, models.teachers.ensemble, models.teachers.feature_teacher)
        # each training step's distance of every ensemble member to the combined target (members,); a log reports
        # the mean of those since the last log, the record the mean of all
        self._distances: list[torch.Tensor] = []
        self._distances_logged = 0
        # running sums stay on the device until a log is written, so the step never waits for the host
        self._sums: dict[str, dict[str, torch.Tensor]] = {"train": {}, "eval": {}}
        self._counts = {"train": 0, "eval": 0}
        self._first_nonfinite: dict[str, torch.Tensor] = {}
        # after every callback given, so that it sees the final step's save too (SaveFinalStepCallback)
        self.add_callback(FiniteBeforeSaveCallback(self))
        if rank_and_world()[1] > 1 and (data.corpus is not None or data.share is not None):
            data.train = joined_across_processes(cfg, data)
        logger.info("student: %s parameters; training for %d steps", f"{count_parameters(models.student):,}",
                    cfg.max_steps)

    def _place_teachers(self, teacher: Chronos2Model, ensemble: TeacherEnsemble | None,
                        feature_teacher: Chronos2Model) -> None:
        """Each Chronos-2 teacher placed once through the accelerator (on the training device, unwrapped by DDP:
        it never trains); ``teacher`` sets the normalised space, ``feature_teacher`` is read by the feature and
        attention terms, an ensemble's combined forecast is the target."""
        prepared = {id(teacher): self.accelerator.prepare_model(teacher, evaluation_mode=True)}
        self.teacher = prepared[id(teacher)]
        self.ensemble = ensemble
        if ensemble is not None:
            for member in ensemble.members:
                if member.is_chronos2:
                    key = id(member.model)
                    if key not in prepared:
                        prepared[key] = self.accelerator.prepare_model(member.model, evaluation_mode=True)
                    member.model = prepared[key]
        if id(feature_teacher) not in prepared:
            prepared[id(feature_teacher)] = self.accelerator.prepare_model(feature_teacher, evaluation_mode=True)
        self.feature_teacher = prepared[id(feature_teacher)]
        # the ensemble member that is the feature teacher: its quantiles come from the tapped forward
        self._feature_member = next((i for i, m in enumerate(ensemble.members) if m.model is self.feature_teacher),
                                    None) if ensemble is not None else None

    @property
    def student(self) -> Chronos2Model:
        """The student being trained (without the terms' training-only projections)."""
        return unwrap(self.model).student

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):
        """The run, as ``chronos-distill distill`` trains it: the output folder prepared now (an earlier run in it
        replaced with ``overwrite``, the options recorded), readable progress lines, SIGTERM / SIGINT checkpoint the
        step and stop (:class:`~chronos_distill.errors.StoppedBySignal`), a full disk is one line. Resumes from the
        newest complete checkpoint of the run folder when ``resume_from_checkpoint`` is True or the config's
        ``resume`` is set (the two are the same; ``"auto"`` when the folder holds a checkpoint), or from the
        checkpoint folder given."""
        cfg = self.distill_config
        output = Path(cfg.output).expanduser()
        if resume_from_checkpoint is None and continues(output, cfg.resume):
            resume_from_checkpoint = True
        elif resume_from_checkpoint is False and cfg.resume is not False:
            raise ConfigError(f"train(resume_from_checkpoint=False) contradicts {resume_option(cfg.resume)} in the "
                              "run's options: leave it out to resume, or build the trainer without resume")
        if resume_from_checkpoint is True:
            resume_from_checkpoint = last_complete_checkpoint(output / CHECKPOINTS)
            if resume_from_checkpoint is None:
                raise ConfigError(f"resume: the run folder {output} holds no complete checkpoint to resume from; "
                                  "train without resume to start the run")
        resume_from = resume_from_checkpoint or None
        if is_main_process():  # every check passed when the trainer was built: only now touch the output folder
            prepare_output_folder(output, cfg.to_dict(), resume=resume_from is not None,
                                  restart=cfg.resume == "auto" and resume_from is None)
        started = time.perf_counter()
        start_step = checkpoint_step(resume_from) if resume_from is not None else 0
        output_of_train = guarded_train(self, output, resume_from=resume_from, verbose=cfg.verbose,
                                        train=lambda **kw: super(DistillationTrainer, self).train(**kw, **kwargs))
        self.train_output, self.resumed_from = output_of_train, resume_from
        self.session = {"steps": self.state.global_step - start_step, "seconds": time.perf_counter() - started,
                        "first_step": start_step + 1}
        return output_of_train

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Called by you: the publishable student (its weights, ``config.json``, ``distillation.json`` and model
        card; no projection, no teacher) in ``output_dir`` (default: the run folder's ``model/``), written
        atomically by the main process only (every rank waits for it). Called by the Trainer for a checkpoint
        (``_internal_call``): the Trainer's own save."""
        if _internal_call:
            return super().save_model(output_dir, _internal_call=True)
        if self.train_output is None:
            raise ConfigError("save_model publishes a trained student with its record: call trainer.train() first")
        folder = Path(output_dir) if output_dir is not None else model_folder(Path(self.distill_config.output))
        export_on_main(self, folder, Path(self.args.output_dir), lambda: self.export(folder))

    def push_to_hub(self, *args: Any, **kwargs: Any):
        """Refused: the Trainer would upload its checkpoint folder (the training module with its projections, no
        ``config.json`` of the student). Publish the student folder that :meth:`save_model` writes instead."""
        raise ConfigError(f"push_to_hub: {NOT_HONOURED['push_to_hub']}")

    def export(self, folder: Path) -> Path:
        """Write the publishable student of the last :meth:`train` into ``folder`` (see :meth:`save_model`)."""
        student, started = self.student, self.models.started
        # a student built from the teacher's config reads the run's context (as Chronos2Pipeline.fit raises it); one
        # started from a checkpoint keeps its own config
        context_length = student.chronos_config.context_length if started else self.models.context_length
        record = self.published_record = self.record()
        return export_student(student, folder, context_length=context_length, prediction_length=self.models.horizon,
                              record=record, model_card=student_card(record))

    def record(self) -> dict[str, Any]:
        """``distillation.json`` of the last :meth:`train`: options, teacher, data, losses, provenance."""
        cfg, checked, data = self.distill_config, self.checked, self.run_data
        record = run_record(cfg, checked.teacher.description, self.models.teacher, self.student, data.train,
                            data.validation, self, self.train_output.metrics, self.resumed_from,
                            started_from=checked.student.description if checked.student is not None else None,
                            horizon=self.models.horizon)
        record["training"]["teacher_cache"] = self.teacher_cache
        teachers = self.models.teachers
        if teachers.ensemble is not None:
            record["ensemble"] = scrub_local_paths({
                **teachers.record,
                "member_distances": (self.teacher_cache or {}).get("member_distances") or self.mean_member_distances()})
        return record

    def get_train_dataloader(self):
        loader = super().get_train_dataloader()
        rank_seed = (self.args.seed + 1_000_003 * self.args.process_index) % 2**32
        if self.args.world_size > 1:
            # Chronos2Dataset draws its windows from numpy's global RNG, which Trainer seeds identically on
            # every rank: offset it by the rank, or DDP would average identical gradients. A resumed run
            # restores each rank's own saved RNG state instead.
            np.random.seed(rank_seed)
        # The loader's own generator seeds its workers; without one, every new iterator (one more on resume)
        # draws from torch's global RNG and shifts the dropout masks of all later steps.
        loader.generator = torch.Generator().manual_seed(rank_seed)
        return loader

    @torch.no_grad()
    def teacher_pass(self, inputs: dict[str, Any]) -> tuple[torch.Tensor | None, Tapped]:
        """The teacher's normalised quantiles (batch, num_quantiles, horizon) and the hidden states / attention
        projections the objective needs, without an autograd graph; no forward at all (None) when no term reads
        the teacher (a truth-only run)."""
        if not self.objective.needs_teacher:
            return None, Tapped()
        needs = self.objective.needs("teacher")
        taps = bool(needs.blocks or needs.attention)
        if "teacher_quantiles" in inputs and not taps:
            return inputs["teacher_quantiles"].float(), Tapped()  # from the teacher cache: no teacher forward
        if self.ensemble is None:
            with self.accelerator.autocast(), tap(self.teacher, needs.blocks, needs.attention) as tapped:
                quantiles = normalised_quantiles(self.teacher, inputs).float()
            return quantiles, tapped
        with self.accelerator.autocast():
            known = {}
            with tap(self.feature_teacher, needs.blocks, needs.attention) as tapped:
                if taps:
                    feature_quantiles = normalised_quantiles(self.feature_teacher, inputs).float()
                    if self._feature_member is not None:
                        known[self._feature_member] = feature_quantiles
            target, distances = self.ensemble(inputs, known)
        if self.model.training:
            self._distances.append(distances.detach())
        return target.float(), tapped

    def mean_member_distances(self) -> dict[str, float] | None:
        """Each ensemble member's mean distance to the combined target over this process's training steps (None
        without an ensemble, or when the targets came from the teacher cache)."""
        if self.ensemble is None or not self._distances:
            return None
        means = torch.stack(self._distances).mean(0).tolist()
        return {m.label: value for m, value in zip(self.ensemble.members, means)}

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        teacher_q, teacher_tapped = self.teacher_pass(inputs)
        student: StudentPass = model(**{k: inputs[k] for k in MODEL_INPUT_KEYS if inputs.get(k) is not None})
        student_model = unwrap(model).student
        if not same_normalised_space(student_model, self.teacher):
            # a student started from a checkpoint that reads a shorter context normalises by other statistics: its
            # quantiles are compared in the teacher's space, like an ensemble member's
            student = dataclasses.replace(
                student, quantiles=reexpress(student.quantiles, student_model, self.teacher, inputs["context"]))
        horizon = student.quantiles.shape[-1]
        if teacher_q is not None and teacher_q.shape[-1] != horizon:
            raise RuntimeError(f"teacher predicts {teacher_q.shape[-1]} steps and student {horizon} for the same batch")
        truth = normalise_truth(self.teacher.instance_norm, inputs["context"], self.teacher.chronos_config.context_length,
                                inputs["future_target"], inputs.get("future_covariates"), horizon=horizon)
        losses = self.objective(student, teacher_q, teacher_tapped, truth, length=inputs["future_target"].shape[-1],
                                teacher_rows=inputs.get("teacher_rows"))
        self._accumulate("train" if model.training else "eval", losses)
        total = losses["total"]
        return (total, {"quantile_preds": student.quantiles}) if return_outputs else total

    def _accumulate(self, mode: str, losses: dict[str, torch.Tensor]) -> None:
        step = self.state.global_step + 1  # the step being computed
        for name, value in losses.items():
            value = value.detach()
            self._sums[mode][name] = self._sums[mode].get(name, 0.0) + value
            if mode == "train":
                # device-side record of the first step where each component went non-finite: checked when a
                # log or a checkpoint is written, so the step itself never waits for the host
                first = self._first_nonfinite.get(name, torch.full((), -1, device=value.device))
                self._first_nonfinite[name] = torch.where(~torch.isfinite(value) & (first < 0), step, first)
        self._counts[mode] += 1

    def check_finite(self) -> None:
        """Stop with a message naming the step and the loss component if any training loss went non-finite."""
        bad = {name: int(first) for name, first in self._first_nonfinite.items() if int(first) >= 0}
        if not bad:
            return
        name, step = min(bad.items(), key=lambda item: (item[1], item[0] != "total"))
        names = self.objective.log_names
        components = ", ".join(f"{names[n]} (step {s})" for n, s in sorted(bad.items(), key=lambda i: i[1]))
        # checkpoints are only written after this check passes, so the newest one on disk is a good one
        last = last_complete_checkpoint(self.args.output_dir)
        raise NonFiniteLossError(
            f"the loss became non-finite at step {step}: {components}; training stopped without checkpointing it"
            + (f", the last good checkpoint is {last}" if last else "")
            + ". Lower --learning-rate or check the data for extreme values, then continue with --resume"
        )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the mean of each loss component since the last log to the Trainer's own logs."""
        mode = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        if mode == "train":
            self.check_finite()
        if self._counts[mode] and ("loss" in logs or "eval_loss" in logs):
            prefix = "eval_" if mode == "eval" else ""
            for name, total in self._sums[mode].items():
                logs[prefix + self.objective.log_names[name]] = float(total) / self._counts[mode]
            self._sums[mode].clear()
            self._counts[mode] = 0
        if mode == "train" and len(self._distances) > self._distances_logged and "loss" in logs:
            # each teacher's distance to the combined target: does one teacher dominate?
            window = torch.stack(self._distances[self._distances_logged:]).mean(0).tolist()
            for member, value in zip(self.ensemble.members, window):
                logs[f"teacher_distance/{member.label}"] = value
            self._distances_logged = len(self._distances)
        super().log(logs, start_time)


class FiniteBeforeSaveCallback(TrainerCallback):
    """Never checkpoint a diverged model over the last good one: when a step is about to be saved, stop with
    :meth:`DistillationTrainer.check_finite`'s message if a loss went non-finite. The Trainer calls ``on_step_end``
    (public callback API) after the step and before it saves, so no private Trainer method is overridden."""

    def __init__(self, trainer: DistillationTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save:
            self.trainer.check_finite()
        return control


class SaveFinalStepCallback(EvaluateAndSaveFinalStepCallback):
    """chronos' own callback (log, evaluate and checkpoint at the last step, whatever save_steps is), without the
    evaluation when a run has no validation data (the Trainer would fail for want of an eval dataset)."""

    def __init__(self, evaluate: bool):
        self.evaluate = evaluate

    def on_step_end(self, args, state, control, **kwargs):
        super().on_step_end(args, state, control, **kwargs)
        if state.global_step >= state.max_steps and not self.evaluate:
            control.should_evaluate = False
        return control


def distillation_inputs(model: Any, teacher_model: Any, args: Any, train_dataset: Any, eval_dataset: Any
                        ) -> tuple[DistillConfig, Chronos2Model | None, Chronos2Model | None]:
    """The run's validated options with the trainer's inputs in place of their names, and the teacher and student
    objects given (None where a name or folder was given instead, loaded later). A model object's name in the
    options is the folder or hub id its config was loaded from, else :data:`IN_MEMORY`."""
    if args is None or isinstance(args, Mapping):
        options = dict(args or {})
    elif isinstance(args, DistillationConfig):
        options = args.distill_options()
    elif isinstance(args, DistillConfig):
        if all(x is None for x in (model, teacher_model, train_dataset, eval_dataset)):
            return args, None, None
        options = args.given_options()
    else:
        raise ConfigError(f"DistillationTrainer args must be a DistillationConfig, a DistillConfig or a mapping of "
                          f"the options, not {type(args).__name__}")
    teacher = student = None
    if isinstance(teacher_model, (str, Path)):
        options["teacher"] = str(teacher_model)
    elif teacher_model is not None:
        teacher = freeze(_chronos2_model(teacher_model, "teacher_model"))
        options["teacher"] = getattr(teacher.config, "_name_or_path", "") or IN_MEMORY
    if model is not None:
        student = _chronos2_model(model, "model")
        student.requires_grad_(True)
        student.train()
        options["student"] = getattr(student.config, "_name_or_path", "") or IN_MEMORY
        student.config._name_or_path = ""  # the published config names no local folder
    if train_dataset is not None:
        options["train_data"] = train_dataset
    if eval_dataset is not None:
        options["validation_data"] = eval_dataset
    return DistillConfig(**options), teacher, student


def _chronos2_model(obj: Any, role: str) -> Chronos2Model:
    if isinstance(obj, Chronos2Pipeline):
        obj = obj.model
    if not isinstance(obj, Chronos2Model):
        raise ConfigError(f"DistillationTrainer {role} must be a Chronos2Model or a Chronos2Pipeline (or, for the "
                          f"teacher, a hub id, folder or bundled name), not {type(obj).__name__}")
    return obj
