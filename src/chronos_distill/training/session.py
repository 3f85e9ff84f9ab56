"""The steps every training command runs in the same order, written once: train from the last complete
checkpoint when resuming (with readable progress), then let rank 0 alone write the publishable model, and keep
every rank until it exists. ``distill`` and ``pretrain`` differ only in the trainer they build and what they export.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from chronos_distill.errors import StoppedBySignal
from chronos_distill.training.disk import (
    disk_error,
    remove_incomplete_checkpoints,
    warn_if_short_of_space,
    write_failure,
)
from chronos_distill.training.preemption import StopOnSignal
from chronos_distill.training.progress import use_readable_progress
from chronos_distill.training.restarts import record_restart, shared_store_warning, write_heartbeat
from chronos_distill.training.run_folder import CHECKPOINTS, checkpoint_step, last_complete_checkpoint

logger = logging.getLogger(__name__)


class StepHeartbeat(TrainerCallback):
    """The main process notes the step each optimizer step ends at (:func:`write_heartbeat`), so that a restart
    knows how many steps it trains again."""

    def __init__(self, checkpoints: Path):
        self.checkpoints = Path(checkpoints)

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_heartbeat(self.checkpoints, state.global_step)


def train_and_export(trainer: Any, output: Path, *, resume: bool, verbose: bool,
                     export: Callable[[Any, str | None], None]) -> tuple[Any, str | None]:
    """Train ``trainer`` (a ``transformers.Trainer``) in the run folder ``output`` (:func:`guarded_train`, from the
    last complete checkpoint when ``resume``), then call ``export(train_output, resumed_from)`` on the main process
    only, and wait for it on every rank (:func:`export_on_main`).

    Returns ``(train_output, resumed_from)``: the Trainer's result and the checkpoint the run continued from.
    """
    resume_from = last_complete_checkpoint(Path(output) / CHECKPOINTS) if resume else None
    train_output = guarded_train(trainer, output, resume_from=resume_from, verbose=verbose, train=trainer.train)
    export_on_main(trainer, Path(output) / "model", Path(output) / CHECKPOINTS, lambda: export(train_output, resume_from))
    return train_output, resume_from


def guarded_train(trainer: Any, output: Path, *, resume_from: str | None, verbose: bool,
                  train: Callable[..., Any]) -> Any:
    """``train(resume_from_checkpoint=resume_from)`` as every run trains: readable progress lines, SIGTERM / SIGINT
    checkpointing the step and stopping (:mod:`chronos_distill.training.preemption`), a warning when the disk is
    short of room for a checkpoint, and a full disk as one line with the last complete checkpoint (half-written
    ones removed). ``train`` is the Trainer's own ``train`` (a subclass passes ``super().train``).

    Raises :class:`~chronos_distill.errors.StoppedBySignal` when a signal stopped the run (after its checkpoint).
    """
    use_readable_progress(trainer, verbose=verbose)  # idempotent: it replaces its own callback on a second train
    if resume_from is not None:
        logger.info("resuming from %s", resume_from)
    stopper, checkpoints = StopOnSignal(trainer), Path(output) / CHECKPOINTS
    heartbeat = StepHeartbeat(checkpoints)  # the step reached, for the next restart to count what it redoes
    trainer.add_callback(stopper)
    trainer.add_callback(heartbeat)
    if resume_from is not None and trainer.is_world_process_zero():
        restart = record_restart(output, checkpoints, checkpoint_step(resume_from))
        if restart["steps_redone"]:
            logger.info("the run had reached step %d: steps %d-%d are trained again", restart["reached_step"],
                        restart["from_step"] + 1, restart["reached_step"])
    checkpoint_bytes = _checkpoint_bytes(trainer, resume_from)
    if trainer.is_world_process_zero():
        warn_if_short_of_space(checkpoints, checkpoint_bytes)
        if (warning := shared_store_warning()) is not None:
            logger.warning(warning)
    try:
        with stopper.installed():
            train_output = train(resume_from_checkpoint=resume_from)
    except Exception as exc:
        kind = write_failure(exc)
        if kind is None:
            raise
        complete = last_complete_checkpoint(checkpoints)
        removed = remove_incomplete_checkpoints(checkpoints, complete) if trainer.is_world_process_zero() else []
        if removed:
            logger.info("removed the half-written %s", ", ".join(p.name for p in removed))
        raise disk_error(kind, checkpoints, checkpoint_bytes, complete) from exc
    finally:
        trainer.remove_callback(stopper)
        trainer.remove_callback(heartbeat)
    if stopper.stopped_at is not None:  # nothing is exported: the run is not finished
        trainer.accelerator.wait_for_everyone()
        step = stopper.stopped_at
        raise StoppedBySignal(f"stopped by {stopper.received.name if stopper.received else 'a signal on another rank'} "
                              f"at step {step}: checkpoint-{step} written; continue with resume=True (--resume)",
                              exit_code=128 + int(stopper.received or 15))
    return train_output


def export_on_main(trainer: Any, model_dir: Path, checkpoints: Path, export: Callable[[], Any]) -> None:
    """``export()`` (which writes ``model_dir``) on the main process only (under torchrun / accelerate every rank
    holds the same model), a full disk as one line naming ``model_dir`` and the last complete checkpoint in
    ``checkpoints`` (the export is atomic: an earlier model stays as it was); every rank waits for it."""
    if trainer.is_world_process_zero():
        try:
            export()
        except Exception as exc:
            kind = write_failure(exc)
            if kind is None:
                raise
            model_bytes = sum(p.numel() * p.element_size() for p in trainer.model.parameters())
            raise disk_error(kind, model_dir, model_bytes, last_complete_checkpoint(checkpoints)) from exc
    trainer.accelerator.wait_for_everyone()  # no rank returns before the export exists


def _checkpoint_bytes(trainer: Any, resume_from: str | None) -> int:
    """About how much one checkpoint takes: the size of the one the run resumes from (already checked), else the
    weights and AdamW's two moments."""
    from chronos_distill.training.disk import folder_bytes

    if resume_from is not None:
        return folder_bytes(Path(resume_from))
    return 3 * sum(p.numel() * p.element_size() for p in trainer.model.parameters())
