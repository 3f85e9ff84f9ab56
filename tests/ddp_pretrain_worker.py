"""Run by tests/test_multiprocess.py under ``torchrun --nproc_per_node 2``: a tiny pretraining that records, in
``TRACE/saves-rank<R>.txt``, every time a rank writes the model folder."""

import os
import sys

import chronos_distill.pretraining.run as pretrain_module

output, trace = sys.argv[1:3]
rank = int(os.environ["RANK"])
original = pretrain_module.save_model_atomic


def traced(*args, **kwargs):
    with open(os.path.join(trace, f"saves-rank{rank}.txt"), "a") as f:
        f.write("saved\n")
    return original(*args, **kwargs)


pretrain_module.save_model_atomic = traced
pretrain_module.pretrain(output=output, max_steps=2, save_steps=2, d_model=32, num_layers=1, num_heads=2, d_kv=16,
                         d_ff=64, context_length=64, kernel_bank_size=4, batch_size=8, real_data=["M3"])
