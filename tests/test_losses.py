"""Output-distillation losses against hand computations, Chronos-2's own loss, and their masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.dataset import Chronos2Dataset, DatasetMode
from conftest import tiny_teacher_config

from chronos_distill.chronos2.forward import normalised_quantiles
from chronos_distill.distillation.losses import pinball_loss
from chronos_distill.distillation.losses.normalised import NormalisedTruth, normalise_truth
from chronos_distill.distillation.losses.output import (
    OutputDistillationLoss,
    align_quantiles,
    masked_mse,
    quantile_distance,
)


def truth(values, mask) -> NormalisedTruth:
    return NormalisedTruth(values=torch.tensor(values, dtype=torch.float32), mask=torch.tensor(mask, dtype=torch.float32))


def test_pinball_loss_matches_hand_computation():
    # one series, two levels, two steps; the second step is masked
    pred = torch.tensor([[[1.0, 5.0], [3.0, -7.0]]])  # (b=1, q=2, h=2)
    t = truth([[2.0, 100.0]], [[1.0, 0.0]])
    levels = torch.tensor([0.1, 0.9])
    # level 0.1: y=2 > pred 1 -> 2*|(2-1)*(0-0.1)| = 0.2 ; level 0.9: y=2 <= pred 3 -> 2*|(2-3)*(1-0.9)| = 0.2
    # mean over the horizon of 2 steps (the masked step counts as 0, as in Chronos-2), sum over levels
    expected = (0.2 + 0.0) / 2 + (0.2 + 0.0) / 2
    assert pinball_loss(pred, t, levels).item() == pytest.approx(expected)


def test_quantile_distance_and_mse_match_hand_computation():
    student = torch.tensor([[[1.0, 2.0, 3.0]], [[0.0, 0.0, 0.0]]])  # (b=2, q=1, h=3)
    teacher = torch.tensor([[[2.0, 0.0, 9.0]], [[1.0, -1.0, 0.5]]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    expected = ((1 + 2 + 0) / 3 + (1 + 1 + 0.5) / 3) / 2
    assert quantile_distance(student, teacher, mask).item() == pytest.approx(expected)
    expected_mse = ((1 + 4 + 0) / 3 + (1 + 1 + 0.25) / 3) / 2
    assert masked_mse(student[:, 0], teacher[:, 0], mask).item() == pytest.approx(expected_mse)


def test_output_components_by_hand():
    levels = [0.1, 0.5, 0.9]
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(4, 3, 5, generator=g), torch.randn(4, 3, 5, generator=g)
    t = NormalisedTruth(values=torch.randn(4, 5, generator=g), mask=torch.ones(4, 5))

    quantile = OutputDistillationLoss("quantile", levels, levels)(student, teacher, t)
    assert set(quantile) == {"distill", "hard"}  # how they are weighted is the objective's business
    # by hand, loop by loop: the distance sums |s - t| over levels and averages over rows and steps; Chronos-2's
    # quantile loss is 2 |y - q| (1[y <= q] - level), summed over levels and averaged the same way
    distance = sum(abs(student[b, q, h] - teacher[b, q, h]) for b in range(4) for q in range(3) for h in range(5)) / 20
    pinball = 0.0
    for b in range(4):
        for q, level in enumerate(levels):
            for h in range(5):
                y, pred = t.values[b, h], student[b, q, h]
                pinball += 2 * abs((y - pred) * (float(y <= pred) - level))
    assert quantile["distill"].item() == pytest.approx(float(distance), rel=1e-5)
    assert quantile["hard"].item() == pytest.approx(float(pinball) / 20, rel=1e-5)

    median = OutputDistillationLoss("median_mse", levels, levels)(student, teacher, t)
    # the design note's formula, by hand: MSE on the median (level index 1) against teacher and truth
    by_hand_distill = ((student[:, 1] - teacher[:, 1]) ** 2).mean()
    by_hand_hard = ((student[:, 1] - t.values) ** 2).mean()
    assert median["distill"].item() == pytest.approx(by_hand_distill.item(), rel=1e-6)
    assert median["hard"].item() == pytest.approx(by_hand_hard.item(), rel=1e-6)


def test_shape_mismatch_is_an_error_not_a_truncation():
    levels = [0.1, 0.5, 0.9]
    loss = OutputDistillationLoss("quantile", levels, levels)
    t = NormalisedTruth(values=torch.zeros(2, 16), mask=torch.ones(2, 16))
    with pytest.raises(ValueError, match="same series, levels and horizon"):
        loss(torch.zeros(2, 3, 16), torch.zeros(2, 3, 32), t)
    with pytest.raises(ValueError, match="truth has shape"):
        loss(torch.zeros(2, 3, 32), torch.zeros(2, 3, 32), t)


def test_align_quantiles_interpolates_linearly_and_refuses_extrapolation():
    levels = [0.1, 0.3, 0.5, 0.7, 0.9]
    # a quantile function that is linear in the level: value = 10 * level + step
    values = torch.tensor(levels).view(1, 5, 1) * 10 + torch.arange(3.0).view(1, 1, 3)
    assert align_quantiles(values, levels, levels) is values
    moved = align_quantiles(values, levels, [0.2, 0.5, 0.8])
    expected = torch.tensor([0.2, 0.5, 0.8]).view(1, 3, 1) * 10 + torch.arange(3.0).view(1, 1, 3)
    torch.testing.assert_close(moved, expected)
    with pytest.raises(ValueError, match="outside the teacher's range"):
        align_quantiles(values, levels, [0.05, 0.5])


def test_teacher_quantiles_are_interpolated_onto_student_levels():
    teacher_levels = [0.1, 0.3, 0.5, 0.7, 0.9]
    student_levels = [0.2, 0.5, 0.8]
    teacher = torch.tensor(teacher_levels).view(1, 5, 1).repeat(2, 1, 4)
    student = torch.tensor(student_levels).view(1, 3, 1).repeat(2, 1, 4)  # exactly the teacher's distribution
    t = NormalisedTruth(values=torch.zeros(2, 4), mask=torch.ones(2, 4))
    loss = OutputDistillationLoss("quantile", student_levels, teacher_levels)(student, teacher, t)
    assert loss["distill"].item() == pytest.approx(0.0, abs=1e-6)


# --- against the real model --------------------------------------------------------------------------------


def _covariate_batch(prediction_length=20):
    """A Chronos2Dataset batch with missing targets, a past-only and a known covariate, and padding."""
    rng = np.random.default_rng(0)
    inputs = []
    for i in range(3):
        target = rng.normal(size=120).cumsum() * 10 ** i + 50
        target[-5:-2] = np.nan  # missing truth inside the horizon
        inputs.append(
            {
                "target": target,
                "past_covariates": {"weather": rng.normal(size=120), "promo": rng.normal(size=120)},
                "future_covariates": {"promo": None},
            }
        )
    dataset = Chronos2Dataset(inputs, context_length=100, prediction_length=prediction_length, batch_size=9,
                              output_patch_size=16, mode=DatasetMode.VALIDATION)
    return next(iter(dataset))


def test_hard_quantile_loss_is_chronos2s_own_loss():
    torch.manual_seed(0)
    model = Chronos2Model(tiny_teacher_config()).eval()
    batch = _covariate_batch()
    with torch.no_grad():
        preds = normalised_quantiles(model, batch)
        own = model(**{k: batch[k] for k in ("context", "group_ids", "future_covariates", "num_output_patches")},
                    future_target=batch["future_target"]).loss
    t = normalise_truth(model.instance_norm, batch["context"], model.chronos_config.context_length,
                        batch["future_target"], batch["future_covariates"], horizon=preds.shape[-1])
    assert preds.shape == (9, 21, 32)
    assert pinball_loss(preds, t, model.quantiles).item() == pytest.approx(own.item(), rel=1e-5)


def test_masked_positions_contribute_nothing():
    batch = _covariate_batch()
    t = normalise_truth(Chronos2Model(tiny_teacher_config()).instance_norm, batch["context"], 128, batch["future_target"], batch["future_covariates"], horizon=32)
    mask = t.mask.bool()
    # covariate rows (past-only and known) and missing targets never count; padding beyond H=20 never counts
    assert not mask[:, 20:].any()
    target_rows = torch.tensor([0, 3, 6])
    covariate_rows = torch.tensor([1, 2, 4, 5, 7, 8])
    assert not mask[covariate_rows].any()
    assert not mask[target_rows, 15:18].any() and mask[target_rows, :15].all()

    levels = torch.linspace(0.05, 0.95, 21).tolist()
    loss = OutputDistillationLoss("quantile", levels, levels)
    g = torch.Generator().manual_seed(1)
    student = torch.randn(9, 21, 32, generator=g, requires_grad=True)
    teacher = torch.randn(9, 21, 32, generator=g)
    base = sum(loss(student, teacher, t).values())
    base.backward()
    # no gradient reaches a masked position ...
    assert torch.all(student.grad.permute(0, 2, 1)[~mask] == 0)
    # ... and changing the student, the teacher or the truth there changes nothing
    noise = torch.randn(9, 21, 32, generator=g) * 100 * (~mask).unsqueeze(1)
    moved_truth = NormalisedTruth(values=t.values + 100 * (~mask), mask=t.mask)
    again = sum(loss(student.detach() + noise, teacher - noise, moved_truth).values())
    assert again.item() == pytest.approx(base.item(), rel=1e-6)


def test_losses_live_in_normalised_space():
    """Scaling a series by a million changes neither its normalised truth nor the loss."""
    torch.manual_seed(0)
    model = Chronos2Model(tiny_teacher_config()).eval()
    context = torch.randn(2, 100).cumsum(-1) + 20
    future = torch.randn(2, 12).cumsum(-1) + 20
    scale = torch.tensor([[1.0], [1e6]])
    small = normalise_truth(model.instance_norm, context, 128, future, None, horizon=16)
    big = normalise_truth(model.instance_norm, context * scale, 128, future * scale, None, horizon=16)
    torch.testing.assert_close(small.values, big.values, rtol=1e-4, atol=1e-4)
    batch = {"context": context, "num_output_patches": 1}
    with torch.no_grad():
        torch.testing.assert_close(
            normalised_quantiles(model, batch),
            normalised_quantiles(model, {**batch, "context": context * scale}),
            rtol=1e-3, atol=1e-3,
        )
    assert math.isfinite(small.values.abs().max().item())
