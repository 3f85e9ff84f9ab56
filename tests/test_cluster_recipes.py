"""The cluster recipes of docs/operations.md run (issue 49, item 4): the SLURM batch script, on two "nodes" of
this host with a stand-in ``srun``, and the helper that derives torchrun's rendezvous from SLURM's variables."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PREDICTION_LENGTH, TINY_STUDENT
from torch.distributed.elastic.utils.distributed import get_free_port

from chronos_distill.training.slurm import first_host, torchrun_arguments

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("nodelist, host", [("gpu-[01-04,07],cpu1", "gpu-01"), ("a100n3", "a100n3"),
                                            ("node[7,9-11]", "node7"), ("h1,h2", "h1")])
def test_the_rendezvous_host_is_the_first_of_slurms_host_list(nodelist, host):
    assert first_host(nodelist) == host


def test_torchrun_arguments_come_from_slurms_variables_or_a_line_that_says_which_is_missing():
    env = {"SLURM_NNODES": "4", "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu-[01-04]", "SLURM_GPUS_ON_NODE": "8"}
    assert torchrun_arguments(env) == ["--nnodes", "4", "--nproc-per-node", "8", "--rdzv-backend", "c10d",
                                       "--rdzv-endpoint", "gpu-01:29500", "--rdzv-id", "4242", "--max-restarts", "3"]
    done = subprocess.run([sys.executable, "-m", "chronos_distill.training.slurm"], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if not k.startswith("SLURM_")})
    assert done.returncode == 2
    assert done.stderr == ("chronos_distill.training.slurm: SLURM_NNODES, SLURM_JOB_ID, SLURM_JOB_NODELIST not set: "
                           "run this inside a SLURM job (sbatch / srun)\n")


#: a stand-in for srun: the step once per "node" (SLURM_NODEID 0 and 1), concurrently; the worst exit status
FAKE_SRUN = """#!/bin/bash
SLURM_NODEID=0 "$@" & first=$!
SLURM_NODEID=1 "$@" & second=$!
wait $first; a=$?
wait $second; b=$?
exit $(( a > b ? a : b ))
"""


def _docs_block(page: str, after: str, language: str) -> str:
    text = (ROOT / "docs" / page).read_text()
    text = text[text.index(after):]
    return text[text.index(f"```{language}\n") + len(language) + 4:].split("```")[0]


@pytest.mark.slow
def test_the_docs_slurm_script_runs_a_two_node_job(teacher_dir, table, tmp_path):
    script = _docs_block("operations.md", "**SLURM**", "bash")
    assert "--resume auto" in script and "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in script
    (tmp_path / "distill.sbatch").write_text(script)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", "#!/bin/bash\necho \"$@\" >> scontrol.calls\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    _tiny_run_yaml(tmp_path, teacher_dir, table)
    port = get_free_port()
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
           "SLURM_NNODES": "2", "SLURM_JOB_ID": "77", "SLURM_JOB_NODELIST": "localhost", "MASTER_PORT": str(port)}
    done = subprocess.run(["bash", "distill.sbatch"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    record = json.loads((tmp_path / "run" / "model" / "distillation.json").read_text())
    assert record["training"]["processes"] == 2 and record["training"]["steps"] == 4
    assert not (tmp_path / "scontrol.calls").exists()  # finished: nothing requeued
    assert done.stdout.count("student exported to") == 1  # the main process speaks for the run
    # a step that fails (a signalled or crashed job: torchrun's agent exits 1 either way) is requeued, at most 3 times
    (bin_dir / "srun").write_text("#!/bin/bash\nexit 1\n")
    failed = subprocess.run(["bash", "distill.sbatch"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert failed.returncode == 1 and (tmp_path / "scontrol.calls").read_text() == "requeue 77\n"
    spent = subprocess.run(["bash", "distill.sbatch"], cwd=tmp_path, env={**env, "SLURM_RESTART_COUNT": "3"})
    assert spent.returncode == 1 and (tmp_path / "scontrol.calls").read_text() == "requeue 77\n"


def _tiny_run_yaml(folder: Path, teacher_dir: str, table) -> None:
    table.to_csv(folder / "train.csv", index=False)
    options = dict(teacher=teacher_dir, train_data=str(folder / "train.csv"), prediction_length=PREDICTION_LENGTH,
                   output=str(folder / "run"), max_steps=4, save_steps=2, batch_size=8, seed=1, **TINY_STUDENT)
    (folder / "distill.yaml").write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in options.items()))


@pytest.mark.slow
def test_the_docs_accelerate_config_and_command_run_two_processes(teacher_dir, table, tmp_path):
    """The accelerate recipe as the page gives it, with 2 processes for its 8 (on a machine without GPUs accelerate
    runs the MULTI_GPU config's processes on the CPU, through torchrun, joined by gloo)."""
    config = _docs_block("operations.md", "**accelerate**", "yaml")
    assert "num_processes: 8\n" in config
    (tmp_path / "accelerate.yaml").write_text(config.replace("num_processes: 8\n", "num_processes: 2\n"))
    _tiny_run_yaml(tmp_path, teacher_dir, table)
    page = (ROOT / "docs" / "operations.md").read_text()
    command = page[page.index("**accelerate** (`") + len("**accelerate** (`"):].split("`)")[0].split()
    assert command[:2] == ["accelerate", "launch"]
    done = subprocess.run([str(Path(sys.executable).with_name("accelerate")), *command[1:]], cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    record = json.loads((tmp_path / "run" / "model" / "distillation.json").read_text())
    assert record["training"]["processes"] == 2 and record["options"]["resume"] == "auto"
