"""The layout of a chronos-distill ONNX file: input and output names, and the metadata keys it carries.

Written by :mod:`chronos_distill.deploy.onnx_export`, read by :mod:`chronos_distill.deploy.onnx_forecaster` and ``predict``; this module
imports nothing, so each key is spelt once.
"""

#: Marks a file made by ``export-onnx``; its value is the layout version below.
FORMAT_KEY = "chronos_distill.format"
FORMAT = "chronos2-quantiles/1"
#: The exported model's ``Chronos2Model`` config (JSON).
MODEL_CONFIG_KEY = "chronos_distill.model_config"
#: ``none`` or ``int8``.
QUANTIZE_KEY = "chronos_distill.quantize"
#: The exported checkpoint's folder name (never a full local path).
SOURCE_KEY = "chronos_distill.source"
#: The largest context and number of output patches the graph takes (JSON).
LIMITS_KEY = "chronos_distill.limits"
#: The columns a student was distilled with (JSON), so that ``predict`` asks for the same known covariates.
COLUMNS_KEY = "chronos_distill.columns"

INPUT_NAMES = ("context", "group_ids", "future_covariates")
OUTPUT_NAMES = ("quantile_preds",)
