"""Quality benchmark: what a distilled student keeps of its teacher on real data, and what it costs.

Compares, on M3 yearly / quarterly / monthly (official horizons, WQL and MASE next to seasonal naive):

- the teacher (by default the bundled reference teacher),
- the default 384-d student distilled from it (``alpha`` 0.5, ``quantile`` output loss),
- the same student trained on the truth only (``alpha`` 0: same data, steps and seed),
- seasonal naive,

each student once per seed (``--seeds``; mean ± std over seeds), with parameters and the CPU latency of one
forecast batch (64 M3 monthly series): end to end through ``Chronos2Pipeline.predict_quantiles`` and for the
bare model forward, teacher and student timed in turn (interleaved), median and IQR of the repeats; torch's
default threads, 2 on the project's machine. The transfer set is the training portions of M1 and M3; the test
portions are only ever scored.

    python bench/quality.py [--teacher reference] [--steps 2000] [--seeds 0,1,2] [--out bench/results]
    python bench/quality.py --students-from runs/bench-retention/full [--distilled-variant KD]

The second form scores a retention benchmark regime's students instead of training the same students again: the
full regime's were distilled on the same M1 + M3 training portions, the cross-domain regime's on M3's only; both
less the 20% of series held out to validate on.

Writes ``quality.md``, ``quality.json`` and ``quality/`` (scores and plots of seed 0's students) into ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from common import (
    add_training_arguments,
    arguments,
    command_line,
    fmt,
    interleaved_timing,
    load_json,
    mean_std,
    pm,
    provenance,
    provenance_line,
    relative_wql,
    run_options,
    score,
    score_student,
    seconds_per_step,
    seeds_of,
    times,
    train_in_subprocess,
    write_results,
)
from harness import over_seeds, pm_over

STUDENTS = {"distilled student": 0.5, "truth-only student": 0.0}


def forward_batch(contexts: list[torch.Tensor]) -> torch.Tensor:
    """The contexts left-padded with NaN into one (batch, time) tensor: chronos' own padding, as the pipeline pads."""
    from chronos.chronos2.dataset import left_pad_and_cat_2D

    return left_pad_and_cat_2D([c.reshape(1, -1).float() for c in contexts])


def latency(models: dict, contexts: list[torch.Tensor], horizon: int, repeats: int = 10) -> dict:
    """End-to-end ``predict_quantiles`` and bare-forward latency of each model, interleaved."""
    from chronos.chronos2 import Chronos2Pipeline

    batch = forward_batch(contexts)
    variants = {}
    for name, model in models.items():
        model = model.float().eval()
        pipeline = Chronos2Pipeline(model)
        patches = -(-horizon // model.chronos_config.output_patch_size)
        variants[f"{name}|forecast"] = lambda p=pipeline: p.predict_quantiles(contexts, prediction_length=horizon,
                                                                              batch_size=len(contexts))
        variants[f"{name}|forward"] = lambda m=model, n=patches: _forward(m, batch, n)
    timed = interleaved_timing(variants, repeats=repeats)
    out: dict[str, dict] = {}
    for key, value in timed.items():
        name, kind = key.split("|")
        out.setdefault(name, {})[kind] = value
    return out


@torch.inference_mode()
def _forward(model, batch, patches):
    model(context=batch, num_output_patches=patches)


def finished_run(model_dir: Path) -> dict:
    """A finished run's model folder and its record, as :func:`train_in_subprocess` returns them."""
    import json

    record_file = model_dir / "distillation.json"
    if not record_file.is_file():
        raise SystemExit(f"{model_dir} holds no finished student (no distillation.json)")
    record = json.loads(record_file.read_text())
    training = record["training"]
    return {"record": record, "model_dir": str(model_dir),
            "seconds_per_step": seconds_per_step(training)}


def main(argv=None) -> int:
    parser = arguments(__doc__)
    add_training_arguments(parser, steps=2000, runs="runs/bench-quality")
    parser.add_argument("--students-from", default=None,
                        help="score the students of a finished retention run instead of training: "
                             "DIR/<variant>/seed<k>/model (e.g. runs/bench-retention/full)")
    parser.add_argument("--distilled-variant", default="KD", help="with --students-from: the distilled student's "
                        "variant folder (truth-only is the other)")
    args = parser.parse_args(argv)
    from chronos_distill.chronos2.loading import load_chronos2, load_teacher
    from chronos_distill.data.competition import load_benchmarks, training_table
    from chronos_distill.evaluation.report import markdown_table, write_report

    transfer = training_table(("M1", "M3"))
    benchmarks = load_benchmarks("M3")
    teacher = load_teacher(args.teacher)
    teacher_results = score({"teacher": teacher}, benchmarks)
    first_students = {}

    def run_student(name: str, seed: int) -> dict:
        alpha = STUDENTS[name]
        if args.students_from:
            run = finished_run(Path(args.students_from) / (args.distilled_variant if alpha else "truth-only")
                               / f"seed{seed}" / "model")
        else:
            run = train_in_subprocess(run_options(
                args, seed, Path(args.runs) / f"{name.split()[0]}-seed{seed}", train_data=transfer, alpha=alpha,
                save_steps=max(1, args.steps // 4)))
        scored = {"model_dir": run["model_dir"], "seconds_per_step": run["seconds_per_step"],
                  "train_runtime_s": run["record"]["training"]["train_runtime_s"],
                  **score_student(run["model_dir"], benchmarks, teacher_results)}
        if name not in first_students:
            first_students[name] = load_chronos2(run["model_dir"], role="student")
        print(f"seed {seed} {name}: {scored['vs_teacher']:.4f} x teacher", flush=True)
        return scored

    runs = over_seeds(STUDENTS, seeds_of(args), run_student)

    # scores and plots of the first seed's students, next to the teacher and seasonal naive
    from chronos_distill.evaluation.scoring import evaluate_models

    first, forecasts = evaluate_models({"teacher": teacher, **first_students}, benchmarks)
    write_report(first, forecasts, benchmarks, Path(args.out) / "quality")
    monthly = benchmarks["m3_monthly"]
    contexts = [torch.tensor(c, dtype=torch.float32) for c in monthly.contexts[:64]]
    costs = latency({"teacher": teacher, "distilled student": first_students["distilled student"]}, contexts,
                    monthly.horizon)
    parameters = {name: sum(p.numel() for p in m.parameters())
                  for name, m in {"teacher": teacher, **first_students}.items()}
    result = {"command": command_line("quality.py", argv), "provenance": provenance(args.teacher, argv, "quality.py"),
              "seeds": seeds_of(args), "steps": args.steps,
              "teacher": args.teacher, "students_from": args.students_from, "teacher_scores": teacher_results, "runs": runs, "latency": costs,
              "parameters": parameters, "first_seed_scores": first}
    write_results(args.out, "quality", markdown(result, markdown_table(first)), result, page=page)
    return 0


def markdown(result: dict, first_table: str) -> str:
    datasets = list(result["teacher_scores"]["datasets"])
    teacher = result["teacher_scores"]
    teacher_vs_sn = relative_wql(teacher, "teacher", "seasonal_naive")
    lines = ["# Quality: teacher vs distilled student vs truth-only student (M3)", "",
             f"Command: `{result['command']}`", "",
             *([provenance_line(result["provenance"]), ""] if result.get("provenance") else []),
             f"Teacher `{result['teacher']}`; {result['steps']} steps per student; seeds {result['seeds']}; "
             "mean ± std over seeds (sample std; with fewer than 3 seeds, each seed's value)."
             + (f" Students: the finished runs in `{result['students_from']}` (not retrained here)."
                if result.get("students_from") else ""), "",
             "| model | parameters | WQL vs teacher | WQL vs seasonal naive | "
             + " | ".join(f"{d} WQL" for d in datasets) + " | " + " | ".join(f"{d} MASE" for d in datasets) + " |",
             "|---|---|---|---|" + "---|" * (2 * len(datasets))]
    sn = [teacher["datasets"][d]["scores"]["seasonal_naive"] for d in datasets]
    lines.append("| seasonal naive | - | - | 1 | " + " | ".join(f"{s['WQL']:.4f}" for s in sn) + " | "
                 + " | ".join(f"{s['MASE']:.3f}" for s in sn) + " |")
    ts = [teacher["datasets"][d]["scores"]["teacher"] for d in datasets]
    lines.append(f"| teacher | {result['parameters']['teacher']:,} | 1 | {teacher_vs_sn:.3f} | "
                 + " | ".join(f"{s['WQL']:.4f}" for s in ts) + " | " + " | ".join(f"{s['MASE']:.3f}" for s in ts) + " |")
    for name, runs in result["runs"].items():
        lines.append(f"| {name} | {result['parameters'][name]:,} | {pm_over(runs, 'vs_teacher')} | "
                     f"{pm_over(runs, 'vs_seasonal_naive')} | "
                     + " | ".join(pm_over(runs, "scores", d, "WQL", digits=4) for d in datasets) + " | "
                     + " | ".join(pm_over(runs, "scores", d, "MASE", digits=3) for d in datasets) + " |")
    lines += ["", "| model | forecast latency, batch 64 (median, IQR) | speed-up | bare forward (median, IQR) | speed-up |",
              "|---|---|---|---|---|"]
    base = result["latency"]["teacher"]
    for name, timed in result["latency"].items():
        f, b = timed["forecast"], timed["forward"]
        lines.append(f"| {name} | {f['median_s']:.4f} s ({f['iqr_s']:.4f}) | "
                     f"{base['forecast']['median_s'] / f['median_s']:.2f}x | {b['median_s']:.4f} s ({b['iqr_s']:.4f}) | "
                     f"{base['forward']['median_s'] / b['median_s']:.2f}x |")
    d, t = ([r["vs_teacher"] for r in result["runs"][n]] for n in ("distilled student", "truth-only student"))
    (dm, ds), (tm, tstd) = mean_std(d), mean_std(t)
    lines += ["", f"Distilled WQL / teacher WQL: {dm:.3f} ± {ds:.3f}; truth-only: {tm:.3f} ± {tstd:.3f}; "
              f"difference {tm - dm:+.3f} (distilled better when positive).", "",
              "First seed's students, every score:", "", first_table]
    return "\n".join(lines) + "\n"

# -- what the pages quote (common.write_page; scripts/render_docs.py copies it) --------------------------------


def quality_figures(folder: Path) -> dict[str, str]:
    r = load_json(folder, "quality.json")
    runs = r["runs"]
    kd, truth = runs["distilled student"], runs["truth-only student"]

    def subset(runs: list[dict], name: str) -> str:
        return fmt(mean_std([run["scores"][f"m3_{name}"]["WQL"] for run in runs])[0], 4)

    latency = r["latency"]
    return {
        "kd": pm([run["vs_teacher"] for run in kd]) + "x", "truth": pm([run["vs_teacher"] for run in truth]) + "x",
        "kd_monthly": subset(kd, "monthly"), "truth_monthly": subset(truth, "monthly"),
        "truth_yearly": subset(truth, "yearly"), "kd_yearly": subset(kd, "yearly"),
        "speedup": times(latency["teacher"]["forecast"]["median_s"] / latency["distilled student"]["forecast"]["median_s"]),
    }


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from this benchmark's results in ``folder``, by name: figures in the prose, and blocks
    (tables, a command); written into its results file's ``"page"`` (:func:`common.write_page`)."""
    return {"figures": quality_figures(folder)}


if __name__ == "__main__":
    sys.exit(main())
