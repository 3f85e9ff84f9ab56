"""The README's main command, run as a user runs it, its printed figures kept with what produced them.

Runs ``chronos-distill`` (the demo, no arguments) in a fresh process, exactly the README's command, and copies the
summary it writes beside its student (``runs/demo/summary.json``) to ``<out>/demo/demo.json`` with the commit, the
command, the teacher's weights digest and the machine. The README's demo paragraph quotes this file (a test checks
each of its figures there).

    python bench/demo.py --out bench/results
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import provenance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=None, help="the folder the command runs in (it writes runs/demo there) "
                        "[default: a temporary folder]")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    work = Path(args.runs or tempfile.mkdtemp(prefix="demo-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    executable = Path(sys.executable).with_name("chronos-distill")
    start = time.perf_counter()
    done = subprocess.run([str(executable)], cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit("the demo failed")
    summary = json.loads((work / "runs" / "demo" / "summary.json").read_text())
    summary["output"] = "runs/demo/student/model"
    # where the command ran (a scratch folder) does not change the run: the recorded command leaves it out
    given = sys.argv[1:] if argv is None else argv
    kept = [w for i, w in enumerate(given) if w != "--runs" and (i == 0 or given[i - 1] != "--runs")]
    result = {"provenance": provenance("reference", kept, "demo.py"), "readme_command": "chronos-distill",
              "wall_seconds_with_imports": wall, "printed": done.stdout.strip().splitlines()[-6:], **summary}
    out = Path(args.out) / "demo"
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("wall_seconds_with_imports", "seconds", "after", "m3_monthly")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
