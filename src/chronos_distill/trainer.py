"""The distillation trainer: ``transformers.Trainer`` with a ``compute_loss`` that asks the teacher.

Like TRL's trainers, it subclasses ``Trainer`` and overrides ``compute_loss``, so checkpoints, resume,
logging, evaluation, mixed precision and ``torchrun`` / ``accelerate launch`` come from transformers. It
builds on chronos-forecasting's ``Chronos2Trainer`` for the data loaders (``Chronos2Dataset`` yields whole
batches). The teacher is an attribute, not a submodule of the trained model, so the optimizer, the
checkpoints and the exported student never see it.
"""

from __future__ import annotations

from typing import Any

import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.trainer import Chronos2Trainer
from transformers.trainer_callback import TrainerCallback

from .forward import normalised_quantiles
from .losses import OutputDistillationLoss, normalise_truth

#: Names under which the loss components are logged (``eval_`` prefixed during evaluation).
COMPONENT_LOG_NAMES = {"distill": "distill_loss", "hard": "hard_loss", "total": "total_loss"}


class DistillationTrainer(Chronos2Trainer):
    """Trains a Chronos-2 student against a frozen Chronos-2 teacher.

    Parameters
    ----------
    teacher
        Frozen ``Chronos2Model`` (see :func:`chronos_distill.teacher.freeze`); moved to the training device.
    output_loss
        The output distillation objective.
    *args, **kwargs
        Forwarded to ``transformers.Trainer`` (``model`` is the student).
    """

    # compute_loss returns a per-batch mean: the Trainer divides it for gradient accumulation itself.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, teacher: Chronos2Model, output_loss: OutputDistillationLoss, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.to(self.args.device)
        self.output_loss = output_loss
        # running sums stay on the device until a log is written, so the step never waits for the host
        self._sums: dict[str, dict[str, torch.Tensor]] = {"train": {}, "eval": {}}
        self._counts = {"train": 0, "eval": 0}

    @torch.no_grad()
    def teacher_quantiles(self, inputs: dict[str, Any]) -> torch.Tensor:
        """The teacher's normalised quantiles for the batch: (batch, num_quantiles, horizon), no graph."""
        with self.accelerator.autocast():
            return normalised_quantiles(self.teacher, inputs).float()

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        teacher_q = self.teacher_quantiles(inputs)
        student_q = normalised_quantiles(model, inputs).float()
        if teacher_q.shape[-1] != student_q.shape[-1]:
            raise RuntimeError(
                f"teacher predicts {teacher_q.shape[-1]} steps and student {student_q.shape[-1]} for the same batch"
            )
        truth = normalise_truth(
            self.teacher.instance_norm,
            inputs["context"],
            self.teacher.chronos_config.context_length,
            inputs["future_target"],
            inputs.get("future_covariates"),
            horizon=student_q.shape[-1],
        )
        losses = self.output_loss(student_q, teacher_q, truth)
        self._accumulate("train" if model.training else "eval", losses)
        total = losses["total"]
        return (total, {"quantile_preds": student_q}) if return_outputs else total

    def _accumulate(self, mode: str, losses: dict[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            self._sums[mode][name] = self._sums[mode].get(name, 0.0) + value.detach()
        self._counts[mode] += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the mean of each loss component since the last log to the Trainer's own logs."""
        mode = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        if self._counts[mode] and ("loss" in logs or "eval_loss" in logs):
            prefix = "eval_" if mode == "eval" else ""
            for name, total in self._sums[mode].items():
                logs[prefix + COMPONENT_LOG_NAMES[name]] = float(total) / self._counts[mode]
            self._sums[mode].clear()
            self._counts[mode] = 0
        super().log(logs, start_time)


class SaveFinalStepCallback(TrainerCallback):
    """Log, checkpoint (and evaluate, with validation data) at the last step, whatever save_steps is."""

    def __init__(self, evaluate: bool):
        self.evaluate = evaluate

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_log = True
            control.should_save = True
            control.should_evaluate = self.evaluate
        return control
