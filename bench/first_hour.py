"""The README's first hour, run as a new user runs it: a trial distillation on a CSV file, and the cost of a step at
the defaults, each through the command line in a fresh process on this machine's CPU.

The file is the 3003 M3 training portions as a long CSV (``item_id``, ``timestamp``, ``target``: the layout the
README shows). The trial is the README's trial command (100 steps at batch 32); the defaults' cost is the mean
step of a 3-step run at the default batch (256), from its own record. Wall time and the CPU time of the command
(user + system, every thread) are both kept. The README quotes ``first_hour.json``.

    OMP_NUM_THREADS=1 python bench/first_hour.py --out bench/results
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from common import arguments, load_json, provenance, run_cli, write_json, write_page

from chronos_distill.data.competition import training_table

#: The README's trial command, after ``chronos-distill``; DATA and OUT are filled in.
TRIAL = ["distill", "--teacher", "reference", "--train-data", "DATA", "--prediction-length", "18", "--output", "OUT",
         "--max-steps", "100", "--batch-size", "32"]
#: Steps of the run at the default batch size whose mean step is the defaults' cost.
DEFAULT_STEPS = 3


def _run(argv: list[str], cwd: Path) -> dict[str, float]:
    """``chronos-distill ARGV`` in a fresh process in ``cwd`` (its paths relative there, as a user types them, so
    that what it prints names no folder of this machine): its wall and CPU seconds (user + system of the child)."""
    done, wall, cpu = run_cli(argv, cwd)
    return {"wall_seconds": wall, "cpu_seconds": cpu, "printed": done.stdout.strip().splitlines()[-2:]}


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="first-hour-"))
    data = work / "m3.csv"
    table = training_table(("M3",))
    table.to_csv(data, index=False)

    trial_argv = [{"DATA": data.name, "OUT": "runs/trial"}.get(word, word) for word in TRIAL]
    trial = _run(trial_argv, work)
    trial_record = json.loads((work / "runs" / "trial" / "model" / "distillation.json").read_text())["training"]
    defaults_argv = [*trial_argv[:trial_argv.index("--output")], "--output", "runs/defaults",
                     "--max-steps", str(DEFAULT_STEPS)]
    defaults = _run(defaults_argv, work)
    defaults_record = json.loads((work / "runs" / "defaults" / "model" / "distillation.json").read_text())["training"]

    result = {
        "provenance": provenance("reference", sys.argv[1:] if argv is None else argv, "first_hour.py"),
        "data": {"series": int(table["item_id"].nunique()), "rows": len(table), "columns": list(table.columns)},
        "trial": {"command": "chronos-distill " + " ".join(trial_argv),
                  **trial, "steps": trial_record["steps"], "train_runtime_s": trial_record["train_runtime_s"]},
        "defaults": {"command": "chronos-distill " + " ".join(defaults_argv), "batch_size": 256,
                     "steps": defaults_record["steps"], **defaults,
                     "seconds_per_step": defaults_record["train_runtime_s"] / defaults_record["steps"],
                     "default_max_steps": 1000},
    }
    result["defaults"]["hours_for_default_steps"] = result["defaults"]["seconds_per_step"] * 1000 / 3600
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "first_hour.json", result)
    write_page(out, "first_hour", page)
    print(json.dumps({k: result[k] for k in ("trial", "defaults")}, indent=2))
    return 0


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from ``folder``'s results (:func:`common.write_page`): figures, and the trial's command."""
    r = load_json(folder, "first_hour.json")
    trial, defaults = r["trial"], r["defaults"]

    def duration(seconds: float) -> str:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s" if minutes else f"{rest} s"

    command = trial["command"].replace("m3.csv", "sales.csv")
    return {"figures": {"default_step": f"{defaults['seconds_per_step']:.1f} s",
                        "default_hours": f"{defaults['hours_for_default_steps']:.1f} hours",
                        "trial_wall": duration(trial["wall_seconds"]), "trial_cpu": duration(trial["cpu_seconds"])},
            "blocks": {"trial-command": f"```bash\n{command}\n```"}}


if __name__ == "__main__":
    raise SystemExit(main())
