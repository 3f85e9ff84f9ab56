"""ONNX export of any Chronos-2 checkpoint (teacher or student), optionally with int8 weights.

The graph is ``Chronos2Model.forward``'s inference path, traced by ``torch.onnx.export(dynamo=True)``:

- inputs: ``context`` (batch, 16·k) float32, NaN where missing; ``group_ids`` (batch,) int64;
  ``future_covariates`` (batch, 16·n) float32, NaN where unknown (the rows to forecast are all NaN);
- output: ``quantile_preds`` (batch, num_quantiles, 16·n) float32, in the data's scale;
- dynamic: the batch rows, the context patches k (1 .. context_length // 16) and the output patches n
  (1 .. max_output_patches), so the number of output patches is the future covariates' length / 16.

The context is a whole number of 16-step patches; :class:`chronos_distill.deploy.onnx_forecaster.OnnxForecaster` pads it on
the left with NaN, which is exactly what the model's own ``Patch`` layer does. Contexts longer than the
model's ``context_length`` are cut by the forecaster before the graph, as ``Chronos2Pipeline`` does.

Two spots of the model cannot be exported as they are; :func:`onnx_exportable` changes them for the duration
of the export only, on the exported instance (the model code and the checkpoint stay untouched):

1. ``Chronos2Encoder._construct_and_invert_group_time_mask`` multiplies a bool group mask with the
   time mask in an ``einsum``. ONNX ``Einsum`` (and the ``Sub`` after it) has no bool type, so onnxruntime
   refuses the graph. During export, ``einsum`` operands that are bool are cast to the float dtype of the
   others: the product of 0/1 masks is the same number.
2. ``Chronos2Model._prepare_patched_future`` raises when the covariates still hold NaN after masking. In the
   inference path no mask is passed, so the mask is ``~isnan(covariates)`` and the masked covariates cannot
   hold NaN: the check is always false, but its ``if tensor.any()`` is data-dependent control flow that
   ``torch.export`` cannot trace. During export, that method's tensor-to-bool conversion answers False.

int8 (``quantize="int8"``) is onnxruntime's dynamic quantization of the ``MatMul`` weights (QInt8 weights,
activations quantized per call). The file carries its own description in the ONNX metadata
(:data:`FORMAT_KEY` and the model's config), which is how the forecaster recognises it and refuses files
made by something else. The file is written to a temporary name and moved into place at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import types
from pathlib import Path
from typing import Iterator

import torch
from chronos.chronos2 import Chronos2Model
from torch.overrides import TorchFunctionMode

from chronos_distill.chronos2.forward import fp32_eval
from chronos_distill.deploy.onnx_format import (
    COLUMNS_KEY,
    FORMAT,
    FORMAT_KEY,
    INPUT_NAMES,
    LIMITS_KEY,
    MODEL_CONFIG_KEY,
    OUTPUT_NAMES,
    QUANTIZE_KEY,
    SOURCE_KEY,
)
from chronos_distill.errors import ConfigError, DistillError
from chronos_distill.files import write_atomic
from chronos_distill.training.run_folder import check_writable

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 18
#: chronos-forecasting's major version whose internals the export-time changes below were written and tested
#: against (``Chronos2Encoder._construct_and_invert_group_time_mask``, ``Chronos2Model._prepare_patched_future``).
#: the chronos-forecasting release line (major, minor) whose private names the export-time changes were tested on,
#: as pyproject.toml's cap
TESTED_CHRONOS = (2, 3)


class _FloatMaskEinsum(TorchFunctionMode):
    """``torch.einsum`` with bool operands computed in float (ONNX Einsum has no bool type). Active only inside
    ``_construct_and_invert_group_time_mask``, whose one einsum multiplies the bool group mask with the time
    mask: no other einsum of the model is touched."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.einsum and len(args) >= 2:
            equation, *operands = args
            if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
                operands = list(operands[0])
            if any(op.dtype == torch.bool for op in operands):
                dtype = next((op.dtype for op in operands if op.is_floating_point()), torch.float32)
                return func(equation, *[op.to(dtype) for op in operands], **kwargs)
        return func(*args, **kwargs)


class _NoNaNAfterMasking(TorchFunctionMode):
    """Answers False to the truth value of ``torch.isnan(x).any()``: the NaN check of ``_prepare_patched_future``
    (see module doc). Every other tensor truth test is the tensor's own."""

    def __init__(self) -> None:
        super().__init__()
        self._isnan: list[torch.Tensor] = []  # results of torch.isnan inside the block
        self._nan_checks: list[torch.Tensor] = []  # ... and of .any() on them

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.__bool__ and any(args[0] is t for t in self._nan_checks):
            return False
        result = func(*args, **(kwargs or {}))
        if func is torch.isnan:
            self._isnan.append(result)
        elif func in (torch.any, torch.Tensor.any) and args and any(args[0] is t for t in self._isnan):
            self._nan_checks.append(result)
        return result


@contextlib.contextmanager
def onnx_exportable(model: Chronos2Model) -> Iterator[Chronos2Model]:
    """Make ``model`` exportable to ONNX for the duration of the block (see module doc, points 1 and 2).

    Only this instance changes, only the two methods named there, and only until the block ends.
    """
    check_chronos_version()
    prepare_patched_future = model._prepare_patched_future  # bound methods of the class's code
    group_time_mask = model.encoder._construct_and_invert_group_time_mask

    def exportable_prepare_patched_future(self, *args, **kwargs):
        with _NoNaNAfterMasking():
            return prepare_patched_future(*args, **kwargs)

    def exportable_group_time_mask(*args, **kwargs):
        with _FloatMaskEinsum():
            return group_time_mask(*args, **kwargs)

    model._prepare_patched_future = types.MethodType(exportable_prepare_patched_future, model)
    model.encoder._construct_and_invert_group_time_mask = exportable_group_time_mask
    try:
        yield model
    finally:  # the class's methods again
        del model._prepare_patched_future
        del model.encoder._construct_and_invert_group_time_mask


def check_chronos_version() -> None:
    """Refuse a chronos-forecasting whose release line (major.minor) the export-time changes were not tested with."""
    from importlib.metadata import version

    installed = version("chronos-forecasting")
    major, minor = TESTED_CHRONOS
    if tuple(int(part) for part in installed.split(".")[:2]) != TESTED_CHRONOS:
        raise DistillError(
            f"export-onnx changes two internals of chronos-forecasting {major}.{minor} at export time "
            f"(see chronos_distill.deploy.onnx_export); chronos-forecasting {installed} is installed, which they were not "
            f"tested with; install 'chronos-forecasting>={major}.{minor},<{major}.{minor + 1}'"
        )


class QuantileForward(torch.nn.Module):
    """``Chronos2Model.forward``'s inference path with the exported inputs: the number of output patches is
    the future covariates' length / output_patch_size."""

    def __init__(self, model: Chronos2Model):
        super().__init__()
        self.model = model
        self.patch = model.chronos_config.output_patch_size

    def forward(self, context: torch.Tensor, group_ids: torch.Tensor, future_covariates: torch.Tensor) -> torch.Tensor:
        """context (b, 16·k), group_ids (b,), future_covariates (b, 16·n) -> quantile_preds (b, q, 16·n)."""
        return self.model(context=context, group_ids=group_ids, future_covariates=future_covariates,
                          num_output_patches=future_covariates.shape[-1] // self.patch).quantile_preds


def export_limits(model: Chronos2Model) -> dict[str, int]:
    """The largest context and number of output patches the exported graph takes."""
    chronos_config = model.chronos_config
    if chronos_config.input_patch_size != chronos_config.output_patch_size:
        raise DistillError(f"ONNX export needs equal input and output patch sizes, got "
                           f"{chronos_config.input_patch_size} and {chronos_config.output_patch_size}")
    patch = chronos_config.input_patch_size
    return {"patch_size": patch, "max_context_patches": max(1, chronos_config.context_length // patch),
            "max_output_patches": chronos_config.max_output_patches}


def _dynamic_shapes(limits: dict[str, int]) -> tuple[tuple, dict]:
    """Example inputs and the dynamic dimensions (a dimension with a single possible size stays static)."""
    patch = limits["patch_size"]

    def dim(name: str, high: int):
        example = min(2, high)
        return example, (torch.export.Dim(name, min=1, max=high) if high > 1 else None)

    context_patches, context_dim = dim("context_patches", limits["max_context_patches"])
    output_patches, output_dim = dim("output_patches", limits["max_output_patches"])
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    rows = 3
    context = torch.randn(rows, context_patches * patch)
    context[0, :3] = torch.nan
    future_covariates = torch.full((rows, output_patches * patch), torch.nan)
    future_covariates[1] = torch.randn(output_patches * patch)  # a known covariate in the group of row 0
    group_ids = torch.tensor([0, 0, 1])
    shapes = {
        "context": {0: batch, **({1: context_dim * patch} if context_dim is not None else {})},
        "group_ids": {0: batch},
        "future_covariates": {0: batch, **({1: output_dim * patch} if output_dim is not None else {})},
    }
    return (context, group_ids, future_covariates), shapes


def export_onnx(model: str | Path | Chronos2Model, output: str | Path, *, quantize: str = "none",
                opset: int = DEFAULT_OPSET) -> Path:
    """Export a Chronos-2 checkpoint (folder, run folder, hub id, ``reference`` or a loaded model) to ``output``.

    Returns the path of the written ``.onnx`` file. The weights are exported in fp32; ``quantize="int8"``
    then quantizes the matmul weights (see module doc).
    """
    from chronos_distill.chronos2.loading import load_chronos2
    from chronos_distill.config import OnnxExportConfig

    # the same checks as the command line's (one place): quantize, opset, a .onnx output
    OnnxExportConfig(model=str(model) if isinstance(model, (str, Path)) else "<in-memory model>", output=str(output),
                     quantize=quantize, opset=opset)
    check_chronos_version()
    output = Path(output)
    if output.is_dir():
        raise ConfigError(f"option `output` (--output): {output} is a folder; name a .onnx file")
    check_writable(output, is_file=True)  # before the export, which takes a while
    source = model if isinstance(model, (str, Path)) else None
    loaded = load_chronos2(model, role="model") if source is not None else model
    # a model passed in comes back as it was: dtype and train/eval mode are restored after the export
    with fp32_eval(loaded) as model:
        _write_onnx(model, output, quantize=quantize, opset=opset, source=source)
    logger.info("exported %s to %s (%s, opset %d)", source or "the model", output,
                "int8 weights" if quantize == "int8" else "fp32", opset)
    return output


def _write_onnx(model: Chronos2Model, output: Path, *, quantize: str, opset: int, source: str | Path | None) -> None:
    """Trace ``model`` (fp32, eval) into ``output``, quantize it if asked, and add the metadata; atomically."""
    import onnx

    from chronos_distill.chronos2.checkpoints import local_folder
    from chronos_distill.distillation.record import distilled_columns

    output.parent.mkdir(parents=True, exist_ok=True)
    limits = export_limits(model)
    inputs, dynamic_shapes = _dynamic_shapes(limits)

    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".onnx-export-") as scratch:
        fp32 = Path(scratch) / "fp32.onnx"
        with onnx_exportable(model), torch.no_grad(), _quiet_exporter():
            torch.onnx.export(QuantileForward(model), inputs, str(fp32), dynamo=True, opset_version=opset,
                              input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                              dynamic_shapes=dynamic_shapes, external_data=False, verbose=False)
        written = fp32
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            written = Path(scratch) / "int8.onnx"
            quantize_dynamic(str(fp32), str(written), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        graph = onnx.load(str(written))
        metadata = {
            FORMAT_KEY: FORMAT,
            MODEL_CONFIG_KEY: model.config.to_json_string(use_diff=False),
            QUANTIZE_KEY: quantize,
            SOURCE_KEY: Path(str(source)).name if source is not None else "<in-memory model>",
            LIMITS_KEY: json.dumps(limits),
            # the columns a student was distilled with, so that predict asks for the same known covariates
            COLUMNS_KEY: json.dumps(distilled_columns(local_folder(source)) if source else {}),
        }
        del graph.metadata_props[:]
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        write_atomic(output, lambda tmp: onnx.save(graph, str(tmp)))


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The torch exporter prints its progress and warns about optional packages (torchvision); keep the
    user's terminal for our own lines."""
    import io
    import warnings

    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
