"""``chronos-distill evaluate --fev TASKS``: models on fev tasks, scored by fev, ranked by ``fev.leaderboard``.

For every task (:mod:`chronos_distill.evaluation.fev_tasks`) and every model (the checkpoints given with
``--model``, and seasonal naive, the leaderboard's baseline), the model forecasts fev's windows and fev's
``Task.evaluation_summary`` scores them. The summaries (one row per model and task, the columns fev writes) go to
``fev_summaries.csv`` and ``fev_summaries.parquet``; ``fev.leaderboard`` over them (skill score and win rate
against seasonal naive) goes to ``fev_leaderboard.csv`` and ``fev_leaderboard.md`` and is printed.

``--fev-published NAME,...`` adds fev's published summaries of those models (its ``results/<NAME>.csv`` files,
e.g. ``chronos-2``, ``chronos-bolt``, ``tirex``), restricted to the tasks run here, so the student ranks next to
them. That needs the network; without it, one line says the published results were left out.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronos_distill.errors import ConfigError
from chronos_distill.evaluation.fev_tasks import competition_of, load_tasks, require_fev
from chronos_distill.files import write_atomic, write_text_atomic

logger = logging.getLogger(__name__)

#: fev's published results, one CSV of summaries per model (raw files of the autogluon/fev repository).
PUBLISHED_RESULTS = "https://raw.githubusercontent.com/autogluon/fev/main/benchmarks/fev_bench/results/{name}.csv"
BASELINE = "seasonal_naive"
#: The columns of the printed leaderboard.
LEADERBOARD_COLUMNS = ["skill_score", "win_rate", "median_inference_time_s", "num_failures"]


def run_fev(models: dict[str, Any], tasks: list, batch_size: int = 256, cross_learning: bool = False,
            corpora: dict[str, set[str]] | None = None) -> pd.DataFrame:
    """fev summaries (one row per model and task) of ``models`` (name -> Chronos-2 pipeline) and seasonal naive.
    ``corpora``: the data sets each model trained on (:func:`chronos_distill.chronos2.checkpoints.training_corpus`),
    so that ``trained_on_this_dataset`` is true where it is: the reference teachers pretrained on M1 and M3."""
    require_fev()
    from chronos_distill.evaluation.fev_models import Chronos2FevModel, SeasonalNaiveFevModel, timed_fit_predict

    if BASELINE in models:
        raise ConfigError(f"a model is named {BASELINE!r}, the name of the baseline: name it otherwise with NAME=PATH")
    runners = {BASELINE: SeasonalNaiveFevModel(),
               **{name: Chronos2FevModel(pipeline, batch_size, cross_learning) for name, pipeline in models.items()}}
    rows = []
    for task in tasks:
        for name, runner in runners.items():
            logger.info("fev task %s: %s", task.task_name, name)
            predictions, seconds = timed_fit_predict(runner, task)
            seen = competition_of(task) in (corpora or {}).get(name, set())
            rows.append(task.evaluation_summary(predictions, model_name=name, inference_time_s=seconds,
                                                training_time_s=0.0, trained_on_this_dataset=seen,
                                                extra_info={"cross_learning": cross_learning if name != BASELINE else None}))
    return pd.DataFrame(rows)


def published_summaries(names: list[str], ours: pd.DataFrame) -> pd.DataFrame | None:
    """fev's published summaries of ``names`` on the tasks of ``ours`` (None, with one logged line, when they
    cannot be read: no network)."""
    frames = []
    for name in names:
        url = PUBLISHED_RESULTS.format(name=name)
        try:
            frames.append(pd.read_csv(url))
        except OSError as error:  # urllib's URLError / HTTPError are OSErrors
            logger.warning("published fev results left out: cannot read %s (%s)", url, str(error).splitlines()[0])
            return None
    published = pd.concat(frames, ignore_index=True)
    keys = ["task_name", "horizon"]  # fev-bench names each task once per horizon
    if any(key not in published.columns for key in keys):
        logger.warning("published fev results left out: they have no %s columns", " / ".join(keys))
        return None
    matched = published.merge(ours[keys].drop_duplicates(), on=keys, how="inner")
    if matched.empty:
        logger.warning("published fev results left out: none of %s was run on these tasks", ", ".join(names))
        return None
    return matched


def leaderboard(summaries: pd.DataFrame) -> pd.DataFrame:
    """``fev.leaderboard`` of ``summaries`` against seasonal naive (tasks some model lacks are dropped)."""
    fev = require_fev()
    complete = summaries.groupby("model_name")["task_name"].nunique().eq(summaries["task_name"].nunique()).all()
    return fev.leaderboard(summaries, baseline_model=BASELINE, missing_strategy="error" if complete else "drop")


def evaluate_fev(models: dict[str, Any], tasks: list | str, output: Path, *, batch_size: int = 256,
                 cross_learning: bool = False, published: list[str] | None = None,
                 title: str | None = None, corpora: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """Run ``models`` on ``tasks`` (``fev.Task`` objects, or a spec for :func:`load_tasks`), write the summaries
    and the leaderboard into ``output``, and return ``{"summaries": DataFrame, "leaderboard": DataFrame,
    "published": [names added]}``. ``corpora``: see :func:`run_fev`."""
    if isinstance(tasks, str):
        title, tasks = title or tasks, load_tasks(tasks, output / "fev_data")
    summaries = run_fev(models, tasks, batch_size=batch_size, cross_learning=cross_learning, corpora=corpora)
    write_atomic(output / "fev_summaries.csv", lambda tmp: summaries.to_csv(tmp, index=False))
    write_atomic(output / "fev_summaries.parquet", lambda tmp: _parquet_safe(summaries).to_parquet(tmp, index=False))
    ranked_on, added = summaries, []
    if published:
        extra = published_summaries(published, summaries)
        if extra is not None:
            ranked_on = pd.concat([summaries, extra], ignore_index=True)
            added = sorted(set(extra["model_name"]))
    board = leaderboard(ranked_on)
    write_atomic(output / "fev_leaderboard.csv", lambda tmp: board.to_csv(tmp))
    write_text_atomic(output / "fev_leaderboard.md", leaderboard_markdown(board, summaries, title or "fev tasks",
                                                                              cross_learning))
    return {"summaries": summaries, "leaderboard": board, "published": added}


def leaderboard_markdown(board: pd.DataFrame, summaries: pd.DataFrame, spec: str, cross_learning: bool) -> str:
    """The leaderboard as a markdown table, and each model's score per task."""
    metric = summaries["eval_metric"].astype(str).iloc[0]
    lines = [f"# fev leaderboard: {spec}", "",
             f"{summaries['task_name'].nunique()} task(s); skill score = 1 - geometric mean of the error relative to "
             f"seasonal naive, win rate over the other models (fev.leaderboard); cross-learning "
             f"{'on' if cross_learning else 'off'}.", "",
             "| model | " + " | ".join(LEADERBOARD_COLUMNS) + " |", "|---" * (len(LEADERBOARD_COLUMNS) + 1) + "|"]
    for name, row in board.iterrows():
        lines.append(f"| {name} | " + " | ".join(
            str(int(row[c])) if c == "num_failures" else _cell(row.get(c)) for c in LEADERBOARD_COLUMNS) + " |")
    pivot = summaries.pivot_table(index="task_name", columns="model_name", values="test_error", aggfunc="first")
    lines += ["", f"test_error ({metric}) per task:", "", "| task | " + " | ".join(pivot.columns) + " |",
              "|---" * (len(pivot.columns) + 1) + "|"]
    for task, row in pivot.iterrows():
        lines.append(f"| {task} | " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (float, np.floating)) else str(value)


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns holding lists or dicts (quantile levels, metric options) as their text, which Parquet stores as is."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, (list, dict))).any():
            frame[column] = frame[column].map(str)
    return frame
