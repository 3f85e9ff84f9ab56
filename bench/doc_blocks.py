"""The pages that quote benchmark figures, written from templates: tables (this module's blocks) and the figures
in the prose (``bench/doc_figures.py``) are rendered from ``bench/results`` by name, so that no figure in the README,
``bench/README.md``, ``docs/methods.md`` or ``docs/operations.md`` (:data:`PAGES`) is typed by hand.

A page's template is ``docs/templates/<name>`` (:data:`TEMPLATES`). A block sits between ``<!-- block:NAME -->``
and ``<!-- /block:NAME -->`` lines, indented as its opening marker is; a figure in the prose is
``{{section.name}}``. ``python scripts/render_docs.py`` writes every page (:func:`render_page`);
``tests/test_doc_blocks.py`` checks that each page equals its rendering and that no template types a figure, so a
changed figure, a changed results file or a page edited by hand fails. A new table becomes a block by adding its
renderer here and its markers in the template; a new figure, an entry of ``bench/doc_figures.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from common import pm, restricted, unseen_skill_kept
from doc_figures import render_figures

RESULTS = Path(__file__).resolve().parent / "results"
_BLOCK = re.compile(r"^(?P<indent>[ \t]*)<!-- block:(?P<name>[\w-]+) -->\n(?P<body>.*?)^[ \t]*<!-- /block:(?P=name) -->$",
                    re.MULTILINE | re.DOTALL)


def _general_runs(name: str) -> list[dict]:
    """Every seed's record of one ``bench/two_stage.py --stage general`` run, in seed order."""
    folder = RESULTS / "two_stage" / "general" / name
    return [json.loads(path.read_text()) for path in sorted(folder.glob("seed*.json"))]


#: the issue-40 lever runs: row label -> general run name
LEVER_ROWS = {
    "random start, 500-batch cache (the earlier recipe)": "384x2@uniform",
    "random start, 2000-batch cache": "384x2@uniform-c2000",
    "pruned start, 2000-batch cache (now the default)": "384x2@uniform-c2000-pruned",
    "pruned start, truth-only (`--alpha 0`)": "384x2@uniform-c2000-truth-only-pruned",
    "pruned start, KD mixed with the stream's truth (`--alpha 0.5`)": "384x2@uniform-c2000-alpha0.5-pruned",
    "pruned start, real M3 contexts at share 0.25 (`--general-real-share 0.25`)": "384x2@uniform-c2000-m3real0.25-pruned",
    "pruned start, real M3 contexts at share 0.5": "384x2@uniform-c2000-m3real0.5-pruned",
}


def two_stage_levers() -> str:
    """The issue-40 levers: validation score (what chose), M1 + M3 test WQL and the suite at 18 and 64 steps, each
    vs the teacher, and the share of the teacher's skill over seasonal naive kept on M1 + M3 and on M1 alone (the
    real set no stage of a real-share run saw) (``pm``: mean ± std
    from 3 seeds, else each seed's value and the count)."""
    lines = ["| general student | validation | M1 + M3 test WQL | M1 + M3 skill kept | M1 skill kept | suite at 18 "
             "| suite at 64 |", "|---|---|---|---|---|---|---|"]
    for label, name in LEVER_ROWS.items():
        runs = _general_runs(name)
        if not runs:  # a lever not run yet
            continue
        columns = [[r["validation_general"]["score"] for r in runs], [r["unseen"]["vs_teacher"] for r in runs],
                   [unseen_skill_kept(r["unseen"]) for r in runs],
                   [unseen_skill_kept(restricted(r["unseen"], "m1_")) for r in runs],
                   [r["suite"]["18"]["geomean"] for r in runs], [r["suite"]["64"]["geomean"] for r in runs]]
        lines.append(f"| {label} | " + " | ".join(pm(values) for values in columns) + " |")
    return "\n".join(lines)


#: stage one's family: row label -> (general run name, the latency shape timed on this row or None)
FAMILY_ROWS = {
    "256x2, `mixed` contexts": ("256x2@mixed", "256x2"),
    "384x2, `mixed`": ("384x2@mixed", "384x2"),
    "384x2, `log-uniform`": ("384x2@log-uniform", None),
    "384x2, `mixed`, horizons capped at 18": ("384x2@mixed-h18", None),
    "384x2, `uniform` (the default contexts)": ("384x2@uniform", None),
}


def two_stage_family() -> str:
    """Stage one's general students (random starts, 2000 steps, 500-batch caches): parameters, M1 + M3 test WQL
    and the suite at 18 and 64 steps vs the teacher, and the median forecast time of 64 M1 monthly series
    (``--stage latency``, one timed run per shape, shown on that shape's first row)."""
    latency = json.loads((RESULTS / "two_stage" / "latency.json").read_text())
    timings, parameters = latency["timings"]["64"], latency["parameters"]
    lines = ["| general student | parameters | M1 + M3 WQL | suite at 18 | suite at 64 | forecast, batch 64 |",
             "|---|---|---|---|---|---|"]
    for label, (name, shape) in FAMILY_ROWS.items():
        runs = _general_runs(name)
        columns = [[r["unseen"]["vs_teacher"] for r in runs], [r["suite"]["18"]["geomean"] for r in runs],
                   [r["suite"]["64"]["geomean"] for r in runs]]
        time = f"{1000 * timings[shape]['median_s']:.1f} ms" if shape else ""
        lines.append(f"| {label} | {runs[0]['parameters'] / 1e6:.1f}M | " + " | ".join(pm(v) for v in columns)
                     + f" | {time} |")
    lines.append(f"| teacher v2 | {parameters['teacher'] / 1e6:.1f}M | 1 | 1 | 1 | "
                 f"{1000 * timings['teacher']['median_s']:.1f} ms |")
    return "\n".join(lines)


#: stage two's task students: row label -> task run name
TASK_ROWS = {"KD from scratch": "KD", "two-stage: KD from the 384x2 general student": "two-stage"}


def two_stage_task() -> str:
    """Stage two (cross-domain): WQL vs the teacher in-domain (M3) and held out (M1), the suite at 18 and 64 steps."""
    lines = ["| task student | in-domain (M3) | held-out (M1) | suite at 18 | suite at 64 |", "|---|---|---|---|---|"]
    for label, name in TASK_ROWS.items():
        folder = RESULTS / "two_stage" / "task" / name
        runs = [json.loads(path.read_text()) for path in sorted(folder.glob("seed*.json"))]
        real = [pm([r[kind]["vs_teacher"] for r in runs]) for kind in ("in-domain", "held-out")]
        suite = [pm([r["suite"][h]["geomean"] for r in runs], 2, "x") for h in ("18", "64")]
        lines.append(f"| {label} | " + " | ".join(real + suite) + " |")
    return "\n".join(lines)


#: the ablation's variants: row label -> run key in ablation.json
ABLATION_ROWS = {"output only": "output", "+ feature": "+feature", "+ attention": "+attention", "all": "all"}


def ablation() -> str:
    """``bench/ablation.py``: M3 WQL vs the teacher of each loss variant, over its seeds."""
    runs = json.loads((RESULTS / "ablation.json").read_text())["runs"]
    lines = ["| variant | WQL vs teacher |", "|---|---|"]
    lines += [f"| {label} | {pm([r['vs_teacher'] for r in runs[key]])} |" for label, key in ABLATION_ROWS.items()]
    return "\n".join(lines)


#: bench/retention.py's table: row label -> (regime, variant)
RETENTION_ROWS = {
    "cross-domain (M3 training series), truth-only": ("cross-domain", "truth-only"),
    "cross-domain, KD": ("cross-domain", "KD"),
    "cross-domain, KD + general {share}": ("cross-domain", "KD+general"),
    "low-data (10% of M3's training series), truth-only": ("low-data", "truth-only"),
    "low-data, KD": ("low-data", "KD"),
    "general (`--general`, no user data)": ("general", "KD"),
}


def retention() -> str:
    """``bench/retention.py``: student / teacher in-domain (M3), held out (M1; for the general regime M1 + M3)
    and on the suite at 64 steps, per regime and variant, over its seeds."""
    lines = ["| regime, variant | in-domain (M3) | held-out (M1) | suite |", "|---|---|---|---|"]
    for label, (regime, variant) in RETENTION_ROWS.items():
        runs = list(json.loads((RESULTS / f"retention_{regime}.json").read_text())["runs"][variant].values())
        label = label.format(share=f"{runs[0]['general_share']:g}" if runs[0].get("general_share") else "")
        held = pm([r["held-out"]["vs_teacher"] for r in runs])
        suite = [r["suite"]["geomean"] for r in runs]
        if regime == "general":  # no user data: its held-out set is M1 + M3's test portions, nothing in-domain
            cells = ["M1 + M3: " + held, "", pm(suite, 3, "x")]
        else:
            cells = [pm([r["in-domain"]["vs_teacher"] for r in runs]), held, pm(suite, 2, "x")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: bench/ensemble.py's table: (directly scored label, teacher key, student label, student key); a "{weights}" in a
#: label is the auto weights of the first seed's run
ENSEMBLE_ROWS = [
    ("v0", "reference-v0", "v0", "from v0"),
    ("v1", "reference-v1", "v1", "from v1"),
    ("v2", "reference-v2", "v2", "from v2"),
    ("AutoETS", "AutoETS", None, None),
    ("v0 + v1 + v2, equal", "v0+v1+v2 (equal)", None, None),
    ("v0 + v1 + v2, auto ({weights})", "v0+v1+v2 (auto)", "v0 + v1 + v2, auto", "from v0+v1+v2 (auto)"),
    ("v2 + AutoETS, equal", "v2+AutoETS (equal)", "v2 + AutoETS", "from v2+AutoETS"),
]


def ensemble() -> str:
    """``bench/ensemble.py``: each teacher and ensemble scored directly beside the student distilled from it, WQL and
    MASE relative to seasonal naive (geometric mean over the six M1 / M3 test portions; students over their seeds)."""
    result = json.loads((RESULTS / "ensemble.json").read_text())
    teachers, students = result["teachers"], result["students"]
    size = {seeds["0"]["parameters"] for seeds in students.values()}.pop()
    weights = " / ".join(f"{w:.2f}" for w in result["auto_weights"].values())
    lines = [f"| scored directly | WQL | MASE | | student ({size / 1e6:.1f}M) distilled from | WQL | MASE |",
             "|---|---|---|---|---|---|---|"]
    for label, teacher, student_label, student in ENSEMBLE_ROWS:
        row = [label.format(weights=weights), f"{teachers[teacher]['WQL']:.4f}", f"{teachers[teacher]['MASE']:.4f}", ""]
        if student is None:
            row += ["", "", ""]
        else:
            seeds = students[student].values()
            row += [student_label, pm([s["WQL"] for s in seeds], 4), pm([s["MASE"] for s in seeds], 4)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _deploy_speedup(pair: dict, faster: str, slower: str, shape: str) -> float:
    latency = pair["latency"][shape]
    return latency[slower]["median_s"] / latency[faster]["median_s"]


def deploy() -> str:
    """``bench/deploy.py``'s targets beside what it measured: ONNX int8 against the same student in PyTorch fp32 at
    batch 64, int8's M3 WQL against fp32's, all of M3 end to end against the teacher, and the 384/6 ONNX int8
    student against the 768/12 teacher (median latencies)."""
    pairs = json.loads((RESULTS / "deploy.json").read_text())["pairs"]
    ours, shapes = pairs["reference"], pairs["random 768/12 vs 384/6"]
    int8, fp32, teacher = "student, ONNX int8", "student, PyTorch fp32", "teacher, PyTorch"

    def speedups(pair: dict, slower: str, batches: tuple[str, ...], context: int) -> str:
        return " / ".join(f"{_deploy_speedup(pair, int8, slower, f'{b} x {context}'):.2f}x" for b in batches)

    m3 = ours["m3"]
    end_to_end = {name: m3["end_to_end"][name]["median_s"] for name in (int8, teacher)}
    measured = [
        f"{speedups(ours, fp32, ('64',), 512)} (context 512), {speedups(ours, fp32, ('64',), 2048)} (2048); "
        f"384/6 shapes {speedups(shapes, fp32, ('64',), 512)} / {speedups(shapes, fp32, ('64',), 2048)}",
        f"{m3['vs_fp32'][int8]:.4f}",
        f"{end_to_end[teacher] / end_to_end[int8]:.2f}x ({end_to_end[int8]:.2f} s vs {end_to_end[teacher]:.2f} s)",
        f"{speedups(shapes, teacher, ('64', '1'), 512)} (context 512), {speedups(shapes, teacher, ('64', '1'), 2048)} "
        "(2048)",
    ]
    return "\n".join([
        "| | ONNX int8 vs the same student in PyTorch fp32, batch 64 | M3 WQL, ONNX int8 / fp32 | all of M3 end to end "
        "vs teacher in PyTorch | 384/6 ONNX int8 vs 768/12 teacher, batch 64 / batch 1 |",
        "|---|---|---|---|---|",
        "| measured | " + " | ".join(measured) + " |",
        "| target | 1.5x | within 1% | 4x | 12x |",
    ])


def fev_example() -> str:
    """``bench/fev_example.py``: the README's ``evaluate --fev`` command and the leaderboard it printed, as a console
    session (the command wrapped before ``--fev``)."""
    result = json.loads((RESULTS / "fev_example" / "provenance.json").read_text())
    command = result["readme_command"].replace(" --fev", " \\\n    --fev", 1)
    printed = result["printed"]
    tables = printed[next(i for i, line in enumerate(printed) if line.startswith("|")):]
    return "\n".join(["```", f"$ {command}", *tables, "```"])


BLOCKS: dict[str, Callable[[], str]] = {
    "retention": retention, "ablation": ablation, "two-stage-levers": two_stage_levers,
    "two-stage-family": two_stage_family, "two-stage-task": two_stage_task, "ensemble": ensemble, "deploy": deploy,
    "fev-example": fev_example,
}
#: the pages written from a template (``docs/templates/``) by ``scripts/render_docs.py``: page -> its template
TEMPLATES = {"README.md": "README.md", "bench/README.md": "bench-README.md", "docs/methods.md": "methods.md",
             "docs/operations.md": "operations.md"}
PAGES = tuple(TEMPLATES)
ROOT = RESULTS.parents[1]


def render_page(page: str) -> str:
    """``page`` (a key of :data:`TEMPLATES`) as its template renders it: a line naming the template, then the
    template with its figures (``{{section.name}}``, ``bench/doc_figures.py``) and its blocks filled in."""
    template = f"docs/templates/{TEMPLATES[page]}"
    head = f"<!-- written by scripts/render_docs.py from {template}: edit the template, then run the script -->\n"
    return head + render_blocks(render_figures((ROOT / template).read_text()))


def blocks_in(text: str) -> dict[str, str]:
    """Each block of a page: name -> its body as written (without the indentation)."""
    return {m["name"]: _dedent(m["body"], m["indent"]) for m in _BLOCK.finditer(text)}


def render_blocks(text: str) -> str:
    """``text`` with every block's body rendered afresh (an unknown block name is an error)."""

    def fill(match: re.Match) -> str:
        name, indent = match["name"], match["indent"]
        if name not in BLOCKS:
            raise KeyError(f"no renderer for block {name!r} (bench/doc_blocks.py BLOCKS)")
        body = "".join(f"{indent}{line}\n" if line else "\n" for line in BLOCKS[name]().split("\n"))
        return f"{indent}<!-- block:{name} -->\n{body}{indent}<!-- /block:{name} -->"

    return _BLOCK.sub(fill, text)


def _dedent(body: str, indent: str) -> str:
    return "\n".join(line.removeprefix(indent) for line in body.rstrip("\n").split("\n"))
