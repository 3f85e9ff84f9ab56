"""Does the student learn what the user's data cannot teach it? Teacher-labelled transfer data, three regimes.

Regimes (the student's transfer set -> where it is scored):

- ``low-data``: a seeded 10% sample of the M3 training series of each scored subset (yearly, quarterly,
  monthly; the sampled ids are written to the results) -> M3 test portions;
- ``full``: the M1 + M3 training portions -> M3 test portions;
- ``cross-domain``: the M3 training portions only -> M1 test portions (yearly / quarterly / monthly, official
  horizons 6 / 8 / 18), which the student's data never touches.

Variants (the same default student, steps, batch and seeds; only the targets differ):

- ``teacher``: the teacher itself;
- ``truth-only``: alpha 0, the truth alone;
- ``truth-only + synthetic``: alpha 0 with synthetic series added to the transfer set *with the generator's own
  truth*, in the share the synthetic source gets below: the fair baseline (same extra inputs, no teacher);
- ``KD``: output distillation as by default (alpha 0.5);
- ``KD + future`` / ``KD + mixup`` / ``KD + synthetic``: one teacher-only source each;
- ``KD + all``: all three sources.

The full and cross-domain regimes run truth-only, KD and KD + all. Every variant runs each seed; the report
gives mean ± std over seeds of the geometric-mean WQL relative to the teacher and to seasonal naive, and
per subset.

Settings are chosen first, on a validation split of the *training* portions, never on test portions:
``--phase tune`` holds out whole series (a seeded 20% of each subset's low-data training series; their last H
steps are the validation truth), trains on the other series, and picks the steps (KD at each of ``--tune-steps``), the total share of the sources (KD + all, split
equally), and the horizon weighting (none or exp at each ``--tune-taus``), in that order, by validation WQL
relative to seasonal naive. ``--phase test`` reads those choices from ``transfer_tuning.json``.

    python bench/transfer.py --phase tune [--teacher reference] [--out bench/results]
    python bench/transfer.py --phase test --regime low-data|full|cross-domain [--seeds 0,1,2]

Writes ``transfer_tuning.{md,json}`` and ``transfer_<regime>.{md,json}`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from common import (
    add_training_arguments,
    command_line,
    git,
    interleaved_timing,
    load_json,
    mean_std,
    pct,
    pm,
    provenance,
    relative_wql,
    run_options,
    score,
    score_student,
    seeds_of,
    train_in_subprocess,
    unseen_skill_kept,
    write_page,
    write_results,
)

SUBSETS = ("yearly", "quarterly", "monthly")
LOW_DATA_FRACTION = 0.10
VARIANTS_BY_REGIME = {
    "low-data": ("truth-only", "truth-only + synthetic", "KD", "KD + future", "KD + mixup", "KD + synthetic", "KD + all"),
    "full": ("truth-only", "KD", "KD + all"),
    "cross-domain": ("truth-only", "KD", "KD + all"),
}


# ----------------------------------------------------------------------------------------------------------
# data


def m3_ids(subset: str) -> list[str]:
    from chronos_distill.data.competition import load_competition

    return [f"M3/{sn}" for sn in load_competition("M3", subset).item_ids]


def low_data_ids(seed: int = 0) -> dict[str, list[str]]:
    """A seeded 10% sample of the M3 training series of each scored subset."""
    rng = np.random.default_rng(seed)
    sample = {}
    for subset in SUBSETS:
        ids = m3_ids(subset)
        chosen = rng.choice(len(ids), size=max(1, round(LOW_DATA_FRACTION * len(ids))), replace=False)
        sample[subset] = sorted(ids[i] for i in chosen)
    return sample


def transfer_set(regime: str, sample: dict[str, list[str]]) -> pd.DataFrame:
    from chronos_distill.data.competition import training_table

    if regime == "full":
        return training_table(("M1", "M3"))
    table = training_table(("M3",))
    if regime == "cross-domain":
        return table
    return table[table["item_id"].isin({i for ids in sample.values() for i in ids})].reset_index(drop=True)


def scored_on(regime: str) -> dict:
    from chronos_distill.data.competition import load_benchmarks

    return load_benchmarks("M1" if regime == "cross-domain" else "M3", SUBSETS)


#: Share of each subset's low-data series held out, whole, to validate the settings on.
VALIDATION_SHARE = 0.2


def validation_split(table: pd.DataFrame, sample: dict[str, list[str]], share: float = VALIDATION_SHARE,
                     seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Whole series held out: a seeded ``share`` of each subset's sampled series is kept out of training, and
    validated on the last H steps of its training portion (from the steps before); the other series train whole.

    Holding out only the last H steps of the training series would validate on the very windows the ``future``
    source labels with the teacher, and on series the student trained on: it favoured the sources (5% on that
    validation, nothing on test).
    """
    from chronos_distill.data.competition import M3_SUBSETS, Benchmark, hold_out

    rng = np.random.default_rng(seed)
    held_out, benchmarks = set(), {}
    for subset, ids in sample.items():
        horizon, season = M3_SUBSETS[subset]["horizon"], M3_SUBSETS[subset]["season_length"]
        chosen = sorted(hold_out(ids, share, rng), key=ids.index)
        held_out.update(chosen)
        contexts, truth, names = [], [], []
        for item_id in chosen:
            values = table.loc[table["item_id"] == item_id, "target"].to_numpy()
            if len(values) <= horizon + 2:
                continue
            contexts.append(values[:-horizon])
            truth.append(values[-horizon:])
            names.append(item_id)
        benchmarks[f"validation_{subset}"] = Benchmark(f"validation_{subset}", names, contexts, np.stack(truth),
                                                       season, horizon)
    return table[~table["item_id"].isin(held_out)].reset_index(drop=True), benchmarks


def with_synthetic_truth(table: pd.DataFrame, share: float, max_length: int, seed: int) -> pd.DataFrame:
    """``table`` plus synthetic series (with their own values as truth), ``share`` of all series, each as long as
    a real series drawn at random (at most ``max_length``), as the synthetic source draws its lengths."""
    from chronos_distill.data.transfer import synthetic_series

    lengths = table.groupby("item_id", sort=False).size().to_numpy()
    n_synthetic = round(len(lengths) * share / (1 - share))
    rng = np.random.default_rng(seed + 10_000)
    frames = [table]
    for i in range(n_synthetic):
        length = int(min(rng.choice(lengths), max_length))
        frames.append(pd.DataFrame({"item_id": f"synthetic/{i:05d}",
                                    "timestamp": pd.date_range("2000-01-01", periods=length, freq="D"),
                                    "target": synthetic_series(rng, length)}))
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------------------------------------
# variants


def variant_options(name: str, shares_total: float, weighting: dict) -> dict:
    each = round(shares_total / 3, 4)
    kd = {"alpha": 0.5, **weighting}
    return {
        "truth-only": {"alpha": 0.0},
        "truth-only + synthetic": {"alpha": 0.0},  # its extra series are in its training table
        "KD": kd,
        "KD + future": {**kd, "transfer_future": each},
        "KD + mixup": {**kd, "transfer_mixup": each},
        "KD + synthetic": {**kd, "transfer_synthetic": each},
        "KD + all": {**kd, "transfer_future": each, "transfer_mixup": each, "transfer_synthetic": each},
    }[name]


def train(args, table: pd.DataFrame, folder: Path, seed: int, steps: int, **options) -> dict:
    return train_in_subprocess(run_options(args, seed, folder, train_data=table, max_steps=steps, save_steps=steps,
                                           **options))


# ----------------------------------------------------------------------------------------------------------
# phases


def tune(args) -> None:
    sample = low_data_ids()
    train_table, validation = validation_split(transfer_set("low-data", sample), sample)
    runs = Path(args.runs) / "tune"
    seed = seeds_of(args)[0]
    trials: list[dict] = []

    def trial(label: str, steps: int, options: dict) -> float:
        same = next((t for t in trials if t["steps"] == steps and t["options"] == options), None)
        if same is not None:  # e.g. the uniform weighting is the share trial already run
            return same["validation_wql_vs_sn"]
        run = train(args, train_table, runs / f"trial{len(trials)}", seed, steps, **options)
        value = relative_wql(score({"student": run["model_dir"]}, validation), "student", "seasonal_naive")
        trials.append({"label": label, "steps": steps, "options": options, "validation_wql_vs_sn": value})
        print(f"tune {label}: {value:.4f}", flush=True)
        return value

    steps = min(args.tune_steps, key=lambda s: trial(f"KD {s} steps", s, variant_options("KD", 0, {})))
    total = min(args.tune_shares, key=lambda t: trial(f"KD + all, shares {t}", steps, variant_options("KD + all", t, {})))
    weightings = [{}] + [{"horizon_weighting": "exp", "horizon_tau": tau} for tau in args.tune_taus]
    best_weighting = min(weightings, key=lambda w: trial(f"KD + all, {w or 'uniform'}", steps,
                                                         variant_options("KD + all", total, w)))
    chosen = {"steps": steps, "shares_total": total, "weighting": best_weighting}
    result = {"command": command_line("transfer.py", args.argv),
              "provenance": provenance(args.teacher, args.argv, "transfer.py"), "chosen": chosen, "trials": trials,
              "low_data_ids": sample,
              "validation": f"whole series: a seeded {VALIDATION_SHARE:.0%} of each subset's low-data training series, "
                            "scored on the last H steps of their training portions"}
    lines = ["# Transfer benchmark: settings chosen on a validation split of the training portions", "",
             f"Command: `{result['command']}`", "",
             f"Validation: whole series held out, a seeded {VALIDATION_SHARE:.0%} of the low-data training series "
             "(a seeded 10% of M3 yearly/quarterly/monthly training portions), scored on the last H steps of their "
             "training portions; training on the other low-data series; score = geometric-mean WQL relative to "
             "seasonal naive. "
             "Steps were chosen first (KD), then the total share of the three sources (KD + all, split equally), "
             "then the horizon weighting.", "", "| trial | steps | validation WQL vs seasonal naive |", "|---|---|---|"]
    lines += [f"| {t['label']} | {t['steps']} | {t['validation_wql_vs_sn']:.4f} |" for t in trials]
    lines += ["", f"Chosen: {json.dumps(chosen)}", ""]
    write_results(args.out, "transfer_tuning", "\n".join(lines), result)
    refresh_page(Path(args.out))


def test(args) -> None:
    tuning = json.loads((Path(args.out) / "transfer_tuning.json").read_text())
    chosen, sample = tuning["chosen"], tuning["low_data_ids"]
    table = transfer_set(args.regime, sample)
    benchmarks = scored_on(args.regime)
    variants = VARIANTS_BY_REGIME[args.regime]
    runs = Path(args.runs) / args.regime
    teacher = score({"teacher": args.teacher}, benchmarks)  # the same for every variant and seed
    per_seed: dict[str, list[dict]] = {v: [] for v in variants}
    costs: dict[str, list[float]] = {v: [] for v in variants}
    for seed in seeds_of(args):
        for variant in variants:
            data = table
            if variant == "truth-only + synthetic":
                data = with_synthetic_truth(table, chosen["shares_total"] / 3, 512 + args.prediction_length, seed)
            options = variant_options(variant, chosen["shares_total"], chosen["weighting"])
            run = train(args, data, runs / f"{variant.replace(' ', '_')}-seed{seed}", seed, chosen["steps"], **options)
            per_seed[variant].append({"seed": seed, "model_dir": run["model_dir"],
                                      **score_student(run["model_dir"], benchmarks, teacher)})
            costs[variant].append(run["seconds_per_step"])
            print(f"{args.regime} {variant} seed {seed}: {per_seed[variant][-1]['vs_teacher']:.4f} x teacher", flush=True)
    latency = latency_table(args.teacher, per_seed[variants[0]][0]["model_dir"], benchmarks)
    result = {"command": command_line("transfer.py", args.argv),
              "provenance": provenance(args.teacher, args.argv, "transfer.py"), "regime": args.regime, "chosen": chosen,
              "runs": per_seed, "seconds_per_step": costs, "latency": latency}
    write_results(args.out, f"transfer_{args.regime}", markdown(result, list(benchmarks), sample), result)
    refresh_page(Path(args.out))


def runs_provenance(result: dict, file: Path) -> dict:
    """What produced the runs a report rebuilds: the test phase's own record, or for runs from before it was kept,
    the commit that first committed their results file (from git history)."""
    if result.get("runs_provenance"):
        return result["runs_provenance"]
    if "--phase test" in result.get("provenance", {}).get("command", ""):
        return result["provenance"]
    first = git("log", "--diff-filter=A", "--format=%H", "--", str(file.resolve())).split()
    return {"commit": None, "committed_in": first[-1] if first else None, "command": result.get("command"),
            "recorded_afterwards": "the commit that first committed this results file (git history)"}


def report(args) -> None:
    """``transfer_<regime>.md`` rebuilt from its JSON (the runs' scores as they were recorded): no training."""
    out = Path(args.out)
    result = json.loads((out / f"transfer_{args.regime}.json").read_text())
    sample = json.loads((out / "transfer_tuning.json").read_text())["low_data_ids"]
    datasets = list(next(iter(result["runs"].values()))[0]["teacher_wql"])
    result["runs_provenance"] = runs_provenance(result, out / f"transfer_{args.regime}.json")
    result["provenance"] = provenance(args.teacher, args.argv, "transfer.py")  # this report's; --teacher: the runs'
    result["teacher"] = result["provenance"]["teacher"]
    runs = result["runs_provenance"]
    runs_commit = (f"commit {runs['commit'][:10]}" if runs.get("commit")
                   else f"committed in {runs['committed_in'][:10]}; their own commit was not recorded")
    text = markdown(result, datasets, sample).replace(
        "\n\n", f"\n\nTables rebuilt by `{command_line('transfer.py', args.argv)}` from the runs' recorded scores; "
        f"the runs ({runs_commit}) had the teacher {result['teacher']['name']} (`{args.teacher}`, weights sha256 "
        f"{str(result['teacher']['weights_sha256'])[:12]}).\n\n", 1)
    write_results(out, f"transfer_{args.regime}", text, result)
    refresh_page(Path(args.out))


def latency_table(teacher: str, student_dir: str, benchmarks: dict) -> dict:
    import torch
    from chronos.chronos2 import Chronos2Pipeline

    from chronos_distill.chronos2.loading import load_chronos2, load_teacher

    monthly = next(b for name, b in benchmarks.items() if name.endswith("monthly"))
    batch = [torch.tensor(c, dtype=torch.float32) for c in monthly.contexts[:64]]
    pipelines = {"teacher": Chronos2Pipeline(load_teacher(teacher)),
                 "student": Chronos2Pipeline(load_chronos2(student_dir, role="student"))}
    return interleaved_timing({name: (lambda p=p: p.predict_quantiles(batch, prediction_length=monthly.horizon))
                               for name, p in pipelines.items()}, repeats=10)


def markdown(result: dict, datasets: list[str], sample: dict) -> str:
    lines = [f"# Transfer benchmark, {result['regime']} regime", "", f"Command: `{result['command']}`", "",
             f"Settings (chosen on validation, see transfer_tuning.md): {json.dumps(result['chosen'])}", "",
             "| variant | WQL vs teacher | WQL vs seasonal naive | skill kept | " + " | ".join(f"{d} WQL" for d in datasets)
             + " | s/step |", "|---|---|---|---|" + "---|" * (len(datasets) + 1)]
    first = next(iter(result["runs"].values()))
    teacher_vs_naive = first[0]["vs_seasonal_naive"] / first[0]["vs_teacher"]  # the same in every run
    lines.append(f"| teacher | 1 | {teacher_vs_naive:.3f} | 1 | "
                 + " | ".join(f"{first[0]['teacher_wql'][d]:.4f}" for d in datasets) + " | - |")
    for variant, runs in result["runs"].items():
        lines.append(f"| {variant} | {pm([r['vs_teacher'] for r in runs])} | {pm([r['vs_seasonal_naive'] for r in runs])} | "
                     f"{pm([unseen_skill_kept(r) for r in runs])} | "
                     + " | ".join(pm([r["scores"][d]["WQL"] for r in runs], 4) for d in datasets)
                     + f" | {mean_std(result['seconds_per_step'][variant])[0]:.3f} |")
    lines += ["", f"Mean ± std over seeds {[r['seed'] for r in first]} (sample std). Skill kept: the student's skill "
              "over seasonal naive (1 - WQL / seasonal naive's, geometric mean over the sets) over the teacher's.", "",
              "| model | forecast latency, 64 series (median) | IQR |", "|---|---|---|"]
    lines += [f"| {m} | {t['median_s']:.4f} s | {t['iqr_s']:.4f} s |" for m, t in result["latency"].items()]
    if result["regime"] == "low-data":
        lines += ["", "Low-data sample (seed 0): " + ", ".join(f"{s} {len(ids)} series" for s, ids in sample.items())
                  + "; the ids are in the JSON file (`low_data_ids` of transfer_tuning.json)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_training_arguments(parser, steps=1000, runs="runs/bench-transfer")
    parser.add_argument("--phase", choices=("tune", "test", "report"), required=True,
                        help="report: rebuild transfer_<regime>.md from its JSON, training nothing")
    parser.add_argument("--regime", choices=tuple(VARIANTS_BY_REGIME), default="low-data")
    parser.add_argument("--tune-steps", type=lambda t: [int(x) for x in t.split(",")], default=[300, 1000])
    parser.add_argument("--tune-shares", type=lambda t: [float(x) for x in t.split(",")], default=[0.3, 0.6])
    parser.add_argument("--tune-taus", type=lambda t: [float(x) for x in t.split(",")], default=[0.5, 1.0])
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    {"tune": tune, "test": test, "report": report}[args.phase](args)
    return 0

def refresh_page(out: Path) -> None:
    """The page's figures read every regime and the tuning: they sit in ``transfer_cross-domain.json``, written
    again after any of them."""
    if (out / "transfer_cross-domain.json").is_file():
        write_page(out, "transfer_cross-domain", page)


# -- what the pages quote (common.write_page; scripts/render_docs.py copies it) --------------------------------


def transfer_figures(folder: Path) -> dict[str, str]:
    """The figures the pages quote (every variant of each regime is in ``transfer_<regime>.md``)."""
    tuning = load_json(folder, "transfer_tuning.json")
    chosen = next(t for t in tuning["trials"] if t["steps"] == tuning["chosen"]["steps"]
                  and abs(sum(t["options"].get(f"transfer_{s}", 0) for s in ("future", "mixup", "synthetic"))
                          - tuning["chosen"]["shares_total"]) < 1e-9 and "horizon_weighting" not in t["options"])
    low = {v: [run["vs_teacher"] for run in runs] for v, runs in load_json(folder, "transfer_low-data.json")["runs"].items()}
    return {
        "shares": " + ".join(f"{chosen['options'][f'transfer_{s}']:g}" for s in ("future", "mixup", "synthetic")),
        "low_kd": pm(low["KD"]) + "x",
        "low_kd_gain": pct(mean_std(low["truth-only"])[0] / mean_std(low["KD"])[0] - 1, 1),
    }


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from this benchmark's results in ``folder``, by name: figures in the prose, and blocks
    (tables, a command); written into its results file's ``"page"`` (:func:`common.write_page`)."""
    return {"figures": transfer_figures(folder)}


if __name__ == "__main__":
    raise SystemExit(main())
