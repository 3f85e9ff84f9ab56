"""Zero-shot retention: what a student keeps of its teacher on data it was not distilled on (issue 23).

For each regime, each variant and each seed, a student is distilled (with the teacher cache, so that each
seed's teacher targets are computed once) and scored next to its teacher:

- **in-domain**: the test portions of the data the student was distilled on (M3, or M1 + M3);
- **held-out**: data outside its distillation set: the seasonality suite with fresh series (``--suite-seed``, not
  the benchmark's seed 0 nor the teacher's validation seed 2), and M1's test portions when distilled on M3 alone
  (the cross-domain and low-data regimes) or M3's and M1's for the general student.

Retention is the student's score over the teacher's (geometric mean of WQL ratios over the data sets; for the
suite, of median-MAE ratios over its noisy cases): 1.0 keeps everything.

Regimes: ``full`` (M1 + M3 training portions), ``low-data`` (a seeded 10% of the M3 training series),
``cross-domain`` (M3 training portions only), ``general`` (no user data: ``--general``).
Variants: ``truth-only`` (alpha 0), ``KD`` (alpha 0.5), ``KD+general`` (KD with ``--transfer-general`` at the
share chosen on validation); ``general`` runs KD alone.

Validation, never a test portion: a seeded 20% of the regime's training series is held out whole (the same split
for every variant and seed) and passed as ``validation_data``, so every run logs its truth loss on series it never
saw (the learning curves) and exports its best checkpoint by validation loss. The general share is chosen on the
first seed among 0 (KD itself) and ``--general-shares``, by :func:`validation_score`: the seasonality suite at
``--validation-suite-seed`` times the held-out truth loss relative to KD's. The other seeds use the chosen share.

Every run is resumable: a finished one is read back, an interrupted one continues from its checkpoint
(``bench/common.py``), so the benchmark can be stopped and started again from the same command.

    python bench/retention.py --regime low-data [--variants truth-only,KD,KD+general] [--seeds 0,1,2]
        [--steps 2000] [--teacher reference] [--runs runs/bench-retention] [--out bench/results]

Writes ``retention_<regime>.md``, ``retention_<regime>.json`` and the learning curves
``retention_<regime>_curves.png`` (validation truth loss against steps, every variant, seed spread) into ``--out``,
and each run's scores into ``retention/<regime>/<variant>/seed<k>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import (
    add_training_arguments,
    arguments,
    command_line,
    general_student_suite_at_18,
    load_json,
    mean_std,
    pct,
    pm,
    provenance,
    run_options,
    seeds_of,
    unseen_skill_kept,
    write_page,
    write_results,
)
from harness import (  # noqa: F401 - VALIDATION_SHARE, hold_out_series, training_table: this script's names too
    SPLIT_SEED,
    VALIDATION_SHARE,
    ScoredRuns,
    hold_out_series,
    plot_curves,
    scored_sets,
    seeds_choosing_share,
    training_table,
    validation_score,
)

REGIMES = ("full", "low-data", "cross-domain", "general")
VARIANTS = {"truth-only": {"alpha": 0.0}, "KD": {"alpha": 0.5}, "KD+general": {"alpha": 0.5}}


def run_file(out: str | Path, regime: str, variant: str, seed: int) -> Path:
    """Where one run's scores are kept (committed with the results, so a later session does not retrain it)."""
    return Path(out) / "retention" / regime / variant / f"seed{seed}.json"


class Retention(ScoredRuns):
    """One regime's runs: train (resumable) and score each (variant, seed), or read back its results file."""

    def __init__(self, args: argparse.Namespace):
        super().__init__(args, args.regime)
        self.sets = scored_sets(args.regime)

    def result(self, variant: str, seed: int, general_share: float | None = None) -> dict | None:
        """The scores of one run (:meth:`ScoredRuns.scored_run`); with ``general_share`` it is ``variant`` with
        that share (its folder ``KD+general@0.25``). None with ``--report-only`` when the run has no results file."""
        args = self.args
        name = variant if general_share is None else f"{variant}@{general_share}"
        options = dict(VARIANTS[variant], teacher_cache=str(Path(args.runs) / "teacher-cache"),
                       cache_batches=args.cache_batches, save_steps=args.save_steps)
        if args.regime == "general":
            # random, as recorded: these runs predate pruned as --general's default
            options.update(general=True, student_init="random")
        else:
            options.update(train_data=self.train_table, validation_data=self.validation_table)
            if general_share:
                options["transfer_general"] = general_share
        folder = Path(args.runs) / args.regime / name / f"seed{seed}"
        return self.scored_run(run_file(args.out, args.regime, name, seed), folder, run_options(args, seed, folder, **options),
                               self.sets, script="retention.py", report=args.report_only,
                               fields=dict(variant=name, seed=seed, general_share=general_share))


def run(args: argparse.Namespace) -> dict:
    retention = Retention(args)
    done = seeds_choosing_share(["KD"] if args.regime == "general" else args.variants, seeds_of(args),
                                retention.result, share_variant="KD+general", reference="KD",
                                shares=args.general_shares)
    choice = done["choice"]
    return {"command": command_line("retention.py", args.argv), "teacher": args.teacher,
            "provenance": provenance(args.teacher, args.argv, "retention.py"),
            "regime": args.regime, "steps": args.steps, "runs": done["runs"],
            "validation": choice and {"seed": choice["seed"], "scores": choice["scores"], "chosen_share": choice["chosen"]},
            "split": None if retention.table is None else {
                "share": VALIDATION_SHARE, "seed": SPLIT_SEED,
                "train_series": int(retention.train_table["item_id"].nunique()),
                "validation_series": int(retention.validation_table["item_id"].nunique())},
            "not_run": done["not_run"]}


def markdown(results: dict) -> str:
    lines = [f"# Zero-shot retention: {results['regime']}", "", f"`{results['command']}`", "",
             f"Teacher: {_teacher_named(results)}; {results['steps']} steps per student; mean ± std over seeds of the "
             "student's score over the teacher's (1.0 keeps everything; below 1 is better than the teacher).", "",
             "Skill kept: the student's skill over seasonal naive (1 - WQL / seasonal naive's, geometric mean over the "
             "sets) over the teacher's.", "",
             "| variant | seeds | in-domain WQL | held-out WQL | skill kept in-domain / held-out | seasonality suite MAE |",
             "|---|---|---|---|---|---|"]
    for variant, seeds in results["runs"].items():
        cells = [",".join(seeds)]
        for kind in ("in-domain", "held-out"):
            values = [s[kind]["vs_teacher"] for s in seeds.values() if s.get(kind)]
            cells.append(pm(values) if values else "-")
        cells.append(" / ".join(pm(kept) if (kept := [unseen_skill_kept(s[kind]) for s in seeds.values() if s.get(kind)])
                                else "-" for kind in ("in-domain", "held-out")))
        cells.append(pm([s["suite"]["geomean"] for s in seeds.values()]))
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    if results.get("split"):
        split = results["split"]
        lines += ["", f"Validation: {split['validation_series']} whole training series held out (seed {split['seed']}), "
                  f"{split['train_series']} train."]
    if results.get("validation"):
        chosen = results["validation"]
        lines += [f"General share chosen on seed {chosen['seed']}'s validation score (suite at the validation seed "
                  "x held-out truth loss relative to KD; lower is better): "
                  + ", ".join(f"{k}: {v:.4f}" for k, v in chosen["scores"].items())
                  + f"; chosen {chosen['chosen_share']}."]
    if results.get("not_run"):
        lines += ["", "Not run (`--report-only`: no results file, cut for the CPU budget): "
                  + "; ".join(results["not_run"]) + "."]
    return "\n".join(lines) + "\n"


def _teacher_named(results: dict) -> str:
    """The teacher by name, alias and weights digest where the results recorded them, else as given."""
    teacher = results.get("provenance", {}).get("teacher")
    if not teacher:
        return str(results["teacher"])
    return f"{teacher['name']} (`{teacher['alias']}`, weights sha256 {str(teacher['weights_sha256'])[:12]})"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    add_training_arguments(parser, steps=2000, runs="runs/bench-retention")
    parser.add_argument("--regime", choices=REGIMES, required=True)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of " + ", ".join(VARIANTS))
    parser.add_argument("--general-shares", default="0.25,0.5",
                        help="candidate transfer_general shares of KD+general, tried on the first seed [default: 0.25,0.5]")
    parser.add_argument("--cache-batches", type=int, default=500)
    parser.add_argument("--save-steps", type=int, default=250, help="checkpoint every N steps (resume)")
    parser.add_argument("--suite-seed", type=int, default=3, help="seed of the reported suite series")
    parser.add_argument("--validation-suite-seed", type=int, default=2, help="seed of the suite series that validate")
    parser.add_argument("--suite-series", type=int, default=32)
    parser.add_argument("--report-only", action="store_true",
                        help="write the tables from the runs' results files only; a run without one is listed as not "
                             "run, never trained (what a budget cut leaves)")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.general_shares = [float(v) for v in args.general_shares.split(",") if v.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    if "KD+general" in args.variants and args.variants.index("KD+general") < args.variants.index("KD") \
            if "KD" in args.variants else "KD+general" in args.variants:
        parser.error("KD+general is chosen against KD's validation score: list KD before it in --variants")
    results = run(args)
    curves = Path(args.out) / f"retention_{args.regime}_curves.png"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    recorded = [entry.get("provenance", {}).get("teacher", {}) for seeds in results["runs"].values()
                for entry in seeds.values()]
    # as the runs recorded it; runs from before per-run provenance: the alias as the report resolves it
    teacher = next((t.get("name") for t in recorded if t.get("name")),
                   results.get("provenance", {}).get("teacher", {}).get("name", args.teacher))
    title = f"{args.regime}: distilled from {teacher}, {args.steps} steps at batch {args.batch_size}"
    text = markdown(results) + (f"\nLearning curves: `{curves.name}`.\n" if plot_curves(results["runs"], curves, title) else "")
    write_results(args.out, f"retention_{args.regime}", text, results)
    if (Path(args.out) / "retention_cross-domain.json").is_file():  # the page's figures read every regime
        write_page(args.out, "retention_cross-domain", page)
    return 0

# -- what the pages quote (common.write_page; scripts/render_docs.py copies it) --------------------------------


def retention_figures(folder: Path) -> dict[str, str]:
    """The figures the pages quote (the rest is in the tables of ``retention_<regime>.md``)."""
    low = load_json(folder, "retention_low-data.json")["runs"]
    low_kd, low_truth = ([run["in-domain"]["vs_teacher"] for run in low[v].values()] for v in ("KD", "truth-only"))
    worst = max(low["truth-only"].values(), key=lambda run: run["in-domain"]["vs_teacher"])
    return {
        "chosen_share": f"{load_json(folder, 'retention_cross-domain.json')['validation']['chosen_share']:g}",
        "general_suite_18": pm(general_student_suite_at_18(folder)) + "x",
        "low_gain": pct(1 - mean_std(low_kd)[0] / mean_std(low_truth)[0], 1),
        "worst_step": str(worst["exported"]["step"]), "worst_off": pct(worst["in-domain"]["vs_teacher"] - 1),
    }


#: bench/retention.py's table: row label -> (regime, variant)
RETENTION_ROWS = {
    "cross-domain (M3 training series), truth-only": ("cross-domain", "truth-only"),
    "cross-domain, KD": ("cross-domain", "KD"),
    "cross-domain, KD + general {share}": ("cross-domain", "KD+general"),
    "low-data (10% of M3's training series), truth-only": ("low-data", "truth-only"),
    "low-data, KD": ("low-data", "KD"),
    "general (`--general`, no user data)": ("general", "KD"),
}


def retention_table(folder: Path) -> str:
    """``bench/retention.py``: student / teacher in-domain (M3), held out (M1; for the general regime M1 + M3)
    and on the suite at 64 steps, per regime and variant, over its seeds."""
    lines = ["| regime, variant | in-domain (M3) | held-out (M1) | suite |", "|---|---|---|---|"]
    for label, (regime, variant) in RETENTION_ROWS.items():
        runs = list(json.loads((folder / f"retention_{regime}.json").read_text())["runs"][variant].values())
        label = label.format(share=f"{runs[0]['general_share']:g}" if runs[0].get("general_share") else "")
        held = pm([r["held-out"]["vs_teacher"] for r in runs])
        suite = [r["suite"]["geomean"] for r in runs]
        if regime == "general":  # no user data: its held-out set is M1 + M3's test portions, nothing in-domain
            cells = ["M1 + M3: " + held, "", pm(suite, 3, "x")]
        else:
            cells = [pm([r["in-domain"]["vs_teacher"] for r in runs]), held, pm(suite, 2, "x")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from this benchmark's results in ``folder``, by name: figures in the prose, and blocks
    (tables, a command); written into its results file's ``"page"`` (:func:`common.write_page`)."""
    return {"figures": retention_figures(folder),
            "blocks": {"retention": retention_table(folder)}}


if __name__ == "__main__":
    raise SystemExit(main())
