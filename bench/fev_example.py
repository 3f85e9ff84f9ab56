"""The README's fev example, run as printed: ``chronos-distill evaluate --fev m3-monthly-local`` on the reference
teacher and a student, its leaderboard and summaries kept with what produced them (``<out>/fev_example/``).

    python bench/fev_example.py --student runs/demo/student/model --out bench/results
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import provenance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", required=True, help="the student's model folder")
    parser.add_argument("--student-name", default="runs/demo/student/model",
                        help="how the README names it (the path of the README's demo)")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="fev-example-"))
    command = ["evaluate", "--model", f"teacher=reference,student={args.student}", "--fev", "m3-monthly-local",
               "--output", str(scratch / "fev-m3")]
    done = subprocess.run([str(Path(sys.executable).with_name("chronos-distill")), *command], capture_output=True,
                          text=True)
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit("the fev example failed")
    out = Path(args.out) / "fev_example"
    out.mkdir(parents=True, exist_ok=True)
    # the scratch folder stands for the README's working folder: the kept files name runs/fev-m3, as the
    # README's command writes it
    for name in ("fev_leaderboard.md", "fev_leaderboard.csv", "fev_summaries.csv"):
        text = (scratch / "fev-m3" / name).read_text().replace(str(scratch), "runs")
        (out / name).write_text(text)
    readme_command = (f"chronos-distill evaluate --model teacher=reference,student={args.student_name} "
                      "--fev m3-monthly-local --output runs/fev-m3")
    (out / "provenance.json").write_text(json.dumps({
        "provenance": provenance("reference", argv, "fev_example.py"), "readme_command": readme_command,
        "printed": done.stdout.replace(str(scratch), "runs").strip().splitlines()}, indent=2) + "\n")
    print(done.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
