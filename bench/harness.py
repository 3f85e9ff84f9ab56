"""The benchmarks' shared harness: what every script that trains and scores students repeats, written once.

- the data of a regime and its one series hold-out split (:func:`training_table`, :func:`hold_out_series`), the
  test sets each regime is scored on (:func:`scored_sets`);
- :class:`ScoredRuns`: the teacher, its scores per set and the seasonality suite (:class:`Suite`) computed once
  and shared by a benchmark's runs, and the fields every run's results file has;
- a run's learning curve (:func:`learning_curve`), the rule that picks a share on validation
  (:func:`validation_score`) and the validation-curve plot (:func:`plot_curves`);
- one student trained, scored and written (:meth:`ScoredRuns.scored_run`), the variants x seeds loop
  (:func:`over_seeds`), and the same with a share chosen on the first seed (:func:`seeds_choosing_share`).

``bench/two_stage.py`` builds on it (and the retired ``retention.py`` did).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from common import geomean, provenance, pyplot, save_figure, score, score_student, train_in_subprocess, write_json

#: share of the training series held out whole (seeded, the same for every variant and seed) to validate on
VALIDATION_SHARE = 0.2
SPLIT_SEED = 0


def over_seeds(variants: Iterable[str], seeds: Iterable[int], run: Callable[[str, int], dict | None]
               ) -> dict[str, dict[str, dict]]:
    """``{variant: {seed: run(variant, seed)}}``, run seed-major: every variant at the first seed before any at the
    next, so a benchmark stopped early still compares its variants on the same seeds. A run that returns None (not
    run: a report after a budget cut) is left out."""
    variants = list(variants)
    runs: dict[str, dict[str, dict]] = {name: {} for name in variants}
    for seed in seeds:
        for name in variants:
            entry = run(name, seed)
            if entry is not None:
                runs[name][str(seed)] = entry
    return runs


def training_table(regime: str):
    """The distillation data of ``regime``: M3's training series for ``cross-domain``, None for ``general``."""
    from chronos_distill.data.competition import training_table as table_of

    return None if regime == "general" else table_of(("M3",))


def hold_out_series(table, share: float = VALIDATION_SHARE, seed: int = SPLIT_SEED):
    """``(train, validation)``: a seeded ``share`` of the series, whole, is the validation table; the rest trains.
    No series is in both, so validation measures the skill on series the student never saw."""
    from chronos_distill.data.competition import hold_out

    held = set(hold_out(sorted(table["item_id"].unique()), share, np.random.default_rng(seed)))
    in_validation = table["item_id"].isin(held)
    return table[~in_validation].reset_index(drop=True), table[in_validation].reset_index(drop=True)


def scored_sets(regime: str) -> dict[str, dict]:
    """``{"in-domain": benchmarks, "held-out": benchmarks}`` (test portions; the suite is scored apart)."""
    from chronos_distill.data.competition import load_benchmarks

    m1, m3 = load_benchmarks("M1"), load_benchmarks("M3")
    if regime == "general":
        return {"in-domain": {}, "held-out": {**m1, **m3}}
    return {"in-domain": m3, "held-out": m1}


class Suite:
    """The noisy seasonality-suite cases at one seed, with the teacher's MAE computed once."""

    def __init__(self, teacher, seed: int, n_series: int, horizon: int = 64):
        from chronos_distill.evaluation.seasonality_suite import SUITE, make_case, score_case

        self.data = {c.name: make_case(c, n_series=n_series, seed=seed, horizon=horizon)
                     for c in SUITE if c.noise_scale > 0}
        self.teacher_mae = {name: score_case(teacher, data)["MAE"] for name, data in self.data.items()}

    def ratio(self, student) -> dict:
        """The student's median MAE over the teacher's per case, and their geometric mean."""
        from chronos_distill.evaluation.seasonality_suite import score_case

        ratios = {name: score_case(student, data)["MAE"] / self.teacher_mae[name] for name, data in self.data.items()}
        return {"cases": ratios, "geomean": geomean(ratios.values())}


def learning_curve(output: Path) -> dict:
    """``{"train": [[step, loss], ...], "validation": [[step, truth loss], ...]}`` from the run's newest
    checkpoint's ``trainer_state.json`` (the Trainer's own log history)."""
    checkpoints = sorted((output / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    if not checkpoints:
        return {"train": [], "validation": []}
    history = json.loads((checkpoints[-1] / "trainer_state.json").read_text())["log_history"]
    return {"train": [[e["step"], e["total_loss"]] for e in history if "total_loss" in e],
            "validation": [[e["step"], e["eval_hard_loss"]] for e in history if "eval_hard_loss" in e]}


class ScoredRuns:
    """What a benchmark of students computes once and shares between its runs: the teacher, its scores on each
    set of benchmarks, and the seasonality suite per (seed, horizon); and the fields every run's results file
    has (:meth:`run_fields`). ``bench/two_stage.py`` builds on it too."""

    def __init__(self, args: argparse.Namespace, regime: str):
        from chronos_distill.chronos2.loading import load_chronos2

        self.args = args
        self.teacher = load_chronos2(args.teacher, role="teacher")
        self.table = training_table(regime)
        self.train_table, self.validation_table = (None, None) if self.table is None else hold_out_series(self.table)
        self._teacher_scores: dict[str, dict] = {}
        self._suites: dict[tuple[int, int], Suite] = {}

    def teacher_scores_on(self, kind: str, benchmarks: dict) -> dict:
        """The teacher's scores on ``benchmarks`` (the set called ``kind``), computed once."""
        if kind not in self._teacher_scores:
            self._teacher_scores[kind] = score({"teacher": self.teacher}, benchmarks)
        return self._teacher_scores[kind]

    def suite(self, seed: int, horizon: int = 64) -> Suite:
        if (seed, horizon) not in self._suites:
            self._suites[(seed, horizon)] = Suite(self.teacher, seed, self.args.suite_series, horizon=horizon)
        return self._suites[(seed, horizon)]

    def scored_run(self, file: Path, folder: Path, options: dict[str, Any], sets: dict[str, dict | None], *,
                   script: str, report: bool, horizons: tuple[int, ...], validation_horizon: int = 64,
                   fields: dict[str, Any] | None = None) -> dict | None:
        """One student of a benchmark, train -> score -> write: its results ``file`` read back when it exists
        (None with ``report``: never trained then); else ``distill(**options)`` trained in ``folder`` (resumable,
        :func:`common.train_in_subprocess`) and scored: WQL next to the teacher's on each of ``sets`` (kind ->
        benchmarks; None for a kind the run has no data for), the suite at each of ``horizons`` (keyed by horizon),
        on validation the suite at ``validation_horizon`` and the truth loss of the exported checkpoint, then
        ``fields`` (the experiment's own: variant, seed, ...) and :meth:`run_fields`. Written to ``file`` and summed
        up in one printed line."""
        from chronos_distill.chronos2.loading import load_chronos2

        if set(sets) & {"suite", "validation"}:  # the entry's own keys: a set so named would be overwritten
            raise ValueError(f"a scored set may not be called {sorted(set(sets) & {'suite', 'validation'})}")
        if file.is_file():
            return json.loads(file.read_text())
        if report:
            return None
        trained = train_in_subprocess(options)
        model_dir, record = trained["model_dir"], trained["record"]
        student = load_chronos2(model_dir, role="student")
        entry: dict[str, Any] = {kind: score_student(student, b, self.teacher_scores_on(kind, b)) if b else None
                                 for kind, b in sets.items()}  # the loaded student: not read again per set
        entry["suite"] = {str(h): self.suite(self.args.suite_seed, h).ratio(student) for h in horizons}
        entry.update(
            **(fields or {}),
            # the cache by its key (the folder is this machine's): the same key is the same labelled batches
            teacher_cache={k: v for k, v in (record["training"]["teacher_cache"] or {}).items() if k != "folder"},
            validation={"suite": self.suite(self.args.validation_suite_seed, validation_horizon).ratio(student)["geomean"],
                        "truth_loss": record["training"]["exported"].get("losses", {}).get("eval_hard")},
            started_from=record["student"].get("started_from"),
            **self.run_fields(trained, folder, script),
        )
        file.parent.mkdir(parents=True, exist_ok=True)
        write_json(file, entry)
        print(f"{file.parent.name} seed {entry.get('seed')}: "
              + json.dumps({kind: round(entry[kind]["vs_teacher"], 4) for kind in sets if entry[kind]})
              + " suite " + ", ".join(f"{h}: {r['geomean']:.3f}" for h, r in entry["suite"].items()), flush=True)
        return entry

    def run_fields(self, trained: dict, folder: Path, script: str) -> dict:
        """What every run's results file says besides its scores: the exported weights, the learning curve, the
        cost and shape, and what produced it (commit, command, teacher digest, the run's own options)."""
        record = trained["record"]
        return dict(
            exported=record["training"]["exported"], curve=learning_curve(folder),
            seconds_per_step=trained["seconds_per_step"], parameters=record["student"]["parameters"],
            student_config=record["student"]["config"],
            provenance=provenance(self.args.teacher, getattr(self.args, "argv", None), script),
            options={k: v for k, v in record["options"].items() if v not in (None, [], {})},
        )


def seeds_choosing_share(variants: Iterable[str], seeds: Iterable[int],
                         run: Callable[[str, int, float | None], dict | None], *, share_variant: str,
                         reference: str, shares: Iterable[float]) -> dict[str, Any]:
    """Every variant at every seed, seed-major, where ``share_variant`` is ``reference`` with a share chosen on
    the first seed: each of ``shares`` is run there (``run(share_variant, seed, share)``) and scored by
    :func:`validation_score` against ``reference``'s run of that seed (share 0); the lowest is run at every seed
    (share 0 reuses ``reference``'s runs). ``run(variant, seed, None)`` returns a run's entry, or None where it was
    not run (a report of a budget cut). Returns ``{"runs": {variant: {seed: entry}}, "not_run": [...],
    "choice": {"seed", "scores", "chosen"} or None}``."""
    runs: dict[str, dict[str, dict]] = {}
    not_run: list[str] = []
    choice: dict[str, Any] | None = None

    def keep(variant: str, seed: int, entry: dict | None) -> None:
        if entry is None:
            not_run.append(f"{variant} seed {seed}")
        else:
            runs.setdefault(variant, {})[str(seed)] = entry

    for index, seed in enumerate(seeds):
        for variant in variants:
            if variant != share_variant:
                keep(variant, seed, run(variant, seed, None))
                continue
            if index == 0:  # the first seed tries every candidate share; the rule picks one for all seeds
                base = runs.get(reference, {}).get(str(seed))
                trials = {share: run(variant, seed, share) for share in shares}
                if base is None or None in trials.values():
                    not_run.append(f"{variant} share trials, seed {seed}")
                    continue  # the other variants of this seed still count
                scores = {0.0: validation_score(base, base), **{s: validation_score(e, base) for s, e in trials.items()}}
                choice = {"seed": seed, "scores": {str(k): v for k, v in scores.items()},
                          "chosen": min(scores, key=scores.get)}
            if choice is None:
                continue
            chosen = choice["chosen"]
            keep(variant, seed, runs.get(reference, {}).get(str(seed)) if chosen == 0.0
                 else trials[chosen] if index == 0 else run(variant, seed, chosen))
    return {"runs": runs, "not_run": not_run, "choice": choice}


def validation_score(entry: dict, reference: dict) -> float:
    """The rule that picks the general share, fixed before any run: the product of the validation suite ratio
    (fresh series at ``--validation-suite-seed``) and the truth loss on the held-out whole training series relative
    to the KD run of the same seed (left out in the general regime, which has no training series)."""
    value = entry["validation"]["suite"]
    if entry["validation"]["truth_loss"] and reference["validation"]["truth_loss"]:
        value *= entry["validation"]["truth_loss"] / reference["validation"]["truth_loss"]
    return value


def plot_curves(runs: dict[str, dict], path: Path, title: str) -> bool:
    """Validation truth loss against steps, one line per variant of ``runs`` (variant -> seed -> results entry;
    mean over seeds) with the seeds' min-max band, the legend outside the data; False when no run logged a
    validation curve (a general run has no truth)."""
    curves = {variant: [np.asarray(entry["curve"]["validation"], dtype=float) for entry in seeds.values()
                        if entry.get("curve", {}).get("validation")]
              for variant, seeds in runs.items()}
    curves = {v: c for v, c in curves.items() if c}
    if not curves:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    for variant, seeds in curves.items():
        length = min(len(c) for c in seeds)
        steps, values = seeds[0][:length, 0], np.stack([c[:length, 1] for c in seeds])
        line, = ax.plot(steps, values.mean(axis=0), marker="o", markersize=3,
                        label=f"{variant} ({len(seeds)} seed{'s' * (len(seeds) > 1)})")
        ax.fill_between(steps, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.15)
    ax.set_xlabel("step (batch of 64)")
    ax.set_ylabel("validation quantile loss on the truth\n(held-out whole training series)")
    import textwrap

    ax.set_title("\n".join(textwrap.wrap(title + "; line = mean, band = seed min-max", 80)), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    save_figure(fig, path)
    return True

