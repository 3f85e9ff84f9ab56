"""The checks of a distillation run that need no torch: the output folder, the options against the teacher's
``config.json``, and the data files' columns (their header alone).

``chronos-distill distill`` runs them before it imports the training stack, so a typo in a path, a column or
an option costs a fraction of a second, not the ten seconds that loading torch takes; :func:`distill` runs
them too, first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chronos_distill.chronos2.checkpoints import (
    CheckpointRef,
    TeacherDescription,
    describe_teacher,
    resolve_checkpoint,
)
from chronos_distill.config import STATISTICAL_PREFIX, DistillConfig
from chronos_distill.data.sources import find_source, read_columns
from chronos_distill.data.tables import TableLayout, check_columns
from chronos_distill.errors import ConfigError, DataError
from chronos_distill.training.run_folder import check_output_folder, is_main_process


@dataclass(frozen=True)
class CheckedInputs:
    """The checkpoints of a run, each resolved once: every teacher as given (None for a statistical member), the
    first (the Chronos-2 teacher that sets the space), and the starting student of ``--student`` (or None)."""

    teachers: dict[str, CheckpointRef | None]
    teacher: CheckpointRef
    student: CheckpointRef | None


def check_distill_inputs(cfg: DistillConfig, fixed_on_resume: tuple[str, ...], *, teacher_model: Any = None,
                         student_model: Any = None) -> CheckedInputs:
    """Refuse what can be refused from names alone: the output folder (and, with ``--resume``, the options in
    ``fixed_on_resume``), a local teacher folder and its horizon and context, a starting student checkpoint
    (``--student``) against the teacher, and the columns of data files. Every Chronos-2 teacher of an ensemble is
    resolved and checked; returns them, resolved once for the rest of the run. ``teacher_model`` /
    ``student_model``: model objects given to the trainer in place of ``cfg.teacher`` / ``cfg.student`` (their
    config is checked as a folder's would be)."""
    output = Path(cfg.output).expanduser()
    if is_main_process():  # other ranks of a multi-process job would see rank 0's run_config.json appear
        check_output_folder(output, cfg.to_dict(), resume=cfg.resume, overwrite=cfg.overwrite,
                            fixed_on_resume=fixed_on_resume)
    refs = resolve_teachers(cfg) if teacher_model is None else {cfg.teachers[0]: in_memory_ref(teacher_model, cfg.teacher)}
    for ref in refs.values():
        if ref is not None and ref.chronos_config is not None:
            check_against_teacher(cfg, ref.chronos_config)
    teacher = refs[cfg.teachers[0]]
    student = resolve_student(cfg) if student_model is None else in_memory_ref(student_model, cfg.student)
    if student is not None and student.chronos_config is not None and teacher.chronos_config is not None:
        check_student_against_teacher(cfg, student.chronos_config, teacher.chronos_config, student.name)
    if cfg.batches_per_shard is not None and len(find_source(cfg.train_data, "train_data").files) < 2:
        raise DataError(f"--batches-per-shard streams a corpus shard by shard, and train_data {cfg.train_data} is one "
                        "file: give a folder or glob of shards, or drop --batches-per-shard")
    for role in ("train_data", "validation_data"):
        data = getattr(cfg, role)
        if isinstance(data, (str, Path)):
            check_columns(read_columns(data, role, cfg.timestamp_column), find_source(data, role).description,
                          TableLayout.from_options(cfg))
    return CheckedInputs(refs, teacher, student)


def in_memory_ref(model: Any, label: str) -> CheckpointRef:
    """A ``Chronos2Model`` object given in place of a checkpoint name, as a resolved checkpoint: ``label`` (what
    the run config names it by), the description of the folder or hub id it was loaded from when its config
    says so (else its label), and its ``chronos_config``. Nothing is loaded from it: the object is used as it is."""
    source = getattr(model.config, "_name_or_path", "") or ""
    described = describe_teacher(source) if source else TeacherDescription(label, None, None)
    return CheckpointRef(label, None, described, dict(model.chronos_config.__dict__))


def resolve_teachers(cfg: DistillConfig) -> dict[str, CheckpointRef | None]:
    """Each teacher as given -> its resolved checkpoint (None for a statistical member)."""
    return {name: None if name.startswith(STATISTICAL_PREFIX) else resolve_checkpoint(name, "teacher")
            for name in cfg.teachers}


def resolve_student(cfg: DistillConfig) -> CheckpointRef | None:
    """The starting checkpoint of ``--student``, resolved (None when the student is built from the teacher)."""
    return None if cfg.student is None else resolve_checkpoint(cfg.student, "student")


def max_horizon(chronos_config: dict[str, Any]) -> int:
    """The steps a Chronos-2 model outputs at most: ``max_output_patches`` x ``output_patch_size``."""
    return chronos_config["max_output_patches"] * chronos_config["output_patch_size"]


def run_horizon(cfg: DistillConfig, teacher_config: dict[str, Any], student_config: dict[str, Any] | None = None) -> int:
    """The run's horizon: ``prediction_length``, or for ``--general`` without one the longest that the teacher
    (and a starting student) can output."""
    if cfg.prediction_length is not None:
        return cfg.prediction_length
    return min([max_horizon(teacher_config), *([max_horizon(student_config)] if student_config else [])])


def check_student_against_teacher(cfg: DistillConfig, student: dict[str, Any], teacher: dict[str, Any],
                                  name: str) -> None:
    """Refuse a starting student (its ``chronos_config``) that cannot be compared with the teacher's: another
    patching, quantile levels outside the teacher's range (the teacher's are interpolated onto the student's),
    a horizon it cannot output, or, with feature or attention terms, a context that would tokenise the windows
    differently. Each message names both values."""
    for key in ("input_patch_size", "input_patch_stride", "output_patch_size", "use_reg_token"):
        if student.get(key) != teacher.get(key):
            raise ConfigError(f"student {name} has {key} {student.get(key)} and the teacher {teacher.get(key)}: "
                              "their forecasts and tokens cannot be aligned; start from a checkpoint with the "
                              "teacher's patching, or build a student from the teacher (drop --student)")
    levels, teacher_levels = student["quantiles"], teacher["quantiles"]
    if min(levels) < min(teacher_levels) or max(levels) > max(teacher_levels):
        raise ConfigError(f"student {name} has quantile levels {min(levels)}..{max(levels)} and the teacher "
                          f"{min(teacher_levels)}..{max(teacher_levels)}: the teacher's quantiles can only be "
                          "interpolated inside its own range")
    if cfg.output_loss == "median_mse" and 0.5 not in levels:
        raise ConfigError(f"output_loss median_mse needs the 0.5 level, which student {name} does not have")
    if cfg.prediction_length is not None and cfg.prediction_length > max_horizon(student):
        raise ConfigError(f"prediction_length {cfg.prediction_length} is beyond what student {name} outputs "
                          f"({max_horizon(student)} steps = max_output_patches {student['max_output_patches']} x "
                          f"patch {student['output_patch_size']}); lower --prediction-length")
    context = cfg.context_length or teacher["context_length"]
    if (cfg.feature_weight > 0 or cfg.attention_weight > 0) and student["context_length"] < context:
        raise ConfigError(f"student {name} reads {student['context_length']} context steps and the run's windows "
                          f"have {context}: feature and attention terms compare the two models token by token, so "
                          f"give --context-length {student['context_length']} (both read the same window)")


def check_against_teacher(cfg: DistillConfig, chronos_config: dict[str, Any]) -> None:
    """Refuse a horizon or a context length that the teacher (its ``chronos_config``) cannot serve."""
    patch = chronos_config["output_patch_size"]
    max_horizon = chronos_config["max_output_patches"] * patch
    if cfg.prediction_length is not None and cfg.prediction_length > max_horizon:
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
