"""chronos-distill: distill a Chronos-2 teacher into a smaller Chronos-2 student.

The package root is lazy (PEP 562): ``import chronos_distill`` (and the CLI's ``--help``) imports neither
torch nor transformers; each name below is imported from its module when it is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "CheckpointError": ".errors",
    "ConfigError": ".errors",
    "DataError": ".errors",
    "DistillError": ".errors",
    "DistillConfig": ".config",
    "DistillResult": ".run",
    "distill": ".run",
    "build_student": ".student",
    "build_student_config": ".student",
    "load_chronos2": ".teacher",
    "load_teacher": ".teacher",
    "resolve_teacher": ".teacher",
}

__all__ = [
    "CheckpointError", "ConfigError", "DataError", "DistillConfig", "DistillError", "DistillResult", "__version__",
    "build_student", "build_student_config", "distill", "load_chronos2", "load_teacher", "resolve_teacher",
]

if TYPE_CHECKING:
    from .config import DistillConfig
    from .errors import CheckpointError, ConfigError, DataError, DistillError
    from .run import DistillResult, distill
    from .student import build_student, build_student_config
    from .teacher import load_chronos2, load_teacher, resolve_teacher


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
