"""Pruned vs random student initialisation: M3 accuracy along the distillation run.

Both students have the default config (384-d, half the teacher's blocks, the teacher's head size) and are
distilled from the same teacher on the M1 + M3 training portions with the same steps, batch, learning-rate
schedule and seed; only ``student_init`` differs. The student is scored on M3 (WQL, MASE, geometric mean of
the WQL ratio to the teacher) before training and at each step of ``--grid``, in the same run, by a Trainer
callback on a copy of the student. "Steps to 3%" is the first grid step whose geo-mean WQL is within 3% of the
teacher's.

    python bench/pruning.py [--teacher reference] [--steps 1000] [--grid 0,100,300,1000] [--seeds 0,1,2] [--out bench/results]

Writes ``pruning.md`` and ``pruning.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path

from common import add_training_arguments, command_line, load_json, pm, provenance, seeds_of, times, write_results
from harness import over_seeds
from transformers import TrainerCallback

from chronos_distill import DistillationTrainer, load_teacher
from chronos_distill.chronos2.forward import unwrap
from chronos_distill.config import DistillConfig
from chronos_distill.data.competition import load_m3_benchmarks, training_table
from chronos_distill.evaluation.scoring import evaluate_models


def score(student, teacher_scores, benchmarks) -> dict:
    results, _ = evaluate_models({"student": copy.deepcopy(student)}, benchmarks)
    per_set = {d: r["scores"]["student"] for d, r in results["datasets"].items()}
    ratio = math.exp(sum(math.log(per_set[d]["WQL"] / teacher_scores[d]["WQL"]) for d in per_set) / len(per_set))
    return {"scores": per_set, "wql_vs_teacher": ratio}


class ScoreAlongTheWay(TrainerCallback):
    def __init__(self, grid, record, teacher_scores, benchmarks):
        self.grid, self.record, self.teacher_scores, self.benchmarks = set(grid), record, teacher_scores, benchmarks

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step in self.grid:
            self.record[state.global_step] = score(unwrap(model).student, self.teacher_scores, self.benchmarks)
            print(f"  step {state.global_step}: WQL/teacher {self.record[state.global_step]['wql_vs_teacher']:.3f}",
                  flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_training_arguments(parser, steps=1000, runs="runs/bench-pruning")
    parser.add_argument("--grid", default="0,100,300,1000", help="steps at which the student is scored")
    args = parser.parse_args(argv)
    grid = sorted({int(g) for g in args.grid.split(",")})

    benchmarks = {f"m3_{k}": b for k, b in load_m3_benchmarks().items()}
    teacher_results, _ = evaluate_models({"teacher": load_teacher(args.teacher)}, benchmarks)
    teacher_scores = {d: r["scores"]["teacher"] for d, r in teacher_results["datasets"].items()}
    transfer = training_table(("M1", "M3"))
    results: dict = {"teacher": teacher_scores, "seasonal_naive": {d: r["scores"]["seasonal_naive"]
                                                                   for d, r in teacher_results["datasets"].items()},
                     "seeds": seeds_of(args)}
    def run_init(init: str, seed: int) -> dict:
        print(f"{init} init, seed {seed}", flush=True)
        cfg = DistillConfig(teacher=args.teacher, train_data=transfer, prediction_length=args.prediction_length,
                            min_past=args.min_past, max_steps=args.steps, batch_size=args.batch_size,
                            learning_rate=args.learning_rate, seed=seed, save_steps=args.steps,
                            logging_steps=max(1, args.steps // 20), overwrite=True, student_init=init,
                            output=str(Path(args.runs) / f"{init}-seed{seed}"))
        trainer = DistillationTrainer(args=cfg)
        record: dict = {}
        if 0 in grid:
            record[0] = score(trainer.student, teacher_scores, benchmarks)
        trainer.add_callback(ScoreAlongTheWay([g for g in grid if g > 0], record, teacher_scores, benchmarks))
        output = trainer.train()
        within = [step for step in sorted(record) if record[step]["wql_vs_teacher"] <= 1.03]
        return {"along_the_way": record, "steps_to_within_3pct": within[0] if within else None,
                "train_runtime_s": output.metrics.get("train_runtime")}

    results.update(over_seeds(("random", "pruned"), seeds_of(args), run_init))
    results["command"] = command_line("pruning.py", argv)
    results["provenance"] = provenance(args.teacher, argv, "pruning.py")

    lines = ["| init | step | WQL vs teacher (geo-mean, mean ± std over seeds) |", "|---|---|---|"]
    for init in ("random", "pruned"):
        for step in grid:
            values = [r["along_the_way"][step]["wql_vs_teacher"] for r in results[init] if step in r["along_the_way"]]
            if values:
                lines.append(f"| {init} | {step} | {pm(values)} |")
    reach = {init: [r["steps_to_within_3pct"] for r in results[init]] for init in ("random", "pruned")}
    text = "\n".join([
        "# Pruned vs random student initialisation (M3)", "", f"Command: `{results['command']}`", "",
        f"Seeds {seeds_of(args)}; teacher WQL " + ", ".join(f"{d} {teacher_scores[d]['WQL']:.4f}" for d in teacher_scores)
        + ".", "", *lines, "",
        "Steps to come within 3% of the teacher's WQL (first grid point), per seed: " + "; ".join(
            f"{k} {v}" for k, v in reach.items()) + ".", "",
    ])
    write_results(args.out, "pruning", text, results, page=page)
    return 0

# -- what the pages quote (common.write_page; scripts/render_docs.py copies it) --------------------------------


def pruning_figures(folder: Path) -> dict[str, str]:
    r = load_json(folder, "pruning.json")
    return {init: times(r[init]["along_the_way"]["0"]["wql_vs_teacher"], 3 if init == "pruned" else 2)
            for init in ("pruned", "random")}


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from this benchmark's results in ``folder``, by name: figures in the prose, and blocks
    (tables, a command); written into its results file's ``"page"`` (:func:`common.write_page`)."""
    return {"figures": pruning_figures(folder)}


if __name__ == "__main__":
    raise SystemExit(main())
