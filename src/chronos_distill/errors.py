"""User-facing errors.

Everything a user can get wrong (a file, a column, a series, an option, a checkpoint) raises
:class:`DistillError` with a message that names the culprit. The CLI prints these messages without a
traceback; anything else that escapes is a bug in chronos-distill.
"""


class DistillError(ValueError):
    """A problem with the user's input, options or files, described in plain words."""


class ConfigError(DistillError):
    """An option is missing, has the wrong type, or is out of range."""


class DataError(DistillError):
    """A data file or in-memory data set cannot be used for distillation."""


class CheckpointError(DistillError):
    """A model folder is not a usable Chronos-2 checkpoint."""


class NonFiniteLossError(DistillError):
    """A loss component became NaN or infinite; the run stopped before writing a checkpoint of it."""


class StoppedBySignal(DistillError):
    """SIGTERM or SIGINT stopped a run after the step it was in, with a checkpoint written at that step.

    ``exit_code`` is the shell's convention for a process ended by that signal (128 + its number: 143 for
    SIGTERM, 130 for SIGINT), so schedulers that requeue on it still see why the run ended."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def one_line(exc: BaseException) -> str:
    """A library's message on one line (transformers' own span several), for a one-line error of ours."""
    return " ".join(str(exc).split())
