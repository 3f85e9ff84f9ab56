"""How long a user waits for an option error: in Python from the call to the raised ``ConfigError`` (the package
and transformers already imported, as in a notebook), and on the command line from the command to its one-line
error (a fresh process: the import is part of the wait). Targets (issue 47): within 0.1 s in Python, within 3 s on
the command line, each before any model is loaded.

Each case is timed ``--repeats`` times, the cases of a group in turn; the median and IQR are kept.

    python bench/option_errors.py --out bench/results
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from common import arguments, interleaved_timing, provenance, write_results

from chronos_distill import ConfigError, DistillationConfig, DistillConfig

PYTHON_TARGET_S, CLI_TARGET_S = 0.1, 3.0


def _refused(build) -> None:
    try:
        build()
    except ConfigError:
        return
    raise SystemExit("a case meant to be refused was accepted")


def python_cases(folder: Path) -> dict:
    run = dict(output_dir=str(folder / "run"), teacher="reference", prediction_length=12)
    return {
        "DistillConfig(max_step=3): misspelt name": lambda: _refused(
            lambda: DistillConfig(teacher="reference", general=True, output="x", max_step=3)),
        "DistillationConfig(alpha=5): out of range": lambda: _refused(lambda: DistillationConfig(**run, alpha=5)),
        "DistillationConfig(num_train_epochs=1): not honoured": lambda: _refused(
            lambda: DistillationConfig(**run, num_train_epochs=1)),
        "DistillationConfig(fp16=True, bf16=True): transformers refuses": lambda: _refused(
            lambda: DistillationConfig(**run, fp16=True, bf16=True)),
    }


def cli_cases(folder: Path) -> dict:
    executable = str(Path(sys.executable).with_name("chronos-distill"))
    data = folder / "d.csv"
    data.write_text("item_id,timestamp,target\na,2020-01-01,1\n")

    def refused(*argv: str):
        def run() -> None:
            done = subprocess.run([executable, *argv], capture_output=True, text=True, cwd=folder)
            if done.returncode != 2 or len(done.stderr.strip().splitlines()) != 1:
                raise SystemExit(f"chronos-distill {' '.join(argv)}: expected one error line, got {done.stderr!r}")
        return run

    return {
        "distill --alpha 5": refused("distill", "--teacher", "reference", "--general", "--output", "o", "--alpha", "5"),
        "distill --trainer-args num_train_epochs": refused(
            "distill", "--teacher", "reference", "--general", "--output", "o", "--trainer-args",
            '{"num_train_epochs": 1}'),
        "predict: missing data file": refused("predict", "--model", "reference", "--data", "missing.csv",
                                              "--prediction-length", "3", "--output", "f.csv"),
        "predict: misspelt target column": refused("predict", "--model", "reference", "--data", str(data),
                                                   "--prediction-length", "3", "--output", "f.csv", "--target", "sales"),
        "evaluate: missing data file": refused("evaluate", "--model", "reference", "--data", "missing.csv",
                                               "--prediction-length", "3"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="option-errors-"))
    python = interleaved_timing(python_cases(folder), repeats=args.repeats * 4, warmup=1)
    cli = interleaved_timing(cli_cases(folder), repeats=args.repeats, warmup=1)
    # the cases name the bundled teacher (none is loaded: each is refused first)
    results = {"provenance": provenance("reference", sys.argv[1:] if argv is None else argv, "option_errors.py"),
               "targets_s": {"python": PYTHON_TARGET_S, "command_line": CLI_TARGET_S},
               "python": python, "command_line": cli,
               "met": {"python": all(v["median_s"] <= PYTHON_TARGET_S for v in python.values()),
                       "command_line": all(v["median_s"] <= CLI_TARGET_S for v in cli.values())}}
    lines = ["# How long an option error takes", "", "Command: `python bench/option_errors.py "
             + " ".join(sys.argv[1:] if argv is None else argv) + "`", "",
             "Median seconds (IQR) from the call or command to the one-line error; the cases of a group timed in "
             "turn. Python: the package already imported; command line: a fresh process, its imports included.", "",
             "| case | seconds | target |", "|---|---|---|"]
    for group, timed, target in (("Python", python, PYTHON_TARGET_S), ("command line", cli, CLI_TARGET_S)):
        for name, t in timed.items():
            lines.append(f"| {group}: {name} | {t['median_s']:.4f} ({t['iqr_s']:.4f}) | "
                         f"{'met' if t['median_s'] <= target else 'missed'} (<= {target:g} s) |")
    write_results(args.out, "option_errors", "\n".join(lines) + "\n", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
