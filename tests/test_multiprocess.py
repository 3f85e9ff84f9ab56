"""Multi-process distillation through the Trainer's own machinery: torchrun, 2 CPU processes, gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.parametrize("extra", [{}, {"transfer_future": 0.25, "transfer_mixup": 0.125, "transfer_synthetic": 0.125}],
                         ids=["labelled-only", "with-transfer-sources"])
def test_torchrun_two_processes_shard_the_data_and_rank0_exports(teacher_dir, tmp_path, extra):
    out, trace = tmp_path / "student", tmp_path / "trace"
    trace.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), teacher_dir, str(out), str(trace), json.dumps(extra)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    seen = [(trace / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 3  # each rank ran every step on its own batch
    assert not set(seen[0]) & set(seen[1]), "both ranks trained on the same windows"

    record = json.loads((out / "model" / "distillation.json").read_text())
    assert record["training"]["steps"] == 3 and set(record["final_losses"]) >= {"feature", "attention"}
    assert record["transfer"]["shares"] == {"future": extra.get("transfer_future", 0.0),
                                            "mixup": extra.get("transfer_mixup", 0.0),
                                            "synthetic": extra.get("transfer_synthetic", 0.0), "general": 0.0}
    pipeline = Chronos2Pipeline.from_pretrained(out / "model")
    assert type(pipeline.model) is Chronos2Model and pipeline.model.config.d_model == 32


def test_torchrun_pretraining_writes_the_model_from_rank0_only(tmp_path):
    out, trace = tmp_path / "teacher", tmp_path / "trace"
    trace.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER.with_name("ddp_pretrain_worker.py")), str(out), str(trace)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert sorted(p.name for p in trace.iterdir()) == ["saves-rank0.txt"]
    assert (trace / "saves-rank0.txt").read_text() == "saved\n"
    record = json.loads((out / "model" / "pretraining.json").read_text())
    assert record["steps"] == 2
    assert type(Chronos2Pipeline.from_pretrained(out / "model").model) is Chronos2Model
