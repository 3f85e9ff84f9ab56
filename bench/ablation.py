"""Ablation of intermediate-layer distillation: output only vs +feature vs +attention vs all (M3).

Every variant distills the same default student (384-d, half the teacher's blocks, uniform layer map) from
the same teacher on the same transfer set (M1 + M3 training portions), steps, batch and seed; only the loss
differs. The output weight ``alpha`` stays 0.5 in every variant and the feature / attention weights are taken
from the truth (hard) term, so "+feature" means "some of the truth's weight moved to the teacher's hidden
states":

============  =====  =======  =========  ====
variant       alpha  feature  attention  hard
============  =====  =======  =========  ====
output        0.5    0        0          0.5
+feature      0.5    0.2      0          0.3
+attention    0.5    0        0.2        0.3
all           0.5    0.1      0.1        0.3
============  =====  =======  =========  ====

Feature loss: MSE after the ``linear_norm`` projection (RMS-normalised states, so its scale does not depend on
the residual stream's magnitude); attention: KL of head-averaged maps, time and group attention.

Each variant trains in its own process, once per seed (``--seeds``, default 0,1,2), which reports its seconds
per step and its peak resident memory: peaks of one process would mix the variants. Every student is scored on
M3; the report gives mean ± std over seeds.

    python bench/ablation.py [--teacher reference] [--steps 1000] [--seeds 0,1,2] [--out bench/results]

Writes ``ablation.md`` and ``ablation.json`` into ``--out``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import (
    add_training_arguments,
    arguments,
    command_line,
    mean_std,
    pm,
    provenance,
    run_options,
    score,
    score_student,
    seeds_of,
    train_in_subprocess,
    write_results,
)
from harness import over_seeds, pm_over

VARIANTS = {
    "output": dict(alpha=0.5),
    "+feature": dict(alpha=0.5, feature_weight=0.2),
    "+attention": dict(alpha=0.5, attention_weight=0.2),
    "all": dict(alpha=0.5, feature_weight=0.1, attention_weight=0.1),
}
SHARED_LOSS_OPTIONS = dict(feature_loss="mse", feature_projection="linear_norm", attention_loss="kl",
                           attention_kind="both", layer_map="uniform")


def main(argv=None) -> int:
    parser = arguments(__doc__)
    add_training_arguments(parser, steps=1000, runs="runs/bench-ablation")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")

    from chronos_distill.data.competition import load_benchmarks, training_table

    transfer = training_table(("M1", "M3"))
    benchmarks = load_benchmarks("M3")
    teacher = score({"teacher": args.teacher}, benchmarks)
    def run_variant(name: str, seed: int) -> dict:
        run = train_in_subprocess(run_options(
            args, seed, Path(args.runs) / f"{name.replace('+', 'plus-')}-seed{seed}", train_data=transfer,
            **SHARED_LOSS_OPTIONS, **VARIANTS[name]))
        scored = {"seconds_per_step": run["seconds_per_step"], "peak_rss_mb": run["peak_rss_mb"],
                  "final_losses": run["record"]["final_losses"], "loss": run["record"]["loss"],
                  **score_student(run["model_dir"], benchmarks, teacher)}
        print(f"seed {seed} {name}: {scored['vs_teacher']:.4f} x teacher, {run['seconds_per_step']:.3f} s/step",
              flush=True)
        return scored

    runs = over_seeds(names, seeds_of(args), run_variant)

    datasets = list(benchmarks)
    lines = ["# Ablation: output vs feature vs attention distillation (M3)", "",
             f"Command: `{command_line('ablation.py', argv)}`", "",
             f"{args.steps} steps per variant; seeds {seeds_of(args)}; mean ± std over seeds (sample std). Each run "
             "trains in its own process, whose peak resident memory is reported.", "",
             "| variant | " + " | ".join(f"{d} WQL" for d in datasets) + " | WQL vs teacher | s/step | peak RSS (MB) |",
             "|---|" + "---|" * (len(datasets) + 3)]
    lines.append("| teacher | " + " | ".join(f"{teacher['datasets'][d]['scores']['teacher']['WQL']:.4f}" for d in datasets)
                 + " | 1 | - | - |")
    for name, variant_runs in runs.items():
        lines.append(f"| {name} | " + " | ".join(pm_over(variant_runs, "scores", d, "WQL", digits=4)
                                                  for d in datasets)
                     + f" | {pm_over(variant_runs, 'vs_teacher')} | "
                     f"{mean_std([r['seconds_per_step'] for r in variant_runs])[0]:.3f} | "
                     f"{mean_std([r['peak_rss_mb'] for r in variant_runs])[0]:.0f} |")
    result = {"command": command_line("ablation.py", argv), "provenance": provenance(args.teacher, argv, "ablation.py"),
              "seeds": seeds_of(args), "steps": args.steps,
              "teacher_scores": teacher, "runs": runs}
    write_results(args.out, "ablation", "\n".join(lines) + "\n", result, page=page)
    return 0

# -- what the pages quote (common.write_page; scripts/render_docs.py copies it) --------------------------------


#: the ablation's variants: row label -> run key in ablation.json
ABLATION_ROWS = {"output only": "output", "+ feature": "+feature", "+ attention": "+attention", "all": "all"}


def ablation_table(folder: Path) -> str:
    """``bench/ablation.py``: M3 WQL vs the teacher of each loss variant, over its seeds."""
    runs = json.loads((folder / "ablation.json").read_text())["runs"]
    lines = ["| variant | WQL vs teacher |", "|---|---|"]
    lines += [f"| {label} | {pm([r['vs_teacher'] for r in runs[key]])} |" for label, key in ABLATION_ROWS.items()]
    return "\n".join(lines)


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from this benchmark's results in ``folder``, by name: figures in the prose, and blocks
    (tables, a command); written into its results file's ``"page"`` (:func:`common.write_page`)."""
    return {"figures": {},
            "blocks": {"ablation": ablation_table(folder)}}


if __name__ == "__main__":
    sys.exit(main())
