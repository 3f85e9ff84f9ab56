"""The README's main command, run as a user runs it, its printed figures kept with what produced them.

Runs ``chronos-distill`` (the demo, no arguments) in a fresh process, exactly the README's command, and copies the
summary it writes beside its student (``runs/demo/summary.json``) to ``<out>/demo/demo.json`` with the commit, the
command, the teacher's weights digest and the machine. The README's demo paragraph quotes this file (a test checks
each of its figures there).

    python bench/demo.py --out bench/results
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from common import arguments, fmt, load_json, provenance, run_cli, write_json, write_page


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--runs", default=None, help="the folder the command runs in (it writes runs/demo there) "
                        "[default: a temporary folder]")
    args = parser.parse_args(argv)
    work = Path(args.runs or tempfile.mkdtemp(prefix="demo-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    done, wall, _ = run_cli([], cwd=work)
    summary = json.loads((work / "runs" / "demo" / "summary.json").read_text())
    summary["output"] = "runs/demo/student/model"
    # where the command ran (a scratch folder) does not change the run: the recorded command leaves it out
    given = sys.argv[1:] if argv is None else argv
    kept = [w for i, w in enumerate(given) if w != "--runs" and (i == 0 or given[i - 1] != "--runs")]
    result = {"provenance": provenance("reference", kept, "demo.py"), "readme_command": "chronos-distill",
              "wall_seconds_with_imports": wall, "printed": done.stdout.strip().splitlines()[-6:], **summary}
    out = Path(args.out) / "demo"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "demo.json", result)
    write_page(args.out, "demo/demo", page)
    print(json.dumps({k: result[k] for k in ("wall_seconds_with_imports", "seconds", "after", "m3_monthly")}, indent=2))
    return 0


def page(folder: Path) -> dict[str, dict[str, str]]:
    """The figures the pages quote from ``folder``'s results (:func:`common.write_page`)."""
    r = load_json(folder, "demo/demo.json")
    seconds, m3 = r["seconds"], r["m3_monthly"]
    minutes, rest = divmod(round(r["wall_seconds_with_imports"]), 60)
    return {"figures": {
        "wall": f"{minutes} min {rest} s", "training_s": f"{seconds['training_steps']:.0f} s",
        "per_step": fmt(seconds["per_step"], 2) + " s", "before_s": f"{seconds['distance_before']:.0f} s",
        "scoring_s": f"{seconds['scoring']:.0f} s", "teacher_parameters": f"{r['teacher_parameters'] / 1e6:.0f}M",
        "student_parameters": f"{r['student_parameters'] / 1e6:.1f}M",
        "distance_before": fmt(r["before"]["agreement"], 2), "distance_after": fmt(r["after"]["agreement"], 2),
        **{f"{name}_wql": fmt(m3[name]["WQL"], 4) for name in ("seasonal_naive", "teacher", "student")},
    }}


if __name__ == "__main__":
    raise SystemExit(main())
