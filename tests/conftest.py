"""Shared fixtures: a tiny Chronos-2 teacher saved with save_pretrained, and small series tables."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

# The suite runs in two pytest-xdist workers on a 2-core machine: each worker (and every process it starts: the CLI
# cases, torchrun) keeps to one thread, since two processes with two threads each thrash.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

import pandas as pd
import pytest
import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline
from transformers import TrainerCallback

from chronos_distill.chronos2.architecture import chronos2_config
from chronos_distill.data.synthetic import seasonal_long_table

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

PREDICTION_LENGTH = 12


class StopAfter(TrainerCallback):
    """Stops training after ``step`` steps (after that step's checkpoint, when one is due): an interrupted run."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


#: Student options small enough for a CPU test run (teacher below is 64-d / 2 layers).
TINY_STUDENT = dict(student_d_model=32, student_num_heads=2, student_d_ff=64)


def tiny_teacher_config(**overrides):
    sizes = dict(d_model=64, num_layers=2, num_heads=4, d_kv=16, d_ff=128, context_length=128, max_output_patches=4)
    sizes.update(overrides)
    return chronos2_config(**sizes)


@pytest.fixture(scope="session")
def teacher_dir(tmp_path_factory) -> str:
    """A random 64-d Chronos-2 teacher written with save_pretrained, as a user's local checkpoint."""
    torch.manual_seed(1234)
    model = Chronos2Model(tiny_teacher_config())
    # random init gives near-constant forecasts; a larger output scale makes the teacher's forecasts
    # depend on the input, so that agreeing with it is something a student has to learn
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
    folder = tmp_path_factory.mktemp("teacher")
    Chronos2Pipeline(model).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def table() -> pd.DataFrame:
    return seasonal_long_table(n_series=24, length=160, seed=0)


@pytest.fixture
def table_csv(tmp_path, table) -> str:
    path = tmp_path / "train.csv"
    table.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def table_parquet(tmp_path, table) -> str:
    path = tmp_path / "train.parquet"
    table.to_parquet(path, index=False)
    return str(path)


def pytest_collection_modifyitems(items):
    """The CLI cases that share a ``cli`` fixture start all their processes at once (many interpreters, each
    importing torch): they are slow like the other end-to-end runs."""
    for item in items:
        if "cli" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


_CLI_CASES = (
    "import contextlib, io, json, sys\n"
    "from chronos_distill.cli import main\n"
    "out = {}\n"
    "for name, argv in json.loads(sys.argv[1]).items():\n"
    "    err = io.StringIO()\n"
    "    with contextlib.redirect_stderr(err):\n"
    "        rc = main(argv)\n"
    "    out[name] = [rc, err.getvalue(), 'torch' in sys.modules]\n"
    "print(json.dumps(out))\n"
)


def assert_one_line_errors_without_torch(cases: dict[str, tuple[list[str], str]]) -> None:
    """Run each case's command line (``name -> (argv, message regex)``) in one fresh interpreter and check that it
    failed with exit 2 and one line matching its message, and that torch was never imported."""
    done = subprocess.run([sys.executable, "-c", _CLI_CASES, json.dumps({k: v[0] for k, v in cases.items()})],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, (_, message) in cases.items():
        rc, err, torch_loaded = results[name]
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("chronos-distill: error: "), (name, err)
        assert re.search(message, lines[0]), (name, lines[0])
        assert not torch_loaded, name


def straight_and_resumed(options: dict, tmp_path, steps: int = 4, stop: int = 2):
    """``distill(**options)`` for ``steps`` steps straight, and the same run stopped after step ``stop`` (its
    checkpoint written; ``options`` must save there) then continued with ``resume``: returns both results after
    checking that the resumed run continued from ``checkpoint-<stop>`` and ends with bit-identical weights."""
    from safetensors.torch import load_file

    from chronos_distill import distill
    from chronos_distill.config import DistillConfig
    from chronos_distill.distillation.trainer import DistillationTrainer

    straight = distill(output=str(tmp_path / "straight"), max_steps=steps, **options)
    # the same run (same learning-rate schedule), interrupted after its checkpoint at `stop`
    interrupted = DistillationTrainer(args=DistillConfig(output=str(tmp_path / "split"), max_steps=steps, **options))
    interrupted.add_callback(StopAfter(stop))
    interrupted.train()
    resumed = distill(output=str(tmp_path / "split"), max_steps=steps, resume=True, **options)
    assert resumed.record["training"]["resumed_from"].endswith(f"checkpoint-{stop}")
    expected, got = (load_file(r.model_dir / "model.safetensors") for r in (straight, resumed))
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-6, msg=name)
    return straight, resumed


def fake_hub_cache(tmp_path, monkeypatch, repo_id: str, folder: str):
    """A local Hugging Face cache holding ``folder`` as the snapshot of ``repo_id``, used offline."""
    import shutil

    from huggingface_hub import constants

    repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
