"""The benchmark pages cite their results: each bullet of bench/README.md names results files that exist under
``bench/results/`` (every figure in it is copied from such files by name, ``tests/test_pages.py``), and a
results file that names its teacher by an alias scored the teacher the page says."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def test_every_benchmark_bullet_cites_results_files_that_exist():
    bench = (ROOT / "bench" / "README.md").read_text()
    bullets = re.split(r"\n(?=- `bench/)", bench.partition("## Retired benchmarks")[0])[1:]
    assert {re.match(r"- `bench/([\w.]+)", b).group(1) for b in bullets} >= {"two_stage.py", "speed.py", "scale.py"}
    for bullet in bullets:
        script = re.match(r"- `bench/([\w.]+)", bullet).group(1)
        assert (ROOT / "bench" / script).is_file(), script
        # a name (`teacher.md`), a path under bench/results, or a pattern (`transfer_*.md`, `retention_<regime>.md`)
        cited = [c.strip("/") for c in re.findall(r"`([\w/.\-<>*]+\.(?:md|json|png))`", bullet)]
        patterns = [re.sub(r"<\w+>", "*", c) for c in cited]
        missing = [c for c in patterns if not any(RESULTS.rglob(c))]
        assert cited and not missing, (script, cited, missing)


def test_the_results_files_that_name_their_teacher_by_alias_scored_the_teacher_the_readme_says():
    """quality.json predates per-file provenance and names its teacher `reference`, an alias that moved v0 -> v1 ->
    v2; the README says it ran with v2. Its teacher's M3 scores must be v2's, as teacher.json scored them."""
    results = Path(__file__).resolve().parents[1] / "bench" / "results"
    quality = json.loads((results / "quality.json").read_text())
    teachers = json.loads((results / "teacher.json").read_text())["m3"]["datasets"]
    for name, scored in quality["teacher_scores"]["datasets"].items():
        by_version = {v: teachers[name]["scores"][v]["WQL"] for v in ("v0", "v1", "v2")}
        matching = [v for v, wql in by_version.items() if abs(wql - scored["scores"]["teacher"]["WQL"]) < 1e-9]
        assert matching == ["v2"], (name, by_version, scored["scores"]["teacher"])
