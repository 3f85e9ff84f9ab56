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
