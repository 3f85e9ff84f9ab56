"""Teacher cache: pay the teacher's forward passes once for a fixed transfer set of windows.

With ``teacher_cache`` set, the transfer set is ``cache_batches`` batches of windows drawn once by
``Chronos2Dataset`` (the same sampler as without a cache) with the run's seed. The teacher's normalised
quantiles for them are computed once and stored as Parquet shards, with the batches themselves, under
``<teacher_cache>/<key>/``. The key hashes the teacher's weights and config (for an ensemble of teachers, every
member's and its weight), the training series and every windowing option, so a changed teacher, data set or window option gets a fresh cache and an unchanged one is
reused by later epochs and later runs. Training then cycles through the cached batches (in a seeded order per
epoch) and the trainer reads the teacher's predictions instead of running it.

What it does not cover: feature and attention distillation need the teacher's hidden states and attention
projections, which are far too large to store, so with ``feature_weight`` or ``attention_weight`` above 0 the
teacher still runs live (the cached batches are still used as the fixed transfer set). Validation batches are
not cached.

Under ``torchrun`` every rank labels its share of the shards (shard k on rank k mod the number of ranks), and rank
0 writes the manifest once all are there: the shards, the key and the manifest are the same for any number of
ranks, so a cache built on 8 GPUs is used on 1 and the reverse. Shards are written to a temporary file and
renamed, and ``manifest.json`` is written last: a crash while building leaves no manifest, and the next run labels
only the shards still missing instead of reading half a cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from accelerate import PartialState
from chronos.chronos2 import Chronos2Model
from torch.utils.data import IterableDataset

from chronos_distill.chronos2.forward import normalised_quantiles
from chronos_distill.chronos2.student import digest_weights
from chronos_distill.data.series import SeriesSet
from chronos_distill.data.windows import draw_windows
from chronos_distill.errors import DistillError
from chronos_distill.files import write_atomic, write_json_atomic

logger = logging.getLogger(__name__)

CACHE_FORMAT = 3  # 2: batches carry teacher_rows (teacher-only transfer rows); 3: the key has a windows fingerprint
MANIFEST = "manifest.json"
#: The seed that draws a ``--general`` run's cached batches, whatever the run's own seed: every student and seed of
#: a general family trains on one labelled set, labelled once.
GENERAL_CACHE_SEED = 0
BATCHES_PER_SHARD = 64
#: shard metadata: the summed distance of each ensemble member to the combined target over the shard's batches
DISTANCES_METADATA = "member_distance_sums"
#: batch entries stored per cached batch (tensors), besides the integer num_output_patches
_INTEGER = {"group_ids": torch.long, "teacher_rows": torch.bool}
_TENSORS = ("context", "future_target", "future_covariates", "group_ids", "teacher_rows", "teacher_quantiles")
#: the share of a GPU's free memory the cached batches may take to be held there for the whole run (a cache of
#: 1000 batches of 256 rows, context 2048, is about 2.3 GB; the rest is the step's)
GPU_CACHE_SHARE = 0.25


def windows_fingerprint(series: SeriesSet, seed: int, shares=None, **dataset_options: Any) -> str:
    """sha256 of the first batch that the run's sampler draws (the same seed and options as the transfer set).

    The options alone do not say which rows are drawn: a change to ``Chronos2Dataset``'s sampling or to the
    transfer generators (the synthetic rows, TSMixup) draws other rows from the same options. Their first batch
    does change, and with it the cache key, so a cache built by other code is never reused.
    """
    (batch,) = draw_windows(series, 1, seed, shares=shares, **dataset_options)
    digest = hashlib.sha256()
    for name in sorted(batch):
        value = batch[name]
        digest.update(name.encode())
        digest.update(value.contiguous().numpy().tobytes() if torch.is_tensor(value) else repr(value).encode())
    return digest.hexdigest()


def cache_key(teacher: Chronos2Model | Any, series: SeriesSet, windowing: dict[str, Any]) -> str:
    """sha256 over the teacher's weights and config (every member's and its weight, for an ensemble), the series'
    values and the windowing options (which include the fingerprint of :func:`windows_fingerprint`)."""
    digest = hashlib.sha256()
    digest.update(f"chronos-distill teacher cache v{CACHE_FORMAT}".encode())
    if isinstance(teacher, Chronos2Model):
        digest_weights(digest, teacher)
    else:
        teacher.fingerprint(digest)
    for prepared in series.inputs:
        for field in ("context", "future_covariates"):
            digest.update(prepared[field].float().contiguous().numpy().tobytes())
        digest.update(str((prepared["n_targets"], prepared["n_covariates"], prepared["n_future_covariates"])).encode())
    digest.update(json.dumps(windowing, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def label_batch(teacher: Chronos2Model | Any, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The teacher's normalised quantiles of ``batch`` and, for an ensemble (any callable returning
    ``(target, distances)``), each member's distance to the combined target."""
    if isinstance(teacher, Chronos2Model):
        return normalised_quantiles(teacher, batch), None
    return teacher(batch)


def shard_names(n_batches: int) -> list[str]:
    """The cache's shard files, ``BATCHES_PER_SHARD`` batches each: the same for any number of labelling ranks."""
    return [f"shard-{k:05d}.parquet" for k in range((n_batches + BATCHES_PER_SHARD - 1) // BATCHES_PER_SHARD)]


@torch.no_grad()
def build_cache(
    folder: Path, key: str, teacher: Chronos2Model | Any, batches: list[dict[str, Any]],
    device: str | torch.device = "cpu", rank: int = 0, world: int = 1,
) -> list[str]:
    """Run the teacher (or ensemble) on this rank's shards of ``batches`` (shard k when k % world == rank) and
    write them into ``folder / key``; returns the shards written. A shard already there (an interrupted build's)
    is kept, not labelled again. An ensemble's summed distance of each member to the combined target goes into
    each shard's metadata, for :func:`write_manifest`."""
    target = folder / key
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for index, name in enumerate(shard_names(len(batches))):
        if index % world != rank or _complete_shard(target / name):
            continue
        rows: dict[str, list] = {name: [] for name in _TENSORS}
        rows.update({f"{name}_shape": [] for name in _TENSORS})
        rows["num_output_patches"] = []
        distance_sum = None
        for batch in batches[index * BATCHES_PER_SHARD : (index + 1) * BATCHES_PER_SHARD]:
            on_device = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            quantiles, distances = label_batch(teacher, on_device)
            quantiles = quantiles.float().cpu()
            if distances is not None:
                distance_sum = distances.cpu() if distance_sum is None else distance_sum + distances.cpu()
            teacher_rows = batch.get("teacher_rows", torch.zeros(batch["context"].shape[0], dtype=torch.bool))
            values = {**{k: batch[k] for k in _TENSORS if k not in ("teacher_quantiles", "teacher_rows")},
                      "teacher_rows": teacher_rows, "teacher_quantiles": quantiles}
            for field in _TENSORS:
                array = values[field].numpy()
                rows[field].append(array.reshape(-1).astype(np.int64 if field in _INTEGER else np.float32))
                rows[f"{field}_shape"].append(list(array.shape))
            rows["num_output_patches"].append(int(batch["num_output_patches"]))
        metadata = {DISTANCES_METADATA: json.dumps(None if distance_sum is None else distance_sum.tolist())}
        table = pa.table(rows).replace_schema_metadata(metadata)
        write_atomic(target / name, lambda tmp, table=table: pq.write_table(table, tmp))
        written.append(name)
    return written


def write_manifest(folder: Path, key: str, n_batches: int, build_seconds: float | None = None) -> None:
    """The manifest, once every shard is written (by any number of ranks): what makes the cache complete. Member
    distances are summed shard by shard in shard order, so they do not depend on which rank labelled what.
    ``build_seconds`` is the labelling's wall time (rank 0's), kept so that every run reusing the cache can count
    the teacher's cost it shares."""
    target = folder / key
    shards = shard_names(n_batches)
    missing = [name for name in shards if not _complete_shard(target / name)]
    if missing:
        raise DistillError(f"teacher cache {target}: shard(s) {missing[:3]} were not written by any rank; run again "
                           "to label them")
    manifest: dict[str, Any] = {"format": CACHE_FORMAT, "key": key, "n_batches": n_batches, "shards": shards,
                                "build_seconds": None if build_seconds is None else round(build_seconds, 1)}
    sums = [json.loads(pq.read_schema(target / name).metadata[DISTANCES_METADATA.encode()]) for name in shards]
    if sums[0] is not None:
        manifest["member_distances"] = (np.sum(np.asarray(sums, dtype=np.float64), axis=0) / n_batches).tolist()
    write_json_atomic(target / MANIFEST, manifest)


def _complete_shard(path: Path) -> bool:
    """A shard written whole (shards are renamed into place, so one with its metadata is complete)."""
    try:
        return DISTANCES_METADATA.encode() in (pq.read_schema(path).metadata or {})
    except (OSError, pa.ArrowException):
        return False


def cache_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a built cache folder (``<teacher_cache>/<key>``)."""
    return json.loads((folder / MANIFEST).read_text())


def load_cache(folder: Path) -> list[dict[str, Any]] | None:
    """The cached batches of ``folder`` (a ``<teacher_cache>/<key>`` folder), or None when it holds no complete cache."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        info = json.loads(manifest.read_text())
        batches = []
        for shard in info["shards"]:
            table = pq.read_table(folder / shard).to_pydict()
            for i in range(len(table["num_output_patches"])):
                batch: dict[str, Any] = {"num_output_patches": table["num_output_patches"][i]}
                for name in _TENSORS:
                    dtype = _INTEGER.get(name, torch.float32)
                    batch[name] = torch.tensor(table[name][i], dtype=dtype).reshape(table[f"{name}_shape"][i])
                batches.append(batch)
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        raise DistillError(f"teacher cache {folder} is unreadable ({exc}); delete the folder to rebuild it") from exc
    if len(batches) != info["n_batches"]:
        raise DistillError(f"teacher cache {folder} holds {len(batches)} batches, its manifest says {info['n_batches']}")
    return batches


class CachedBatches(IterableDataset):
    """Endless iteration over fixed batches, each epoch in a fresh order drawn from numpy's global RNG (which the
    Trainer seeds and checkpoints, so a resumed run continues the same order)."""

    def __init__(self, batches: list[dict[str, Any]], batch_size: int):
        self.batches = batches
        self.batch_size = batch_size  # read by Chronos2Trainer's loader checks

    @property
    def device(self) -> torch.device:
        """Where the batches are held (the CPU until :meth:`to` moves them)."""
        return self.batches[0]["context"].device if self.batches else torch.device("cpu")

    @property
    def nbytes(self) -> int:
        """The bytes of every cached tensor."""
        return sum(v.nbytes for batch in self.batches for v in batch.values() if isinstance(v, torch.Tensor))

    def to(self, device: torch.device | str) -> CachedBatches:
        """Holds every batch on ``device`` (in place), so that a step copies nothing to a GPU."""
        self.batches = [{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                        for batch in self.batches]
        return self

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            for index in np.random.permutation(len(self.batches)):
                yield dict(self.batches[index])


def fits_on_gpu(cache_bytes: int, free_bytes: int, num_workers: int) -> bool:
    """Whether cached batches of ``cache_bytes`` are held on a GPU with ``free_bytes`` free: within
    :data:`GPU_CACHE_SHARE` of it, and only when batches are read in the training process (DataLoader workers
    cannot hand on CUDA tensors they did not make)."""
    return num_workers == 0 and cache_bytes <= GPU_CACHE_SHARE * free_bytes


def cached_transfer_set(
    folder: str | Path, teacher: Chronos2Model | Any, series: SeriesSet, n_batches: int, seed: int, shares=None,
    **dataset_options: Any,
) -> tuple[CachedBatches, Path, bool]:
    """The fixed transfer set with the teacher's predictions: from the cache when its key matches, else built.
``teacher`` is a ``Chronos2Model`` or a teacher ensemble (``fingerprint(digest)``, ``to(device)``, and called on a
batch: ``(target, distances)``).

    ``shares`` (:class:`chronos_distill.data.transfer.TransferShares`) adds the teacher-only rows to the cached
    batches, and is part of the key. Returns the dataset, the cache folder used, and whether it was reused
    (True) or computed now (False).
    """

    windowing = {"n_batches": n_batches, "seed": seed, **dataset_options,
                 "windows": windows_fingerprint(series, seed, shares=shares, **dataset_options)}
    if shares is not None and shares.total > 0:
        windowing["transfer"] = shares.to_dict()
    key = cache_key(teacher, series, windowing)
    target = Path(folder).expanduser() / key
    # the accelerator's process: its device (cuda:<local rank> under torchrun), and rank 0 first. Without a
    # GPU, accelerate joins the ranks of a CPU job only when asked to (as the Trainer does with use_cpu)
    state = PartialState(cpu=not torch.cuda.is_available())
    started = time.perf_counter()
    batches = load_cache(target)
    reused = batches is not None
    # every rank labels its own shards of a missing cache (each draws the same windows: drawing is cheap, the
    # teacher is not); rank 0 writes the manifest once all are written. Every rank passes both barriers, so the
    # ranks stay in step whatever each found.
    if batches is None:
        logger.info("teacher cache: computing the teacher's predictions for %d batches into %s (rank %d of %d "
                    "labels its share)", n_batches, target, state.process_index, state.num_processes)
        windows = draw_windows(series, n_batches, seed, shares=shares, **dataset_options)
        build_cache(Path(folder).expanduser(), key, teacher.to(state.device), windows, device=state.device,
                    rank=state.process_index, world=state.num_processes)
    state.wait_for_everyone()
    if state.is_main_process and not (target / MANIFEST).is_file():
        write_manifest(Path(folder).expanduser(), key, n_batches, time.perf_counter() - started)
    state.wait_for_everyone()
    if batches is None:
        batches = load_cache(target)
    else:
        logger.info("teacher cache: reusing %s", target)
    return CachedBatches(batches, dataset_options["batch_size"]), target, reused
