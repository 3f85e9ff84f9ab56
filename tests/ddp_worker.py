"""Run by tests/test_multiprocess.py under ``torchrun --nproc_per_node 2``: a tiny distillation whose
``compute_loss`` also writes a digest of every training batch it sees to ``TRACE/rank<R>.txt``."""

import hashlib
import json
import os
import sys

import chronos_distill.distillation.trainer as trainer_module
from chronos_distill import distill
from chronos_distill.data.synthetic import seasonal_long_table

teacher, output, trace = sys.argv[1:4]
extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}  # more distill options, e.g. transfer shares
rank = int(os.environ["RANK"])
original = trainer_module.DistillationTrainer.compute_loss


def traced(self, model, inputs, *args, **kwargs):
    if model.training:
        digest = hashlib.sha1(inputs["context"].numpy().tobytes()).hexdigest()
        with open(os.path.join(trace, f"rank{rank}.txt"), "a") as f:
            f.write(digest + "\n")
    return original(self, model, inputs, *args, **kwargs)


trainer_module.DistillationTrainer.compute_loss = traced
distill(
    teacher=teacher, train_data=seasonal_long_table(n_series=24, length=160, seed=0), prediction_length=12,
    output=output, max_steps=3, save_steps=3, batch_size=8, logging_steps=1, student_d_model=32,
    student_num_heads=2, student_d_ff=64, feature_weight=0.1, attention_weight=0.1, attention_kind="both", **extra,
)
