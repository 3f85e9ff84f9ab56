"""Every command's options, validated once when built, with the same names in Python, YAML and CLI flags (the
CLI is generated from the fields, so they cannot drift apart). Building and checking a configuration imports no
torch.

- ``options``: the machinery (one field per option with its help, kind and bounds; one validator; YAML) and the
  option syntax that needs no model;
- ``training``: the ``TrainingArguments`` options shared by distill and pretrain, defined once;
- ``distill``: :class:`DistillConfig` and the loss-term weight rule; ``pretrain``: :class:`PretrainConfig`;
- ``commands``: :class:`EvaluateConfig`, :class:`OnnxExportConfig`, :class:`PredictConfig`.

May import: ``errors``.
"""

from chronos_distill.config.commands import ONNX_QUANTIZATIONS, EvaluateConfig, OnnxExportConfig, PredictConfig
from chronos_distill.config.distill import (
    DEFAULT_GENERAL_BANK_SIZE,
    DEFAULT_GENERAL_CONTEXT,
    DISTILL_FIXED_ON_RESUME,
    GENERAL_CONTEXTS,
    LOSS_OPTIONS,
    STATISTICAL_MODELS,
    STATISTICAL_PREFIX,
    TERM_WEIGHT_OPTIONS,
    TRANSFER_SOURCES,
    DistillConfig,
    TransferShares,
    check_term_weights,
    term_weight,
)
from chronos_distill.config.options import (
    ATTENTION_KIND_OPTIONS,
    ATTENTION_KINDS,
    ATTENTION_LOSSES,
    FEATURE_LOSSES,
    FEATURE_PROJECTIONS,
    HORIZON_WEIGHTINGS,
    LAYER_MAP_NAMES,
    OUTPUT_LOSSES,
    OWN_OPTIONS,
    STUDENT_INITS,
    YamlOptions,
    check_layer_map_syntax,
    check_options,
    check_trainer_args,
    read_yaml_options,
    training_arguments_fields,
)
from chronos_distill.config.pretrain import PretrainConfig
from chronos_distill.config.training import TrainingOptions

__all__ = [
    "ATTENTION_KINDS", "DEFAULT_GENERAL_BANK_SIZE", "DEFAULT_GENERAL_CONTEXT", "GENERAL_CONTEXTS", "ATTENTION_KIND_OPTIONS", "ATTENTION_LOSSES", "DISTILL_FIXED_ON_RESUME", "FEATURE_LOSSES",
    "FEATURE_PROJECTIONS", "HORIZON_WEIGHTINGS", "LAYER_MAP_NAMES", "LOSS_OPTIONS", "ONNX_QUANTIZATIONS",
    "OUTPUT_LOSSES", "OWN_OPTIONS", "STATISTICAL_MODELS", "STATISTICAL_PREFIX", "STUDENT_INITS", "TERM_WEIGHT_OPTIONS", "TRANSFER_SOURCES", "DistillConfig",
    "EvaluateConfig", "OnnxExportConfig", "PredictConfig", "PretrainConfig", "TrainingOptions", "TransferShares",
    "YamlOptions", "check_layer_map_syntax", "check_options", "check_term_weights", "check_trainer_args",
    "read_yaml_options", "term_weight", "training_arguments_fields",
]
