"""Every restart of a run, recorded: when it continued, from which checkpoint, and how many steps it trains again.

A run that continues (``--resume``, ``--resume auto`` after ``torchrun --max-restarts``, a SLURM requeue or a
Kubernetes Job) starts from its newest complete checkpoint, so a worker killed some steps after that checkpoint costs
those steps again. To count them, the main process notes the step each optimizer step ends at
(``checkpoints/last_step.json``, :class:`StepHeartbeat`); a restart reads it and appends its entry to
``OUTPUT/restarts.json`` (:func:`record_restart`), which the run record and the model card repeat.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from chronos_distill.files import write_json_atomic

#: in ``checkpoints/``: the newest step this run finished (overwritten every step, by the main process)
HEARTBEAT = "last_step.json"
#: in the run folder: one entry per restart, oldest first
RESTARTS = "restarts.json"
#: what a launcher that restarts the same command counts its restarts in (torchrun, SLURM's requeue)
LAUNCHER_RESTART_COUNTS = ("TORCHELASTIC_RESTART_COUNT", "SLURM_RESTART_COUNT")


class StepHeartbeat(TrainerCallback):
    """Writes ``{"step": N}`` to ``checkpoints/last_step.json`` when optimizer step N ends, on the main process.

    A plain write (no fsync): a killed process's last write is already in the page cache, and a lost one only
    undercounts the steps a restart redoes."""

    def __init__(self, checkpoints: Path):
        self.path = Path(checkpoints) / HEARTBEAT

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            tmp = self.path.with_name(f".{HEARTBEAT}.tmp")
            tmp.write_text(json.dumps({"step": state.global_step}))
            os.replace(tmp, self.path)


def last_step_reached(checkpoints: Path) -> int | None:
    """The newest step the run finished before it stopped (:class:`StepHeartbeat`), or None when unknown."""
    try:
        return int(json.loads((Path(checkpoints) / HEARTBEAT).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_restart(output: Path, checkpoints: Path, from_step: int) -> dict[str, Any]:
    """Append this restart to ``OUTPUT/restarts.json`` and return it: ``at`` (UTC), ``from_step`` (the checkpoint it
    continues from), ``reached_step`` (the newest step finished before it stopped; None when not known),
    ``steps_redone`` (the steps between the two, trained again) and the launcher's own restart count where one
    set it. Call it on the main process only, before training."""
    reached = last_step_reached(checkpoints)
    entry: dict[str, Any] = {
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "from_step": from_step,
        "reached_step": reached,
        "steps_redone": max(0, reached - from_step) if reached is not None else None,
    }
    entry.update({name.lower(): int(os.environ[name]) for name in LAUNCHER_RESTART_COUNTS
                  if os.environ.get(name, "").isdigit()})
    write_json_atomic(Path(output) / RESTARTS, [*restarts(output), entry])
    return entry


def restarts(output: Path) -> list[dict[str, Any]]:
    """The run's restarts (:func:`record_restart`), oldest first; empty for a run that never restarted."""
    try:
        recorded = json.loads((Path(output) / RESTARTS).read_text())
    except (OSError, ValueError):
        return []
    return recorded if isinstance(recorded, list) else []

