"""The distillation objective: terms from the options, the truth term's share, weighted total, taps, names."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_teacher_config

from chronos_distill import DistillConfig
from chronos_distill.distillation.losses.output import OutputDistillationLoss
from chronos_distill.distillation.objective import TERMS, DistillationObjective, LossInputs, Term, register_term
from chronos_distill.distillation.plan import Needs, plan_from_config

LEVELS = [0.1, 0.5, 0.9]
COMMON = dict(teacher="t", train_data="x.csv", prediction_length=4, output="o")


def _objective(**options):
    cfg = DistillConfig(**COMMON, **options)
    plan = plan_from_config(cfg, tiny_teacher_config(num_layers=4), tiny_teacher_config(d_model=48, num_heads=3))
    return DistillationObjective.from_config(cfg, OutputDistillationLoss(cfg.output_loss, LEVELS, LEVELS), plan)


def test_terms_follow_the_options_and_the_truth_gets_the_rest():
    assert _objective(alpha=0.5).weights == {"distill": 0.5, "hard": 0.5}
    objective = _objective(alpha=0.4, feature_weight=0.3, attention_weight=0.2, attention_kind="both")
    assert objective.weights == pytest.approx({"distill": 0.4, "feature": 0.3, "attention": 0.2, "hard": 0.1})
    assert objective.log_names == {"distill": "distill_loss", "feature": "feature_loss",
                                   "attention": "attention_loss", "hard": "hard_loss", "total": "total_loss"}
    # the taps: uniform map of 2 student blocks onto 4 teacher blocks
    assert objective.needs("student") == Needs(blocks=(0, 1), attention=(("time", 0), ("time", 1), ("group", 0),
                                                                         ("group", 1)))
    assert objective.needs("teacher").blocks == (1, 3)
    assert _objective(alpha=0.5).needs("teacher") == Needs()


def test_the_total_is_the_weighted_sum_of_the_terms():
    objective = DistillationObjective(
        [Term("a", 0.25, lambda x: torch.tensor(2.0)), Term("b", 0.75, lambda x: torch.tensor(4.0))],
        OutputDistillationLoss("quantile", LEVELS, LEVELS))
    losses = objective.components(LossInputs(student=None, teacher_aligned=None, teacher=None, truth=None,
                                             distill_mask=None))
    assert losses["total"].item() == pytest.approx(0.25 * 2 + 0.75 * 4)


def test_a_registered_term_joins_the_objective(monkeypatch):
    monkeypatch.setitem(TERMS, "constant", ("alpha", lambda ctx: Term("constant", 0.1, lambda x: torch.tensor(1.0))))
    objective = _objective(alpha=0.5)
    assert objective.weights == pytest.approx({"distill": 0.5, "constant": 0.1, "hard": 0.4})
    assert "constant_loss" in objective.log_names.values()


def test_register_term_records_builder_and_option(monkeypatch):
    monkeypatch.setattr("chronos_distill.distillation.objective.TERMS", dict(TERMS))
    from chronos_distill.distillation import objective as module

    @register_term("spread", option="alpha")
    def spread(ctx):
        return None

    assert module.TERMS["spread"] == ("alpha", spread)
