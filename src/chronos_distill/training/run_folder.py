"""The output folder of a run (``distill`` or ``pretrain``): its layout, and the rules for reusing it.

Layout::

    OUTPUT/
    ├── model/             the publishable model: exactly what a Hugging Face model repository holds
    │   ├── config.json        (with "chronos_pipeline_class": "Chronos2Pipeline", as upstream checkpoints)
    │   ├── model.safetensors
    │   ├── README.md          model card (front-matter: license, base_model, datasets, tags, ...)
    │   └── distillation.json  (or pretraining.json) how it was made; local paths reduced to file names
    ├── checkpoints/       training state: checkpoint-N/ with optimizer, scheduler and RNG states (--resume)
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

from chronos_distill.errors import DistillError
from chronos_distill.files import write_json_atomic

logger = logging.getLogger(__name__)

MODEL_DIR = "model"
CHECKPOINTS = "checkpoints"
RUN_CONFIG = "run_config.json"


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


def last_complete_checkpoint(folder: str | Path) -> str | None:
    """The newest ``checkpoint-N`` in ``folder`` that was completely written, or None.

    The Trainer writes a checkpoint's files in place and ``trainer_state.json`` last, so a process killed
    while saving leaves a folder without it (or without its weights); such folders are skipped with a warning
    rather than resumed from.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), path) for path in folder.iterdir()
        if path.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", path.name))
    )
    for _, path in reversed(found):
        if (path / "trainer_state.json").is_file() and any(path.glob("model*.safetensors")):
            return str(path)
        logger.warning("skipping incomplete checkpoint %s (interrupted while it was being written)", path)
    return None


def checkpoint_step(checkpoint: str | Path) -> int:
    """The optimizer step a checkpoint was written at (its ``trainer_state.json``)."""
    return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"])


def check_output_folder(output: Path, options: dict[str, Any], *, resume: bool, overwrite: bool,
                        fixed_on_resume: tuple[str, ...]) -> None:
    """Refuse an output folder that would clobber an earlier run, before anything is written.

    ``options`` is the run's ``to_dict()``; with ``resume``, the options named in ``fixed_on_resume`` must
    equal those recorded in ``run_config.json`` by the run being resumed.
    """
    check_writable(output)
    if resume:
        checkpoint = last_complete_checkpoint(output / CHECKPOINTS)
        if not checkpoint:
            raise DistillError(f"--resume: output folder {output} holds no training checkpoint to resume from")
        _check_resume_consistent(output / RUN_CONFIG, options, fixed_on_resume)
        step = checkpoint_step(checkpoint)
        if "max_steps" in options and step >= options["max_steps"]:
            raise DistillError(f"--resume: the run in {output} already finished at step {step} (--max-steps "
                               f"{options['max_steps']}); nothing to train. Raise --max-steps to train it further")
        return
    if output.exists() and not output.is_dir():
        raise DistillError(f"output {output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()):
        if not overwrite:
            raise DistillError(
                f"output folder {output} is not empty; pass --resume to continue the run in it, "
                "--overwrite to replace it, or choose another folder"
            )
        if not _holds_a_run(output):
            raise DistillError(
                f"--overwrite: output folder {output} does not hold a chronos-distill run; refusing to delete it"
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
        raise DistillError(f"output {output} cannot be written: {exc.strerror or exc} (in {existing})") from None


def prepare_output_folder(output: Path, options: dict[str, Any], *, resume: bool) -> None:
    """Make the output folder ready (emptying an earlier run for --overwrite) and record the options."""
    if not resume and output.is_dir() and any(output.iterdir()):
        shutil.rmtree(output)  # check_output_folder made sure this is an earlier run and --overwrite was given
    output.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output / RUN_CONFIG, options)


def _holds_a_run(output: Path) -> bool:
    # RECORD files at the top level are the layout of chronos-distill < 0.2 (model files beside checkpoints/)
    names = (RUN_CONFIG, CHECKPOINTS, MODEL_DIR, "distillation.json", "pretraining.json")
    return any((output / name).exists() for name in names)


def _check_resume_consistent(saved: Path, options: dict[str, Any], fixed_on_resume: tuple[str, ...]) -> None:
    if not saved.is_file():
        return
    before = json.loads(saved.read_text())
    changed = [k for k in fixed_on_resume if k in before and before[k] != options.get(k)]
    if changed:
        details = ", ".join(f"{k}: {before[k]!r} -> {options.get(k)!r}" for k in changed)
        raise DistillError(f"--resume with different options than the run being resumed ({details})")
