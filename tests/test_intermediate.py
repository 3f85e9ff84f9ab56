"""Feature, attention and multi-layer distillation: layer maps, hooks, projections, losses, end to end."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest
import torch
from chronos.chronos2 import Chronos2Model
from conftest import PREDICTION_LENGTH, TINY_STUDENT, tiny_teacher_config
from safetensors import safe_open

from chronos_distill import distill
from chronos_distill.chronos2.forward import normalised_quantiles
from chronos_distill.chronos2.layer_map import resolve_layer_map
from chronos_distill.chronos2.loading import freeze
from chronos_distill.chronos2.taps import check_token_alignment, tap
from chronos_distill.config import DistillConfig
from chronos_distill.distillation.losses.attention import attention_loss, default_relation_heads
from chronos_distill.distillation.losses.feature import projection_key
from chronos_distill.distillation.model import DistillationModel
from chronos_distill.distillation.objective import (
    BuildContext,
    DistillationObjective,
    LossInputs,
    attention_term,
    feature_term,
)
from chronos_distill.distillation.plan import IntermediatePlan, plan_from_config
from chronos_distill.errors import ConfigError, DistillError

FAST = dict(batch_size=16, learning_rate=3e-3, logging_steps=1, **TINY_STUDENT)


# ----------------------------------------------------------------------------------------------------------
# layer maps
# ----------------------------------------------------------------------------------------------------------


def test_uniform_layer_map_spreads_student_blocks_over_the_teacher():
    assert resolve_layer_map("uniform", 6, 12) == [(0, 1), (1, 3), (2, 5), (3, 7), (4, 9), (5, 11)]
    assert resolve_layer_map("uniform", 3, 6) == [(0, 1), (1, 3), (2, 5)]
    assert resolve_layer_map("uniform", 2, 5) == [(0, 2), (1, 4)]  # halves round up: the last blocks always meet
    assert resolve_layer_map("last", 3, 6) == [(2, 5)]
    assert resolve_layer_map("0:2, 1:5", 2, 6) == [(0, 2), (1, 5)]


@pytest.mark.parametrize(
    "spec, message",
    [("2:1", "student has blocks 0..1"), ("0:6", "teacher has blocks 0..5"), ("0:1,0:2", "more than once"),
     ("first", "must be 'uniform', 'last' or pairs")],
)
def test_layer_map_is_validated_against_both_depths(spec, message):
    with pytest.raises(ConfigError, match=message):
        resolve_layer_map(spec, 2, 6)


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------


def _model(seed: int = 0, **sizes) -> Chronos2Model:
    torch.manual_seed(seed)
    model = Chronos2Model(tiny_teacher_config(**sizes)).eval()
    with torch.no_grad():  # as in the teacher fixture: make the attention maps input dependent
        for p in model.parameters():
            p.mul_(3.0)
    return model


def _batch(group_ids: list[int]) -> dict:
    torch.manual_seed(7)
    n = len(group_ids)
    context = torch.randn(n, 96).cumsum(-1)
    context[0, :40] = float("nan")  # two whole padding patches, then a partly observed one
    context[1, :70] = float("nan")
    return {"context": context, "group_ids": torch.tensor(group_ids), "future_covariates": None,
            "num_output_patches": 2}


def _teacher_tapped(teacher, objective: DistillationObjective, batch):
    needs = objective.needs("teacher")  # the taps the terms ask for, as the trainer takes them
    with torch.no_grad(), tap(teacher, needs.blocks, needs.attention) as tapped:
        normalised_quantiles(teacher, batch)
    return tapped


def _planned(student: Chronos2Model, teacher_config, plan: IntermediatePlan) -> DistillationModel:
    """The trained module for ``plan`` as a run builds it: the objective's feature and attention terms (weight 1
    each) own their modules, which the model holds. The plan and the terms ride along for :func:`_losses`."""
    options = SimpleNamespace(alpha=0.0, feature_weight=1.0 if plan.features else 0.0,
                              attention_weight=1.0 if plan.attention_kinds else 0.0, term_weights={})
    context = BuildContext(options, output=None, plan=plan, student_config=student.config,
                           teacher_config=teacher_config)
    terms = [t for t in (feature_term(context), attention_term(context)) if t is not None]
    objective = DistillationObjective(terms, output=None, plan=plan)  # the taps come from the terms, as in a run
    model = DistillationModel(student, objective.modules(), needs=objective.needs("student"))
    model.plan, model.test_terms, model.objective = plan, terms, objective
    return model


def _losses(student_model: DistillationModel, teacher, batch):
    """The terms' values on one batch."""
    student_pass = student_model(**{k: v for k, v in batch.items() if v is not None})
    inputs = LossInputs(student=student_pass, teacher_aligned=None,
                        teacher=_teacher_tapped(teacher, student_model.objective, batch), truth=None,
                        distill_mask=None)
    return {term.name: term.compute(inputs) for term in student_model.test_terms}


BOTH = ("time", "group")


# ----------------------------------------------------------------------------------------------------------
# a copy of the teacher has nothing left to learn
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("feature_kind, projection", [("mse", "linear"), ("cosine", "linear"), ("mse", "linear_norm")])
@pytest.mark.parametrize("attention_kind", ["kl", "relation"])
def test_exact_copy_of_the_teacher_gives_zero_feature_and_attention_loss(feature_kind, projection, attention_kind):
    teacher = _model()
    plan = IntermediatePlan(pairs=((0, 0), (1, 1)), features=True, attention_kinds=BOTH, feature_loss=feature_kind,
                            feature_projection=projection, attention_loss=attention_kind, relation_heads=4)
    student = _planned(copy.deepcopy(teacher), teacher.config, plan).eval()
    with torch.no_grad():
        for projection_module in student.terms['feature'].values():
            projection_module.linear.weight.copy_(torch.eye(64))
    losses = _losses(student, teacher, _batch([0, 0, 1, 1, 1, 2]))
    assert set(losses) == {"feature", "attention"}
    assert losses["feature"].item() == pytest.approx(0.0, abs=1e-6)
    assert losses["attention"].item() == pytest.approx(0.0, abs=1e-6)

    # and a different student is not at zero: the losses can fail
    other = _planned(_model(seed=1), teacher.config, plan).eval()
    with torch.no_grad():
        for projection_module in other.terms['feature'].values():
            projection_module.linear.weight.copy_(torch.eye(64))
    losses = _losses(other, teacher, _batch([0, 0, 1, 1, 1, 2]))
    assert losses["feature"].item() > 1e-3 and losses["attention"].item() > 1e-4


def test_gradients_reach_projections_and_student_never_the_teacher():
    teacher = freeze(_model())
    student = Chronos2Model(tiny_teacher_config(d_model=32, num_heads=2, d_kv=16, d_ff=64, num_layers=1))
    plan = IntermediatePlan(pairs=((0, 1),), features=True, attention_kinds=BOTH, attention_loss="relation",
                            relation_heads=default_relation_heads(32, 64, 2, 4))
    model = _planned(student, teacher.config, plan).train()
    losses = _losses(model, teacher, _batch([0, 0, 1, 1, 2, 3]))
    (losses["feature"] + losses["attention"]).backward()
    for name, p in model.terms['feature'].named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    block = student.encoder.block[0]
    for attn in (block.layer[0].self_attention, block.layer[1].self_attention):
        for proj in (attn.q, attn.k, attn.v):
            assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
    assert student.input_patch_embedding.hidden_layer.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())


def test_relation_loss_needs_no_head_matching():
    teacher = _model()
    # same q/k/v weights split into 2 heads of 32 instead of 4 heads of 16
    regrouped = Chronos2Model(tiny_teacher_config(num_heads=2, d_kv=32)).eval()
    regrouped.load_state_dict(teacher.state_dict())
    batch = _batch([0, 0, 0, 1, 1, 2])

    def group_loss(kind):
        plan = IntermediatePlan(pairs=((0, 0), (1, 1)), attention_kinds=("group",), attention_loss=kind, relation_heads=8)
        return _losses(_planned(regrouped, teacher.config, plan).eval(), teacher, batch)["attention"].item()

    # group attention has no RoPE: the self-relations of the same q/k/v are the same whatever the head split
    assert group_loss("relation") == pytest.approx(0.0, abs=1e-6)
    assert group_loss("kl") > 1e-4  # the head-averaged maps of the two splits do differ

    # and across different widths and head counts it is a finite, positive loss
    small = Chronos2Model(tiny_teacher_config(d_model=32, num_heads=2, d_kv=16, d_ff=64)).eval()
    plan = IntermediatePlan(pairs=((0, 0), (1, 1)), attention_kinds=BOTH, attention_loss="relation",
                            relation_heads=default_relation_heads(32, 64, 2, 4))
    assert plan.relation_heads == 4
    value = _losses(_planned(small, teacher.config, plan).eval(), teacher, batch)["attention"].item()
    assert 0 < value < float("inf")


def test_group_attention_loss_counts_only_groups_of_several_series():
    teacher, student = _model(), _model(seed=1)
    plan = IntermediatePlan(pairs=((0, 0), (1, 1)), attention_kinds=("group",))
    model = _planned(student, teacher.config, plan).eval()
    assert _losses(model, teacher, _batch([0, 1, 2, 3, 4, 5]))["attention"].item() == 0.0
    mixed = _losses(model, teacher, _batch([0, 1, 2, 3, 3, 3]))["attention"].item()
    assert mixed > 1e-4
    # rows of the single-series groups add nothing: the loss is that of the one real group, batched alone
    batch = _batch([0, 1, 2, 3, 3, 3])
    alone = {**batch, "context": batch["context"][3:], "group_ids": batch["group_ids"][3:]}
    assert _losses(model, teacher, alone)["attention"].item() == pytest.approx(mixed, rel=1e-5)


def test_time_attention_loss_ignores_padding_tokens():
    teacher, student = _model(), _model(seed=1)
    plan = IntermediatePlan(pairs=((1, 1),), attention_kinds=("time",))
    model = _planned(student, teacher.config, plan).eval()
    batch = _batch([0, 1])
    student_pass = model(**{k: v for k, v in batch.items() if v is not None})
    teacher_tapped = _teacher_tapped(teacher, model.objective, batch)
    assert student_pass.tapped.token_mask[1, :4].sum() == 0  # 70 missing steps: 4 padding patches
    base = attention_loss(student_pass.tapped, teacher_tapped, [(1, 1)], ("time",), "kl")
    # whatever the teacher's projections say at padding positions, the loss does not move
    teacher_tapped.attention[("time", 1)].q[1, :4] += 100.0
    assert attention_loss(student_pass.tapped, teacher_tapped, [(1, 1)], ("time",), "kl").item() == pytest.approx(base.item())


def test_tokens_must_line_up():
    teacher = tiny_teacher_config()
    student = tiny_teacher_config(d_model=32, num_heads=2)
    student.chronos_config = {**student.chronos_config, "input_patch_size": 8, "input_patch_stride": 8}
    with pytest.raises(ConfigError, match="input_patch_size"):
        check_token_alignment(teacher, student)


def test_hybrid_weights_and_plan_from_options(teacher_dir):
    common = dict(teacher=teacher_dir, train_data="x.csv", prediction_length=4, output="o")
    with pytest.raises(ConfigError, match="must be within"):
        DistillConfig(feature_weight=-0.1, **common)
    with pytest.raises(ConfigError, match="`attention_kind`"):
        DistillConfig(attention_kind="space", **common)
    with pytest.raises(ConfigError, match="feature_loss"):
        DistillConfig(feature_loss="l1", **common)

    teacher_config = tiny_teacher_config(num_layers=4)
    student_config = tiny_teacher_config(d_model=48, num_heads=3, num_layers=2)
    assert plan_from_config(DistillConfig(**common), teacher_config, student_config) is None
    plan = plan_from_config(DistillConfig(feature_weight=0.1, attention_weight=0.1, attention_kind="both",
                                          attention_loss="relation", **common), teacher_config, student_config)
    assert plan.pairs == ((0, 1), (1, 3)) and plan.attention_kinds == ("time", "group") and plan.relation_heads == 4
    with pytest.raises(ConfigError, match="relation_heads 5 must divide"):
        plan_from_config(DistillConfig(attention_weight=0.1, attention_loss="relation", relation_heads=5, **common),
                         teacher_config, student_config)


# ----------------------------------------------------------------------------------------------------------
# end to end
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_hybrid_run_checkpoints_projections_and_exports_a_plain_student(teacher_dir, table, tmp_path):
    options = dict(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                   output=str(tmp_path / "out"), save_steps=2, alpha=0.4, feature_weight=0.2, attention_weight=0.1,
                   attention_kind="both", attention_loss="relation", feature_projection="linear_norm", **FAST)
    result = distill(max_steps=2, **options)
    out = tmp_path / "out"
    with safe_open(out / "checkpoints" / "checkpoint-2" / "model.safetensors", "pt") as checkpoint:
        keys = set(checkpoint.keys())
        key = f"terms.feature.{projection_key(0, 1)}.linear.weight"
        saved_projection = checkpoint.get_tensor(key)
    assert key in keys and any(k.startswith("student.") for k in keys)
    with safe_open(out / "model" / "model.safetensors", "pt") as exported:
        assert set(exported.keys()) == set(Chronos2Model(result.student.config).state_dict().keys())

    record = json.loads((out / "model" / "distillation.json").read_text())
    assert set(record["final_losses"]) == {"distill", "hard", "feature", "attention", "total"}
    assert record["loss"]["layer_pairs"] == [[0, 1]]
    assert record["loss"]["terms"]["hard"]["weight"] == pytest.approx(0.3)
    logged = [e for e in result.trainer.state.log_history if "feature_loss" in e]
    assert logged and all("attention_loss" in e for e in logged)

    # a finished run resumed trains nothing
    with pytest.raises(DistillError, match="already finished at step 2"):
        distill(max_steps=2, resume=True, **options)
    # resume loads the projections from the checkpoint: one more AdamW step moves each weight by about the
    # learning rate, far less than a fresh initialisation is away from the saved one
    resumed = distill(max_steps=3, resume=True, **options)
    projection = resumed.trainer.model.terms["feature"][projection_key(0, 1)].linear.weight.detach().cpu()
    moved = (projection - saved_projection).abs().max().item()
    fresh = torch.nn.Linear(*reversed(saved_projection.shape), bias=False).weight.detach()
    assert moved <= 3 * options["learning_rate"] < (fresh - saved_projection).abs().max().item()
    with pytest.raises(DistillError, match="feature_weight"):
        distill(max_steps=4, resume=True, **{**options, "feature_weight": 0.0})


def test_both_kinds_on_univariate_batches_is_the_time_loss_undiluted():
    teacher, student = _model(), _model(seed=1)
    plan = IntermediatePlan(pairs=((0, 0), (1, 1)), attention_kinds=BOTH)
    model = _planned(student, teacher.config, plan).eval()
    batch = _batch([0, 1, 2, 3])  # every group is a single series: group attention has nothing to teach
    student_pass = model(**{k: v for k, v in batch.items() if v is not None})
    teacher_tapped = _teacher_tapped(teacher, model.objective, batch)
    both = attention_loss(student_pass.tapped, teacher_tapped, list(plan.pairs), BOTH, "kl")
    time_only = attention_loss(student_pass.tapped, teacher_tapped, list(plan.pairs), ("time",), "kl")
    assert both.item() == pytest.approx(time_only.item()) and time_only.item() > 1e-4
    group_only = attention_loss(student_pass.tapped, teacher_tapped, list(plan.pairs), ("group",), "kl")
    assert group_only.item() == 0.0 and group_only.requires_grad


@pytest.mark.parametrize("kind", BOTH)
def test_recomputed_attention_maps_are_the_models_own_output_attentions(kind):
    """The maps the attention loss recomputes from the hooked q/k/v are those Chronos-2 returns with
    output_attentions=True (its eager path), head-averaged, on every query row the loss counts: a copy-of-itself
    test would pass an error shared by teacher and student (a missed RoPE, a scale, a transposed group axis)."""
    from chronos_distill.chronos2.hooks import Chronos2Layout
    from chronos_distill.distillation.losses.attention import AttentionView

    model = _model()
    batch = _batch([0, 1, 2, 2, 2])
    layout = Chronos2Layout(model)
    blocks = range(model.config.num_layers)
    own: dict[int, torch.Tensor] = {}

    def ask_for_weights(_module, args, kwargs):
        return args, {**kwargs, "output_attentions": True}

    def keep(index):
        def hook(_module, _args, output):
            own[index] = output.attn_weights

        return hook

    handles = []
    for index in blocks:
        mha = layout.attention(kind, index)
        handles += [mha.register_forward_pre_hook(ask_for_weights, with_kwargs=True),
                    mha.register_forward_hook(keep(index))]
    try:
        with torch.no_grad(), tap(model, (), [(kind, index) for index in blocks]) as tapped:
            normalised_quantiles(model, batch)
    finally:
        for handle in handles:
            handle.remove()
    for index in blocks:
        view = AttentionView(kind, tapped.attention[(kind, index)], tapped)
        rows = view.row_weight.expand(-1, 1, -1)[:, 0]  # (N, L): the query rows the loss counts
        assert rows.sum() > 0
        ours = view.head_averaged_map()[:, 0]
        theirs = own[index].float().mean(1)
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours[rows], theirs[rows], atol=1e-5, rtol=1e-4)
