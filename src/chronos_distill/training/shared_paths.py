"""The folders every process of a multi-node run must share, checked when the processes first meet.

Rank 0 alone prepares the output folder, writes the checkpoints and the export, and writes the teacher cache's
manifest; every rank reads the checkpoints to resume and the cache to train. On nodes with their own disks a rank
would find none of it, and fail far later (a missing manifest, a resume from nothing). So, once the process group
exists, rank 0 writes a probe file into each such folder, and every rank must see it: one that does not stops at
once with a line naming the folder and the fix (a path every node mounts).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from chronos_distill.errors import DistillError

PROBE_PREFIX = ".chronos-distill-shared-"


def check_shared_folders(folders: dict[str, Path]) -> None:
    """Check that every process sees the folders rank 0 writes: ``folders`` maps what each is (``output``,
    ``teacher_cache``) to its path, as this process resolves it. A no-op outside a process group of 2 or more."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return
    rank = dist.get_rank()
    token = [uuid.uuid4().hex if rank == 0 else None]
    dist.broadcast_object_list(token, src=0)
    probes = {name: Path(folder).expanduser() / f"{PROBE_PREFIX}{token[0]}" for name, folder in folders.items()}
    if rank == 0:
        for probe in probes.values():
            probe.parent.mkdir(parents=True, exist_ok=True)
            probe.write_text("written by rank 0; every rank must see this file\n")
    dist.barrier()
    missing = [name for name, probe in probes.items() if not probe.is_file()]
    seen = [None] * dist.get_world_size()
    dist.all_gather_object(seen, missing)  # every rank learns who is blind, so every rank stops together
    if rank == 0:
        for probe in probes.values():
            probe.unlink(missing_ok=True)
    blind = {r: names for r, names in enumerate(seen) if names}
    if blind:
        (r, names), others = next(iter(blind.items())), sorted(blind)[1:]
        name = names[0]
        raise DistillError(
            f"{name} folder {folders[name]} is not shared: rank {r} (of {len(seen)}) does not see the file rank 0 "
            f"wrote there{' (nor do ranks ' + ', '.join(map(str, others)) + ')' if others else ''}; put {name} on a "
            "path every node mounts (a network filesystem), as an absolute path")
