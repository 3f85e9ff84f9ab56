"""The configuration of a distillation run.

:class:`DistillConfig` is validated once, when it is built. The same names are used everywhere: as Python
keyword arguments, as YAML keys and, with dashes instead of underscores, as CLI flags (``student_d_model``
is ``--student-d-model``). The CLI is generated from the fields below, so the three cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from chronos_distill.config.options import (
    ATTENTION_KIND_OPTIONS,
    ATTENTION_KINDS,
    ATTENTION_LOSSES,
    FEATURE_LOSSES,
    FEATURE_PROJECTIONS,
    HORIZON_WEIGHTINGS,
    OUTPUT_LOSSES,
    STUDENT_INITS,
    DataPath,
    ModelledColumns,
    SeriesColumns,
    _opt,
    check_layer_map_syntax,
    check_options,
)
from chronos_distill.config.training import TrainingOptions
from chronos_distill.errors import ConfigError

#: How a general row's longest context is drawn (see chronos_distill.data.transfer.context_cap), and the default.
GENERAL_CONTEXTS = ("uniform", "mixed", "log-uniform")
#: chosen on validation among the three (bench/two_stage_first.py --stage contexts, retired at ce6723b: uniform
#: 1.186, mixed 1.340, log-uniform 1.342; see bench/results/two_stage_first.md)
DEFAULT_GENERAL_CONTEXT = "uniform"
#: KernelSynth samples the general source crops its kernel tasks from (pretraining draws from 1024)
DEFAULT_GENERAL_BANK_SIZE = 32
#: student_init of a --general run when it is not given (a task run's is random). Chosen on validation among the
#: issue-40 levers (bench/two_stage.py --stage general, 384x2, 2000 steps, one 2000-batch cache, 1 seed): pruned
#: 1.005 against random 1.276 (see bench/results/two_stage.md)
DEFAULT_GENERAL_STUDENT_INIT = "pruned"
#: alpha when it is not given, with --general too: there KD mixed with the stream's own truth won issue 48's levers
#: on validation (bench/two_stage.py --stage general, 384x2 pruned, 2000 steps, 3 seeds: 0.989 ± 0.009 against
#: distillation alone, alpha 1, the earlier --general default, 1.006 ± 0.007; see bench/results/two_stage.md)
DEFAULT_ALPHA = 0.5
#: The student's width when neither --student-d-model nor --student is given.
DEFAULT_STUDENT_D_MODEL = 384
#: The options that shape a student built from the teacher's config; a student started from a checkpoint
#: (``student``) keeps its own, so none of them may be given with it.
STUDENT_SHAPE_OPTIONS = ("student_d_model", "student_num_layers", "student_num_heads", "student_d_kv", "student_d_ff",
                         "student_quantiles")

#: The options of the loss: its terms and their weights (see :mod:`chronos_distill.distillation.objective`).
LOSS_OPTIONS = ("output_loss", "alpha", "feature_weight", "attention_weight", "term_weights", "layer_map", "feature_loss",
                "feature_projection", "attention_loss", "attention_kind", "relation_heads", "horizon_weighting",
                "horizon_tau")
#: Options that a ``distill --resume`` must not change: what is trained (teacher, student, horizon), on which
#: data and columns, with which windows and teacher-only sources, and with which loss. A resumed run whose
#: weights were trained on other data or another loss would be described wrongly by its card. ``max_steps``
#: may change: raising it continues training.
DISTILL_FIXED_ON_RESUME = (
    "teacher", "teacher_weights", "feature_teacher", "season_length", "prediction_length", "student", "student_d_model",
    "student_num_layers", "student_num_heads",
    "student_d_kv", "student_d_ff", "student_quantiles", "context_length", "student_init",
    "train_data", "general", "validation_data", "id_column", "timestamp_column", "timestamp_format", "target",
    "known_covariates", "past_covariates", "ignore_columns", "min_past",
    "best_metric", "teacher_cache", "cache_batches", "batches_per_shard", "general_context", "general_bank_size",
    "general_real_share",
    "transfer_future", "transfer_mixup", "transfer_synthetic",
    "transfer_general",
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


#: A teacher named ``statsforecast:<model>`` is a statistical member of the ensemble; the models it may name.
STATISTICAL_PREFIX = "statsforecast:"
STATISTICAL_MODELS = ("AutoETS", "AutoTheta", "SeasonalNaive")

#: The teacher-only transfer sources (see :mod:`chronos_distill.data.transfer`), in batch order.
TRANSFER_SOURCES = ("future", "mixup", "synthetic", "general")


@dataclass(frozen=True)
class TransferShares:
    """Fractions of a batch's rows supplied by each teacher-only source; their sum is below 1."""

    future: float = 0.0
    mixup: float = 0.0
    synthetic: float = 0.0
    general: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.to_dict().values())

    def rows(self, batch_size: int) -> dict[str, int]:
        """Rows per source in a batch of ``batch_size`` rows (rounded; at least 1 for a positive share)."""
        return {name: (max(1, round(share * batch_size)) if share > 0 else 0) for name, share in self.to_dict().items()}

    def to_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in TRANSFER_SOURCES}


@dataclass
class DistillConfig(TrainingOptions, SeriesColumns, ModelledColumns):
    """Options of ``chronos-distill distill`` (see each field's help, also shown by ``--help``)."""

    TRAINING_DEFAULTS: ClassVar[dict[str, Any]] = dict(
        max_steps=1000, batch_size=256, learning_rate=3e-4, warmup_ratio=0.05, weight_decay=0.0, save_steps=500,
        logging_steps=50, seed=0, num_workers=0)

    # --- what to distill, on what, into where -------------------------------------------------------------
    teacher: str = _opt(
        None, "Teacher: a Hugging Face hub id (e.g. amazon/chronos-2), a local Chronos-2 folder, or a teacher "
        "bundled with chronos-distill: reference (the current reference teacher, v2), reference-v1 or reference-v0. "
        "Several, comma-separated (a YAML or Python list), distil their combined forecast (see teacher_weights); "
        "statsforecast:AutoETS, statsforecast:AutoTheta or statsforecast:SeasonalNaive adds a statistical member "
        "(the [stats] extra). The first must be a Chronos-2 model: the student's shape and the normalised space "
        "come from it.",
        required=True)
    teacher_weights: str | None = _opt(
        None, "Weights of several teachers, comma-separated numbers (normalised to sum 1; a weight of 0 leaves that "
        "teacher out) or auto: chosen by greedy ensemble selection on validation windows of the training data "
        "(validation_data if given, else the last prediction_length steps of each training series), and recorded. "
        "Default: equal weights.")
    feature_teacher: str | None = _opt(
        None, "With several teachers: the Chronos-2 teacher whose hidden states and attention feature and attention "
        "distillation read (default: the first).")
    season_length: int | None = _opt(
        None, "Season length of a statsforecast teacher, for every window (default: each window's own series' "
        "frequency, e.g. 12 monthly, 4 quarterly, 7 daily, 24 hourly; 1 when it has none).", low=1)
    train_data: DataPath = _opt(
        None,
        "Training series: a long-format table (.parquet or .csv) with id, timestamp and target columns; or a "
        "folder or glob of such shards, a table in the sequence layout (one row per series), or a saved Hugging "
        "Face dataset folder. In Python also a pandas DataFrame or any input Chronos2Pipeline.fit accepts. "
        "Required unless --general.",
    )
    general_context: str = _opt(
        DEFAULT_GENERAL_CONTEXT, "How the general rows (--general, --transfer-general) draw each task's longest "
        "context: uniform (the pretraining stream's: mostly long contexts; chosen on validation, see "
        "bench/two_stage.py), log-uniform from 16 steps to the teacher's context (short series as often as in "
        "real collections), or mixed (either, with equal chances).", choices=GENERAL_CONTEXTS)
    general_bank_size: int = _opt(
        DEFAULT_GENERAL_BANK_SIZE, "KernelSynth samples in the general source's bank (--general, --transfer-general), "
        "drawn once from a fixed seed; its kernel tasks are crops of them. A larger bank is a more diverse stream.", low=1)
    general_real_share: float = _opt(
        0.0, "With --general and --train-data CORPUS: the share of the general rows that are real contexts of the "
        "corpus (one target of a random series, cut at a random point), labelled by the teacher like the generators' "
        "rows (their continuation is the truth where alpha < 1); the rest are the pretraining generators' tasks. The "
        "corpus is unlabelled data you do not forecast (a user distilling amazon/chronos-2 would give its public "
        "pretraining corpus). No default is chosen on validation yet: 0 keeps the synthetic stream.",
        low=0.0, high=1.0)
    general: bool = _opt(
        False, "Distill a general-purpose student from the teacher alone: every row of every batch is drawn from "
        "the pretraining task mix (the general transfer source) and labelled by the teacher; no --train-data. "
        "alpha (default 0.5, chosen on validation) weighs the teacher's forecasts, and 1 - alpha the mix's own truth "
        "(the continuation its generator drew); --alpha 1 distills alone, and --alpha 0 trains on that truth alone, "
        "on the same batches as the distilled run of the same seed, with no teacher forward in training; it still starts pruned from the teacher's "
        "weights (whose calibration runs the teacher on a few batches) unless --student-init random, the "
        "teacher-free control.")
    prediction_length: int | None = _opt(
        None, "Forecast horizon H (steps) the student is distilled for. Required unless --general, whose batches "
        "draw their horizon from 1 output patch up to this (default: the teacher's full horizon).", low=1)
    output: str = _opt(None, "Output folder: model/ (the exported student with distillation.json and its model "
                       "card README.md), checkpoints/ and run_config.json beside it.", required=True)
    validation_data: DataPath = _opt(
        None,
        "Optional validation series, same format as train_data; the last H steps of each series are scored "
        "during training and the best checkpoint is exported.",
    )

    best_metric: str | None = _opt(
        None, "With validation_data: the logged validation loss whose lowest value picks the exported checkpoint "
        "(default: hard_loss, the truth loss, as Chronos2Pipeline.fit selects; distill_loss for a --general run, "
        "which has no truth). Any logged component: total_loss, distill_loss, hard_loss, feature_loss, ...")

    # --- table layout (Chronos2Pipeline.predict_df conventions): SeriesColumns and ModelledColumns, and -----------
    known_covariates: list[str] = _opt(
        [],
        "Covariate columns whose future values are known (comma-separated). Other non-target columns are "
        "past-only covariates, unless past_covariates or ignore_columns say otherwise.",
    )
    past_covariates: list[str] | None = _opt(
        None, "Past-only covariate columns (comma-separated; default: every column that is not the id, the "
        "timestamp, a target, a known covariate or ignored). The run names the covariates it uses.")

    # --- student ------------------------------------------------------------------------------------------
    student: str | None = _opt(
        None, "Start the student from an existing Chronos-2 checkpoint instead of building one: a local folder, a "
        "run folder (its model/), a hub id (e.g. autogluon/chronos-2-small) or a bundled name. Its own config is "
        "kept (width, depth, context length, output patches, quantiles), so the student_* shape options and "
        "student_init do not apply; a general student (distill --general) makes a good start for a task run.")
    student_d_model: int | None = _opt(None, f"Student hidden width d_model (default {DEFAULT_STUDENT_D_MODEL}).", low=1)
    student_num_layers: int | None = _opt(None, "Student encoder layers (default: half the teacher's, at least 1).", low=1)
    student_num_heads: int | None = _opt(None, "Student attention heads (default: student_d_model // student_d_kv).", low=1)
    student_d_kv: int | None = _opt(
        None, "Student size per attention head (default: the teacher's, or d_model // heads when heads is given).", low=1)
    student_d_ff: int | None = _opt(None, "Student MLP width (default: the teacher's d_ff / d_model ratio times student_d_model, e.g. 1536 for a 768/3072 teacher).", low=1)
    student_quantiles: list[float] | None = _opt(
        None,
        "Student quantile levels, comma-separated (default: the teacher's). Teacher quantiles are interpolated "
        "onto them; they must lie within the teacher's range.", low=0.0, high=1.0, open_low=True, open_high=True, nonempty=True,
    )

    student_init: str | None = _opt(
        None,
        "random: a freshly initialised student; pruned: the teacher's most important blocks, channels, heads and "
        "MLP neurons (activation importance on calibration batches of train_data, or of the general stream), "
        "Minitron-style. Default: pruned with --general, random otherwise.",
    choices=STUDENT_INITS)
    calibration_batches: int = _opt(8, "Batches of train_data used to score importance for student_init pruned.", low=1)

    # --- loss -----------------------------------------------------------------------------------------------
    output_loss: str = _opt(
        "quantile",
        "quantile: distance between the student's and the teacher's whole quantile sets plus Chronos-2's "
        "quantile loss on the truth; median_mse: mean squared error of the student's median against the "
        "teacher's median and against the truth (the simplest objective, kept for comparison).",
    choices=OUTPUT_LOSSES)
    alpha: float = _opt(
        DEFAULT_ALPHA,
        "Weight of the output distillation term; the truth (hard) term gets 1 - alpha - feature_weight - "
        "attention_weight (default 0.5, with --general too). With no teacher term left (alpha 0 and no feature or "
        "attention weight) the teacher never runs: the student trains on the truth alone.",
    low=0.0, high=1.0)
    feature_weight: float = _opt(
        0.0, "Weight (beta) of feature distillation: projected student hidden states vs the teacher's.", low=0.0, high=1.0)
    attention_weight: float = _opt(
        0.0, "Weight (gamma) of attention distillation (see attention_loss, attention_kind).", low=0.0, high=1.0)
    term_weights: dict = _opt(
        {}, "Weights of loss terms registered with chronos_distill.distillation.objective.register_term outside "
        "chronos-distill, by term name (YAML mapping, or JSON on the command line: '{\"spread\": 0.1}').")
    layer_map: str = _opt(
        "uniform",
        "Matched blocks for feature/attention distillation: uniform (student i <-> teacher round((i+1)*T/S)-1), "
        "last, or pairs student:teacher like 0:2,1:5.",
    )
    feature_loss: str = _opt("mse", "Feature distance: mse or cosine, over real (non-padding) tokens.", choices=FEATURE_LOSSES)
    feature_projection: str = _opt(
        "linear",
        "Student -> teacher width projection: linear, or linear_norm (then an RMS norm; the teacher's states are "
        "RMS-normalised too).",
    choices=FEATURE_PROJECTIONS)
    attention_loss: str = _opt(
        "kl",
        "kl: KL between head-averaged attention maps; relation: MiniLM-style q/k/v self-relations re-split into "
        "relation_heads heads (no head matching needed).",
    choices=ATTENTION_LOSSES)
    attention_kind: str = _opt(
        "time", "Attention distilled: time, group (series of one group; multivariate/covariates) or both.", choices=ATTENTION_KIND_OPTIONS)
    relation_heads: int | None = _opt(
        None, "Relation heads of the relation loss (default: the largest count <= the models' head counts "
        "dividing both attention widths).", low=1)

    # --- optimisation ---------------------------------------------------------------------------------------
    context_length: int | None = _opt(None, "Context length of training windows (default: the teacher's).", low=1)
    min_past: int | None = _opt(None, "Minimum observed context of a training window (default: prediction_length).", low=1)

    # --- teacher-labelled transfer data (see chronos_distill.data.transfer) -----------------------------------------
    transfer_future: float = _opt(
        0.0, "Share of each batch's rows that are windows ending at a series' last observation, the horizon in "
        "the unknown future: the teacher's forecast is their only target.", low=0.0, high=1.0)
    transfer_mixup: float = _opt(
        0.0, "Share of each batch's rows that are TSMixup mixtures of 2-3 of your target series (each scaled "
        "first), labelled by the teacher only (univariate: covariates are left out).", low=0.0, high=1.0)
    transfer_synthetic: float = _opt(
        0.0, "Share of each batch's rows that are synthetic series (seasonal, trend, AR, intermittent), labelled "
        "by the teacher only, each as long as one of your series.", low=0.0, high=1.0)
    transfer_general: float = _opt(
        0.0, "Share of each batch's rows drawn from the pretraining generators (seasonal of every period, "
        "KernelSynth, intermittent, multivariate groups, TSMixup) with contexts as long as the teacher reads, "
        "labelled by the teacher only: what the teacher knows beyond your data. The four shares sum to less "
        "than 1; the rest are your labelled windows.", low=0.0, high=1.0)
    horizon_weighting: str = _opt(
        "none", "Weights of the distillation term over the horizon: none (uniform) or exp (DistilTS: rising "
        "exponentially, mean 1, so late steps count; see horizon_tau).", choices=HORIZON_WEIGHTINGS)
    horizon_tau: float = _opt(1.0, "Temperature of horizon_weighting exp: the last step weighs e^(1/tau) times the "
                              "first.", low=0.0, open_low=True)

    teacher_cache: str | None = _opt(
        None,
        "Folder of the teacher cache: the transfer set becomes cache_batches fixed batches whose teacher "
        "predictions are computed once and reused by later epochs and runs (keyed by teacher, data, options). A "
        "truth-only run (alpha 0) trains on the same batches' truth and never runs the teacher once it exists.",
    )
    cache_batches: int = _opt(1000, "Batches in the fixed transfer set when teacher_cache is set.", low=1)
    batches_per_shard: int | None = _opt(
        None, "Stream a train_data folder or glob of shards that does not fit in memory: this many batches from one "
        "shard's series, then the next shard (each pass in a seeded order), one shard in memory at a time; every "
        "shard is checked before the first step. Default: read every shard into one table.", low=1)

    # --- model card -----------------------------------------------------------------------------------------
    license: str | None = _opt(
        None,
        "License for the student's model card when the teacher's is not known (a known one, e.g. apache-2.0 "
        "for amazon/chronos-2, is used otherwise; this option overrides it).",
    )
    datasets: list[str] = _opt([], "Hugging Face dataset ids of the training data, for the model card (comma-separated).")

    # --- run management ------------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        self._take_recorded_options()
        for name in ("teacher", "teacher_weights"):  # a YAML / Python list is the comma-separated text
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                setattr(self, name, ",".join(str(v).strip() for v in value))
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and name == "teacher_weights":
                setattr(self, name, str(value))
        # the comma-separated teacher list, split once (every later use reads this)
        self._teacher_names = tuple(t.strip() for t in str(self.teacher).split(",") if t.strip())
        self._validate()

    def given_options(self) -> dict[str, Any]:
        """The options the caller set (:attr:`given`, after their checks: a list as a list), and on a resumed run
        those taken from its record: what a new config with other inputs (another teacher, a student object,
        ``distill(config, **overrides)``) starts from. Every default, and every default that depended on other
        options (``alpha``, ``student_init``), is decided again with the new inputs."""
        kept = set(self.given) | set(self._recorded)
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name in kept and f.name not in self._derived}

    def replace(self, **overrides: Any) -> DistillConfig:
        """A new config with ``overrides`` over the options this one was given (:meth:`given_options`): the
        defaults that depend on an overridden option are worked out again (``general=False`` takes alpha's task
        default, ``student=...`` the random start), which ``dataclasses.replace`` would keep from this one."""
        return type(self)(**{**self.given_options(), **overrides})

    @property
    def teachers(self) -> list[str]:
        """The teachers, in the order given."""
        return list(self._teacher_names)

    def teacher_weight_values(self) -> list[float] | str:
        """The normalised weights of :attr:`teachers` (equal by default), or ``"auto"``."""
        n = len(self._teacher_names)
        if self.teacher_weights is None:
            return [1.0 / n] * n
        if self.teacher_weights.strip().lower() == "auto":
            return "auto"
        weights = [float(w) for w in self.teacher_weights.split(",")]
        return [w / sum(weights) for w in weights]

    # ------------------------------------------------------------------------------------------------------
    # ------------------------------------------------------------------------------------------------------
    def _validate(self) -> None:
        """Each option against its own metadata (:func:`check_options`), then the checks across options."""
        self._fill_training_defaults()
        check_options(self)
        # the defaults that depend on other options, remembered so that given_options() can leave them open
        self._derived = tuple(name for name in ("student_init",) if getattr(self, name) is None)
        if self.student_init is None:
            self.student_init = DEFAULT_GENERAL_STUDENT_INIT if self.general and self.student is None else "random"
        self._check_teachers()
        if self.general and self.train_data is not None and self.general_real_share == 0:
            raise ConfigError("--general distills on the teacher's pretraining task mix alone and would ignore "
                              "--train-data; give --general-real-share to mix real contexts of it into the stream, "
                              "drop --train-data, or drop --general and add the mix to your data with "
                              "--transfer-general")
        if self.general_real_share > 0 and not (self.general and self.train_data is not None):
            raise ConfigError("option `general_real_share` (--general-real-share) mixes real contexts of --train-data "
                              "into a --general run's stream: it needs --general and --train-data")
        if self.general_real_share > 0 and self.batches_per_shard is not None:
            raise ConfigError("--general-real-share draws from every series of the corpus at once; drop "
                              "--batches-per-shard")
        if not self.general and self.train_data is None:
            raise ConfigError("option `train_data` (--train-data) is required (or --general, to distill a "
                              "general-purpose student on the teacher's pretraining task mix alone)")
        if not self.general and self.prediction_length is None:
            raise ConfigError("option `prediction_length` (--prediction-length) is required: the horizon the student "
                              "is distilled for")
        self._check_student()
        self._check_streaming()
        if self.general and any(getattr(self, f"transfer_{name}") for name in TRANSFER_SOURCES):
            raise ConfigError("--general draws every row from the general source already; the --transfer-* shares "
                              "apply to runs with --train-data")
        if self.id_column is not None and self.id_column == self.timestamp_column:
            raise ConfigError(f"option `id_column` (--id-column) and `timestamp_column` (--timestamp-column) are both "
                              f"{self.id_column!r}: name the column of series ids and the column of times")
        overlap = set(self.target) & set(self.known_covariates)
        if overlap:
            raise ConfigError(f"column(s) {sorted(overlap)} are given both as target and as known covariates")
        check_term_weights(self)
        check_layer_map_syntax(self.layer_map)
        shares = [f"transfer_{name}" for name in TRANSFER_SOURCES]
        if sum(getattr(self, name) for name in shares) >= 1.0:
            raise ConfigError(
                f"{' + '.join(shares)} = {sum(getattr(self, name) for name in shares):g}: the shares must sum to less "
                "than 1, so that part of every batch is your labelled data"
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
        self._check_training_options()

    def _check_streaming(self) -> None:
        if self.batches_per_shard is None:
            return
        if not isinstance(self.train_data, (str, Path)):
            raise ConfigError("option `batches_per_shard` (--batches-per-shard) streams a train_data folder or glob of "
                              "shards; give train_data as a path (or drop the option to train on it in memory)")
        clashes = [flag for flag, on in (("--teacher-cache", self.teacher_cache is not None),
                                         ("--student-init pruned", self.student_init == "pruned"),
                                         ("--transfer-*", self.transfer_shares().total > 0)) if on]
        if clashes:
            raise ConfigError(f"--batches-per-shard holds one shard in memory, and {', '.join(clashes)} needs every "
                              "series at once: drop one of them")

    def _check_student(self) -> None:
        """A student started from a checkpoint keeps its own shape: no shape option and no other init with it."""
        if self.student is None:
            return
        given = [name for name in STUDENT_SHAPE_OPTIONS if getattr(self, name) is not None]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ConfigError(f"option `student` (--student {self.student}) keeps that checkpoint's own shape and "
                              f"quantiles; drop {flags}, or drop --student to build a student of that shape")
        if self.student_init != "random":
            raise ConfigError(f"option `student` (--student {self.student}) starts from that checkpoint's weights; "
                              f"--student-init {self.student_init} builds a new student from the teacher: give one "
                              "of the two")

    @property
    def best_checkpoint_metric(self) -> str:
        """The logged loss (without its ``eval_`` prefix) whose lowest validation value picks the exported
        checkpoint: ``best_metric``, else the truth loss, else (``--general``) the distillation loss."""
        if self.best_metric is not None:
            return self.best_metric.removeprefix("eval_")
        return "distill_loss" if self.general and self.alpha > 0 else "hard_loss"

    @property
    def uses_teacher(self) -> bool:
        """Whether any loss term reads the teacher (False: a truth-only run, which runs no teacher forward)."""
        return any(term_weight(self, n) > 0 for n in [*TERM_WEIGHT_OPTIONS, *self.term_weights])

    @property
    def student_width(self) -> int:
        """The width of a student built from the teacher's config (``student_d_model`` or its default)."""
        return self.student_d_model if self.student_d_model is not None else DEFAULT_STUDENT_D_MODEL

    def _check_teachers(self) -> None:
        """Several teachers: their weights, the feature teacher, and what only a Chronos-2 teacher can be."""
        teachers = self.teachers
        if not teachers:
            raise ConfigError("option `teacher` (--teacher) names no teacher")
        if teachers[0].startswith(STATISTICAL_PREFIX):
            raise ConfigError(f"option `teacher` (--teacher): the first teacher, {teachers[0]}, must be a Chronos-2 "
                              "model: the student's shape and the normalised space come from it; list it later")
        for name in teachers:
            if name.startswith(STATISTICAL_PREFIX) and name[len(STATISTICAL_PREFIX):] not in STATISTICAL_MODELS:
                raise ConfigError(f"option `teacher` (--teacher): unknown statistical teacher {name!r}; choose from "
                                  + ", ".join(STATISTICAL_PREFIX + m for m in STATISTICAL_MODELS))
        if self.teacher_weights is not None:
            text = self.teacher_weights.strip()
            if text.lower() == "auto":
                if len(teachers) < 2:
                    raise ConfigError("option `teacher_weights` (--teacher-weights) auto needs at least two teachers")
            else:
                try:
                    weights = [float(w) for w in text.split(",")]
                except ValueError as exc:
                    raise ConfigError(f"option `teacher_weights` (--teacher-weights) must be numbers or auto, got "
                                      f"{self.teacher_weights!r}") from exc
                if len(weights) != len(teachers):
                    raise ConfigError(f"option `teacher_weights` (--teacher-weights) gives {len(weights)} weight(s) "
                                      f"for {len(teachers)} teacher(s) ({', '.join(teachers)})")
                if any(not w >= 0 or w == float("inf") for w in weights):
                    raise ConfigError(f"option `teacher_weights` (--teacher-weights): weights must be finite and at "
                                      f"least 0, got {weights}")
                if sum(weights) == 0:
                    raise ConfigError("option `teacher_weights` (--teacher-weights): every weight is 0")
                if weights[0] == 0:
                    raise ConfigError("option `teacher_weights` (--teacher-weights): the first teacher sets the "
                                      "student's shape and the normalised space; it cannot have weight 0")
        if self.feature_teacher is not None:
            if self.feature_teacher not in teachers:
                raise ConfigError(f"option `feature_teacher` (--feature-teacher) {self.feature_teacher!r} is not "
                                  f"among the teachers ({', '.join(teachers)})")
            if self.feature_teacher.startswith(STATISTICAL_PREFIX):
                raise ConfigError(f"option `feature_teacher` (--feature-teacher): {self.feature_teacher} has no "
                                  "hidden states or attention; choose a Chronos-2 teacher")

    def transfer_shares(self) -> TransferShares:
        """The teacher-only sources' shares of a batch."""
        return TransferShares(**{name: getattr(self, f"transfer_{name}") for name in TRANSFER_SOURCES})

    def attention_kinds(self) -> tuple[str, ...]:
        """The attention kinds distilled: () when attention_weight is 0."""
        if self.attention_weight == 0:
            return ()
        return ATTENTION_KINDS if self.attention_kind == "both" else (self.attention_kind,)


