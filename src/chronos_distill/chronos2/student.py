"""Building the student: the teacher's Chronos-2 config with a smaller transformer.

Everything that defines the forecasting task (patch sizes, context length, quantiles, [REG] token, arcsinh
normalisation, time encoding) is copied from the teacher, so the student tokenises a series exactly like
the teacher and their predictions and hidden states line up position by position. Only the transformer's
size changes.
"""

from __future__ import annotations

import copy
import logging

import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.config import Chronos2CoreConfig

from chronos_distill.config import DistillConfig
from chronos_distill.errors import ConfigError

logger = logging.getLogger(__name__)


def build_student_config(teacher_config: Chronos2CoreConfig, cfg: DistillConfig) -> Chronos2CoreConfig:
    """The student's config: the teacher's, with the ``student_*`` overrides of ``cfg`` applied and checked."""
    d_model = cfg.student_width
    num_layers = cfg.student_num_layers or max(1, teacher_config.num_layers // 2)
    num_heads, d_kv = cfg.student_num_heads, cfg.student_d_kv
    if num_heads is None and d_kv is None:
        d_kv = teacher_config.d_kv
        if d_model % d_kv:
            raise ConfigError(
                f"student_d_model {d_model} is not a multiple of the teacher's head size {d_kv}: "
                "give --student-num-heads (or --student-d-kv) explicitly"
            )
        num_heads = d_model // d_kv
    elif d_kv is None:
        if d_model % num_heads:
            raise ConfigError(f"student_d_model {d_model} is not divisible by student_num_heads {num_heads}")
        d_kv = d_model // num_heads
    elif num_heads is None:
        if d_model % d_kv:
            raise ConfigError(f"student_d_model {d_model} is not divisible by student_d_kv {d_kv}")
        num_heads = d_model // d_kv
    if d_kv % 2:
        raise ConfigError(f"student head size d_kv={d_kv} must be even: rotary position embeddings rotate pairs")
    # keep the teacher's MLP expansion ratio: the student is the teacher's design, narrower
    d_ff = cfg.student_d_ff or max(1, round(teacher_config.d_ff * d_model / teacher_config.d_model))

    config = copy.deepcopy(teacher_config)
    config.d_model, config.num_layers, config.num_heads, config.d_kv, config.d_ff = (
        d_model,
        num_layers,
        num_heads,
        d_kv,
        d_ff,
    )
    config.chronos_config = copy.deepcopy(teacher_config.chronos_config)
    if cfg.student_quantiles is not None:
        teacher_levels = teacher_config.chronos_config["quantiles"]
        if min(cfg.student_quantiles) < min(teacher_levels) or max(cfg.student_quantiles) > max(teacher_levels):
            raise ConfigError(
                f"student_quantiles {cfg.student_quantiles} reach outside the teacher's quantile range "
                f"[{min(teacher_levels)}, {max(teacher_levels)}]"
            )
        config.chronos_config["quantiles"] = list(cfg.student_quantiles)
    config._name_or_path = ""
    return config


def build_student(teacher: Chronos2Model, cfg: DistillConfig) -> Chronos2Model:
    """A randomly initialised ``Chronos2Model`` of the student config (seeded by ``cfg.seed``), fp32."""
    config = build_student_config(teacher.config, cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        student = Chronos2Model(config).float()
    n_student, n_teacher = count_parameters(student), count_parameters(teacher)
    if n_student >= n_teacher:
        logger.warning(
            "the student (%s parameters) is not smaller than the teacher (%s parameters)", f"{n_student:,}", f"{n_teacher:,}"
        )
    return student


def load_student(source: str) -> Chronos2Model:
    """A student that starts from an existing Chronos-2 checkpoint (``--student``: a general student, a smaller
    pretrained Chronos-2, an earlier run), with its own config; fp32, trainable. ``source``: a resolved local
    folder or hub id (:func:`chronos_distill.chronos2.checkpoints.resolve_checkpoint`)."""
    from chronos_distill.chronos2.loading import load_chronos2

    student = load_chronos2(source, role="student")
    student.requires_grad_(True)
    student.train()
    student.config._name_or_path = ""  # the published config names no local folder
    return student


def build_pruned_student(teacher: Chronos2Model, cfg: DistillConfig, calibration: list) -> tuple[Chronos2Model, torch.Tensor]:
    """The student config filled with the teacher's most important parts (see :mod:`chronos_distill.chronos2.pruning`).

    Returns the student and its kept residual channels (indices into the teacher's d_model).
    """
    from chronos_distill.chronos2.pruning import check_prunable, estimate_importance, prune

    config = build_student_config(teacher.config, cfg)
    check_prunable(teacher.config, config)  # the one check, before any forward pass
    importance = estimate_importance(teacher, calibration)
    return prune(teacher, config, importance)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def digest_weights(digest, model: torch.nn.Module) -> None:
    """Feed a model's config and every weight into ``digest`` (a ``hashlib`` object): the same checkpoint loaded
    twice feeds the same bytes (the teacher cache key, an ensemble's identical members)."""
    digest.update(model.config.to_json_string().encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
