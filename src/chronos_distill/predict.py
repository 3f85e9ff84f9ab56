"""``chronos-distill predict``: forecasts of a long-format file, written to a file.

The forecaster is a Chronos-2 folder (through ``Chronos2Pipeline``) or an ONNX file from ``export-onnx``
(through :class:`chronos_distill.onnx.OnnxForecaster`); both run upstream's ``predict_df``, so the output has
its columns: id, timestamp, ``target_name``, ``predictions`` (the mean) and one column per quantile level.

The inputs are checked first, by name: the files, the id / timestamp / target columns, and the known
covariates. A covariate is known when its future values are in ``--future-data``; a model distilled with
known covariates (its ``distillation.json``, or the ONNX file's metadata) asks for the same ones.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from .config import PredictConfig
from .data import read_table, resolve_id_column
from .errors import DataError

logger = logging.getLogger(__name__)


def load_forecaster(model: str | Path):
    """A ``Chronos2Pipeline`` for a Chronos-2 folder (run folder, hub id, ``reference``), or an
    :class:`~chronos_distill.onnx.OnnxForecaster` for a ``.onnx`` file from ``export-onnx``."""
    if str(model).lower().endswith(".onnx"):
        from .onnx import OnnxForecaster

        return OnnxForecaster.from_file(model)
    from chronos.chronos2 import Chronos2Pipeline

    from .teacher import load_chronos2

    return Chronos2Pipeline(load_chronos2(model, role="model"))


def distilled_known_covariates(model: str | Path, forecaster) -> list[str]:
    """The known covariates a student was distilled with: its ``distillation.json``, or the ONNX file's metadata."""
    from .onnx import OnnxForecaster
    from .run_record import distilled_columns
    from .teacher import local_folder

    if isinstance(forecaster, OnnxForecaster):
        columns = json.loads(forecaster.model.metadata.get("chronos_distill.columns", "null")) or {}
    else:
        columns = distilled_columns(local_folder(model))
    return list(columns.get("known_covariates") or [])


def predict(config: PredictConfig | None = None, **options: Any) -> Path:
    """Forecast every series of ``config.data`` and write the forecasts to ``config.output`` (atomically)."""
    cfg = config if config is not None else PredictConfig(**options)
    df = read_table(cfg.data, role="data")
    id_column = resolve_id_column(df, cfg.id_column)
    _require(df, cfg.data, {"--id-column": [id_column], "--timestamp-column": [cfg.timestamp_column],
                            "--target": cfg.target})
    df = df.drop(columns=[c for c in cfg.ignore_columns if c in df.columns])
    future_df = None
    known = list(cfg.known_covariates)
    if cfg.future_data is not None:
        future_df = read_table(cfg.future_data, role="future_data")
        _require(future_df, cfg.future_data, {"--id-column": [id_column], "--timestamp-column": [cfg.timestamp_column]})
        known = known or [c for c in future_df.columns if c not in (id_column, cfg.timestamp_column, *cfg.target)]
        for column in known:
            if column not in future_df.columns:
                raise DataError(f"future_data file {cfg.future_data}: known covariate {column!r} (--known-covariates) "
                                f"is missing; columns present: {list(future_df.columns)}")
            if column not in df.columns:
                raise DataError(f"data file {cfg.data}: known covariate {column!r} has future values in "
                                f"{cfg.future_data} but no history; columns present: {list(df.columns)}")
            gaps = future_df[column].isna()
            if gaps.any():
                row = future_df[gaps].iloc[0]
                raise DataError(f"future_data file {cfg.future_data}: known covariate {column!r} is missing in series "
                                f"{row[id_column]!r} at {row[cfg.timestamp_column]}")
        future_df = future_df[[id_column, cfg.timestamp_column, *known]]
    forecaster = load_forecaster(cfg.model)
    missing = [c for c in distilled_known_covariates(cfg.model, forecaster) if c not in known]
    if missing:
        raise DataError(f"model {Path(str(cfg.model)).name} was distilled with known covariate(s) {missing}; give their "
                        "future values with --future-data" + (f" (their history is in {cfg.data})"
                                                              if set(missing) <= set(df.columns) else ""))
    try:
        forecasts = forecaster.predict_df(
            df, future_df=future_df, id_column=id_column, timestamp_column=cfg.timestamp_column,
            target=cfg.target, prediction_length=cfg.prediction_length, quantile_levels=cfg.quantile_levels,
            batch_size=cfg.batch_size)
    except (ValueError, TypeError, KeyError) as exc:  # upstream's validation of the frames
        raise DataError(f"{cfg.data}: {exc}") from None
    output = Path(cfg.output)
    write_table_atomic(forecasts, output)
    logger.info("forecasts of %d series (%d steps) written to %s", forecasts[id_column].nunique(),
                cfg.prediction_length, output)
    return output


def _require(df: pd.DataFrame, source: str, columns: dict[str, list[str]]) -> None:
    for option, names in columns.items():
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise DataError(f"{source}: missing column(s) {missing} ({option}); columns present: {list(df.columns)}")


def write_table_atomic(table: pd.DataFrame, path: Path) -> None:
    """CSV or Parquet by extension, through a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix.lower() == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
