"""Every figure the pages quote from a benchmark is in the results file it cites (issue 33): a reader can find each
number of bench/README.md, the README's demo paragraph, the fev example and the deploy table (docs/operations.md)
in ``bench/results/``. The tables are generated blocks, checked exactly by ``tests/test_doc_blocks.py``; this
fuzzy match covers the prose around them.

A figure is a decimal number in the prose (code spans, which hold options like ``--alpha 0.5``, are left out). It
is found when a number of a cited file rounds to it at the README's precision, or when it is derived from the
figures found beside it in the same passage: a difference, twice one (2 std), a ratio, or a relative gap in percent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FIGURE = re.compile(r"(?<![\w.])(\d+\.\d+)(?![\w.]*\w)")
NUMBER = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")
#: passages outside the Benchmarks section: where each starts, where it ends, and the results it quotes
PASSAGES = {
    "demo": ("The main job (`chronos-distill` without arguments", "\n\n", ["demo/demo.json"]),
    "fev example": ("On the local M3 monthly task", "\n## ", ["fev_example/"]),
    "deploy table": ("| | ONNX int8 vs the same student", "\n\n", ["deploy.md", "deploy.json"]),
}


#: the pages that quote benchmark figures: the README, the documentation and bench/README.md (the benchmarks)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "CONTRIBUTING.md"]
BENCH_README = ROOT / "bench" / "README.md"


def pages_text() -> str:
    return "\n\n".join(page.read_text() for page in PAGES)


def passages(readme: str) -> dict[str, tuple[str, list[Path]]]:
    """name -> (its prose, the results files it cites): each bullet of bench/README.md, and :data:`PASSAGES` found in
    ``readme`` (the other pages' text)."""
    out = {}
    bench = BENCH_README.read_text()
    for bullet in re.split(r"\n(?=- `bench/)", bench)[1:]:
        script = re.match(r"- `bench/([\w.]+)", bullet).group(1)
        cited = [c.strip("/") for c in re.findall(r"`([\w/.\-]+)`", bullet)]
        stem = script.removesuffix(".py")
        out[script] = (bullet, _files(cited) + [p for p in RESULTS.glob(f"{stem}*") if p.is_file()])
    for name, (first, last, cited) in PASSAGES.items():
        start = readme.index(first)
        out[name] = (readme[start:readme.index(last, start + 5)], _files([c.strip("/") for c in cited]))
    return out


def _files(cited: list[str]) -> list[Path]:
    files = []
    for name in cited:
        for candidate in (RESULTS / name, *RESULTS.rglob(Path(name).name)):
            if candidate.is_dir():
                files += [f for f in candidate.rglob("*") if f.is_file()]
            elif candidate.is_file():
                files.append(candidate)
    files = [f for f in set(files) if f.suffix in (".md", ".json", ".csv")]
    # a passage that cites a report is checked against the reports alone: the per-run JSON files hold so many
    # numbers that nearly any 3-digit typo would be one of them
    reports = [f for f in files if f.suffix == ".md"]
    return reports or files


def unfound(prose: str, files: list[Path]) -> list[str]:
    """The figures of ``prose`` that neither a cited file holds nor the found figures beside them give."""
    pool = {float(n) for f in files if f.suffix in (".md", ".json", ".csv") for n in NUMBER.findall(f.read_text())}
    text = re.sub(r"`[^`]*`", "", prose)
    figures = list(dict.fromkeys(FIGURE.findall(text)))

    def matches(figure: str, values) -> bool:
        digits = len(figure.split(".")[1])
        return any(abs(round(v, digits) - float(figure)) < 1e-9 for v in values)

    found = [f for f in figures if matches(f, pool)]
    values = [float(f) for f in found]
    derived = ({abs(a - b) for a in values for b in values} | {2 * a for a in values}
               | {a / b for a in values for b in values if b}
               | {100 * abs(a / b - 1) for a in values for b in values if b})
    return [f for f in figures if f not in found and not matches(f, derived)]


def test_every_readme_figure_is_in_the_results_file_it_cites():
    readme = pages_text()
    missing = {name: unfound(prose, files) for name, (prose, files) in passages(readme).items()}
    assert all(files for _, files in passages(readme).values()), "a passage cites no results file"
    assert not {k: v for k, v in missing.items() if v}, missing


def test_a_changed_figure_is_caught():
    readme = pages_text()
    prose, files = passages(readme)["two_stage.py"]
    figure = next(f for f in FIGURE.findall(re.sub(r"`[^`]*`", "", prose)) if len(f.split(".")[1]) == 3)
    assert unfound(prose, files) == []
    # a typo a reader would catch; the cited report holds hundreds of figures and the passage's pairwise ratios and
    # differences many more, so most 3-digit typos land on one of them by chance (the fuzzy match's known blind
    # spot, which generated blocks are to replace): a typo that lands on none must be caught
    typos = [f"{float(figure) + 0.0173 + 0.0371 * k:.3f}" for k in range(40)]
    caught = [typo for typo in typos if unfound(prose.replace(figure, typo, 1), files) == [typo]]
    assert caught, typos


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
