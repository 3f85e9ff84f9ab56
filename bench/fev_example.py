"""The README's fev example, run as printed: ``chronos-distill evaluate --fev m3-monthly-local`` on the reference
teacher and a student, its leaderboard and summaries kept with what produced them (``<out>/fev_example/``).

    python bench/fev_example.py --student runs/demo/student/model --out bench/results
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import arguments, provenance, run_cli, write_json, write_page


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--student", required=True, help="the student's model folder")
    parser.add_argument("--student-name", default="runs/demo/student/model",
                        help="how the README names it (the path of the README's demo)")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="fev-example-"))
    command = ["evaluate", "--model", f"teacher=reference,student={args.student}", "--fev", "m3-monthly-local",
               "--output", str(scratch / "fev-m3")]
    done, _, _ = run_cli(command)
    out = Path(args.out) / "fev_example"
    out.mkdir(parents=True, exist_ok=True)
    # the scratch folder stands for the README's working folder: the kept files name runs/fev-m3, as the
    # README's command writes it
    for name in ("fev_leaderboard.md", "fev_leaderboard.csv", "fev_summaries.csv"):
        text = (scratch / "fev-m3" / name).read_text().replace(str(scratch), "runs")
        (out / name).write_text(text)
    readme_command = (f"chronos-distill evaluate --model teacher=reference,student={args.student_name} "
                      "--fev m3-monthly-local --output runs/fev-m3")
    write_json(out / "provenance.json", {
        "provenance": provenance("reference", argv, "fev_example.py"), "readme_command": readme_command,
        "printed": done.stdout.replace(str(scratch), "runs").strip().splitlines()})
    write_page(args.out, "fev_example/provenance", page)
    print(done.stdout)
    return 0


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote (:func:`common.write_page`): the README's ``evaluate --fev`` command and the leaderboard
    it printed, as a console session (the command wrapped before ``--fev``)."""
    result = json.loads((folder / "fev_example" / "provenance.json").read_text())
    command = result["readme_command"].replace(" --fev", " \\\n    --fev", 1)
    printed = result["printed"]
    tables = printed[next(i for i, line in enumerate(printed) if line.startswith("|")):]
    return {"figures": {}, "blocks": {"fev-example": "\n".join(["```", f"$ {command}", *tables, "```"])}}


if __name__ == "__main__":
    raise SystemExit(main())
