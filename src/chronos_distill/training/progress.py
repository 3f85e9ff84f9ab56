"""What a person sees while a run trains: a progress bar with the loss components, and a readable line per log.

The Trainer's own ``ProgressCallback`` writes every log as a raw dict (``{'loss': '14.82', 'grad_norm': ...}``)
between the progress bars. :class:`ReadableProgress` replaces it: the bar shows the latest components, and each
log becomes one line such as ``step 50/300  total 11.62  distill 7.316  hard 13.06  lr 9.9e-04``. The raw dicts
are still what TensorBoard and ``trainer.state.log_history`` get; ``verbose`` prints them too.
"""

from __future__ import annotations

from typing import Any

from transformers.trainer_callback import ProgressCallback


def _components(logs: dict[str, Any], prefix: str) -> dict[str, float]:
    """The loss components of a log, shown under their term names: ``total`` first, then every ``<term>_loss`` in
    the order the objective logged them (whatever terms it has), or the Trainer's plain ``loss``."""
    found = {key[len(prefix):-len("_loss")]: value for key, value in logs.items()
             if key.startswith(prefix) and key.endswith("_loss") and len(key) > len(prefix) + len("_loss")
             and not key.startswith("train_") and isinstance(value, (int, float))}  # (train_*: the run summary)
    if not found and isinstance(logs.get(prefix + "loss"), (int, float)):
        return {"loss": logs[prefix + "loss"]}
    return {name: found[name] for name in sorted(found, key=lambda n: n != "total")}


def readable_log(logs: dict[str, Any], step: int, max_steps: int) -> str | None:
    """One line for a Trainer log, or None for logs that say nothing new (the final runtime summary)."""
    evaluation = any(key.startswith("eval_") for key in logs)
    shown = [f"{name} {value:.4g}" for name, value in _components(logs, "eval_" if evaluation else "").items()]
    if not shown:
        return None
    head = f"step {step}/{max_steps}" + ("  validation" if evaluation else "")
    tail = f"  lr {logs['learning_rate']:.2e}" if isinstance(logs.get("learning_rate"), (int, float)) else ""
    return f"{head}  " + "  ".join(shown) + tail


class ReadableProgress(ProgressCallback):
    """``ProgressCallback`` whose logs are readable lines (and bar postfix) instead of raw dicts."""

    def __init__(self, verbose: bool = False):
        super().__init__()
        self.verbose = verbose

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.verbose:
            super().on_log(args, state, control, logs=logs, **kwargs)
            return
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        line = readable_log(logs, state.global_step, state.max_steps)
        if line is None:
            return
        if not any(key.startswith("eval_") for key in logs):
            postfix = {name: f"{value:.4g}" for name, value in _components(logs, "").items()}
            self.training_bar.set_postfix(postfix, refresh=False)
        self.training_bar.write(line)


def use_readable_progress(trainer, verbose: bool = False) -> None:
    """Swap the Trainer's ``ProgressCallback`` for :class:`ReadableProgress` (when it shows a progress bar)."""
    if trainer.callback_handler.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(ReadableProgress(verbose))
