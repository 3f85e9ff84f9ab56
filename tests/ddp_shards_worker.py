"""Run by tests/test_shards.py under ``torchrun --nproc_per_node 2``: two tiny distillations on a folder of shards,
streamed (``--batches-per-shard``) and read whole, each process writing the data it loads to
``TRACE/<run>-rank<R>.txt`` (one line per read: the shard file names)."""

import json
import os
import sys
from pathlib import Path

import chronos_distill.distillation.build as build_module
from chronos_distill import distill
from chronos_distill.data.sources import Source

teacher, corpus, output, trace = sys.argv[1:5]
rank = int(os.environ["RANK"])
original = build_module.load_table
current = {"run": None}


def traced(cfg, data, role, min_past):
    if role == "train_data":
        files = data.files if isinstance(data, Source) else [Path(data)]
        with open(os.path.join(trace, f"{current['run']}-rank{rank}.txt"), "a") as f:
            f.write(",".join(sorted(p.name for p in files)) + "\n")
    return original(cfg, data, role, min_past)


build_module.load_table = traced
options = dict(teacher=teacher, train_data=corpus, prediction_length=12, max_steps=2, save_steps=2, batch_size=8,
               student_d_model=32, student_num_heads=2, student_d_ff=64)
for run, extra in (("streamed", {"batches_per_shard": 1}), ("whole", {})):
    current["run"] = run
    result = distill(output=os.path.join(output, run), **extra, **options)
    if rank == 0:
        print("RECORD " + json.dumps({run: result.record["data"]["train"]}), flush=True)
