"""The embedded default job: ``chronos-distill`` with no arguments.

No network and no files needed. Until the bundled reference teacher exists, the demo makes its teacher on
the fly: a 512-d Chronos-2 model trained for a few hundred steps on synthetic seasonal series with
``Chronos2Pipeline.fit``. It then distills that teacher into the default 384-d student on the same kind of
data and reports how far the student's forecasts are from the teacher's, before and after, on series
neither model was trained on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from chronos.chronos2 import Chronos2Model, Chronos2Pipeline

from .architecture import chronos2_config
from .config import DistillConfig
from .data import load_series
from .evaluation import agreement_scores
from .run import distill
from .student import build_student, count_parameters
from .synthetic import seasonal_long_table
from .teacher import load_teacher

logger = logging.getLogger(__name__)

PREDICTION_LENGTH = 24


def run_demo(output: str | Path = "runs/demo", teacher_steps: int = 300, student_steps: int = 300, seed: int = 0) -> dict[str, Any]:
    """Train a small teacher, distill it, and return the figures the CLI prints."""
    output = Path(output)
    table = seasonal_long_table(n_series=160, length=400, seed=seed)
    ids = table["item_id"].unique()
    train_table = table[table["item_id"].isin(ids[:128])]
    heldout_table = table[table["item_id"].isin(ids[128:])]

    teacher_dir = output / "teacher"
    if not (teacher_dir / "config.json").is_file():
        logger.info("training the demo teacher (%d steps)", teacher_steps)
        config = chronos2_config(d_model=512, num_layers=4, num_heads=8, d_ff=1024, context_length=256, max_output_patches=4)
        pipeline = Chronos2Pipeline(Chronos2Model(config))
        train_series = load_series(train_table, PREDICTION_LENGTH, target=["target"])
        pipeline = pipeline.fit(
            train_series.inputs, prediction_length=PREDICTION_LENGTH, num_steps=teacher_steps, learning_rate=1e-3,
            batch_size=64, output_dir=output / "teacher-training", logging_steps=50, report_to="none",
        )
        pipeline.save_pretrained(teacher_dir)

    cfg = DistillConfig(
        teacher=str(teacher_dir), train_data=train_table, prediction_length=PREDICTION_LENGTH,
        output=str(output / "student"), max_steps=student_steps, batch_size=64, learning_rate=1e-3,
        save_steps=student_steps, logging_steps=50, seed=seed, overwrite=True,
    )
    teacher = load_teacher(cfg.teacher)
    heldout = load_series(heldout_table, PREDICTION_LENGTH, target=["target"], role="held-out series")
    before = agreement_scores(teacher, build_student(teacher, cfg), heldout, PREDICTION_LENGTH)
    result = distill(cfg)
    after = agreement_scores(teacher, result.student.cpu(), heldout, PREDICTION_LENGTH)
    return {
        "output": str(result.output),
        "teacher_parameters": count_parameters(teacher),
        "student_parameters": count_parameters(result.student),
        "first_distill_loss": result.record["training"]["first_distill_loss"],
        "last_distill_loss": result.record["final_losses"].get("distill"),
        "before": before,
        "after": after,
    }
