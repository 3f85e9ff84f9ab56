"""The corpus-scale benchmark (bench/scale.py) on tiny corpora: every stage measures in its own process and the
results file names what produced it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import scale  # noqa: E402


@pytest.mark.slow
def test_scale_measures_check_distill_and_labelling_on_one_and_two_processes(teacher_dir, tmp_path):
    out = tmp_path / "out"
    assert scale.main(["--sizes", "40,80", "--freqs", "monthly,daily", "--growth", "20,80", "--length", "60",
                       "--shards", "3", "--distill-sizes", "40", "--steps", "3", "--shard-series", "20", "--batches-per-shard", "1", "--label-batches", "4",
                       "--label-teacher", teacher_dir, "--scratch", str(tmp_path / "scratch"), "--out", str(out)]) == 0
    results = json.loads((out / "scale.json").read_text())
    assert len(results["provenance"]["commit"]) == 40 and results["provenance"]["teacher"]["weights_sha256"]
    rows = {(r["frequency"], r["series"]): r for r in results["check"]}
    assert set(rows) == {("monthly", 40), ("monthly", 80), ("daily", 40), ("daily", 80)}
    assert all(r["n_series"] == r["series"] and r["n_observations"] == r["series"] * 60 and r["seconds"] > 0
               for r in rows.values())
    assert results["growth"]["small"] == 20 and results["growth"]["ratio"] > 0
    whole, streamed = results["distill"]
    assert (whole["streamed"], streamed["streamed"], streamed["shards"]) == (False, True, 2)
    assert all(r["to_first_step_s"] > 0 and r["seconds_per_step"] > 0 and r["steps"] == 3 for r in (whole, streamed))
    one, two = results["label"]["runs"]
    assert (one["processes"], two["processes"]) == (1, 2) and one["key"] == two["key"]
    assert not one["reused"] and not two["reused"]  # each built its own cache
    text = (out / "scale.md").read_text()
    assert "| 80 | 60 | daily | 4,800 |" in text and "same cache key: yes" in text
    assert (out / "scale.png").read_bytes()[:4] == b"\x89PNG"
