"""The checks of a distillation run that need no torch: the output folder, the options against the teacher's
``config.json``, and the data files' columns (their header alone).

``chronos-distill distill`` runs them before it imports the training stack, so a typo in a path, a column or
an option costs a fraction of a second, not the ten seconds that loading torch takes; :func:`distill` runs
them too, first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chronos_distill.chronos2.checkpoints import CheckpointRef, resolve_checkpoint
from chronos_distill.config import STATISTICAL_PREFIX, DistillConfig
from chronos_distill.data.tables import TableLayout, check_columns, read_columns
from chronos_distill.errors import ConfigError
from chronos_distill.training.run_folder import check_output_folder, is_main_process


def check_distill_inputs(cfg: DistillConfig, fixed_on_resume: tuple[str, ...]) -> CheckpointRef:
    """Refuse what can be refused from names alone: the output folder (and, with ``--resume``, the options in
    ``fixed_on_resume``), a local teacher folder and its horizon and context, and the columns of data files.
    Every Chronos-2 teacher of an ensemble is resolved and checked; returns the first, resolved once for the
    rest of the run (:func:`resolve_teachers` gives them all)."""
    output = Path(cfg.output).expanduser()
    if is_main_process():  # other ranks of a multi-process job would see rank 0's run_config.json appear
        check_output_folder(output, cfg.to_dict(), resume=cfg.resume, overwrite=cfg.overwrite,
                            fixed_on_resume=fixed_on_resume)
    refs = resolve_teachers(cfg)
    for ref in refs.values():
        if ref is not None and ref.chronos_config is not None:
            check_against_teacher(cfg, ref.chronos_config)
    teacher = refs[cfg.teachers[0]]
    for role in ("train_data", "validation_data"):
        data = getattr(cfg, role)
        if isinstance(data, (str, Path)):
            check_columns(read_columns(data, role), str(data), TableLayout.from_options(cfg))
    return teacher


def resolve_teachers(cfg: DistillConfig) -> dict[str, CheckpointRef | None]:
    """Each teacher as given -> its resolved checkpoint (None for a statistical member)."""
    return {name: None if name.startswith(STATISTICAL_PREFIX) else resolve_checkpoint(name, "teacher")
            for name in cfg.teachers}


def check_against_teacher(cfg: DistillConfig, chronos_config: dict[str, Any]) -> None:
    """Refuse a horizon or a context length that the teacher (its ``chronos_config``) cannot serve."""
    patch = chronos_config["output_patch_size"]
    max_horizon = chronos_config["max_output_patches"] * patch
    if cfg.prediction_length > max_horizon:
        raise ConfigError(
            f"prediction_length {cfg.prediction_length} is beyond what the teacher was trained to predict "
            f"({max_horizon} steps = max_output_patches {chronos_config['max_output_patches']} x patch "
            f"{patch}); its targets would be extrapolations"
        )
    context_length = cfg.context_length or chronos_config["context_length"]
    if context_length > chronos_config["context_length"]:
        raise ConfigError(
            f"context_length {context_length} exceeds the teacher's context length {chronos_config['context_length']}: "
            "both models would truncate the extra history, so the student cannot learn to use it"
        )
    if context_length < chronos_config["input_patch_size"]:
        raise ConfigError(
            f"context_length {context_length} is shorter than one input patch of the teacher "
            f"({chronos_config['input_patch_size']} steps): the models read the context in patches, so neither "
            "would see a whole one; use at least one patch, ideally several seasons"
        )
