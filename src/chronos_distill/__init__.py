"""chronos-distill: distill a Chronos-2 teacher into a smaller Chronos-2 student.

The package root is lazy (PEP 562): ``import chronos_distill`` (and the CLI's ``--help``) imports neither
torch nor transformers; each name below is imported from its module when it is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from chronos_distill._version import __version__

#: public name -> module that defines it
_EXPORTS = {
    "CheckpointError": ".errors",
    "ConfigError": ".errors",
    "DataError": ".errors",
    "DistillError": ".errors",
    "DistillConfig": ".config",
    "PretrainConfig": ".config",
    "EvaluateConfig": ".config",
    "PredictConfig": ".config",
    "DistillResult": ".distillation.run",
    "DistillationTrainer": ".distillation.trainer",
    "DistillationConfig": ".distillation.distillation_config",
    "distill": ".distillation.run",
    "pretrain": ".pretraining.run",
    "evaluate": ".evaluation.scoring",
    "predict": ".deploy.predict",
    "export_onnx": ".deploy.onnx_export",
    "build_student": ".chronos2.student",
    "build_student_config": ".chronos2.student",
    "load_chronos2": ".chronos2.loading",
    "load_teacher": ".chronos2.loading",
    "resolve_teacher": ".chronos2.checkpoints",
}

__all__ = [
    "CheckpointError", "ConfigError", "DataError", "DistillConfig", "DistillError", "DistillResult", "DistillationConfig",
    "DistillationTrainer",
    "EvaluateConfig",
    "PredictConfig", "PretrainConfig", "__version__", "build_student", "build_student_config", "distill", "evaluate",
    "export_onnx", "load_chronos2", "load_teacher", "predict", "pretrain", "resolve_teacher",
]

if TYPE_CHECKING:
    from chronos_distill.chronos2.checkpoints import resolve_teacher
    from chronos_distill.chronos2.loading import load_chronos2, load_teacher
    from chronos_distill.chronos2.student import build_student, build_student_config
    from chronos_distill.config import DistillConfig, EvaluateConfig, PredictConfig, PretrainConfig
    from chronos_distill.deploy.onnx_export import export_onnx
    from chronos_distill.deploy.predict import predict
    from chronos_distill.distillation.distillation_config import DistillationConfig
    from chronos_distill.distillation.run import DistillResult, distill
    from chronos_distill.distillation.trainer import DistillationTrainer
    from chronos_distill.errors import CheckpointError, ConfigError, DataError, DistillError
    from chronos_distill.evaluation.scoring import evaluate
    from chronos_distill.pretraining.run import pretrain


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
