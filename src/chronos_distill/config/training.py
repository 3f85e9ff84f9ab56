"""The options a training command passes to ``transformers.TrainingArguments``, defined once for distill and
pretrain."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from chronos_distill.config.options import YamlOptions, _opt, check_trainer_args
from chronos_distill.errors import ConfigError

#: The file in a run folder that records every option of the run (see ``training.run_folder``).
RUN_CONFIG = "run_config.json"
#: Options that say what to do with the run folder this time, not what the run is: never taken from the record.
_SESSION_OPTIONS = ("resume", "overwrite", "verbose")


def resume_option(resume: bool | str) -> str:
    """How a message names the resume option as it was given (Python, then the flag)."""
    return 'resume="auto" (--resume auto)' if resume == "auto" else "resume=True (--resume)"


@dataclass
class TrainingOptions(YamlOptions):
    """The options a training run (``distill``, ``pretrain``) passes to ``transformers.TrainingArguments``, defined
    once. A command's defaults are its :attr:`TRAINING_DEFAULTS`, filled in where an option is left unset; any
    other ``TrainingArguments`` field goes through ``trainer_args``."""

    TRAINING_DEFAULTS: ClassVar[dict[str, Any]] = {}

    max_steps: int | None = _opt(None, "Optimizer steps.", low=1)
    batch_size: int | None = _opt(None, "Series per batch (targets and covariates count, as in Chronos2Pipeline.fit).", low=1)
    learning_rate: float | None = _opt(None, "Peak learning rate (AdamW, linear warmup then cosine decay).",
                                       low=0.0, open_low=True)
    warmup_ratio: float | None = _opt(None, "Fraction of max_steps spent warming the learning rate up.",
                                      low=0.0, high=1.0)
    weight_decay: float | None = _opt(None, "AdamW weight decay.", low=0.0)
    save_steps: int | None = _opt(None, "Write a training checkpoint (and evaluate, with validation data) every N "
                                  "steps.", low=1)
    logging_steps: int | None = _opt(None, "Log the loss components every N steps.", low=1)
    seed: int | None = _opt(None, "Random seed (initialisation, window sampling / data stream).", low=0)
    num_workers: int | None = _opt(None, "DataLoader worker processes.", low=0)
    trainer_args: dict = _opt({}, "Other transformers.TrainingArguments fields, passed through (YAML mapping, or JSON "
                              "on the command line, e.g. '{\"gradient_accumulation_steps\": 2}'); fields that have "
                              "their own option are refused.")
    resume: bool | str = _opt(False, "Continue from the last checkpoint in the output folder. 'auto' (--resume auto) "
                              "continues when the folder holds one and starts when it does not: the one command a "
                              "cluster restarts (torchrun --max-restarts, a SLURM requeue, a Kubernetes Job).",
                              choices=("auto",))
    overwrite: bool = _opt(False, "Replace an earlier chronos-distill run in the output folder.")
    verbose: bool = _opt(False, "Also print the Trainer's raw log dictionaries (TensorBoard gets them anyway).")

    def _take_recorded_options(self) -> None:
        """With ``resume``: every option the caller left out takes the value the run being resumed recorded in
        its ``run_config.json`` (an option given keeps its value, and the resume check refuses it if it may not
        change), so a resumed run trains on its own options, not on defaults. In-memory data, which the record
        only describes, is not taken back: it must be given again."""
        self._recorded: tuple[str, ...] = ()
        output = getattr(self, "output", None)
        if self.resume is False or output is None:  # True, or "auto" (a new folder has no record to take)
            return
        saved = Path(output).expanduser() / RUN_CONFIG
        try:
            recorded = json.loads(saved.read_text())
        except (OSError, ValueError):
            return  # no record (or a damaged one): the resume check says what is wrong with the folder
        for name, value in recorded.items():
            if name in self.given or name in _SESSION_OPTIONS or not hasattr(self, name):
                continue
            if isinstance(value, str) and value.startswith("<in-memory "):
                continue
            setattr(self, name, value)
            self._recorded += (name,)

    def _fill_training_defaults(self) -> None:
        for name, value in self.TRAINING_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def _check_training_options(self) -> None:
        """The checks across the training options (after :func:`check_options`)."""
        if self.trainer_args:
            check_trainer_args(self.trainer_args)
        if self.resume is not False and self.overwrite:
            raise ConfigError(f"{resume_option(self.resume)} and overwrite (--overwrite) exclude each other: continue "
                              "the run, or replace it")


