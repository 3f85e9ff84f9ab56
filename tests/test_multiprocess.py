"""Multi-process distillation through the Trainer's own machinery: torchrun, 2 CPU processes, gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline
from torch.distributed.elastic.utils.distributed import get_free_port

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


CACHE_WORKER = Path(__file__).with_name("ddp_cache_worker.py")


def _two_nodes(port: int, argv: list[str], cwds: tuple[Path, Path]) -> list[subprocess.CompletedProcess]:
    """Two torchrun agents on this host joined as two nodes (``--nnodes 2``, one process each, a c10d rendezvous
    on localhost), each started in its own folder: what two machines of a cluster run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(CACHE_WORKER.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1", "--rdzv-backend",
           "c10d", "--rdzv-endpoint", f"localhost:{port}", "--rdzv-id", "two-nodes", str(CACHE_WORKER), *argv]
    agents = [subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for cwd in cwds]
    done = []
    for agent in agents:
        out, err = agent.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(cmd, agent.returncode, out, err))
    return done


def test_two_nodes_label_the_cache_across_both_and_end_as_one_node_with_two_processes(teacher_dir, tmp_path):
    """Issue 49: two torchrun agents as two nodes (one process each) label the teacher cache across both and
    finish with the weights, cache and manifest of the same run on one node with two processes."""
    from safetensors.torch import load_file

    one, two = tmp_path / "one-node", tmp_path / "two-nodes"
    for root in (one, two):
        (root / "trace").mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(CACHE_WORKER.parent)}
    single = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(CACHE_WORKER), teacher_dir, str(one / "run"), str(one / "cache"), str(one / "trace"),
                             "2", "0"], env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-5000:]
    nodes = _two_nodes(get_free_port(), [teacher_dir, str(two / "run"), str(two / "cache"), str(two / "trace"), "2", "0"],
                       (tmp_path, tmp_path))
    assert all(n.returncode == 0 for n in nodes), nodes[0].stderr[-3000:] + nodes[1].stderr[-3000:]
    assert sorted((two / "trace" / "builds.txt").read_text().split()) == ["rank0/2:shard-00000.parquet",
                                                                         "rank1/2:shard-00001.parquet"]
    (key,) = [p.name for p in (one / "cache").iterdir()]
    manifests = [json.loads((root / "cache" / key / "manifest.json").read_text()) for root in (one, two)]
    for manifest in manifests:
        del manifest["build_seconds"]
    assert manifests[0] == manifests[1]
    expected, got = (load_file(root / "run" / "model" / "model.safetensors") for root in (one, two))
    assert expected.keys() == got.keys()
    for name in expected:
        assert (expected[name] == got[name]).all(), name


def test_a_node_that_cannot_see_the_output_folder_says_so_in_one_line(teacher_dir, tmp_path):
    """The output folder given as a relative path on two nodes whose working folders differ (as node-local disks
    are): the node that cannot see the folder rank 0 prepared stops at once, naming the folder and the fix."""
    cwds = (tmp_path / "node-a", tmp_path / "node-b")
    for cwd in cwds:
        (cwd / "trace").mkdir(parents=True)
    nodes = _two_nodes(get_free_port(), [teacher_dir, "run", "cache", "trace", "2", "0"], cwds)
    assert all(n.returncode != 0 for n in nodes)
    said = nodes[0].stderr + nodes[1].stderr
    assert ("output folder run is not shared: rank 1 (of 2) does not see the file rank 0 wrote there; put output "
            "on a path every node mounts (a network filesystem), as an absolute path" in said), said[-3000:]
    assert not any((cwd / "trace" / "builds.txt").exists() for cwd in cwds)  # stopped before the teacher ran
