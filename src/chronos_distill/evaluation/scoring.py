"""Scoring models: student against teacher, and any Chronos-2 checkpoint on benchmarks.

:func:`agreement_scores` holds out each series' last ``prediction_length`` steps (``Chronos2Dataset``
VALIDATION windows); both models forecast them from the context before. Scores are in the teacher's
normalised space, with the masks of the training losses, so they are the quantities that training logs.

:func:`evaluate_models` scores checkpoints as a user would run them (``Chronos2Pipeline.predict_quantiles``)
on M3 or on a user's file (:func:`holdout_benchmark`), with the published WQL / MASE conventions of
:mod:`chronos_distill.evaluation.metrics`, next to seasonal naive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline
from chronos.chronos2.dataset import DatasetMode

from chronos_distill.chronos2.checkpoints import training_corpus
from chronos_distill.chronos2.forward import fp32_eval, normalised_quantiles
from chronos_distill.chronos2.student import count_parameters
from chronos_distill.config import EvaluateConfig
from chronos_distill.data.competition import Benchmark, load_m3_benchmarks
from chronos_distill.data.series import SeriesSet, load_series
from chronos_distill.data.windows import make_dataset
from chronos_distill.deploy.onnx_forecaster import load_forecaster
from chronos_distill.distillation.losses.normalised import normalise_truth
from chronos_distill.distillation.losses.output import OutputDistillationLoss
from chronos_distill.errors import ConfigError, DataError
from chronos_distill.evaluation.metrics import (
    QUANTILE_LEVELS,
    geometric_mean_relative_score,
    quantile_crossing,
    score_forecasts,
    seasonal_naive_quantiles,
)
from chronos_distill.evaluation.report import write_report
from chronos_distill.training.run_folder import check_writable

logger = logging.getLogger(__name__)


@torch.no_grad()
def agreement_scores(
    teacher: Chronos2Model,
    student: Chronos2Model,
    series: SeriesSet,
    prediction_length: int,
    batch_size: int = 64,
    context_length: int | None = None,
) -> dict[str, float]:
    """Agreement and accuracy on each series' last window.

    Returns
    -------
    ``agreement``: the ``quantile`` distillation distance between student and teacher (0 = identical
    forecasts); ``student_quantile_loss`` and ``teacher_quantile_loss``: Chronos-2's quantile loss of each
    model against the truth. All are batch-size-weighted means over the series.
    """
    chronos_config = teacher.chronos_config
    dataset = make_dataset(
        series,
        context_length=context_length or chronos_config.context_length,
        prediction_length=prediction_length,
        batch_size=batch_size,
        output_patch_size=chronos_config.output_patch_size,
        min_past=1,
        mode=DatasetMode.VALIDATION,
    )
    student_loss = OutputDistillationLoss("quantile", student.chronos_config.quantiles, chronos_config.quantiles)
    teacher_loss = OutputDistillationLoss("quantile", chronos_config.quantiles, chronos_config.quantiles)
    was_training = student.training
    student.eval()
    sums = {"agreement": 0.0, "student_quantile_loss": 0.0, "teacher_quantile_loss": 0.0}
    count = 0
    try:
        for batch in dataset:
            teacher_q = normalised_quantiles(teacher, batch)
            student_q = normalised_quantiles(student, batch)
            truth = normalise_truth(
                teacher.instance_norm, batch["context"], chronos_config.context_length,
                batch["future_target"], batch["future_covariates"], horizon=student_q.shape[-1],
            )
            s = student_loss(student_q, teacher_q, truth)
            t = teacher_loss(teacher_q, teacher_q, truth)
            n = batch["context"].shape[0]
            sums["agreement"] += float(s["distill"]) * n
            sums["student_quantile_loss"] += float(s["hard"]) * n
            sums["teacher_quantile_loss"] += float(t["hard"]) * n
            count += n
    finally:
        student.train(was_training)
    return {k: v / count for k, v in sums.items()}


# ----------------------------------------------------------------------------------------------------------
# accuracy on benchmarks (M3, or a user's file with the last H steps held out)


def forecast_quantiles(
    model: Chronos2Model | Chronos2Pipeline, benchmark: Benchmark, levels=QUANTILE_LEVELS, batch_size: int = 256
) -> np.ndarray:
    """Forecasts of every benchmark series from its context: (n_series, horizon, len(levels)), raw units.

    Runs ``Chronos2Pipeline.predict_quantiles``, exactly what a user of the checkpoint would run; ``model`` may
    also be a pipeline already (e.g. an ONNX :class:`chronos_distill.deploy.onnx_forecaster.OnnxForecaster`).
    """
    contexts = [torch.tensor(c, dtype=torch.float32) for c in benchmark.contexts]
    if hasattr(model, "with_season"):  # an ensemble with statistical members: the data set's season
        quantiles, _ = model.with_season(benchmark.season_length).predict_quantiles(
            contexts, prediction_length=benchmark.horizon, quantile_levels=list(levels), batch_size=batch_size)
        return torch.cat(quantiles).numpy().astype(np.float64)
    with contextlib.nullcontext(model) if isinstance(model, Chronos2Pipeline) else fp32_eval(model) as fp32:
        pipeline = fp32 if isinstance(fp32, Chronos2Pipeline) else Chronos2Pipeline(fp32)
        quantiles, _ = pipeline.predict_quantiles(
            contexts, prediction_length=benchmark.horizon, quantile_levels=list(levels), batch_size=batch_size
        )
    return torch.cat(quantiles).numpy().astype(np.float64)  # each item is (1 variate, horizon, levels)


def evaluate_models(
    models: dict[str, Chronos2Model | Chronos2Pipeline], benchmarks: dict[str, Benchmark], batch_size: int = 256
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Score each model and seasonal naive on each benchmark.

    Returns ``(results, forecasts)``: ``results["datasets"][dataset][model] = {"WQL", "MASE"}`` (seasonal naive
    under ``"seasonal_naive"``), ``results["relative"][model] = {"WQL", "MASE"}`` geometric means of the
    model/seasonal-naive ratios over the data sets; ``results["crossing"][model]`` how often and how much its
    quantiles cross (:func:`quantile_crossing` at the levels scored, the series of every set pooled; each set's
    under ``results["datasets"][dataset]["crossing"]``): a student can cross where its teacher does not, and a
    ``predict_df`` user then gets a higher level below a lower one; ``forecasts[dataset][model]`` the quantile
    forecasts.
    """
    results: dict[str, Any] = {"quantile_levels": list(QUANTILE_LEVELS), "datasets": {}, "relative": {}, "crossing": {}}
    forecasts: dict[str, dict[str, np.ndarray]] = {}
    for name, benchmark in benchmarks.items():
        predicted = {"seasonal_naive": seasonal_naive_quantiles(benchmark.contexts, benchmark.horizon, benchmark.season_length)}
        for model_name, model in models.items():
            logger.info("forecasting %d %s series with %s", len(benchmark), name, model_name)
            predicted[model_name] = forecast_quantiles(model, benchmark, batch_size=batch_size)
        forecasts[name] = predicted
        results["datasets"][name] = {
            "n_series": len(benchmark),
            "horizon": benchmark.horizon,
            "season_length": benchmark.season_length,
            "scores": {m: score_forecasts(benchmark, q) for m, q in predicted.items()},
            "crossing": {m: quantile_crossing(q) for m, q in predicted.items()},
        }
    for model_name in ["seasonal_naive", *models]:
        results["relative"][model_name] = {
            metric: geometric_mean_relative_score(
                {d: r["scores"][model_name][metric] for d, r in results["datasets"].items()},
                {d: r["scores"]["seasonal_naive"][metric] for d, r in results["datasets"].items()},
            )
            for metric in ("WQL", "MASE")
        }
        sets = results["datasets"].values()
        total = sum(r["n_series"] for r in sets)
        results["crossing"][model_name] = {
            key: sum(r["crossing"][model_name][key] * r["n_series"] for r in sets) / total
            for key in ("rows_crossing", "crossing_mass")
        }
    return results, forecasts


def holdout_benchmark(
    data: Any,
    prediction_length: int,
    season_length: int = 1,
    *,
    target: str = "target",
    id_column: str | None = None,
    timestamp_column: str = "timestamp",
    timestamp_format: str | None = None,
) -> Benchmark:
    """A user's long table as a benchmark: each series' last ``prediction_length`` steps are the truth.

    Missing values inside a context stay missing (NaN), at their time positions, as Chronos-2 expects them;
    only leading ones are cut. Series with no observed step before the held-out part, or with missing values
    in it, are left out with a warning (the metrics need a complete truth). Only the target column is used:
    covariates in the file are ignored.
    """
    series = load_series(data, prediction_length, target=[target], id_column=id_column, past_covariates=[],
                         timestamp_column=timestamp_column, timestamp_format=timestamp_format,
                         role="evaluation data")
    ids, contexts, truth, skipped = [], [], [], []
    for item_id, item in zip(series.ids, series.inputs):
        values = item["context"][0].numpy().astype(np.float64)
        history, future = values[:-prediction_length], values[-prediction_length:]
        observed = np.flatnonzero(~np.isnan(history))
        history = history[observed[0]:] if observed.size else history[:0]
        if len(history) < 1 or np.isnan(future).any():
            skipped.append(item_id)
            continue
        ids.append(item_id)
        contexts.append(history)
        truth.append(future)
    if skipped:
        logger.warning("%s: %d series left out (too short, or missing values in the last %d steps): %s",
                       series.source, len(skipped), prediction_length, ", ".join(skipped[:5]))
    if not ids:
        raise DataError(f"{series.source}: no series has {prediction_length} complete steps to hold out after its history")
    return Benchmark(name=Path(str(series.source)).stem or "data", item_ids=ids, contexts=contexts,
                     truth=np.stack(truth), season_length=season_length, horizon=prediction_length)


def evaluate(config: EvaluateConfig | None = None, **options: Any) -> dict[str, Any]:
    """Score the configured checkpoints (and seasonal naive) and write the report; returns the results."""
    cfg = dataclasses.replace(config, **options) if config is not None else EvaluateConfig(**options)
    check_writable(Path(cfg.output))  # before minutes of forecasting
    named = cfg.named_models()
    if cfg.fev is not None:
        return evaluate_on_fev(cfg, named)
    models = {name: load_forecaster(source, cfg.device) for name, source in named.items()}
    if cfg.ensemble:
        if "ensemble" in models:
            raise ConfigError("a --model is named 'ensemble', the name of the --ensemble forecast: rename it")
        from chronos_distill.evaluation.ensemble_forecaster import EnsembleForecaster

        models["ensemble"] = EnsembleForecaster.from_names(cfg.ensemble, cfg.ensemble_weights or None, cfg.device)
        named["ensemble"] = "+".join(cfg.ensemble)
    if cfg.data is not None:
        target = cfg.target or distilled_target(named)
        benchmark = holdout_benchmark(cfg.data, cfg.prediction_length, cfg.season_length, target=target,
                                      id_column=cfg.id_column, timestamp_column=cfg.timestamp_column,
                                      timestamp_format=cfg.timestamp_format)
        benchmarks = {benchmark.name: benchmark}
    else:
        benchmarks = {f"m3_{subset}": b for subset, b in load_m3_benchmarks().items()}
    results, forecasts = evaluate_models(models, benchmarks, cfg.batch_size)
    results["models"] = {
        name: {"source": named[name], "parameters": forecaster_parameters(model)} for name, model in models.items()
    }
    write_report(results, forecasts, benchmarks, Path(cfg.output),
                 title="; ".join(_described(name, source) for name, source in named.items()))
    return results


def _described(name: str, source: str) -> str:
    """``name = source``, with the teacher and steps of a distilled student (its ``distillation.json``)."""
    record_file = Path(str(source)) / "distillation.json"
    if not record_file.is_file():
        return f"{name} = {source}"
    try:
        record = json.loads(record_file.read_text())
        return (f"{name} = {source} (distilled from {record['teacher']['name']}, "
                f"{record['training']['steps']} steps)")
    except (ValueError, KeyError, TypeError):  # a record of another version: the name alone
        return f"{name} = {source}"


def evaluate_on_fev(cfg: EvaluateConfig, named: dict[str, str]) -> dict[str, Any]:
    """``evaluate --fev``: the tasks are read and checked first (a bad task costs no model loading), then
    :func:`chronos_distill.evaluation.leaderboard.evaluate_fev` runs the named checkpoints on them."""
    from chronos_distill.evaluation.fev_tasks import load_tasks
    from chronos_distill.evaluation.leaderboard import evaluate_fev

    onnx = [name for name, source in named.items() if str(source).lower().endswith(".onnx")]
    if onnx:
        raise ConfigError(f"--fev runs Chronos-2 checkpoints through Chronos2Pipeline.predict_fev; {onnx} "
                          "is an ONNX file: score its Chronos-2 folder instead")
    tasks = load_tasks(cfg.fev, Path(cfg.output) / "fev_data")
    models = {name: load_forecaster(source, cfg.device) for name, source in named.items()}
    corpora = {name: training_corpus(source) for name, source in named.items()}
    return evaluate_fev(models, tasks, Path(cfg.output), batch_size=cfg.batch_size, cross_learning=cfg.cross_learning,
                        published=cfg.fev_published, title=cfg.fev, corpora=corpora)


def distilled_target(named: dict[str, str]) -> str:
    """The target column the distilled students among ``named`` were trained on (their ``distillation.json``),
    or ``"target"`` when none says; students trained on other targets, or on several, need ``--target``."""
    from chronos_distill.chronos2.checkpoints import local_folder
    from chronos_distill.distillation.record import distilled_columns

    targets = {name: distilled_columns(local_folder(source) if not str(source).endswith(".onnx") else None).get("target")
               for name, source in named.items()}
    known = {name: t for name, t in targets.items() if t}
    if any(len(t) > 1 for t in known.values()) or len({tuple(t) for t in known.values()}) > 1:
        raise ConfigError(f"the models were distilled on target columns {known}; evaluate scores one: name it "
                          "with --target")
    if known:
        (target,) = next(iter(known.values()))
        logger.info("scoring target column %r, the one %s was distilled on", target, ", ".join(known))
        return target
    return "target"


def forecaster_parameters(model: Chronos2Model | Chronos2Pipeline) -> int | None:
    """Parameter count of a PyTorch model or pipeline (an ensemble: its Chronos-2 members'); None for an ONNX
    forecaster."""
    if hasattr(model, "members"):
        counts = [forecaster_parameters(member) for _, member in model.members if isinstance(member, Chronos2Pipeline)]
        return sum(c for c in counts if c is not None) or None
    module = model.model if isinstance(model, Chronos2Pipeline) else model
    return count_parameters(module) if isinstance(module, torch.nn.Module) else None
