"""Training on a corpus larger than memory (``--batches-per-shard``): the series of one shard in memory at a time.

Before training, every shard is read, checked and prepared once, one at a time (:func:`check_shards`): a bad
shard is named before the first step, a series split across shards is refused, and the corpus is summarised for
the record. Training then draws ``batches_per_shard`` batches from one shard's ``Chronos2Dataset`` windows before
it moves on to the next (:class:`ShardedBatches`); each pass over the shards is in a fresh order seeded by the
run's seed and the pass. Which shard a step reads is a function of the step alone, and the windows come from
numpy's global RNG (which a checkpoint saves), so a resumed run reads the same shard and draws the same windows
as an uninterrupted one (the trainer tells the stream the step it resumes at: :meth:`ShardedBatches.resume_at`).

A corpus that fits in memory does not need this: without ``--batches-per-shard`` the shards are read into one
table and windows are drawn across all series, as from a single file.

Under ``torchrun`` each process streams only its own shards (``Source.share``: every ``world``-th shard from its
rank), checks only those, and follows the schedule over them; the processes' summaries are then joined into the
corpus's (:func:`join_process_summaries`), which also refuses a series that two processes' shards both hold.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from chronos.chronos2.dataset import DatasetMode
from torch.utils.data import IterableDataset
from transformers import TrainerCallback

from chronos_distill.data.series import SeriesSet
from chronos_distill.data.windows import make_dataset
from chronos_distill.errors import DataError

logger = logging.getLogger(__name__)


@dataclass
class ShardedCorpus:
    """A checked corpus of shards. ``load(shard)``: that shard's prepared series (checked as any training table);
    ``first``: the first shard's series, with ``described`` the summary of the whole corpus."""

    shards: list[Path]
    load: Callable[[Path], SeriesSet]
    first: SeriesSet
    #: each series' id -> the shard that holds it (the check for series split across processes needs it)
    item_shards: dict[str, str] = dataclasses.field(default_factory=dict)


def check_shards(shards: list[Path], load: Callable[[Path], SeriesSet], source: str) -> ShardedCorpus:
    """Read, check and prepare every shard once, one at a time (memory: one shard); refuse a series that appears in
    two shards. Returns the corpus, its first shard's series carrying the summary of all of them."""
    seen: dict[str, Path] = {}
    first = None
    totals = {"n_series": 0, "n_observations": 0, "min_length": None, "max_length": None}
    for shard in shards:
        series = load(shard)
        for item_id in series.ids:
            if item_id in seen:
                raise DataError(f"{source}: series {item_id!r} is in shard {seen[item_id]} and in shard {shard}; "
                                "--batches-per-shard needs each series whole in one shard (or drop it to read the "
                                "corpus as one table)")
            seen[item_id] = shard
        summary = series.summary()
        totals["n_series"] += summary["n_series"]
        totals["n_observations"] += summary["n_observations"]
        totals["min_length"] = min(filter(None, [totals["min_length"], summary["min_length"]]))
        totals["max_length"] = max(filter(None, [totals["max_length"], summary["max_length"]]))
        if first is None:
            first = series
        elif series.columns != first.columns:
            raise DataError(f"{source}: shard {shard} uses columns {series.columns}, shard {shards[0]} {first.columns}")
    assert first is not None
    described = {**first.summary(), **totals, "source": source, "n_shards": len(shards)}
    logger.info("%s: %d series in %d shards, checked one shard at a time", source, totals["n_series"], len(shards))
    return ShardedCorpus(shards=list(shards), load=load,
                         first=dataclasses.replace(first, source=source, described=described),
                         item_shards={item_id: str(shard) for item_id, shard in seen.items()})


def join_process_summaries(parts: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """The corpus summary of a multi-process run from each process's part (in rank order): ``{"summary": the
    process's SeriesSet.summary(), "item_shards": {id: shard name or None}}``. Counts add up, lengths take the
    extremes, ``n_shards`` adds up; a series held by two processes is refused, naming both shards (or
    processes)."""
    owner: dict[str, tuple[int, str | None]] = {}
    for rank, part in enumerate(parts):
        for item_id, shard in part["item_shards"].items():
            if item_id in owner:
                other_rank, other_shard = owner[item_id]
                where = (f"shard {other_shard} (process {other_rank}) and in shard {shard} (process {rank})"
                         if shard and other_shard else f"the shards of process {other_rank} and of process {rank}")
                raise DataError(f"{source}: series {item_id!r} is in {where}; under torchrun each process reads its "
                                "own shards, so each series must be whole in one shard")
            owner[item_id] = (rank, shard)
    summaries = [part["summary"] for part in parts]
    joined = {**summaries[0], "source": source}
    for key in ("n_series", "n_observations", "n_shards"):
        if key in joined:
            joined[key] = sum(int(s.get(key) or 0) for s in summaries)
    for key, pick in (("min_length", min), ("max_length", max)):
        values = [s[key] for s in summaries if s.get(key) is not None]
        if values:
            joined[key] = pick(values)
    joined["n_processes"] = len(parts)
    return joined


def shard_schedule(n_shards: int, batches_per_shard: int, seed: int, step: int) -> int:
    """The shard that step ``step`` (0-based) reads: passes of ``n_shards * batches_per_shard`` steps, each over
    every shard in an order drawn from ``(seed, pass)``, ``batches_per_shard`` consecutive steps per shard."""
    block = step // batches_per_shard
    order = np.random.default_rng([seed, block // n_shards]).permutation(n_shards)
    return int(order[block % n_shards])


class ShardedBatches(IterableDataset):
    """Endless training batches from one shard at a time (see the module doc); ``dataset_options`` as
    :func:`chronos_distill.data.windows.make_dataset` takes them, ``min_past`` included."""

    def __init__(self, corpus: ShardedCorpus, batches_per_shard: int, seed: int, **dataset_options: Any):
        self.corpus = corpus
        self.batches_per_shard = batches_per_shard
        self.seed = seed
        self.dataset_options = dataset_options
        self.batch_size = dataset_options["batch_size"]  # read by Chronos2Trainer's loader checks
        self.start_step = 0

    def resume_at(self, step: int) -> None:
        """Continue the schedule at ``step`` (the global step of the checkpoint a run resumes from)."""
        self.start_step = step

    def __iter__(self) -> Iterator[dict[str, Any]]:
        step, current, windows = self.start_step, None, None
        while True:
            shard = shard_schedule(len(self.corpus.shards), self.batches_per_shard, self.seed, step)
            if shard != current:
                windows = None  # let the last shard's series go before the next is read
                series = self.corpus.load(self.corpus.shards[shard])
                windows = iter(make_dataset(series, mode=DatasetMode.TRAIN, **self.dataset_options))
                current = shard
            yield next(windows)
            step += 1


class FollowTheStep(TrainerCallback):
    """Tells a :class:`ShardedBatches` the step training starts at (that of the checkpoint a run resumes from,
    which the Trainer has loaded when training begins), before the first batch is drawn."""

    def __init__(self, stream: ShardedBatches):
        self.stream = stream

    def on_train_begin(self, args, state, control, **kwargs):
        self.stream.resume_at(state.global_step)
        return control
