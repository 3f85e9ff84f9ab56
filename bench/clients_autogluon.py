"""AutoGluon steps of ``bench/clients.py``; runs in a virtual environment that has ``autogluon.timeseries``.

``python clients_autogluon.py STUDENT_FOLDER WORK_FOLDER`` prints one JSON object: for each step its status
(``passed`` / ``failed``), seconds, and the error of a failed step. It imports nothing of chronos-distill: the
student must work in AutoGluon as a folder of its own.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

PREDICTION_LENGTH = 12


def make_data(n_series: int = 40, length: int = 120, seed: int = 0) -> pd.DataFrame:
    """Seasonal series with a known covariate ("promo") that lifts the target when it is on."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_series):
        t = np.arange(length)
        promo = (rng.random(length) < 0.15).astype(float)
        target = 50 + 10 * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6)) + 8 * promo + rng.normal(0, 1, length)
        rows.append(pd.DataFrame({
            "item_id": f"s{i:03d}", "timestamp": pd.date_range("2020-01-01", periods=length, freq="D"),
            "target": target, "promo": promo,
        }))
    return pd.concat(rows, ignore_index=True)


def main(student: str, work: str) -> dict:
    from autogluon.timeseries import TimeSeriesDataFrame, TimeSeriesPredictor

    work_dir = Path(work)
    steps: dict[str, dict] = {}
    state: dict = {}

    def step(name):
        def run(fn):
            start = time.perf_counter()
            try:
                detail = fn()
                steps[name] = {"status": "passed", "seconds": round(time.perf_counter() - start, 1), "detail": detail}
            except Exception as exc:  # a client failure is a result to report, not a crash of the benchmark
                steps[name] = {"status": "failed", "seconds": round(time.perf_counter() - start, 1),
                               "error": f"{type(exc).__name__}: {exc}"[:500],
                               "traceback": traceback.format_exc()[-2000:]}
            return fn
        return run

    data = TimeSeriesDataFrame.from_data_frame(make_data())
    train, test = data.train_test_split(PREDICTION_LENGTH)
    known = test.slice_by_timestep(-PREDICTION_LENGTH, None)[["promo"]]
    hyperparameters = {"Chronos2": [
        {"model_path": student, "ag_args": {"name_suffix": "ZeroShot"}},
        {"model_path": student, "fine_tune": True, "fine_tune_mode": "full", "fine_tune_steps": 10,
         "fine_tune_batch_size": 16, "fine_tune_lr": 1e-4, "ag_args": {"name_suffix": "FullFineTune"}},
        {"model_path": student, "fine_tune": True, "fine_tune_mode": "lora", "fine_tune_steps": 10,
         "fine_tune_batch_size": 16, "fine_tune_lr": 1e-4, "ag_args": {"name_suffix": "LoRA"}},
    ]}

    @step("fit: zero-shot, full fine-tune and LoRA, known covariate")
    def _():
        predictor = TimeSeriesPredictor(prediction_length=PREDICTION_LENGTH, known_covariates_names=["promo"],
                                        path=str(work_dir / "predictor"), eval_metric="WQL", verbosity=0)
        predictor.fit(train, hyperparameters=hyperparameters, enable_ensemble=False, skip_model_selection=False)
        state["predictor"] = predictor
        names = predictor.model_names()
        assert len(names) == 3, f"expected 3 trained models, got {names}"
        return {"models": names}

    @step("predict with known covariates")
    def _():
        predictor = state["predictor"]
        out = {}
        for name in predictor.model_names():
            forecast = predictor.predict(train, known_covariates=known, model=name)
            assert len(forecast) == 40 * PREDICTION_LENGTH and forecast["mean"].notna().all(), name
            out[name] = float(forecast["mean"].mean())
        return {"mean forecast per model": out}

    @step("leaderboard")
    def _():
        board = state["predictor"].leaderboard(test)
        assert len(board) == 3 and board["score_test"].notna().all()
        return {row.model: round(float(row.score_test), 4) for row in board.itertuples()}

    @step("save and TimeSeriesPredictor.load")
    def _():
        loaded = TimeSeriesPredictor.load(str(work_dir / "predictor"))
        name = loaded.model_names()[0]
        before = state["predictor"].predict(train, known_covariates=known, model=name)
        after = loaded.predict(train, known_covariates=known, model=name)
        assert np.allclose(before.to_numpy(), after.to_numpy(), atol=1e-5)
        return {"reloaded": name}

    @step("export_model, reloaded through BaseChronosPipeline")
    def _():
        from chronos import BaseChronosPipeline
        from chronos.chronos2 import Chronos2Pipeline

        predictor = state["predictor"]
        out = {}
        for name in predictor.model_names():
            folder = predictor.export_model(str(work_dir / "exported" / name), model=name)
            pipeline = BaseChronosPipeline.from_pretrained(folder, device_map="cpu")
            assert type(pipeline) is Chronos2Pipeline, type(pipeline)
            config = json.loads((Path(folder) / "config.json").read_text())
            out[name] = config.get("chronos_pipeline_class")
        return {"chronos_pipeline_class of each export": out}

    return steps


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
