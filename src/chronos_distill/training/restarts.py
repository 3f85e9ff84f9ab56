"""Every restart of a run, recorded: when it continued, from which checkpoint, and how many steps it trains again.

A run that continues (``--resume``, ``--resume auto`` after ``torchrun --max-restarts``, a SLURM requeue or a
Kubernetes Job) starts from its newest complete checkpoint, so a worker killed some steps after that checkpoint costs
those steps again. To count them, the main process notes the step each optimizer step ends at
(``checkpoints/last_step.json``, :func:`write_heartbeat`); a restart reads it and appends its entry to
``OUTPUT/restarts.json`` (:func:`record_restart`), which the run record and the model card repeat.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from chronos_distill.files import write_json_atomic

#: in ``checkpoints/``: the newest step this run finished (overwritten every step, by the main process)
HEARTBEAT = "last_step.json"
#: in the run folder: one entry per restart, oldest first
RESTARTS = "restarts.json"
#: what a launcher that restarts the same command counts its restarts in (torchrun, SLURM's requeue)
LAUNCHER_RESTART_COUNTS = ("TORCHELASTIC_RESTART_COUNT", "SLURM_RESTART_COUNT")


def write_heartbeat(checkpoints: Path, step: int) -> None:
    """Note that optimizer step ``step`` ended (main process, every step): a plain write and rename, no fsync (a
    killed process's last write is already in the page cache, and a lost one only undercounts the steps redone)."""
    path = Path(checkpoints) / HEARTBEAT
    tmp = path.with_name(f".{HEARTBEAT}.tmp")
    try:
        tmp.write_text(json.dumps({"step": step}))
    except FileNotFoundError:  # no checkpoint written yet, and the Trainer has not made the folder
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"step": step}))
    os.replace(tmp, path)


def last_step_reached(checkpoints: Path) -> int | None:
    """The newest step the run finished before it stopped (:func:`write_heartbeat`), or None when unknown."""
    try:
        return int(json.loads((Path(checkpoints) / HEARTBEAT).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_restart(output: Path, checkpoints: Path, from_step: int) -> dict[str, Any]:
    """Append this restart to ``OUTPUT/restarts.json`` and return it: ``at`` (UTC), ``from_step`` (the checkpoint it
    continues from; 0 for a run started again in place, stopped before its first checkpoint), ``reached_step`` (the
    newest step finished before it stopped; None when not known), ``steps_redone`` (the steps between the two,
    trained again) and the launcher's own restart count where one set it. Call it on the main process only, before
    training."""
    reached = last_step_reached(checkpoints)
    if reached is None and from_step == 0:  # started again in place: no step had ended (each one notes itself)
        reached = 0
    entry: dict[str, Any] = {
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "from_step": from_step,
        "reached_step": reached,
        "steps_redone": max(0, reached - from_step) if reached is not None else None,
    }
    entry.update(launcher_restart_counts())
    write_json_atomic(Path(output) / RESTARTS, [*restarts(output), entry])
    return entry


def launcher_restart_counts() -> dict[str, int]:
    """The restart counts a launcher set for this process (``{"torchelastic_restart_count": 1}``)."""
    return {name.lower(): int(os.environ[name]) for name in LAUNCHER_RESTART_COUNTS
            if os.environ.get(name, "").isdigit()}


def launcher_restart_count() -> int:
    """How many times a launcher restarted this job (torchrun, SLURM), 0 when none did or none is known."""
    return max(launcher_restart_counts().values(), default=0)


def restarts(output: Path) -> list[dict[str, Any]]:
    """The run's restarts (:func:`record_restart`), oldest first; empty for a run that never restarted."""
    try:
        recorded = json.loads((Path(output) / RESTARTS).read_text())
    except (OSError, ValueError):
        return []
    return recorded if isinstance(recorded, list) else []


def shared_store_warning() -> str | None:
    """Why a restart under this ``torchrun`` may hang, or None: with ``--max-restarts`` above 0 and torchrun's
    rendezvous store shared with the workers (its default), a restarted worker can read the previous start's
    addresses from that store and fail or hang while the process group connects (pytorch/pytorch#135712; seen
    here in 6 of 13 restarts). ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1`` gives every start its own store."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    max_restarts = os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")
    if not max_restarts.isdigit() or int(max_restarts) == 0:
        return None
    return ("torchrun restarts this job (--max-restarts) through its shared rendezvous store, where a restarted worker "
            "can read the last start's addresses and hang (pytorch/pytorch#135712): launch torchrun with "
            "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1")

