"""Teacher cache: computed once, reused by later runs, recomputed when teacher, data or windows change."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import PREDICTION_LENGTH, TINY_STUDENT

import chronos_distill.distillation.trainer as trainer_module
from chronos_distill import distill, load_teacher
from chronos_distill.chronos2.forward import normalised_quantiles
from chronos_distill.data.series import load_series
from chronos_distill.data.teacher_cache import MANIFEST, cache_key, cached_transfer_set, load_cache, windows_fingerprint

FAST = dict(batch_size=16, learning_rate=3e-3, logging_steps=1, **TINY_STUDENT)
WINDOWS = dict(context_length=128, prediction_length=PREDICTION_LENGTH, batch_size=16, output_patch_size=16, min_past=12)


@pytest.fixture
def teacher_calls(monkeypatch):
    """Count the trainer's teacher forwards."""
    calls = []
    original = trainer_module.normalised_quantiles

    def counting(model, batch):
        calls.append(1)
        return original(model, batch)

    monkeypatch.setattr(trainer_module, "normalised_quantiles", counting)
    return calls


def test_cache_is_built_once_then_reused_without_running_the_teacher(teacher_dir, table, tmp_path, teacher_calls):
    options = dict(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH, max_steps=6,
                   save_steps=6, teacher_cache=str(tmp_path / "cache"), cache_batches=3, **FAST)
    first = distill(output=str(tmp_path / "a"), **options)
    assert first.record["training"]["teacher_cache"]["reused"] is False
    assert first.record["training"]["teacher_cache"]["build_seconds"] >= 0  # the labelling cost, which reusing runs share
    assert first.record["training"]["teacher_cache"]["held_on"] == "cpu"  # no GPU here
    assert teacher_calls == []  # 6 steps = 2 epochs over 3 cached batches, no live teacher call
    folder = first.record["training"]["teacher_cache"]["folder"]
    stamp = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")}

    second = distill(output=str(tmp_path / "b"), **options)
    assert second.record["training"]["teacher_cache"] == {**first.record["training"]["teacher_cache"], "reused": True}
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")} == stamp  # nothing rewritten
    assert second.record["training"]["teacher_cache"]["folder"] == folder
    # same seed, same fixed windows, same teacher targets: the same student
    for a, b in zip(first.student.parameters(), second.student.parameters()):
        assert torch.equal(a, b)

    # feature distillation still needs the live teacher (and says so by running it)
    distill(output=str(tmp_path / "c"), feature_weight=0.1, **{**options, "max_steps": 2, "save_steps": 2})
    assert len(teacher_calls) == 2


def test_cached_predictions_are_the_teachers_and_the_key_tracks_what_they_depend_on(teacher_dir, table, tmp_path):
    teacher = load_teacher(teacher_dir)
    series = load_series(table, PREDICTION_LENGTH, target=["target"])
    dataset, folder, reused = cached_transfer_set(tmp_path, teacher, series, 2, 0, **WINDOWS)
    assert not reused and (folder / MANIFEST).is_file()
    for batch in dataset.batches:
        live = normalised_quantiles(teacher, batch)
        torch.testing.assert_close(batch["teacher_quantiles"], live, rtol=1e-5, atol=1e-5)

    windows = windows_fingerprint(series, 0, **WINDOWS)
    key = cache_key(teacher, series, {"n_batches": 2, "seed": 0, **WINDOWS, "windows": windows})
    assert folder.name == key
    assert cache_key(teacher, series, {"n_batches": 2, "seed": 1, **WINDOWS}) != key  # windows
    fewer = load_series(table[table["item_id"] != table["item_id"].iloc[0]], PREDICTION_LENGTH, target=["target"])
    assert cache_key(teacher, fewer, {"n_batches": 2, "seed": 0, **WINDOWS}) != key  # data
    with torch.no_grad():
        next(teacher.parameters()).add_(1e-3)
    assert cache_key(teacher, series, {"n_batches": 2, "seed": 0, **WINDOWS}) != key  # teacher weights


def test_cached_batches_move_whole_to_a_device_and_are_held_on_a_gpu_only_when_they_fit(teacher_dir, table, tmp_path):
    """On a GPU the cache is held on the device for the whole run when it takes at most a quarter of the free
    memory and batches are read in the training process; here the move is checked on torch's meta device."""
    from chronos_distill.data.teacher_cache import fits_on_gpu

    teacher = load_teacher(teacher_dir)
    series = load_series(table, PREDICTION_LENGTH, target=["target"])
    dataset, _, _ = cached_transfer_set(tmp_path, teacher, series, 2, 0, **WINDOWS)
    tensors = [v for batch in dataset.batches for v in batch.values() if isinstance(v, torch.Tensor)]
    assert dataset.nbytes == sum(t.numel() * t.element_size() for t in tensors) > 0
    assert dataset.to("meta") is dataset and dataset.device == torch.device("meta")
    assert all(v.is_meta for batch in dataset.batches for v in batch.values() if isinstance(v, torch.Tensor))
    drawn = next(iter(dataset))
    assert drawn["teacher_quantiles"].is_meta and isinstance(drawn["num_output_patches"], int)
    # the rule at its boundary, in numbers chosen by hand (not restated from GPU_CACHE_SHARE): with 8 GiB free,
    # a cache of 2 GiB (a quarter) is held on the GPU, one byte more is not; 10 GB free takes 2.5 GB exactly
    free = 8 * 2**30
    assert fits_on_gpu(2 * 2**30, free, num_workers=0)
    assert not fits_on_gpu(2 * 2**30 + 1, free, num_workers=0)
    assert fits_on_gpu(2_500_000_000, 10_000_000_000, num_workers=0)
    assert not fits_on_gpu(2_500_000_001, 10_000_000_000, num_workers=0)
    assert fits_on_gpu(0, 3, num_workers=0) and not fits_on_gpu(1, 3, num_workers=0)  # a quarter of 3 is under 1
    # with DataLoader workers never, however small the cache: workers cannot hand on CUDA tensors they did not make
    assert not fits_on_gpu(1, free, num_workers=1) and not fits_on_gpu(1, free, num_workers=2)


def test_a_cache_without_manifest_is_rebuilt(teacher_dir, table, tmp_path):
    teacher = load_teacher(teacher_dir)
    series = load_series(table, PREDICTION_LENGTH, target=["target"])
    _, folder, _ = cached_transfer_set(tmp_path, teacher, series, 2, 0, **WINDOWS)
    (folder / MANIFEST).unlink()  # as after a crash while the shards were being written
    assert load_cache(folder) is None
    _, again, reused = cached_transfer_set(tmp_path, teacher, series, 2, 0, **WINDOWS)
    assert again == folder and not reused and (folder / MANIFEST).is_file()


def test_an_interrupted_build_keeps_its_shards_and_the_next_run_labels_only_the_missing_ones(teacher_dir, table,
                                                                                            tmp_path, monkeypatch):
    import chronos_distill.data.teacher_cache as cache_module

    monkeypatch.setattr(cache_module, "BATCHES_PER_SHARD", 1)  # 3 batches, 3 shards
    teacher = load_teacher(teacher_dir)
    series = load_series(table, PREDICTION_LENGTH, target=["target"])
    _, folder, _ = cached_transfer_set(tmp_path / "whole", teacher, series, 3, 0, **WINDOWS)
    whole = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(whole) == [MANIFEST, "shard-00000.parquet", "shard-00001.parquet", "shard-00002.parquet"]

    # a build stopped after its first two shards: no manifest, so no cache yet
    partial = tmp_path / "partial" / folder.name
    partial.mkdir(parents=True)
    for name in ("shard-00000.parquet", "shard-00001.parquet"):
        (partial / name).write_bytes(whole[name])
    labelled = []
    original = cache_module.label_batch
    monkeypatch.setattr(cache_module, "label_batch", lambda t, b: labelled.append(1) or original(t, b))
    _, again, reused = cached_transfer_set(tmp_path / "partial", teacher, series, 3, 0, **WINDOWS)
    assert again == partial and not reused
    assert labelled == [1]  # only the third batch
    # the same cache as one uninterrupted build (the manifest's labelling time aside)
    assert {p.name: p.read_bytes() for p in partial.iterdir() if p.name != MANIFEST} == {
        name: data for name, data in whole.items() if name != MANIFEST}
    assert _untimed(json.loads((partial / MANIFEST).read_text())) == _untimed(json.loads(whole[MANIFEST]))


def _untimed(manifest: dict) -> dict:
    """A manifest without its labelling wall time, which no two builds share."""
    assert manifest.pop("build_seconds") >= 0
    return manifest
