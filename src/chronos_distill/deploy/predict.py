"""``chronos-distill predict``: forecasts of a long-format file, written to a file.

The forecaster is a Chronos-2 folder (through ``Chronos2Pipeline``) or an ONNX file from ``export-onnx``
(through :class:`chronos_distill.deploy.onnx_forecaster.OnnxForecaster`); both run upstream's ``predict_df``, so the output has
its columns: id, timestamp, ``target_name``, ``predictions`` (the median, upstream's point forecast) and one
column per quantile level.

The inputs are checked first, by name: the files, the id / timestamp / target columns, and the known
covariates. A covariate is known when its future values are in ``--future-data``; a model distilled with
known covariates (its ``distillation.json``, or the ONNX file's metadata) asks for the same ones.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from chronos_distill.config import PredictConfig
from chronos_distill.data.sources import read_table
from chronos_distill.data.tables import (
    TableLayout,
    check_columns,
    check_table,
    parse_timestamps,
    resolve_id_column,
    write_table_atomic,
)
from chronos_distill.deploy.onnx_forecaster import distilled_known_covariates, load_forecaster
from chronos_distill.errors import DataError
from chronos_distill.training.run_folder import check_writable

logger = logging.getLogger(__name__)


def predict(config: PredictConfig | None = None, **options: Any) -> Path:
    """Forecast every series of ``config.data`` and write the forecasts to ``config.output`` (atomically).

    Pass a :class:`PredictConfig`, or its fields as keyword arguments (or both: keywords override). The history
    is read and checked as ``distill`` reads its training data (one loader, one message for one fault); a
    series whose targets are all missing is left out with a warning that names it.
    """
    cfg = dataclasses.replace(config, **options) if config is not None else PredictConfig(**options)
    output = Path(cfg.output).expanduser()
    check_writable(output, is_file=True)  # before any work: a bad output costs nothing
    history = read_table(cfg.data, role="data", timestamp_column=cfg.timestamp_column)
    id_column = resolve_id_column(history, cfg.id_column)
    future = read_table(cfg.future_data, role="future_data", timestamp_column=cfg.timestamp_column) if cfg.future_data is not None else None
    known = list(cfg.known_covariates)
    if future is not None and not known:
        known = [c for c in future.columns if c not in (id_column, cfg.timestamp_column, *cfg.target)]
    checked = check_table(history, str(cfg.data), TableLayout.from_options(cfg, known_covariates=known), announce=False)
    future_df = _future_values(cfg, future, checked.df, id_column, known) if future is not None else None
    forecaster = load_forecaster(cfg.model, cfg.device)
    missing = [c for c in distilled_known_covariates(cfg.model, forecaster) if c not in known]
    if missing:
        raise DataError(f"model {Path(str(cfg.model)).name} was distilled with known covariate(s) {missing}; give their "
                        "future values with --future-data" + (f" (their history is in {cfg.data})"
                                                              if set(missing) <= set(history.columns) else ""))
    try:
        forecasts = forecaster.predict_df(
            checked.df, future_df=future_df, id_column=id_column, timestamp_column=cfg.timestamp_column,
            target=cfg.target, prediction_length=cfg.prediction_length, quantile_levels=cfg.quantile_levels,
            batch_size=cfg.batch_size)
    except (ValueError, TypeError, KeyError) as exc:  # upstream's validation of the frames
        files = f"{cfg.data}" + (f" with future values from {cfg.future_data}" if cfg.future_data else "")
        raise DataError(f"{files}: {exc}") from exc
    write_table_atomic(forecasts, output)
    logger.info("forecasts of %d series (%d steps) written to %s", forecasts[id_column].nunique(),
                cfg.prediction_length, output)
    return output


def _future_values(cfg: PredictConfig, future: pd.DataFrame, history: pd.DataFrame, id_column: str,
                   known: list[str]) -> pd.DataFrame:
    """The known covariates' future values, checked against the history: the columns, the timestamps (parsed
    as the history's), no gaps, and ``prediction_length`` rows for every series. Messages name ``--future-data``'s
    file, not the history's."""
    source = str(cfg.future_data)
    for column in known:
        if column not in future.columns:
            raise DataError(f"future_data file {source}: known covariate {column!r} (--known-covariates) is missing; "
                            f"columns present: {list(future.columns)}")
    check_columns(list(future.columns), source, TableLayout(target=[], known_covariates=known, past_covariates=[],
                                                           id_column=id_column, timestamp_column=cfg.timestamp_column))
    future = future[[id_column, cfg.timestamp_column, *known]].copy()
    future[cfg.timestamp_column], _ = parse_timestamps(future[cfg.timestamp_column], cfg.timestamp_format, source,
                                                       cfg.timestamp_column)
    for column in known:
        gaps = future[column].isna()
        if gaps.any():
            row = future[gaps].iloc[0]
            raise DataError(f"future_data file {source}: known covariate {column!r} is missing in series "
                            f"{row[id_column]!r} at {row[cfg.timestamp_column]}")
    rows = future.groupby(id_column, sort=False).size()
    for item_id in pd.unique(history[id_column]):
        n = int(rows.get(item_id, 0))
        if n != cfg.prediction_length:
            raise DataError(f"future_data file {source}: series {item_id!r} has {n} row(s) of future values; "
                            f"--prediction-length {cfg.prediction_length} needs exactly {cfg.prediction_length} per "
                            f"series of {cfg.data}, the steps after its last timestamp")
    return future
