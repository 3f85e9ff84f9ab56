"""The teachers of a run, built before any training: one Chronos-2 teacher, or an ensemble
(:mod:`chronos_distill.distillation.ensemble`) with its weights given, equal, or chosen on validation windows.

:func:`build_teachers` loads every member (the first is already loaded: the student's shape comes from it),
refuses members that cannot combine (:func:`~chronos_distill.distillation.ensemble.check_compatible`), picks the
``--feature-teacher`` for feature and attention distillation, and for ``--teacher-weights auto`` runs greedy
ensemble selection on validation windows of the training data: ``validation_data`` when the run has it, else the
last ``prediction_length`` steps of each training series (at most :data:`AUTO_WEIGHT_WINDOWS` of them), never a
test portion.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.dataset import DatasetMode

from chronos_distill.chronos2.loading import load_teacher
from chronos_distill.config import STATISTICAL_PREFIX, DistillConfig
from chronos_distill.data.series import FREQUENCY_KEY, SeriesSet
from chronos_distill.data.windows import SEASON_KEY, make_dataset
from chronos_distill.distillation.ensemble import Member, TeacherEnsemble, check_compatible, greedy_weights
from chronos_distill.distillation.losses.normalised import NormalisedTruth, normalise_truth
from chronos_distill.distillation.statistical_teacher import StatisticalTeacher, season_length_of
from chronos_distill.errors import ConfigError

logger = logging.getLogger(__name__)

#: Validation windows that ``--teacher-weights auto`` selects on, at most.
AUTO_WEIGHT_WINDOWS = 1024


@dataclass
class RunTeachers:
    """``first``: the first teacher (student shape, normalised space, truth); ``ensemble``: the combination when
    there are several members (None for one Chronos-2 teacher); ``feature_teacher``: the model feature and
    attention distillation read; ``record``: how the weights were set, for ``distillation.json``."""

    first: Chronos2Model
    ensemble: TeacherEnsemble | None
    feature_teacher: Chronos2Model
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> Chronos2Model | TeacherEnsemble:
        """What labels the batches (the teacher cache's teacher)."""
        return self.ensemble if self.ensemble is not None else self.first


def build_teachers(cfg: DistillConfig, first: Chronos2Model, sources: dict[str, Any], train: SeriesSet,
                   validation: SeriesSet | None, context_length: int, horizon: int) -> RunTeachers:
    """The run's teachers (see the module doc). ``sources``: each teacher name -> what to load (its resolved
    checkpoint source; None for a statistical member); ``first`` is the first teacher, loaded; ``horizon``: the
    longest the run asks of them."""
    names = cfg.teachers
    weights = cfg.teacher_weight_values()
    if len(names) == 1:
        return RunTeachers(first, None, first, {"mode": "single"})
    loaded: dict[str, Any] = {names[0]: first}
    season = cfg.season_length or _season_length(train)
    per_series = bool(train.inputs) and SEASON_KEY in train.inputs[0]
    members = []
    for i, name in enumerate(names):
        if weights != "auto" and weights[i] == 0 and name != cfg.feature_teacher:
            logger.info("teacher %s has weight 0: left out", name)
            continue
        if name not in loaded:
            if name.startswith(STATISTICAL_PREFIX):
                loaded[name] = StatisticalTeacher(name[len(STATISTICAL_PREFIX):], season, first.chronos_config.quantiles,
                                                  n_jobs=max(1, cfg.num_workers), per_series=per_series)
            else:
                logger.info("loading teacher %s", name)
                loaded[name] = load_teacher(sources[name])
        members.append(Member(name, 1.0 if weights == "auto" else weights[i], loaded[name]))
    check_compatible(first, members, horizon, context_length)
    feature_name = cfg.feature_teacher or names[0]
    feature_teacher = loaded[feature_name]
    record: dict[str, Any] = {"mode": "auto" if weights == "auto" else ("given" if cfg.teacher_weights else "equal")}
    if weights == "auto":
        candidates = TeacherEnsemble(members, first)  # identical checkpoints merged: one weight each
        chosen, selection = auto_weights(candidates, first, cfg, train, validation, context_length)
        record["selection"] = selection
        members = [Member(m.name, w, m.model) for m, w in zip(candidates.members, chosen)]
        logger.info("teacher weights chosen on %d validation windows: %s", selection["windows"],
                    ", ".join(f"{m.name} {w:.2f}" for m, w in zip(members, chosen)))
    members = [m for m in members if m.weight > 0]
    if not members:
        raise ConfigError("every teacher got weight 0")
    ensemble = TeacherEnsemble(members, first)
    record["teachers"] = ensemble.describe()
    record["feature_teacher"] = feature_name
    statistical = any(n.startswith(STATISTICAL_PREFIX) for n in names)
    record["season_length"] = season if statistical else None
    if statistical and per_series:
        counts: dict[int, int] = {}
        for prepared in train.inputs:
            counts[int(prepared[SEASON_KEY])] = counts.get(int(prepared[SEASON_KEY]), 0) + 1
        record["season_length"] = {"per_series": {str(k): v for k, v in sorted(counts.items())}}
    if len(ensemble) == 1 and ensemble.members[0].model is first:  # e.g. the same teacher listed twice
        return RunTeachers(first, None, first, record)
    return RunTeachers(first, ensemble, feature_teacher, record)


@torch.no_grad()
def auto_weights(ensemble: TeacherEnsemble, first: Chronos2Model, cfg: DistillConfig, train: SeriesSet,
                 validation: SeriesSet | None, context_length: int) -> tuple[list[float], dict[str, Any]]:
    """Greedy ensemble selection weights of ``ensemble``'s members on validation windows (module doc)."""
    series = validation if validation is not None else train
    if not series.inputs:
        raise ConfigError("--teacher-weights auto needs validation windows: give --validation-data or training "
                          "series (a --general run has none)")
    dataset = make_dataset(series, context_length=context_length, prediction_length=cfg.prediction_length,
                           batch_size=min(256, cfg.batch_size * 4), output_patch_size=first.chronos_config.output_patch_size,
                           min_past=1, mode=DatasetMode.VALIDATION)
    per_member: list[list[torch.Tensor]] = [[] for _ in ensemble.members]
    truths, masks, windows = [], [], 0
    for batch in dataset:
        quantiles = ensemble.member_quantiles(batch)
        truth = normalise_truth(first.instance_norm, batch["context"], first.chronos_config.context_length,
                                batch["future_target"], batch.get("future_covariates"), horizon=quantiles[0].shape[-1])
        for store, q in zip(per_member, quantiles):
            store.append(q)
        truths.append(truth.values)
        masks.append(truth.mask)
        windows += batch["context"].shape[0]
        if windows >= AUTO_WEIGHT_WINDOWS:
            break
    truth = NormalisedTruth(torch.cat(truths), torch.cat(masks))
    weights, selection = greedy_weights([torch.cat(q) for q in per_member], truth, ensemble.levels)
    selection.update(windows=windows, source="validation_data" if validation is not None else
                     f"the last {cfg.prediction_length} steps of each training series",
                     members=[m.label for m in ensemble.members], weights=weights)
    return weights, selection


def wants_series_seasons(cfg: DistillConfig) -> bool:
    """Whether the run's statistical teacher fits each window with its own series' season: it has one, no
    ``--season-length`` fixes a season for all, and there are user series (a ``--general`` run has none)."""
    return (cfg.season_length is None and not cfg.general
            and any(name.startswith(STATISTICAL_PREFIX) for name in cfg.teachers))


def with_series_seasons(series: SeriesSet) -> SeriesSet:
    """``series`` with each prepared series' season length (:data:`SEASON_KEY`, from its own frequency), so that
    every window a batch cuts from it carries it; unchanged when the series carry no frequency (in-memory inputs),
    and then the statistical teacher uses one season for all."""
    if not series.inputs or FREQUENCY_KEY not in series.inputs[0]:
        return series
    seasons = {freq: season_length_of(freq) for freq in {prepared[FREQUENCY_KEY] for prepared in series.inputs}}
    logger.info("statistical teacher: each series' own season (%s)",
                ", ".join(f"{freq} -> {season}" for freq, season in sorted(seasons.items(), key=str)))
    return dataclasses.replace(series, inputs=[{**prepared, SEASON_KEY: seasons[prepared[FREQUENCY_KEY]]}
                                               for prepared in series.inputs])


def _season_length(train: SeriesSet) -> int:
    """The season of a statistical teacher when ``--season-length`` is not given: from the frequency of the training
    data's first series, read when the data was loaded (1 when it has none)."""
    season = season_length_of(train.frequency)
    logger.info("statistical teacher: season length %d (frequency %s of the first series)", season, train.frequency)
    return season
