"""Run by tests/test_correctness.py under ``torchrun --nproc_per_node 2`` (or alone, as one process): a tiny
distillation with a teacher cache of two shards. Each rank writes the device its cache teacher runs on to
``TRACE/device-rank<R>``, and every labelling appends ``rank<R>/<ranks>:<shards written>`` to ``TRACE/builds.txt``
and each shard as it is written ``<restart>/rank<R>:<shard>`` to ``TRACE/shards.txt``. ``RESUME``: 1, 0 or auto.
With ``SHARDS=N`` the cache has N shards of two batches; with ``KILL_RANK=R`` that rank kills itself (SIGKILL) right
after writing its first shard, in the first start of a ``torchrun --max-restarts`` job only."""

import os
import signal
import sys

import chronos_distill.data.teacher_cache as cache_module
from chronos_distill import distill
from chronos_distill.data.synthetic import seasonal_long_table

teacher, output, cache, trace, max_steps, resume = sys.argv[1:7]
rank = int(os.environ.get("RANK", "0"))
original_build, original_load = cache_module.build_cache, cache_module.load_cache
cache_module.BATCHES_PER_SHARD = 2  # 4 cached batches: two shards, one per rank
shards = int(os.environ.get("SHARDS", "2"))
restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
killed = os.environ.get("KILL_RANK") == str(rank) and restart == "0"
original_write = cache_module.write_atomic


def write_then_maybe_die(path, write):
    written = original_write(path, write)
    if path.name.startswith("shard-"):
        with open(os.path.join(trace, "shards.txt"), "a") as f:
            f.write(f"{restart}/rank{rank}:{path.name}\n")
        if killed:
            os.kill(os.getpid(), signal.SIGKILL)
    return written



def build(folder, key, model, batches, device="cpu", rank=0, world=1):
    written = original_build(folder, key, model, batches, device=device, rank=rank, world=world)
    with open(os.path.join(trace, "builds.txt"), "a") as f:
        f.write(f"rank{rank}/{world}:{','.join(written)}\n")
    return written


def load(folder):
    batches = original_load(folder)
    if batches is not None:
        with open(os.path.join(trace, f"device-rank{rank}"), "w") as f:
            f.write(str(cache_module.PartialState(cpu=True).device))
    return batches


cache_module.build_cache, cache_module.load_cache = build, load
cache_module.write_atomic = write_then_maybe_die
distill(
    teacher=teacher, train_data=seasonal_long_table(n_series=24, length=160, seed=0), prediction_length=12,
    output=output, max_steps=int(max_steps), save_steps=2, batch_size=8, logging_steps=1, student_d_model=32,
    student_num_heads=2, student_d_ff=64, teacher_cache=cache, cache_batches=2 * shards, resume={"1": True, "0": False, "auto": "auto"}[resume],
)
