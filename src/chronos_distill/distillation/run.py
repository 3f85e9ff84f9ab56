"""``distill()``: one distillation run from options to exported student (the orchestration; the output folder
rules live in :mod:`chronos_distill.training.run_folder`, the TrainingArguments in
:mod:`chronos_distill.training.arguments`, the record in :mod:`chronos_distill.distillation.record`).

Order matters for the user: every check that can fail (options, output folder, teacher, data, student
config) runs before the first training step, so a bad input costs seconds, not hours.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chronos.chronos2 import Chronos2Model
from chronos.chronos2.dataset import DatasetMode
from transformers import TrainingArguments

from chronos_distill.chronos2.checkpoints import CheckpointRef
from chronos_distill.chronos2.export import export_student
from chronos_distill.chronos2.forward import unwrap
from chronos_distill.chronos2.loading import load_teacher
from chronos_distill.chronos2.model_card import scrub_local_paths, student_card
from chronos_distill.chronos2.student import build_pruned_student, build_student, count_parameters, load_student
from chronos_distill.config import DEFAULT_GENERAL_BANK_SIZE, DISTILL_FIXED_ON_RESUME, DistillConfig
from chronos_distill.data.series import SeriesSet, drop_short_series, general_series, load_series
from chronos_distill.data.shards import (
    FollowTheStep,
    ShardedBatches,
    ShardedCorpus,
    check_shards,
    join_process_summaries,
)
from chronos_distill.data.sources import Source, find_source
from chronos_distill.data.teacher_cache import GENERAL_CACHE_SEED, cache_manifest, cached_transfer_set
from chronos_distill.data.windows import draw_windows, make_dataset, training_batches
from chronos_distill.distillation.losses.output import OutputDistillationLoss
from chronos_distill.distillation.model import DistillationModel
from chronos_distill.distillation.objective import DistillationObjective
from chronos_distill.distillation.plan import plan_from_config
from chronos_distill.distillation.preflight import (
    CheckedInputs,
    check_against_teacher,
    check_distill_inputs,
    check_student_against_teacher,
    run_horizon,
)
from chronos_distill.distillation.record import run_record
from chronos_distill.distillation.teachers import RunTeachers, build_teachers, wants_series_seasons, with_series_seasons
from chronos_distill.distillation.trainer import DistillationTrainer, SaveFinalStepCallback
from chronos_distill.errors import ConfigError, DataError
from chronos_distill.training.arguments import training_arguments
from chronos_distill.training.disk import disk_error, write_failure
from chronos_distill.training.run_folder import (
    CHECKPOINTS,
    is_main_process,
    model_folder,
    prepare_output_folder,
    rank_and_world,
)
from chronos_distill.training.session import train_and_export

logger = logging.getLogger(__name__)



@dataclass
class DistillResult:
    """What a run produced: the run folder (``output``), the publishable model folder in it (``model_dir``,
    see :mod:`chronos_distill.training.run_folder`), the trained student, the record in distillation.json, and the
    trainer (its ``state.log_history`` has every logged value; ``trainer.teacher`` is the frozen teacher)."""

    output: Path
    model_dir: Path
    student: Chronos2Model
    record: dict[str, Any]
    trainer: DistillationTrainer


@dataclass
class PreparedRun:
    """Everything a run trains with, checked and built, before the first step (see :func:`prepare_run`)."""

    cfg: DistillConfig
    output: Path
    trainer: DistillationTrainer
    teacher: Chronos2Model
    train: SeriesSet
    validation: SeriesSet | None
    context_length: int
    teacher_cache: dict[str, Any] | None
    teacher_ref: CheckpointRef
    teachers: RunTeachers | None = None
    student_ref: CheckpointRef | None = None  # the checkpoint the student started from (--student)
    horizon: int | None = None  # prediction_length, or a --general run's longest horizon


def prepare_run(cfg: DistillConfig, checked: CheckedInputs | None = None) -> PreparedRun:
    """Check every input, build teacher, student, data and trainer, and prepare the output folder.

    :func:`distill` is ``prepare_run`` + ``trainer.train`` + export; benchmarks use it to time the very step
    that training runs. ``checked``: the inputs already checked and resolved by
    :func:`~chronos_distill.distillation.preflight.check_distill_inputs` (the command line does that before it
    imports torch), so that nothing is checked or resolved twice.
    """
    output = Path(cfg.output).expanduser()
    # the output folder, the options against the teacher's config.json and the data's columns (no torch work),
    # then the data, then the teacher itself: a wrong option or a typo in a path costs seconds
    if checked is None:
        checked = check_distill_inputs(cfg, DISTILL_FIXED_ON_RESUME)  # the teachers and the student, resolved once
    teacher_ref = checked.teacher
    min_past = cfg.min_past or cfg.prediction_length or 1
    logger.info("reading the training data")
    corpus = _check_shards(cfg, min_past) if cfg.batches_per_shard is not None else None
    train_share = None if cfg.general or corpus is not None else _process_share(cfg)
    if corpus is not None:
        train = corpus.first  # its summary is the whole corpus's; training reads every shard in turn
    else:
        train = general_series() if cfg.general else _load(cfg, train_share or cfg.train_data, "train_data", min_past)
    validation = _load(cfg, cfg.validation_data, "validation_data", 1) if cfg.validation_data is not None else None

    logger.info("loading the teacher %s", teacher_ref.description.name)
    teacher = load_teacher(teacher_ref.source)
    logger.info("teacher: %s parameters", f"{count_parameters(teacher):,}")
    chronos_config = teacher.chronos_config
    check_against_teacher(cfg, dict(chronos_config.__dict__))
    starting = None
    if checked.student is not None:
        logger.info("loading the starting student %s", checked.student.description.name)
        starting = load_student(checked.student.source)
        check_student_against_teacher(cfg, dict(starting.chronos_config.__dict__), dict(chronos_config.__dict__),
                                      checked.student.name)
    horizon = run_horizon(cfg, dict(chronos_config.__dict__),
                          dict(starting.chronos_config.__dict__) if starting is not None else None)
    context_length = cfg.context_length or chronos_config.context_length
    dataset_options = dict(
        context_length=context_length,
        prediction_length=horizon,
        batch_size=cfg.batch_size,
        output_patch_size=chronos_config.output_patch_size,
    )
    shares = cfg.transfer_shares()
    # only a run with general rows depends on how they draw their contexts (and only its cache key says so)
    general_options = {"general_context": cfg.general_context} if cfg.general or shares.general else {}
    if general_options and cfg.general_bank_size != DEFAULT_GENERAL_BANK_SIZE:
        # only a bank other than the default joins the options (and the cache key): caches built before the
        # option keep their key
        general_options["general_bank_size"] = cfg.general_bank_size
    kept_channels = None
    if starting is not None:
        student = starting
    elif cfg.student_init == "pruned":
        logger.info("building the student (pruned from the teacher)")
        # calibration windows from their own seed stream, so training windows stay those of a random-init run
        calibration = draw_windows(train, cfg.calibration_batches, cfg.seed + 1, min_past=min_past, **general_options,
                                   **dataset_options)
        student, kept_channels = build_pruned_student(teacher, cfg, calibration)
    else:
        logger.info("building the student (random init)")
        student = build_student(teacher, cfg)
    sources = {name: (ref.source if ref is not None else None) for name, ref in checked.teachers.items()}
    teachers = build_teachers(cfg, teacher, sources, train, validation, context_length, horizon)
    feature_teacher = teachers.feature_teacher
    plan = plan_from_config(cfg, feature_teacher.config, student.config)
    output_family = OutputDistillationLoss(cfg.output_loss, student.chronos_config.quantiles, chronos_config.quantiles)
    objective = DistillationObjective.from_config(cfg, output_family, plan, student.config, feature_teacher.config)
    metric = cfg.best_checkpoint_metric
    if validation is not None and metric not in [*objective.log_names.values(), "loss"]:
        raise ConfigError(f"option `best_metric` (--best-metric) {cfg.best_metric!r} is not a loss this run logs; "
                          f"choose from {', '.join(objective.log_names.values())}")
    model = DistillationModel(student, objective.modules(), needs=objective.needs("student"))
    if kept_channels is not None and "feature" in model.terms:
        model.terms["feature"].init_from_channels(kept_channels)  # projections start from the pruning's embedding
    if corpus is not None:
        train_dataset = ShardedBatches(corpus, cfg.batches_per_shard, cfg.seed, min_past=min_past, **dataset_options)
    else:
        train_dataset = training_batches(train, shares, min_past=min_past, **general_options, **dataset_options)
    eval_dataset = (
        make_dataset(validation, min_past=1, mode=DatasetMode.VALIDATION, **dataset_options) if validation else None
    )

    if is_main_process():
        prepare_output_folder(output, cfg.to_dict(), resume=cfg.resume)  # all checks passed: only now touch the output folder
    cache_info = None
    if cfg.teacher_cache is not None:
        logger.info("preparing the teacher cache in %s", cfg.teacher_cache)
        # a --general run's batches do not depend on the student or its seed: one labelled set serves every student
        # of a family (each seed still draws its own order and initialisation)
        cache_seed = GENERAL_CACHE_SEED if cfg.general else cfg.seed
        try:
            train_dataset, cache_folder, reused = cached_transfer_set(
                cfg.teacher_cache, teachers.target, train, cfg.cache_batches, cache_seed, shares=shares,
                min_past=min_past, **general_options, **dataset_options,
            )
        except Exception as exc:  # shards are written atomically and the manifest last: a rerun rebuilds it
            kind = write_failure(exc)
            if kind is None:
                raise
            raise disk_error(kind, Path(cfg.teacher_cache).expanduser(), None, None) from None
        manifest = cache_manifest(cache_folder)
        # the teacher's labelling cost, which the run that built the cache paid and every later run shares
        cache_info = {"folder": str(cache_folder), "reused": reused, "batches": cfg.cache_batches, "seed": cache_seed,
                      "key": cache_folder.name, "build_seconds": manifest.get("build_seconds")}
        distances = manifest.get("member_distances")
        if distances is not None and teachers.ensemble is not None:
            cache_info["member_distances"] = dict(zip([m.label for m in teachers.ensemble.members], distances))
    trainer = DistillationTrainer(
        model=model,
        args=distill_training_arguments(cfg, output / CHECKPOINTS, has_validation=validation is not None),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        callbacks=[SaveFinalStepCallback(evaluate=validation is not None),
                   *([FollowTheStep(train_dataset)] if corpus is not None else [])],
        teacher=teacher,
        objective=objective,
        ensemble=teachers.ensemble,
        feature_teacher=feature_teacher,
    )
    if rank_and_world()[1] > 1 and (corpus is not None or train_share is not None):
        train = _joined_across_processes(train, corpus, find_source(cfg.train_data, "train_data").description)
    logger.info("student: %s parameters; training for %d steps", f"{count_parameters(student):,}", cfg.max_steps)
    return PreparedRun(cfg, output, trainer, teacher, train, validation, context_length, cache_info, teacher_ref,
                       teachers, checked.student, horizon)


def distill(config: DistillConfig | None = None, checked: CheckedInputs | None = None, **options: Any) -> DistillResult:
    """Distill a Chronos-2 teacher into a smaller Chronos-2 student and export it.

    Pass a :class:`DistillConfig`, or its fields as keyword arguments (or both: keywords override).
    ``train_data`` / ``validation_data`` may be a file path, a pandas DataFrame or any input
    ``Chronos2Pipeline.fit`` accepts. ``checked``: see :func:`prepare_run`.
    """
    cfg = dataclasses.replace(config, **options) if config is not None else DistillConfig(**options)
    run = prepare_run(cfg, checked)
    trainer, output = run.trainer, run.output
    student = unwrap(trainer.model).student  # the terms' modules stay behind: training-only
    records: dict[str, Any] = {}

    def export(train_output, resume_from) -> None:
        record = records["record"] = finished_record(run, trainer, student, train_output, resume_from)
        # a student built from the teacher's config reads the run's context (as Chronos2Pipeline.fit raises it); one
        # started from a checkpoint keeps its own config
        context_length = student.chronos_config.context_length if run.student_ref is not None else run.context_length
        export_student(student, model_folder(output), context_length=context_length, prediction_length=run.horizon,
                       record=record, model_card=student_card(record))

    train_output, resume_from = train_and_export(trainer, output, resume=cfg.resume, verbose=cfg.verbose,
                                                 export=export)
    # every rank returns the record (rank 0 exported it; the others build the same one)
    record = records.get("record") or finished_record(run, trainer, student, train_output, resume_from)
    return DistillResult(output=output, model_dir=model_folder(output), student=student, record=record, trainer=trainer)


def finished_record(run: PreparedRun, trainer, student, train_output, resume_from) -> dict[str, Any]:
    """``distillation.json`` of a finished run."""
    record = run_record(run.cfg, run.teacher_ref.description, run.teacher, student, run.train, run.validation,
                        trainer, train_output.metrics, resume_from,
                        started_from=run.student_ref.description if run.student_ref is not None else None,
                        horizon=run.horizon)
    record["training"]["teacher_cache"] = run.teacher_cache
    if run.teachers is not None and run.teachers.ensemble is not None:
        record["ensemble"] = scrub_local_paths({
            **run.teachers.record,
            "member_distances": (run.teacher_cache or {}).get("member_distances") or trainer.mean_member_distances()})
    return record


def _check_shards(cfg: DistillConfig, min_past: int) -> ShardedCorpus:
    """Every shard of a streamed corpus checked and prepared, one at a time, before the first step; under torchrun
    only this process's shards, which are all it streams."""
    source = find_source(cfg.train_data, "train_data")
    rank, world = rank_and_world()
    if world > 1:
        if len(source.files) < world:
            raise DataError(f"train_data {source.description} has fewer shards than the {world} processes, and with "
                            "--batches-per-shard each process streams its own shards: split it into at least "
                            f"{world} shards")
        source = source.share(rank, world)
    return check_shards(list(source.files), lambda shard: _load(cfg, str(shard), "train_data", min_past),
                        source.description)


def _process_share(cfg: DistillConfig) -> Source | None:
    """Under torchrun, the shards of a sharded training corpus this process reads (every process its own), or None
    when every process reads all of it: one process, a single file or dataset, fewer shards than processes, or a
    run that draws from every series at once (the teacher cache, whose batches do not depend on the number of
    processes, and pruning's calibration windows)."""
    rank, world = rank_and_world()
    if world == 1 or not isinstance(cfg.train_data, (str, Path)) or cfg.teacher_cache is not None \
            or cfg.student_init == "pruned":
        return None
    source = find_source(cfg.train_data, "train_data")
    if source.kind != "shards" or len(source.files) < world:
        return None
    logger.info("process %d of %d reads %d of the %d shards", rank, world, len(source.files[rank::world]),
                len(source.files))
    return source.share(rank, world)


def _joined_across_processes(train: SeriesSet, corpus: ShardedCorpus | None, source: str) -> SeriesSet:
    """``train`` with the summary of the whole corpus, joined from every process's share (the process group
    exists once the trainer does); refuses a series that two processes' shards both hold."""
    import torch.distributed as dist

    item_shards = corpus.item_shards if corpus is not None else dict.fromkeys(train.ids)
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, {"summary": train.summary(), "item_shards": item_shards})
    return dataclasses.replace(train, described=join_process_summaries(parts, source))


def _load(cfg: DistillConfig, data: Any, role: str, min_past: int) -> SeriesSet:
    try:
        series = load_series(
            data,
            cfg.prediction_length,
            target=cfg.target,
            known_covariates=cfg.known_covariates,
            past_covariates=cfg.past_covariates,
            ignore_columns=cfg.ignore_columns,
            id_column=cfg.id_column,
            timestamp_column=cfg.timestamp_column,
            timestamp_format=cfg.timestamp_format,
            role=role,
            series_frequencies=wants_series_seasons(cfg),
        )
    except MemoryError:  # numpy's and pyarrow's allocation failures alike
        hint = ("stream it one shard at a time with --batches-per-shard" if role == "train_data" and cfg.batches_per_shard
                is None else "split it into smaller shards")
        raise DataError(f"{role} {data if isinstance(data, (str, Path)) else 'table'} does not fit in memory; "
                        f"{hint} (a folder or glob of shards, each series whole in one shard)") from None
    why = f"min_past {min_past} + prediction_length {cfg.prediction_length}"
    series = drop_short_series(series, min_past + cfg.prediction_length, role, why)
    return with_series_seasons(series) if wants_series_seasons(cfg) else series


def distill_training_arguments(cfg: DistillConfig, checkpoint_dir: Path, has_validation: bool) -> TrainingArguments:
    """The run's TrainingArguments (:func:`chronos_distill.training.arguments.training_arguments`) with what
    distillation adds: validation and best-checkpoint export, TensorBoard when installed, exact resume."""
    try:
        import tensorboard  # noqa: F401

        report_to: Any = ["tensorboard"]
    except ImportError:
        report_to = "none"
    return training_arguments(
        checkpoint_dir, cfg,
        eval_strategy="steps" if has_validation else "no",
        eval_steps=cfg.save_steps if has_validation else None,
        load_best_model_at_end=has_validation,
        # best on the truth by default, as Chronos2Pipeline.fit selects: the mixed total rewards matching the teacher
        metric_for_best_model=f"eval_{cfg.best_checkpoint_metric}" if has_validation else None,
        greater_is_better=False if has_validation else None,
        label_names=["future_target"],
        report_to=report_to,
        # The windows come from numpy's RNG, which a checkpoint saves: on resume, continue drawing from the
        # restored state instead of replaying (and then re-drawing) the batches already trained on. This makes
        # a resumed run draw exactly the batches an uninterrupted one would (with num_workers 0).
        ignore_data_skip=True,
        # every student parameter (and projection) is used in every step: skip DDP's unused-parameter search
        ddp_find_unused_parameters=False,
    )
