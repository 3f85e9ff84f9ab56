"""chronos-distill: distill a Chronos-2 teacher into a smaller Chronos-2 student."""

__version__ = "0.1.0"

from .config import DistillConfig  # noqa: E402
from .errors import CheckpointError, ConfigError, DataError, DistillError  # noqa: E402
from .run import DistillResult, distill  # noqa: E402
from .student import build_student, build_student_config  # noqa: E402
from .teacher import load_teacher, resolve_teacher  # noqa: E402

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DistillConfig",
    "DistillError",
    "DistillResult",
    "__version__",
    "build_student",
    "build_student_config",
    "distill",
    "load_teacher",
    "resolve_teacher",
]
