"""torchrun's rendezvous arguments from SLURM's environment, for one ``srun torchrun ...`` per node.

torchrun reads no SLURM variables itself: every node's agent must be told how many nodes join, which job they
belong to and where to meet. Under ``sbatch``/``srun`` these are ``SLURM_NNODES``, ``SLURM_JOB_ID`` (the same after a
requeue, so the restarted nodes meet again) and the first host of ``SLURM_JOB_NODELIST`` (``scontrol show
hostnames`` order), the rendezvous endpoint. The batch script of ``docs/operations.md`` runs::

    srun bash -c 'torchrun $(python -m chronos_distill.training.slurm) -m chronos_distill distill ...'

which prints ``--nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint gpu-01:29500 --rdzv-id 4242
--max-restarts 3``. Imports nothing of the training stack.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

#: the rendezvous port on the first node (torchrun's own default)
RENDEZVOUS_PORT = 29500
#: how often torchrun restarts the workers of one job (a failed or killed worker) before the job fails
MAX_RESTARTS = 3


def first_host(nodelist: str) -> str:
    """The first host of a SLURM host list, as ``scontrol show hostnames`` lists it: ``gpu-[01-04,07],cpu1`` ->
    ``gpu-01``; ``a100n3`` -> ``a100n3``. Zero padding is kept."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match or not match.group(1):
        raise ValueError(f"not a SLURM host list: {nodelist!r}")
    prefix, ranges = match.groups()
    if ranges is None:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def torchrun_arguments(environ: Mapping[str, str], port: int = RENDEZVOUS_PORT,
                       max_restarts: int = MAX_RESTARTS) -> list[str]:
    """torchrun's node, process and rendezvous arguments from a SLURM job's ``environ``; processes per node from
    ``SLURM_GPUS_ON_NODE`` (1 without GPUs). Raises ``KeyError`` naming a variable SLURM did not set."""
    missing = [name for name in ("SLURM_NNODES", "SLURM_JOB_ID", "SLURM_JOB_NODELIST") if not environ.get(name)]
    if missing:
        raise KeyError(f"{', '.join(missing)} not set: run this inside a SLURM job (sbatch / srun)")
    return ["--nnodes", environ["SLURM_NNODES"], "--nproc-per-node", environ.get("SLURM_GPUS_ON_NODE") or "1",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{first_host(environ['SLURM_JOB_NODELIST'])}:{port}",
            "--rdzv-id", environ["SLURM_JOB_ID"], "--max-restarts", str(max_restarts)]


def main() -> int:
    try:  # MASTER_PORT, when the script exports one, moves the rendezvous off torchrun's default port
        print(" ".join(torchrun_arguments(os.environ, port=int(os.environ.get("MASTER_PORT") or RENDEZVOUS_PORT))))
    except (KeyError, ValueError) as exc:
        print(f"chronos_distill.training.slurm: {exc.args[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
