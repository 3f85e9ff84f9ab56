"""The pieces a distillation run is built from, each usable alone: its data (:func:`load_run_data`), its models
(:func:`build_models`), its objective and trained module (:func:`build_objective`), its batches and teacher cache
(:func:`build_datasets`, :func:`label_with_cache`) and its ``TrainingArguments`` (:func:`distill_training_arguments`).

:class:`~chronos_distill.distillation.trainer.DistillationTrainer` calls them in that order; a benchmark or a
notebook that needs one piece (the teacher and student of a config, say) calls it directly. Every check that can
fail runs before the first training step, so a bad input costs seconds, not hours.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.dataset import DatasetMode
from transformers import TrainingArguments

from chronos_distill.chronos2.loading import load_teacher
from chronos_distill.chronos2.student import build_pruned_student, build_student, count_parameters, load_student
from chronos_distill.config import DEFAULT_GENERAL_BANK_SIZE, DistillConfig
from chronos_distill.data.series import SeriesSet, drop_short_series, general_series, load_series
from chronos_distill.data.shards import ShardedBatches, ShardedCorpus, check_shards, join_process_summaries
from chronos_distill.data.sources import Source, find_source
from chronos_distill.data.teacher_cache import GENERAL_CACHE_SEED, cache_manifest, cached_transfer_set, fits_on_gpu
from chronos_distill.data.windows import draw_windows, make_dataset, training_batches
from chronos_distill.distillation.losses.output import OutputDistillationLoss
from chronos_distill.distillation.model import DistillationModel
from chronos_distill.distillation.objective import DistillationObjective
from chronos_distill.distillation.plan import plan_from_config
from chronos_distill.distillation.preflight import (
    CheckedInputs,
    check_against_teacher,
    check_student_against_teacher,
    run_horizon,
)
from chronos_distill.distillation.teachers import RunTeachers, build_teachers, wants_series_seasons, with_series_seasons
from chronos_distill.errors import ConfigError, DataError
from chronos_distill.training.arguments import training_arguments
from chronos_distill.training.disk import disk_error, write_failure
from chronos_distill.training.run_folder import continues, rank_and_world

logger = logging.getLogger(__name__)


@dataclass
class RunData:
    """The series a run trains and validates on, checked and prepared. ``corpus``: a corpus streamed shard by
    shard (``--batches-per-shard``; ``train`` is then its first shard, with the whole corpus's summary);
    ``share``: the shards this process reads under torchrun (None: all of it); ``min_past``: the shortest
    history a training window keeps."""

    train: SeriesSet
    validation: SeriesSet | None
    min_past: int
    corpus: ShardedCorpus | None = None
    share: Source | None = None


@dataclass
class RunModels:
    """The teacher(s) and the student of a run, and what the windows are cut to. ``kept_channels``: the teacher's
    residual channels a pruned student kept (None otherwise); ``horizon``: ``prediction_length``, or a
    ``--general`` run's longest horizon; ``started``: True when the student is an existing checkpoint (its own
    config is kept)."""

    teacher: Chronos2Model
    student: Chronos2Model
    teachers: RunTeachers
    horizon: int
    context_length: int
    kept_channels: torch.Tensor | None = None
    started: bool = False

    def dataset_options(self, cfg: DistillConfig) -> dict[str, Any]:
        """What every ``Chronos2Dataset`` of the run is built with."""
        return dict(context_length=self.context_length, prediction_length=self.horizon, batch_size=cfg.batch_size,
                    output_patch_size=self.teacher.chronos_config.output_patch_size)


def general_options(cfg: DistillConfig) -> dict[str, Any]:
    """How general rows draw their tasks, for a run that has them (only its cache key depends on it)."""
    options: dict[str, Any] = ({"general_context": cfg.general_context}
                               if cfg.general or cfg.transfer_shares().general else {})
    if options and cfg.general_bank_size != DEFAULT_GENERAL_BANK_SIZE:
        # only a bank other than the default joins the options (and the cache key): caches built before the
        # option keep their key
        options["general_bank_size"] = cfg.general_bank_size
    if cfg.general and cfg.general_real_share > 0:  # likewise: only a run with real contexts names their share
        options["general_real_share"] = cfg.general_real_share
    return options


# -- data ---------------------------------------------------------------------------------------------------------
def load_run_data(cfg: DistillConfig) -> RunData:
    """The training series (the general stream's for ``--general``, each shard checked for a streamed corpus, this
    process's shards under torchrun) and the validation series."""
    min_past = cfg.min_past or cfg.prediction_length or 1
    logger.info("reading the training data")
    corpus = _check_shards(cfg, min_past) if cfg.batches_per_shard is not None else None
    share = None if cfg.general or corpus is not None else _process_share(cfg)
    if corpus is not None:
        train = corpus.first  # its summary is the whole corpus's; training reads every shard in turn
    else:
        train = (general_series() if cfg.general and cfg.train_data is None
                 else load_table(cfg, share or cfg.train_data, "train_data", min_past))
    validation = load_table(cfg, cfg.validation_data, "validation_data", 1) if cfg.validation_data is not None else None
    return RunData(train, validation, min_past, corpus, share)


def load_table(cfg: DistillConfig, data: Any, role: str, min_past: int) -> SeriesSet:
    """One table of the run (``role``: ``train_data`` or ``validation_data``) in the run's layout, its series too
    short for a window dropped (and named)."""
    # a --general run's corpus has no horizon of its own: a series needs one observed step and one to come
    horizon = cfg.prediction_length if cfg.prediction_length is not None else 1
    try:
        series = load_series(
            data,
            horizon,
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
    except MemoryError as exc:  # numpy's and pyarrow's allocation failures alike
        hint = ("stream it one shard at a time with --batches-per-shard" if role == "train_data" and cfg.batches_per_shard
                is None else "split it into smaller shards")
        raise DataError(f"{role} {data if isinstance(data, (str, Path)) else 'table'} does not fit in memory; "
                        f"{hint} (a folder or glob of shards, each series whole in one shard)") from exc
    why = f"min_past {min_past} + prediction_length {horizon}"
    series = drop_short_series(series, min_past + horizon, role, why)
    return with_series_seasons(series) if wants_series_seasons(cfg) else series


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
    return check_shards(list(source.files), lambda shard: load_table(cfg, str(shard), "train_data", min_past),
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


def joined_across_processes(cfg: DistillConfig, data: RunData) -> SeriesSet:
    """The training series with the summary of the whole corpus, joined from every process's share (the process
    group exists once the trainer does); refuses a series that two processes' shards both hold."""
    import torch.distributed as dist

    train, corpus = data.train, data.corpus
    item_shards = corpus.item_shards if corpus is not None else dict.fromkeys(train.ids)
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, {"summary": train.summary(), "item_shards": item_shards})
    source = find_source(cfg.train_data, "train_data").description
    return dataclasses.replace(train, described=join_process_summaries(parts, source))


# -- models -------------------------------------------------------------------------------------------------------
def build_models(cfg: DistillConfig, checked: CheckedInputs, data: RunData, *, teacher: Chronos2Model | None = None,
                 student: Chronos2Model | None = None) -> RunModels:
    """The frozen teacher (``teacher`` when given, else loaded from ``checked.teacher``), the student (``student``
    when given, else the ``--student`` checkpoint, else built from the teacher's config, randomly or pruned) and
    the run's other teachers, each checked against the first."""
    if teacher is None:
        logger.info("loading the teacher %s", checked.teacher.description.name)
        teacher = load_teacher(checked.teacher.source)
    logger.info("teacher: %s parameters", f"{count_parameters(teacher):,}")
    chronos_config = dict(teacher.chronos_config.__dict__)
    check_against_teacher(cfg, chronos_config)
    started = student is not None or checked.student is not None
    if student is None and checked.student is not None:
        logger.info("loading the starting student %s", checked.student.description.name)
        student = load_student(checked.student.source)
    if student is not None:
        check_student_against_teacher(cfg, dict(student.chronos_config.__dict__), chronos_config,
                                      checked.student.name if checked.student is not None else "model")
    horizon = run_horizon(cfg, chronos_config, dict(student.chronos_config.__dict__) if started else None)
    context_length = cfg.context_length or chronos_config["context_length"]
    models = RunModels(teacher, student, None, horizon, context_length, started=started)  # type: ignore[arg-type]
    if student is None:
        if cfg.student_init == "pruned" and continues(Path(cfg.output).expanduser(), cfg.resume):
            # once per run: every weight (projections too) comes from the checkpoint, so calibrating again would
            # cost teacher forwards for nothing; the student of the same config is built without them
            logger.info("building the student (pruned start: its weights come from the checkpoint, no calibration)")
            models.student = build_student(teacher, cfg)
        elif cfg.student_init == "pruned":
            logger.info("building the student (pruned from the teacher)")
            # calibration windows from their own seed stream, so training windows stay those of a random-init run
            calibration = draw_windows(data.train, cfg.calibration_batches, cfg.seed + 1, min_past=data.min_past,
                                       **general_options(cfg), **models.dataset_options(cfg))
            models.student, models.kept_channels = build_pruned_student(teacher, cfg, calibration)
        else:
            logger.info("building the student (random init)")
            models.student = build_student(teacher, cfg)
    sources = {name: (ref.source if ref is not None else None) for name, ref in checked.teachers.items()}
    models.teachers = build_teachers(cfg, teacher, sources, data.train, data.validation, context_length, horizon)
    return models


# -- objective ----------------------------------------------------------------------------------------------------
def build_objective(cfg: DistillConfig, models: RunModels, has_validation: bool
                    ) -> tuple[DistillationObjective, DistillationModel]:
    """The run's loss (its terms, weights and taps) and the module the Trainer trains: the student with the terms'
    training-only projections (started from a pruned student's kept channels)."""
    feature_teacher = models.teachers.feature_teacher
    plan = plan_from_config(cfg, feature_teacher.config, models.student.config)
    output_family = OutputDistillationLoss(cfg.output_loss, models.student.chronos_config.quantiles,
                                           models.teacher.chronos_config.quantiles)
    objective = DistillationObjective.from_config(cfg, output_family, plan, models.student.config,
                                                  feature_teacher.config)
    metric = cfg.best_checkpoint_metric
    if has_validation and metric not in [*objective.log_names.values(), "loss"]:
        raise ConfigError(f"option `best_metric` (--best-metric) {cfg.best_metric!r} is not a loss this run logs; "
                          f"choose from {', '.join(objective.log_names.values())}")
    model = DistillationModel(models.student, objective.modules(), needs=objective.needs("student"))
    if models.kept_channels is not None and "feature" in model.terms:
        model.terms["feature"].init_from_channels(models.kept_channels)  # projections start from the pruning's embedding
    return objective, model


# -- batches ------------------------------------------------------------------------------------------------------
def build_datasets(cfg: DistillConfig, data: RunData, models: RunModels) -> tuple[Any, Any]:
    """The training batches (the run's windows with its transfer rows, or a streamed corpus's) and the validation
    dataset (None without validation data)."""
    options = models.dataset_options(cfg)
    if data.corpus is not None:
        train = ShardedBatches(data.corpus, cfg.batches_per_shard, cfg.seed, min_past=data.min_past, **options)
    else:
        train = training_batches(data.train, cfg.transfer_shares(), min_past=data.min_past, **general_options(cfg),
                                 **options)
    validation = (make_dataset(data.validation, min_past=1, mode=DatasetMode.VALIDATION, **options)
                  if data.validation is not None else None)
    return train, validation


def label_with_cache(cfg: DistillConfig, data: RunData, models: RunModels, device: torch.device | None = None
                     ) -> tuple[Any, dict[str, Any]]:
    """The training batches labelled once by the teacher and stored under ``--teacher-cache`` (reused when their
    key exists), and what the record says of the cache (its labelling wall time included: the teacher cost that
    every run sharing it counts). ``device``: the Trainer's (``TrainingArguments.device``: ``use_cpu`` keeps the
    cache on the CPU); on a GPU the batches are held there for the whole run when they fit."""
    logger.info("preparing the teacher cache in %s", cfg.teacher_cache)
    # a --general run's batches do not depend on the student or its seed: one labelled set serves every student
    # of a family (each seed still draws its own order and initialisation)
    cache_seed = GENERAL_CACHE_SEED if cfg.general else cfg.seed
    try:
        train_dataset, cache_folder, reused = cached_transfer_set(
            cfg.teacher_cache, models.teachers.target, data.train, cfg.cache_batches, cache_seed,
            shares=cfg.transfer_shares(), min_past=data.min_past, **general_options(cfg), **models.dataset_options(cfg),
        )
    except Exception as exc:  # a full disk may arrive wrapped (pyarrow, torch): write_failure reads the chain, and
        # anything else is re-raised as it came. Shards are written atomically and the manifest last: a rerun rebuilds it
        kind = write_failure(exc)
        if kind is None:
            raise
        raise disk_error(kind, Path(cfg.teacher_cache).expanduser(), None, None) from exc
    if device is not None and device.type == "cuda":  # held on the training device when it fits: no copy per step
        if fits_on_gpu(train_dataset.nbytes, torch.cuda.mem_get_info(device)[0], cfg.num_workers):
            train_dataset.to(device)
    manifest = cache_manifest(cache_folder)
    info = {"folder": str(cache_folder), "reused": reused, "batches": cfg.cache_batches, "seed": cache_seed,
            "key": cache_folder.name, "build_seconds": manifest.get("build_seconds"),
            "held_on": str(train_dataset.device)}
    distances = manifest.get("member_distances")
    if distances is not None and models.teachers.ensemble is not None:
        info["member_distances"] = dict(zip([m.label for m in models.teachers.ensemble.members], distances))
    return train_dataset, info


def distill_training_arguments(cfg: DistillConfig, checkpoint_dir: Path, has_validation: bool,
                               batches_on_gpu: bool = False) -> TrainingArguments:
    """The run's TrainingArguments (:func:`chronos_distill.training.arguments.training_arguments`) with what
    distillation adds: validation and best-checkpoint export, TensorBoard when installed, exact resume, and no
    pinned memory for training batches already on the GPU (a teacher cache held there: CUDA tensors cannot be
    pinned)."""
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
        **({"dataloader_pin_memory": False} if batches_on_gpu else {}),
    )
