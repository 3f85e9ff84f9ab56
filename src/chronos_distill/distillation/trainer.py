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
from typing import Any

import numpy as np
import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.trainer import Chronos2Trainer, EvaluateAndSaveFinalStepCallback
from transformers import TrainerCallback

from chronos_distill.chronos2.forward import (
    MODEL_INPUT_KEYS,
    normalised_quantiles,
    reexpress,
    same_normalised_space,
    unwrap,
)
from chronos_distill.chronos2.taps import Tapped, tap
from chronos_distill.distillation.ensemble import TeacherEnsemble
from chronos_distill.distillation.losses.normalised import normalise_truth
from chronos_distill.distillation.objective import DistillationObjective
from chronos_distill.distillation.plan import StudentPass
from chronos_distill.errors import NonFiniteLossError


class DistillationTrainer(Chronos2Trainer):
    """Trains a Chronos-2 student against a frozen Chronos-2 teacher.

    Parameters
    ----------
    teacher
        Frozen ``Chronos2Model`` (see :func:`chronos_distill.chronos2.loading.freeze`), placed through the Trainer's
        accelerator (on the training device, unwrapped by DDP: it never trains).
    objective
        The run's :class:`~chronos_distill.distillation.objective.DistillationObjective`: its terms, weights and taps.
    ensemble
        Several teachers (:class:`~chronos_distill.distillation.ensemble.TeacherEnsemble`), whose combined forecast
        is the target; ``teacher`` is then the first of them (the truth's normalised space). None: ``teacher``
        alone. Each Chronos-2 member is placed through the accelerator like the single teacher.
    feature_teacher
        The teacher whose hidden states and attention the intermediate terms read (default: ``teacher``).
    *args, **kwargs
        Forwarded to ``transformers.Trainer``; ``model`` is a ``DistillationModel`` (the student and its
        training-only projections).
    """

    # compute_loss returns a per-batch mean: the Trainer divides it for gradient accumulation itself.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, teacher: Chronos2Model, objective: DistillationObjective,
                 ensemble: TeacherEnsemble | None = None, feature_teacher: Chronos2Model | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
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
        feature_teacher = teacher if feature_teacher is None else feature_teacher
        if id(feature_teacher) not in prepared:
            prepared[id(feature_teacher)] = self.accelerator.prepare_model(feature_teacher, evaluation_mode=True)
        self.feature_teacher = prepared[id(feature_teacher)]
        # the ensemble member that is the feature teacher: its quantiles come from the tapped forward
        self._feature_member = next((i for i, m in enumerate(ensemble.members) if m.model is self.feature_teacher),
                                    None) if ensemble is not None else None
        # each training step's distance of every ensemble member to the combined target (members,); a log reports
        # the mean of those since the last log, the record the mean of all
        self._distances: list[torch.Tensor] = []
        self._distances_logged = 0
        self.objective = objective
        # running sums stay on the device until a log is written, so the step never waits for the host
        self._sums: dict[str, dict[str, torch.Tensor]] = {"train": {}, "eval": {}}
        self._counts = {"train": 0, "eval": 0}
        self._first_nonfinite: dict[str, torch.Tensor] = {}
        # after every callback given, so that it sees the final step's save too (SaveFinalStepCallback)
        self.add_callback(FiniteBeforeSaveCallback(self))

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
        from chronos_distill.training.run_folder import last_complete_checkpoint

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
