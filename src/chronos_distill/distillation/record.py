"""The record of a distillation run, ``distillation.json``: teacher, student, objective, options, data,
training, the exported weights' losses and versions. It is published with the model, so local paths are
reduced to file names (:func:`chronos_distill.chronos2.model_card.scrub_local_paths`); ``run_config.json`` keeps them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from pathlib import Path
from typing import Any

import torch

from chronos_distill._version import __version__
from chronos_distill.chronos2.model_card import file_name, scrub_local_paths
from chronos_distill.chronos2.student import count_parameters
from chronos_distill.config import DistillConfig
from chronos_distill.distillation.objective import DistillationObjective
from chronos_distill.training.restarts import restarts

logger = logging.getLogger(__name__)

#: Options that name local files or folders: published as file names only.
PATH_OPTIONS = ("teacher", "student", "train_data", "validation_data", "output", "teacher_cache")


def _last_logged(history: list[dict[str, Any]], prefix: str, log_names: dict[str, str]) -> dict[str, float]:
    keys = {name: prefix + log_name for name, log_name in log_names.items()}
    for entry in reversed(history):
        if keys["total"] in entry:
            return {prefix + name: entry[key] for name, key in keys.items() if key in entry}
    return {}


def _loss_record(cfg: DistillConfig, objective: DistillationObjective, plan) -> dict[str, Any]:
    """The objective as the registry describes it (every term, its weight, the option that set it), plus the
    output loss family and the matched blocks."""
    record: dict[str, Any] = {
        "output_loss": cfg.output_loss,
        "space": "teacher's normalised space (instance norm + arcsinh from the context)",
        **objective.record(),
    }
    if plan is not None:
        record["layer_pairs"] = [list(pair) for pair in plan.pairs]
        if plan.features:
            record.update(feature_loss=plan.feature_loss, feature_projection=plan.feature_projection)
        if plan.attention_kinds:
            record.update(
                attention_loss=plan.attention_loss,
                attention_kinds=list(plan.attention_kinds),
                relation_heads=plan.relation_heads,
            )
    return record


def run_record(cfg, described, teacher, student, train, validation, trainer, metrics, resume_from,
               started_from=None, horizon: int | None = None) -> dict[str, Any]:
    """The run's ``distillation.json``: published with the model, so local paths are reduced to names.
    ``described``: the teacher's :class:`~chronos_distill.chronos2.checkpoints.TeacherDescription`;
    ``started_from``: the same description of the checkpoint the student started from (``--student``), or None
    for a student built from the teacher; ``horizon``: the longest horizon trained (a ``--general`` run draws
    every horizon up to it)."""
    import chronos
    import transformers

    history = trainer.state.log_history
    names = trainer.objective.log_names
    first = next((e for e in history if "distill_loss" in e), {})
    core = ("d_model", "num_layers", "num_heads", "d_kv", "d_ff")
    shares = cfg.transfer_shares()
    license_ = cfg.license or described.license
    if cfg.license and described.license and cfg.license != described.license:
        logger.warning("--license %s differs from the teacher's license %s", cfg.license, described.license)
    if not license_:
        logger.warning("the teacher's license is not known: the model card says 'unknown'; pass --license to set it")
    options = cfg.to_dict()
    for name in PATH_OPTIONS:
        options[name] = file_name(options[name])
    record = {
        "chronos_distill_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "teacher": {
            **described.to_dict(),
            "parameters": count_parameters(teacher),
            "config": {k: getattr(teacher.config, k) for k in core},
        },
        "student": {
            "started_from": started_from.to_dict() if started_from is not None else None,
            "init": "checkpoint" if started_from is not None else cfg.student_init,
            "horizon": horizon,
            "parameters": count_parameters(student),
            "config": {k: getattr(student.config, k) for k in core},
            "chronos_config": dict(student.chronos_config.__dict__),
        },
        "card": {"license": license_, "datasets": list(cfg.datasets)},
        "transfer": {
            "shares": shares.to_dict(),
            "teacher_only_rows_per_batch": shares.rows(cfg.batch_size),
            "horizon_weighting": cfg.horizon_weighting,
            "horizon_tau": cfg.horizon_tau if cfg.horizon_weighting != "none" else None,
        },
        "loss": _loss_record(cfg, trainer.objective, trainer.objective.plan),
        "options": options,
        "data": {"train": train.summary(), "validation": validation.summary() if validation else None},
        "training": {
            "steps": trainer.state.global_step,
            # this train() call's own steps and time, apart from the run's total (a resumed run counts both)
            "session_steps": (trainer.session or {}).get("steps", trainer.state.global_step),
            "train_runtime_s": float(metrics.get("train_runtime", math.nan)),
            # what one optimizer step averages over: batch x accumulation x processes
            "effective_batch_size": cfg.batch_size * trainer.args.gradient_accumulation_steps * trainer.args.world_size,
            "gradient_accumulation_steps": trainer.args.gradient_accumulation_steps,
            "processes": trainer.args.world_size,
            "device": str(trainer.args.device),
            "resumed_from": resume_from,
            "restarts": restarts(Path(cfg.output).expanduser()),  # every continuation of the run, oldest first
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "exported": _exported_weights(trainer),
            "first_distill_loss": first.get("distill_loss"),
        },
        "final_losses": {**_last_logged(history, "", names), **_last_logged(history, "eval_", names)},
        "versions": {
            "chronos-forecasting": chronos.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
    }
    return scrub_local_paths(record)


def _exported_weights(trainer) -> dict[str, Any]:
    """Which weights the export holds (the last step's, or the best checkpoint's), and their logged losses."""
    history, steps, names = trainer.state.log_history, trainer.state.global_step, trainer.objective.log_names
    best = trainer.state.best_model_checkpoint
    if best is None:
        return {"checkpoint": None, "step": steps, "description": f"the last step ({steps})",
                "losses": _last_logged(history, "", names)}
    step = int(Path(best).name.rsplit("-", 1)[-1])
    at_step = [e for e in history if e.get("step", -1) <= step]
    metric, value = trainer.args.metric_for_best_model, trainer.state.best_metric
    return {
        "checkpoint": Path(best).name,
        "step": step,
        "criterion": metric,
        "criterion_value": value,
        "description": f"the best checkpoint by the lowest {metric} ({value:.4g}), {Path(best).name} of {steps} steps",
        "losses": {**_last_logged(at_step, "", names), **_last_logged(at_step, "eval_", names)},
    }


def distilled_columns(folder: Path | None) -> dict[str, list[str]]:
    """The data columns (target, past-only and known covariates) a student was distilled with, read from its
    ``distillation.json``; {} for a model that has none (a teacher, an upstream checkpoint)."""
    import json

    record = folder / "distillation.json" if folder is not None else None
    if record is None or not record.is_file():
        return {}
    try:
        return json.loads(record.read_text())["data"]["train"]["columns"] or {}
    except (ValueError, KeyError, TypeError):
        return {}
