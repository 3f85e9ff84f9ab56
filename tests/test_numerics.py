"""A loss that goes non-finite stops the run, names step and component, and keeps the last good checkpoint."""

from __future__ import annotations

import pytest
import torch
from conftest import PREDICTION_LENGTH, TINY_STUDENT

from chronos_distill import distill
from chronos_distill.distillation.losses.output import OutputDistillationLoss
from chronos_distill.errors import NonFiniteLossError


@pytest.mark.parametrize("logging_steps", [1, 50])  # caught at the next log, or else before the next checkpoint
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(teacher_dir, table, tmp_path, monkeypatch,
                                                                 logging_steps):
    original = OutputDistillationLoss.hard
    calls = []

    def exploding(self, student, truth):
        hard = original(self, student, truth)
        calls.append(1)
        if len(calls) == 3:  # the hard term of step 3 overflows
            hard = hard * torch.tensor(float("inf"))
        return hard

    monkeypatch.setattr(OutputDistillationLoss, "hard", exploding)
    out = tmp_path / "out"
    with pytest.raises(NonFiniteLossError) as caught:
        distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH, output=str(out),
                max_steps=6, save_steps=2, logging_steps=logging_steps, batch_size=16, **TINY_STUDENT)
    message = str(caught.value)
    assert "non-finite at step 3" in message and "hard_loss (step 3)" in message and "total_loss (step 3)" in message
    assert str(out / "checkpoints" / "checkpoint-2") in message
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    assert not (out / "checkpoints" / "checkpoint-4").exists()
    assert not (out / "model" / "model.safetensors").exists()  # nothing diverged was exported
