"""The distillation objective: terms from the options, the truth term's share, weighted total, taps, names."""

from __future__ import annotations

import pytest
import torch
from conftest import PREDICTION_LENGTH, TINY_STUDENT, tiny_teacher_config

from chronos_distill import ConfigError, DistillConfig
from chronos_distill.chronos2.taps import Tapped
from chronos_distill.distillation.losses.normalised import NormalisedTruth
from chronos_distill.distillation.losses.output import OutputDistillationLoss
from chronos_distill.distillation.objective import TERMS, DistillationObjective, Term
from chronos_distill.distillation.plan import Needs, StudentPass, plan_from_config

LEVELS = [0.1, 0.5, 0.9]
COMMON = dict(teacher="t", train_data="x.csv", prediction_length=4, output="o")


def _objective(**options):
    cfg = DistillConfig(**COMMON, **options)
    teacher, student = tiny_teacher_config(num_layers=4), tiny_teacher_config(d_model=48, num_heads=3)
    plan = plan_from_config(cfg, teacher, student)
    return DistillationObjective.from_config(cfg, OutputDistillationLoss(cfg.output_loss, LEVELS, LEVELS), plan,
                                             student, teacher)


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


def test_a_zero_weight_turns_a_term_off_and_its_loss_is_never_computed(monkeypatch):
    calls = []

    def build(ctx):
        return Term("probe", ctx.weight("probe"), lambda x: calls.append(1) or torch.tensor(1.0))

    monkeypatch.setitem(TERMS, "probe", build)
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    truth = NormalisedTruth(values=torch.randn(2, 4, generator=g), mask=torch.ones(2, 4))

    off = _objective(alpha=0.5)
    assert "probe" not in off.weights  # no weight given: off ...
    losses = off(StudentPass(quantiles=student), teacher, Tapped(), truth, length=4)
    assert "probe" not in losses and not calls  # ... and never computed
    objective = _objective(alpha=0.5, term_weights={"probe": 0.2})
    assert objective.weights == pytest.approx({"distill": 0.5, "probe": 0.2, "hard": 0.3})
    assert objective.record()["terms"]["probe"] == {"weight": 0.2, "logged_as": "probe_loss",
                                                    "option": "term_weights.probe"}
    losses = objective(StudentPass(quantiles=student), teacher, Tapped(), truth, length=4)
    assert len(calls) == 1 and losses["probe"] == 1.0  # on: computed once per batch, weighted into the total
    assert losses["total"] == pytest.approx(0.5 * losses["distill"] + 0.2 * 1.0 + 0.3 * losses["hard"])
    assert "probe_loss" in objective.log_names.values()


def test_term_weights_are_checked_by_one_rule():
    with pytest.raises(ConfigError, match=r"the loss weights sum to 1.05 \(alpha 0.95 \+ term_weights\[probe\] 0.1\)"):
        DistillConfig(**COMMON, alpha=0.95, term_weights={"probe": 0.1})
    with pytest.raises(ConfigError, match=r"'feature' is a built-in term; set --feature-weight"):
        DistillConfig(**COMMON, term_weights={"feature": 0.1})
    with pytest.raises(ConfigError, match=r"names \['nowhere'\], which no registered term has"):
        _objective(term_weights={"nowhere": 0.1})


TOY_TERM = """
import torch
from chronos_distill.distillation.objective import LossInputs, Term, register_term


@register_term("spread")
def spread_term(ctx):
    # the student's 10-90% width against the teacher's, CONTRIBUTING.md's example of a new term
    def compute(x: LossInputs) -> torch.Tensor:
        width = lambda q: q[:, -1] - q[:, 0]
        return ((width(x.student.quantiles) - width(x.teacher_aligned)) ** 2 * x.distill_mask).mean()

    return Term("spread", ctx.weight("spread"), compute)
"""


def test_a_term_registered_outside_the_package_trains_and_is_logged_recorded_and_carded(
        teacher_dir, table, tmp_path, monkeypatch, capsys):
    """CONTRIBUTING.md's recipe, run: a term defined in the user's own module, with its weight in term_weights."""
    import importlib
    import json

    from conftest import PREDICTION_LENGTH, TINY_STUDENT

    from chronos_distill import distill

    monkeypatch.setattr("chronos_distill.distillation.objective.TERMS", dict(TERMS))
    (tmp_path / "toy_term.py").write_text(TOY_TERM)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("toy_term")
    result = distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                     output=str(tmp_path / "run"), max_steps=2, batch_size=8, logging_steps=1, alpha=0.4,
                     term_weights={"spread": 0.1}, **TINY_STUDENT)
    assert "spread" in capsys.readouterr().out.splitlines()[-1]  # the progress line
    record = json.loads((result.model_dir / "distillation.json").read_text())
    assert record["loss"]["terms"]["spread"] == {"weight": 0.1, "logged_as": "spread_loss",
                                                 "option": "term_weights.spread"}
    assert record["loss"]["terms"]["hard"]["weight"] == pytest.approx(0.5)
    # the logged value is the term's mean over the steps since the last log, and it entered the total
    last = next(e for e in reversed(result.trainer.state.log_history) if "spread_loss" in e)
    assert record["final_losses"]["spread"] == pytest.approx(last["spread_loss"]) and last["spread_loss"] > 0
    assert last["total_loss"] == pytest.approx(0.4 * last["distill_loss"] + 0.1 * last["spread_loss"]
                                               + 0.5 * last["hard_loss"], rel=1e-5)
    assert "spread 0.1 (term_weights.spread)" in (result.model_dir / "README.md").read_text()


def test_the_crossing_penalty_is_zero_on_sorted_quantiles_and_positive_otherwise():
    from chronos_distill.distillation.losses.crossing import crossing_penalty

    sorted_q = torch.linspace(-1, 1, 5)[None, :, None].expand(2, 5, 3).clone()  # (batch 2, 5 levels, horizon 3)
    mask = torch.ones(2, 3)
    assert crossing_penalty(sorted_q, mask) == 0
    crossed = sorted_q.clone()
    crossed[0, 3, 1] = -1.0  # level 3 (0.5) set below level 2 (0.0): one crossing pair, a gap of 1
    penalty = crossing_penalty(crossed, mask)
    gap = float(sorted_q[0, 2, 1] - crossed[0, 3, 1])  # the one crossing pair
    assert penalty > 0 and float(penalty) == pytest.approx(gap / 3 / 2)  # mean over 3 steps, mean over 2 rows
    masked = mask.clone()
    masked[0, 1] = 0  # a step outside the compared horizon does not count
    assert crossing_penalty(crossed, masked) == 0


def test_a_run_with_the_crossing_term_exports_a_plain_chronos2_model_and_needs_no_teacher_with_alpha_0(
        teacher_dir, table, tmp_path):
    from chronos import BaseChronosPipeline
    from chronos.chronos2 import Chronos2Model

    from chronos_distill import DistillationTrainer

    options = dict(teacher=teacher_dir, prediction_length=PREDICTION_LENGTH, max_steps=2, save_steps=2, batch_size=8,
                   alpha=0.0, term_weights={"crossing": 0.1}, **TINY_STUDENT)
    trainer = DistillationTrainer(args={"output": str(tmp_path / "run"), **options}, train_dataset=table)
    assert not trainer.objective.needs_teacher  # the truth and the student's own order: no teacher forward
    trainer.train()
    trainer.save_model()
    assert any("crossing_loss" in entry for entry in trainer.state.log_history)
    assert trainer.published_record["loss"]["terms"]["crossing"]["weight"] == 0.1
    loaded = BaseChronosPipeline.from_pretrained(tmp_path / "run" / "model")
    assert type(loaded.model) is Chronos2Model
