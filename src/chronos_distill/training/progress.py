"""What a person sees while a run trains: a progress bar with the loss components, and a readable line per log.

The Trainer's own ``ProgressCallback`` writes every log as a raw dict (``{'loss': '14.82', 'grad_norm': ...}``)
between the progress bars. :class:`ReadableProgress` replaces it: the bar shows the latest components, and each
log becomes one line such as ``step 50/300  total 11.62  distill 7.316  hard 13.06  lr 9.9e-04``. The raw dicts
are still what TensorBoard and ``trainer.state.log_history`` get; ``verbose`` prints them too.
"""

from __future__ import annotations

from typing import Any

from transformers.trainer_callback import ProgressCallback

#: Log keys shown, in this order, under the names shown.
_SHOWN = (("total_loss", "total"), ("distill_loss", "distill"), ("hard_loss", "hard"), ("feature_loss", "feature"),
          ("attention_loss", "attention"), ("loss", "loss"))


def readable_log(logs: dict[str, Any], step: int, max_steps: int) -> str | None:
    """One line for a Trainer log, or None for logs that say nothing new (the final runtime summary)."""
    evaluation = any(key.startswith("eval_") for key in logs)
    prefix = "eval_" if evaluation else ""
    shown = []
    for key, name in _SHOWN:
        if name == "loss" and shown:  # the Trainer's "loss" repeats "total" when the components are logged
            continue
        value = logs.get(prefix + key)
        if isinstance(value, (int, float)):
            shown.append(f"{name} {value:.4g}")
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
            postfix = {name: f"{logs[key]:.4g}" for key, name in _SHOWN[:5] if isinstance(logs.get(key), (int, float))}
            self.training_bar.set_postfix(postfix, refresh=False)
        self.training_bar.write(line)


def use_readable_progress(trainer, verbose: bool = False) -> None:
    """Swap the Trainer's ``ProgressCallback`` for :class:`ReadableProgress` (when it shows a progress bar)."""
    if trainer.callback_handler.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(ReadableProgress(verbose))
