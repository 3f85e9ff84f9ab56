"""The models that ``evaluate --fev`` runs, as ``fev.ForecastingModel`` subclasses.

- :class:`Chronos2FevModel`: any Chronos-2 checkpoint (teacher or student) through chronos-forecasting's own
  ``Chronos2Pipeline.predict_fev`` (what fev's own ``chronos-2`` entry calls): fev's windows, the task's known and
  past covariates passed to the model, horizons beyond the model's own unrolled by the pipeline.
- :class:`SeasonalNaiveFevModel`: the leaderboard's baseline, the seasonal naive point forecast at every quantile
  level (the degenerate distribution behind the published seasonal-naive WQL).

Cross-learning (``cross_learning=True``) lets Chronos-2's group attention share information across all the
series of a batch, as fev's published Chronos-2 entry does; with it off every series is forecast alone, as
``chronos-distill evaluate`` and a deployed model forecasting one series at a time do, and the forecast of a
series does not depend on which other series the task holds or how they are batched.
"""

from __future__ import annotations

import time

import datasets
import fev
import numpy as np
from chronos.chronos2 import Chronos2Pipeline

from chronos_distill.evaluation.metrics import seasonal_naive


class Chronos2FevModel(fev.ForecastingModel):
    """A Chronos-2 pipeline on fev tasks (``Chronos2Pipeline.predict_fev``)."""

    model_name = "chronos-distill-chronos2"

    def __init__(self, pipeline: Chronos2Pipeline, batch_size: int = 256, cross_learning: bool = False):
        super().__init__()
        self.pipeline, self.batch_size, self.cross_learning = pipeline, batch_size, cross_learning

    def _fit_predict(self, task: fev.Task) -> list[datasets.DatasetDict]:
        predictions, self.inference_time = self.pipeline.predict_fev(
            task, batch_size=self.batch_size, cross_learning=self.cross_learning)
        return predictions


class SeasonalNaiveFevModel(fev.ForecastingModel):
    """The last ``task.seasonality`` observed values repeated over the horizon, at every quantile level (a series
    shorter than one season repeats its last value; missing values take the last observed one)."""

    model_name = "chronos-distill-seasonal-naive"

    def _fit_predict(self, task: fev.Task) -> list[datasets.DatasetDict]:
        predictions = []
        for window in task.iter_windows():
            past, _ = window.get_input_data()
            with self._record_inference_time():
                per_target = {}
                for column in task.target_columns:
                    contexts = [np.asarray(values, dtype=np.float64) for values in past[column]]
                    point = seasonal_naive(contexts, window.horizon, task.seasonality)
                    columns = {"predictions": point, **{str(q): point for q in task.quantile_levels}}
                    per_target[column] = datasets.Dataset.from_dict(columns)
            predictions.append(datasets.DatasetDict(per_target))
        return predictions


def timed_fit_predict(model: fev.ForecastingModel, task: fev.Task) -> tuple[list, float]:
    """``model.fit_predict(task)`` and its inference time (the model's own, or the wall time when it keeps none)."""
    start = time.monotonic()
    predictions = model.fit_predict(task)
    return predictions, model.inference_time or (time.monotonic() - start)
