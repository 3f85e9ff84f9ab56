"""The output folder of a run (``distill`` or ``pretrain``): its layout, and the rules for reusing it.

Layout::

    OUTPUT/
    ├── model/             the publishable model: exactly what a Hugging Face model repository holds
    │   ├── config.json        (with "chronos_pipeline_class": "Chronos2Pipeline", as upstream checkpoints)
    │   ├── model.safetensors
    │   ├── README.md          model card (front-matter: license, base_model, datasets, tags, ...)
    │   └── distillation.json  (or pretraining.json) how it was made; local paths reduced to file names
    ├── checkpoints/       training state: checkpoint-N/ with optimizer, scheduler and RNG states (--resume),
    │                      and last_step.json, the newest step finished (``training.restarts``)
    ├── restarts.json      each restart of the run: when, from which step, how many steps redone
    └── run_config.json    every option of the run, as given (paths included); --resume checks it

``model/`` is what a user uploads (``huggingface-cli upload ORG/NAME OUTPUT/model``) or hands to
``Chronos2Pipeline.from_pretrained``; nothing in it exists only for training. This module imports nothing of
the training stack, so any command can use it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from chronos_distill.config.training import RUN_CONFIG, resume_option
from chronos_distill.errors import DistillError
from chronos_distill.files import damage, write_json_atomic
from chronos_distill.training.restarts import launcher_restart_count, record_restart

logger = logging.getLogger(__name__)

MODEL_DIR = "model"
CHECKPOINTS = "checkpoints"


def model_folder(output: str | Path) -> Path:
    """The publishable model folder of a run folder."""
    return Path(output) / MODEL_DIR


def looks_like_a_local_path(name: str) -> bool:
    """Whether a name that is not an existing path was meant as one: it starts with '.', '/' or '~', has more
    than one '/', or its parent folder exists (``runs/nope`` when ``runs/`` does). Hub ids are ``name`` or
    ``owner/name``."""
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        return True
    parent = Path(name).parent
    return str(parent) not in ("", ".") and parent.is_dir()


def is_main_process() -> bool:
    """Rank 0 of a ``torchrun`` / ``accelerate launch`` job (both set RANK), or a plain single process."""
    return int(os.environ.get("RANK", "0")) == 0


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes of a ``torchrun`` / ``accelerate launch`` job (RANK and
    WORLD_SIZE, set before the process group exists), ``(0, 1)`` for a plain single process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def last_complete_checkpoint(folder: str | Path) -> str | None:
    """The newest ``checkpoint-N`` in ``folder`` that is whole, or None.

    Every checkpoint is checked before it is trusted (:func:`checkpoint_damage`): a process killed while saving
    leaves one without ``trainer_state.json`` (the Trainer writes it last), an interrupted copy or a bad disk one
    with a truncated file. Such a checkpoint is named in a warning with what is wrong, and the next older one is
    tried. :func:`damaged_checkpoints` lists what was skipped.
    """
    for path, problem in _checkpoints_newest_first(folder):
        if problem is None:
            return str(path)
        logger.warning("skipping checkpoint %s: %s", path, problem)
    return None


def damaged_checkpoints(folder: str | Path) -> list[str]:
    """Each checkpoint of ``folder`` that cannot be resumed from, with why (``checkpoint-40: optimizer.pt ...``)."""
    return [f"{path.name}: {problem}" for path, problem in _checkpoints_newest_first(folder) if problem is not None]


def _checkpoints_newest_first(folder: str | Path) -> list[tuple[Path, str | None]]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = sorted(
        ((int(m.group(1)), path) for path in folder.iterdir()
         if path.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", path.name))), reverse=True)
    return [(path, checkpoint_damage(path)) for _, path in found]


#: What the Trainer needs to resume exactly, besides the weights: without the optimizer, the scheduler or the RNG
#: state it would continue silently from other states.
RESUME_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


def checkpoint_damage(checkpoint: Path) -> str | None:
    """Why ``checkpoint`` cannot be resumed from (a file missing or damaged, see :func:`chronos_distill.files.damage`),
    or None when every file the Trainer reads is there and opens."""
    if not (checkpoint / "trainer_state.json").is_file():
        return "it has no trainer_state.json (interrupted while it was being written)"
    weights = sorted(checkpoint.glob("model*.safetensors"))
    if not weights:
        return "it has no model.safetensors"
    rng = sorted(checkpoint.glob("rng_state*.pth"))
    for path in [checkpoint / name for name in RESUME_FILES] + weights + (rng or [checkpoint / "rng_state.pth"]):
        problem = damage(path)
        if problem is not None:
            return f"{path.name} is {problem}"
    return None


def checkpoint_step(checkpoint: str | Path) -> int:
    """The optimizer step a checkpoint was written at (its ``trainer_state.json``)."""
    return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"])


def continues(output: Path, resume: bool | str) -> bool:
    """Whether this start continues the run in ``output``: always with ``resume=True`` (the checks refuse a
    folder with nothing to continue), never with False, and with ``"auto"`` when ``checkpoints/`` holds a
    ``checkpoint-N`` (whole or not: :func:`check_output_folder` names a damaged one). With ``"auto"`` and none, the
    run starts: in a new folder, or again in the folder of the same run stopped before its first checkpoint (a
    restarted cluster job). Every rank decides the same: no checkpoint is written before the first step."""
    if resume != "auto":
        return bool(resume)
    folder = output / CHECKPOINTS
    return folder.is_dir() and any(re.fullmatch(r"checkpoint-\d+", path.name) for path in folder.iterdir())


def started_without_checkpoint(output: Path) -> bool:
    """Whether ``output`` holds a run that was started (its ``run_config.json``) and stopped before it wrote a
    checkpoint or exported a model: with ``resume="auto"`` it starts again in place, losing no training."""
    return (output / RUN_CONFIG).is_file() and not (output / MODEL_DIR).exists() and not continues(output, "auto")


def check_output_folder(output: Path, options: dict[str, Any], *, resume: bool | str, overwrite: bool,
                        fixed_on_resume: tuple[str, ...]) -> None:
    """Refuse an output folder that would clobber an earlier run, before anything is written.

    ``options`` is the run's ``to_dict()``; when the run continues (:func:`continues`), the options named in
    ``fixed_on_resume`` must equal those recorded in ``run_config.json`` by the run being resumed, and the run must
    not have finished. With ``resume="auto"``, a folder with no checkpoint is a new start: it must be new, or hold
    the same run (the same ``fixed_on_resume`` options) stopped before its first checkpoint.
    """
    check_writable(output)
    label = resume_option(resume)
    if continues(output, resume):
        # quietly: the run warns about each checkpoint it skips when it resumes
        checked = _checkpoints_newest_first(output / CHECKPOINTS)
        checkpoint = next((str(path) for path, problem in checked if problem is None), None)
        if not checkpoint:
            damaged = damaged_checkpoints(output / CHECKPOINTS)
            if damaged:
                raise DistillError(f"{label}: no checkpoint in {output / CHECKPOINTS} can be resumed from ("
                                   + "; ".join(damaged) + "); start the run again with overwrite=True (--overwrite)")
            raise DistillError(f"{label}: output folder {output} holds no training checkpoint to resume from")
        _check_resume_consistent(output / RUN_CONFIG, options, fixed_on_resume, label)
        step = checkpoint_step(checkpoint)
        if "max_steps" in options and step >= options["max_steps"]:
            raise DistillError(f"{label}: the run in {output} already finished at step {step} (max_steps "
                               f"{options['max_steps']}); nothing to train. Raise max_steps (--max-steps) to train it further")
        return
    if output.exists() and not output.is_dir():
        raise DistillError(f"output {output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()):
        if resume == "auto":
            if started_without_checkpoint(output):
                _check_resume_consistent(output / RUN_CONFIG, options, fixed_on_resume, label)
                return
            finished = (output / MODEL_DIR).exists()
            raise DistillError(f"{label}: output folder {output} " + (
                "holds a finished run (model/ exported, no checkpoint left to continue from); choose another folder, "
                "or replace it with overwrite=True (--overwrite) instead of resume" if finished else
                "is not empty and holds no chronos-distill run to continue; choose another folder"))
        if not overwrite:
            raise DistillError(
                f"output folder {output} is not empty; set resume=True (--resume) to continue the run in it, "
                "overwrite=True (--overwrite) to replace it, or choose another folder"
            )
        if not _holds_a_run(output):
            raise DistillError(
                f"overwrite (--overwrite): output folder {output} does not hold a chronos-distill run; refusing to delete it"
            )


def check_writable(output: Path, *, is_file: bool = False) -> None:
    """Refuse, before anything slow runs, an output path that cannot be created or written.

    The nearest existing folder on the path (for an output file, on its folder's path) must be a folder in
    which this process can create one (tried with a temporary folder that is removed at once): ``/proc/x``, a
    read-only mount, or a path through a file fail. An output file must not be a folder.
    """
    if is_file and output.is_dir():
        raise DistillError(f"output {output} is a folder; name a file")
    existing = output.parent if is_file else output
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DistillError(f"output {output} cannot be created: {existing} is a file, not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".chronos-distill-write-test-", dir=existing)
        os.rmdir(probe)
    except OSError as exc:
        raise DistillError(f"output {output} cannot be written: {exc.strerror or exc} (in {existing})") from exc


def prepare_output_folder(output: Path, options: dict[str, Any], *, resume: bool, restart: bool = False) -> None:
    """Make the output folder ready (emptying an earlier run for --overwrite) and record the options.
    ``restart``: ``resume="auto"`` starts again in the folder of the same run stopped before its first checkpoint
    (checked by :func:`check_output_folder`): its record is rewritten, nothing is deleted."""
    # (empty folders do not count: the Trainer makes its checkpoints/ when it is built)
    restarting = restart and started_without_checkpoint(output)
    if not resume and not restarting and output.is_dir() and any(path.is_file() for path in output.rglob("*")):
        if not options.get("overwrite") or not _holds_a_run(output):  # the folder changed since it was checked, or
            # a caller started over without overwrite: never delete what was not meant to go
            raise DistillError(f"output folder {output} is not empty and overwrite=True (--overwrite) was not given "
                               "for this run; nothing was deleted")
        shutil.rmtree(output)  # check_output_folder made sure this is an earlier run and --overwrite was given
    output.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output / RUN_CONFIG, options)
    # a start that is a restart all the same: of this run, stopped before its first checkpoint, or of a job that a
    # launcher restarted before the folder was made (killed while the teacher cache was labelled)
    if restarting or (not resume and launcher_restart_count()):
        record_restart(output, output / CHECKPOINTS, 0)


def _holds_a_run(output: Path) -> bool:
    # RECORD files at the top level are the layout of chronos-distill < 0.2 (model files beside checkpoints/)
    names = (RUN_CONFIG, CHECKPOINTS, MODEL_DIR, "distillation.json", "pretraining.json")
    return any((output / name).exists() for name in names)


def _check_resume_consistent(saved: Path, options: dict[str, Any], fixed_on_resume: tuple[str, ...],
                             label: str) -> None:
    if not saved.is_file():
        return
    before = json.loads(saved.read_text())
    changed = [k for k in fixed_on_resume if k in before and before[k] != options.get(k)]
    if changed:
        details = ", ".join(f"{k}: {before[k]!r} -> {options.get(k)!r}" for k in changed)
        raise DistillError(f"{label} with different options than the run being resumed ({details})")
