"""Forecasting with an exported ONNX file, behind the calls of ``Chronos2Pipeline``.

:class:`OnnxForecaster` *is* a ``Chronos2Pipeline`` whose model runs in onnxruntime: ``predict_quantiles``,
``predict`` and ``predict_df`` are chronos-forecasting's own, so the grouping of targets and covariates, the
context slicing, the covariate padding and the long-horizon unrolling are upstream's code, not a copy. Only
the model call goes to the ONNX session (:class:`OnnxChronos2Model`).

torch is still imported: chronos-forecasting prepares its inputs with torch tensors, and reusing that
preparation (rather than a numpy copy of it that would drift from upstream) is worth the dependency; the
model's arithmetic runs in onnxruntime. ``fit`` and ``embed`` need the PyTorch model and are refused.

    forecaster = OnnxForecaster.from_file("student.onnx")
    quantiles, mean = forecaster.predict_quantiles([series], prediction_length=18)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from chronos.chronos2 import Chronos2Pipeline
from chronos.chronos2.config import Chronos2ForecastingConfig

from chronos_distill.deploy.onnx_format import (
    COLUMNS_KEY,
    FORMAT,
    FORMAT_KEY,
    INPUT_NAMES,
    LIMITS_KEY,
    MODEL_CONFIG_KEY,
)
from chronos_distill.errors import CheckpointError, DataError


class OnnxChronos2Model:
    """What ``Chronos2Pipeline`` needs of a ``Chronos2Model`` (``chronos_config``, ``device``, the forward call)
    with the forward running in an onnxruntime session.

    The pipeline hands over contexts of any length up to the model's ``context_length``; they are padded on
    the left with NaN to whole 16-step patches (as the model's ``Patch`` layer pads). ``chronos_config.context_length``
    is the longest context the file takes, so the pipeline cuts longer ones; a direct call with a longer context
    is refused.
    """

    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, session, chronos_config: Chronos2ForecastingConfig, limits: dict[str, int], path: Path,
                 metadata: dict[str, str]):
        self.session = session
        self.chronos_config = chronos_config
        self.limits = limits
        self.path = path
        self.metadata = metadata  # the file's chronos-distill description (see onnx_export)

    @property
    def max_context_length(self) -> int:
        return self.limits["max_context_patches"] * self.limits["patch_size"]

    def __call__(self, context: torch.Tensor, group_ids: torch.Tensor | None = None,
                 future_covariates: torch.Tensor | None = None, num_output_patches: int = 1, **unsupported: Any):
        """context (b, t), group_ids (b,), future_covariates (b, 16·n) or None -> ``.quantile_preds`` (b, q, 16·n)."""
        if any(value is not None and value is not False for value in unsupported.values()):
            raise DataError(f"the ONNX model {self.path.name} only forecasts; it does not take "
                            f"{sorted(k for k, v in unsupported.items() if v is not None and v is not False)}")
        patch = self.limits["patch_size"]
        if not 1 <= num_output_patches <= self.limits["max_output_patches"]:
            raise DataError(f"the ONNX model {self.path.name} forecasts 1 to {self.limits['max_output_patches']} "
                            f"output patches of {patch} steps per call, asked for {num_output_patches}")
        context = np.asarray(context.detach().cpu(), dtype=np.float32)
        rows, length = context.shape
        if length > self.max_context_length:
            raise DataError(f"context of {length} steps is longer than the {self.max_context_length} the ONNX model "
                            f"{self.path.name} was exported for")
        padded = math.ceil(length / patch) * patch
        if padded > length:
            context = np.concatenate([np.full((rows, padded - length), np.nan, np.float32), context], axis=1)
        horizon = num_output_patches * patch
        if future_covariates is None:
            covariates = np.full((rows, horizon), np.nan, np.float32)
        else:
            covariates = np.asarray(future_covariates.detach().cpu(), dtype=np.float32)
            if covariates.shape != (rows, horizon):
                raise DataError(f"future covariates of shape {covariates.shape} do not match {rows} rows x "
                                f"{num_output_patches} output patches of {patch} steps")
        groups = np.arange(rows) if group_ids is None else np.asarray(group_ids.detach().cpu(), dtype=np.int64)
        (quantiles,) = self.session.run(None, dict(zip(INPUT_NAMES, (context, groups, covariates))))
        return SimpleNamespace(quantile_preds=torch.from_numpy(quantiles))


class OnnxForecaster(Chronos2Pipeline):
    """A ``Chronos2Pipeline`` running an ONNX file written by ``chronos-distill export-onnx`` (see module doc)."""

    def __init__(self, model: OnnxChronos2Model):
        super().__init__(model)  # type: ignore[arg-type]  # duck-typed: the pipeline's predict path only

    @classmethod
    def from_file(cls, path: str | Path, *, threads: int | None = None,
                  providers: list[str] | None = None) -> "OnnxForecaster":
        """Open ``path`` in onnxruntime (``threads``: intra-op threads, default onnxruntime's)."""
        return cls(load_onnx_model(path, threads=threads, providers=providers))

    @classmethod
    def from_pretrained(cls, path, *args, **kwargs) -> "OnnxForecaster":  # type: ignore[override]
        return cls.from_file(path, **kwargs)

    def fit(self, *args, **kwargs):  # type: ignore[override]
        raise NeedsTheTorchModel("fit")

    def embed(self, *args, **kwargs):  # type: ignore[override]
        raise NeedsTheTorchModel("embed")

    def save_pretrained(self, *args, **kwargs):  # type: ignore[override]
        raise NeedsTheTorchModel("save_pretrained")


class NeedsTheTorchModel(CheckpointError):
    def __init__(self, what: str):
        super().__init__(f"{what} needs the PyTorch model: load the Chronos-2 folder with Chronos2Pipeline; an ONNX "
                         "file only forecasts")


def load_onnx_model(path: str | Path, *, threads: int | None = None,
                    providers: list[str] | None = None) -> OnnxChronos2Model:
    """An onnxruntime session of ``path`` with the model description stored in the file's metadata (read through
    the session: the file is loaded once); a clear error for anything that is not an ``export-onnx`` file."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX file {path} does not exist")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    elif os.environ.get("OMP_NUM_THREADS", "").isdigit():
        options.intra_op_num_threads = int(os.environ["OMP_NUM_THREADS"])
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    try:
        session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    except (ort_errors.Fail, ort_errors.InvalidProtobuf, ort_errors.InvalidGraph, ort_errors.NoSuchFile,
            ort_errors.InvalidArgument, OSError) as exc:  # onnxruntime's load errors
        raise CheckpointError(f"{path} is not an ONNX file onnxruntime can load ({type(exc).__name__})") from exc
    metadata = session.get_modelmeta().custom_metadata_map
    if metadata.get(FORMAT_KEY) != FORMAT:
        found = metadata.get(FORMAT_KEY)
        raise CheckpointError(
            f"{path} is an ONNX file but not a Chronos-2 forecaster written by `chronos-distill export-onnx` "
            + (f"(its format is {found!r}, this version reads {FORMAT!r})" if found else "(no chronos-distill metadata)")
        )
    config = json.loads(metadata[MODEL_CONFIG_KEY])
    limits = json.loads(metadata[LIMITS_KEY])
    fields = {f.name for f in dataclasses.fields(Chronos2ForecastingConfig)}
    chronos_config = Chronos2ForecastingConfig(**{k: v for k, v in config["chronos_config"].items() if k in fields})
    # the pipeline cuts contexts to context_length; the graph takes whole patches up to this many steps
    chronos_config.context_length = limits["max_context_patches"] * limits["patch_size"]
    return OnnxChronos2Model(session, chronos_config, limits, path, metadata)


def load_forecaster(model: str | Path, device: str | None = None):
    """A ``Chronos2Pipeline`` for a Chronos-2 folder (run folder, hub id, ``reference``) on ``device`` (by default the
    GPU when one is visible, :func:`~chronos_distill.chronos2.loading.inference_device`), or an
    :class:`~chronos_distill.deploy.onnx_forecaster.OnnxForecaster` for a ``.onnx`` file from ``export-onnx``."""
    if str(model).lower().endswith(".onnx"):
        return OnnxForecaster.from_file(model)
    from chronos.chronos2 import Chronos2Pipeline

    from chronos_distill.chronos2.loading import inference_device, load_chronos2

    return Chronos2Pipeline(load_chronos2(model, inference_device(device), role="model"))


def distilled_known_covariates(model: str | Path, forecaster) -> list[str]:
    """The known covariates a student was distilled with: its ``distillation.json``, or the ONNX file's metadata."""
    from chronos_distill.chronos2.checkpoints import local_folder
    from chronos_distill.distillation.record import distilled_columns

    if isinstance(forecaster, OnnxForecaster):
        columns = json.loads(forecaster.model.metadata.get(COLUMNS_KEY, "null")) or {}
    else:
        columns = distilled_columns(local_folder(model))
    return list(columns.get("known_covariates") or [])
