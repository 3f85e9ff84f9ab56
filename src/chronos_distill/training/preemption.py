"""Preemption: on SIGTERM (what a spot instance, SLURM or Kubernetes sends before the kill) or SIGINT (Ctrl-C) a
run finishes the step it is in, writes a complete checkpoint at that step and stops, as PyTorch Lightning does
under SLURM; ``--resume`` then continues exactly where it stopped.

:class:`StopOnSignal` is a ``TrainerCallback`` (public Trainer API): the signal handler only sets a flag; at the
end of the step the callback asks the Trainer to save and stop (``control.should_save`` /
``should_training_stop``). Under ``torchrun`` the flag is all-reduced across ranks every step, so every rank stops
at the same step whichever one was signalled, and the Trainer's own save writes the checkpoint (rank 0 the
model, every rank its RNG state). A second signal while that checkpoint is written exits at once: the Trainer
writes ``trainer_state.json`` last, so the half-written checkpoint is never the one ``--resume`` picks.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from typing import Any, Iterator

from transformers import TrainerCallback

#: The signals a run stops on.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopOnSignal(TrainerCallback):
    """Save and stop at the end of the step in which SIGTERM or SIGINT arrived (see the module doc)."""

    def __init__(self, trainer: Any):
        self.trainer = trainer
        self.received: signal.Signals | None = None  # the first signal, set by the handler
        self.stopped_at: int | None = None  # the step saved and stopped at

    def handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # the second one: the user (or the scheduler) will not wait for the save
            os.write(2, f"chronos-distill: second {signal.Signals(signum).name}: exiting now; the checkpoint being "
                        "written is incomplete and --resume skips it\n".encode())
            os._exit(128 + signum)
        self.received = signal.Signals(signum)

    def on_step_end(self, args, state, control, **kwargs):
        stop = self.received is not None
        if args.world_size > 1:
            stop = self._any_rank(stop, args.device)
        if stop:
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
            check_finite = getattr(self.trainer, "check_finite", None)
            if check_finite is not None:  # never checkpoint a diverged model, signal or not
                check_finite()
        return control

    @staticmethod
    def _any_rank(stop: bool, device: Any) -> bool:
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1.0 if stop else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    @contextmanager
    def installed(self) -> Iterator[StopOnSignal]:
        """The handlers in place for the block (the main thread only), the previous ones restored after it."""
        previous = {sig: signal.signal(sig, self.handle) for sig in STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
