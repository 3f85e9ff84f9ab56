"""The checks of ``predict`` and ``evaluate`` that need no torch: the output, the model names and the data files'
columns (their header alone). The command line runs them before it imports the forecasting stack, so a missing
file or a misspelt column costs a fraction of a second, not the seconds that loading torch takes.
"""

from __future__ import annotations

from pathlib import Path

from chronos_distill.chronos2.checkpoints import resolve_checkpoint
from chronos_distill.config import STATISTICAL_PREFIX, EvaluateConfig, PredictConfig
from chronos_distill.data.sources import find_source, read_columns
from chronos_distill.data.tables import TableLayout, check_columns
from chronos_distill.errors import CheckpointError
from chronos_distill.training.run_folder import check_writable


def check_model_name(name: str, role: str = "model") -> None:
    """An ONNX file that exists, or a Chronos-2 folder, run folder, bundled name or hub id
    (:func:`~chronos_distill.chronos2.checkpoints.resolve_checkpoint`)."""
    if str(name).endswith(".onnx"):
        if not Path(name).expanduser().is_file():
            raise CheckpointError(f"{role} {name} does not exist (an ONNX file from `chronos-distill export-onnx`)")
        return
    resolve_checkpoint(name, role)


def check_predict_inputs(cfg: PredictConfig) -> None:
    """The output file can be written, the model exists, and ``--data`` (and ``--future-data``) exist with the
    id, timestamp, target and known covariate columns named."""
    check_writable(Path(cfg.output).expanduser(), is_file=True)
    check_model_name(cfg.model)
    if isinstance(cfg.data, (str, Path)):
        _check_table(cfg.data, cfg.timestamp_column, TableLayout.from_options(cfg, known_covariates=list(cfg.known_covariates)))
    if isinstance(cfg.future_data, (str, Path)):
        read_columns(cfg.future_data, "future_data", cfg.timestamp_column)


def check_evaluate_inputs(cfg: EvaluateConfig) -> None:
    """Each model to score exists, and ``--data`` exists with its id, timestamp and target columns."""
    for source in [*cfg.named_models().values(), *cfg.ensemble]:
        if not str(source).startswith(STATISTICAL_PREFIX):
            check_model_name(source)
    if isinstance(cfg.data, (str, Path)):
        # the target is checked only when named: by default it is the one a distilled model was trained on
        _check_table(cfg.data, cfg.timestamp_column, TableLayout.from_options(
            cfg, target=[cfg.target] if cfg.target else [], known_covariates=[], past_covariates=None))


def _check_table(data: str | Path, timestamp_column: str, layout: TableLayout) -> None:
    """``--data`` exists and has the columns ``layout`` names (its header alone is read)."""
    check_columns(read_columns(data, "data", timestamp_column), find_source(data, "data").description, layout)
