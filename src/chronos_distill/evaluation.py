"""Scoring a student against its teacher and the truth on held-out windows.

Each series' last ``prediction_length`` steps are held out (``Chronos2Dataset`` VALIDATION windows) and both
models forecast them from the context before. Scores are in the teacher's normalised space, with the masks
of the training losses, so they are the same quantities that training logs.
"""

from __future__ import annotations

import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.dataset import DatasetMode

from .data import SeriesSet, make_dataset
from .forward import normalised_quantiles
from .losses import OutputDistillationLoss, normalise_truth


@torch.no_grad()
def agreement_scores(
    teacher: Chronos2Model,
    student: Chronos2Model,
    series: SeriesSet,
    prediction_length: int,
    batch_size: int = 64,
    context_length: int | None = None,
) -> dict[str, float]:
    """Agreement and accuracy on each series' last window.

    Returns
    -------
    ``agreement``: the ``quantile`` distillation distance between student and teacher (0 = identical
    forecasts); ``student_quantile_loss`` and ``teacher_quantile_loss``: Chronos-2's quantile loss of each
    model against the truth. All are batch-size-weighted means over the series.
    """
    chronos_config = teacher.chronos_config
    dataset = make_dataset(
        series,
        context_length=context_length or chronos_config.context_length,
        prediction_length=prediction_length,
        batch_size=batch_size,
        output_patch_size=chronos_config.output_patch_size,
        min_past=1,
        mode=DatasetMode.VALIDATION,
    )
    student_loss = OutputDistillationLoss("quantile", 1.0, student.chronos_config.quantiles, chronos_config.quantiles)
    teacher_loss = OutputDistillationLoss("quantile", 1.0, chronos_config.quantiles, chronos_config.quantiles)
    was_training = student.training
    student.eval()
    sums = {"agreement": 0.0, "student_quantile_loss": 0.0, "teacher_quantile_loss": 0.0}
    count = 0
    try:
        for batch in dataset:
            teacher_q = normalised_quantiles(teacher, batch)
            student_q = normalised_quantiles(student, batch)
            truth = normalise_truth(
                teacher.instance_norm, batch["context"], chronos_config.context_length,
                batch["future_target"], batch["future_covariates"], horizon=student_q.shape[-1],
            )
            s = student_loss(student_q, teacher_q, truth)
            t = teacher_loss(teacher_q, teacher_q, truth)
            n = batch["context"].shape[0]
            sums["agreement"] += float(s["distill"]) * n
            sums["student_quantile_loss"] += float(s["hard"]) * n
            sums["teacher_quantile_loss"] += float(t["hard"]) * n
            count += n
    finally:
        student.train(was_training)
    return {k: v / count for k, v in sums.items()}
