"""Restart-to-training time under ``torchrun --max-restarts 1`` (issue 49): how long a cluster job loses when a
worker dies, from the kill until the first optimizer step after torchrun restarted the job, split into torchrun's
part (the kill until the restarted worker starts Python) and the run's own (imports, teacher, student, data,
checkpoint, up to the end of the first step). For the tiny student (d_model 32) and the default one, both from the
reference teacher; 2 CPU processes, rank 1 SIGKILLed as step 4 begins (checkpoint-2: 1 step redone).

Each student is restarted ``--repeats`` times, the two in turn; the median and IQR are kept.

    python bench/restart_time.py --out bench/results
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KILL_AT_STEP = 4
STUDENTS = {"tiny": ["--student-d-model", "32", "--student-num-heads", "2", "--student-d-ff", "64"], "default": []}


def worker(marks: Path, argv: list[str]) -> int:
    """One torchrun worker: ``chronos-distill distill argv``; rank 1 of the first start notes the time and kills
    itself as step ``KILL_AT_STEP`` begins, rank 0 of the restart notes when it starts and ends its first step."""
    started = time.time()
    import transformers

    from chronos_distill.cli import main

    restart, rank = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"), os.environ.get("RANK", "0")
    if restart != "0" and rank == "0":
        (marks / "restarted_python").write_text(str(started))

    class Marks(transformers.TrainerCallback):
        first = True

        def on_step_begin(self, args, state, control, **kwargs):
            if restart == "0" and rank == "1" and state.global_step == KILL_AT_STEP - 1:
                (marks / "killed").write_text(str(time.time()))
                os.kill(os.getpid(), signal.SIGKILL)

        def on_step_end(self, args, state, control, **kwargs):
            if restart != "0" and rank == "0" and self.first:
                (marks / "first_step").write_text(str(time.time()))
                self.first = False

    original = transformers.Trainer.__init__

    def init(self, *a, **kw):
        original(self, *a, **kw)
        self.add_callback(Marks())

    transformers.Trainer.__init__ = init
    return main(argv)


def restart_once(student: str, folder: Path) -> dict[str, float]:
    from chronos_distill.data.synthetic import seasonal_long_table

    data = folder / "train.csv"
    if not data.is_file():
        seasonal_long_table(n_series=64, length=400, seed=0).to_csv(data, index=False)
    marks = Path(tempfile.mkdtemp(dir=folder))
    argv = ["distill", "--teacher", "reference", "--train-data", str(data), "--prediction-length", "12", "--output",
            str(marks / "run"), "--max-steps", str(KILL_AT_STEP + 1), "--save-steps", "2", "--batch-size", "32",
            "--resume", "auto", *STUDENTS[student]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "--max-restarts", "1", __file__, "--worker", str(marks), *argv], env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{student}: the restarted run failed:\n{done.stderr[-3000:]}")
    t = {name: float((marks / name).read_text()) for name in ("killed", "restarted_python", "first_step")}
    return {"total_s": t["first_step"] - t["killed"], "torchrun_s": t["restarted_python"] - t["killed"],
            "run_s": t["first_step"] - t["restarted_python"]}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        return worker(Path(argv[1]), argv[2:])
    sys.path.insert(0, str(Path(__file__).parent))
    import numpy as np
    from common import arguments, command_line, provenance, write_results

    parser = arguments(__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    times: dict[str, list[dict[str, float]]] = {name: [] for name in STUDENTS}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeats):
            for student in STUDENTS:  # interleaved: the machine's drift falls on both
                times[student].append(restart_once(student, Path(scratch)))
                print(student, {k: round(v, 2) for k, v in times[student][-1].items()}, flush=True)

    def summary(values: list[float]) -> dict[str, float]:
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        return {"median_s": float(median), "iqr_s": float(q3 - q1), "values_s": values}

    results = {"provenance": provenance("reference", argv, "restart_time.py"), "repeats": args.repeats,
               "kill_at_step": KILL_AT_STEP, "processes": 2,
               "students": {s: {part: summary([t[part] for t in runs]) for part in ("total_s", "torchrun_s", "run_s")}
                            for s, runs in times.items()}}
    lines = ["# Restart-to-training time under torchrun --max-restarts 1", "",
             f"`{command_line('restart_time.py', argv)}`", "",
             f"2 CPU processes, rank 1 SIGKILLed as step {KILL_AT_STEP} begins; from the kill to the end of the first "
             f"step after torchrun restarted the job (torchrun: the kill until the restarted worker starts Python; "
             f"run: from there to the end of that step). Median and IQR of {args.repeats} restarts per student, the "
             "students in turn.", "",
             "| student | kill to first step | torchrun | the run's start and first step |", "|---|---|---|---|"]
    for student, parts in results["students"].items():
        cells = [f"{parts[p]['median_s']:.1f} s " + (f"(IQR {parts[p]['iqr_s']:.1f})" if args.repeats > 1
                                                      else "(1 restart)") for p in ("total_s", "torchrun_s", "run_s")]
        lines.append(f"| {student} | " + " | ".join(cells) + " |")
    write_results(args.out, "restart_time", "\n".join(lines) + "\n", results)
    print(json.dumps(results["students"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
