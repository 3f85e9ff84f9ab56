"""Two-stage distillation (issues 30, 40 and 48): a family of general students, and task students that start from one.

**Stage 1, ``--stage general``**: ``--general`` students of several sizes (``--rungs``, d_model x layers), each
trained for every horizon up to the teacher's, on one teacher cache labelled once for all of them (a general
run's cached batches do not depend on the student or its seed, but do on the thread count: the stream's windows
differ in their last bits between OMP_NUM_THREADS 1 and 2, and the cache key with them), for the same steps.
Scored on real data they never saw: the six M1 / M3 test portions and Tourism's three at their official horizons
(WQL over the teacher's and over seasonal naive, geometric means) and the seasonality suite with fresh series at
18 and at 64 steps (median MAE over the teacher's). ``--stage curves``: one general student's checkpoints scored
along its run, distilled and trained on the truth alone from the same start and cache.

**Stage 2, ``--stage task``**: the cross-domain regime of ``harness.training_table`` (M3's training series; 20% of
them held out whole for validation, the exported checkpoint the best on it), scored on M3's test portions
(in-domain), M1's (held-out) and the suite at the trained horizon (18) and at 64. Variants, each at every seed:

- ``KD``: from scratch (random init), alpha 0.5;
- ``two-stage``: the same run starting from the general student ``--start`` (``--student``);
- ``two-stage+general``: ``two-stage`` with a share of general rows (``--transfer-general``), the share chosen
  on the first seed's validation among ``--general-shares`` by ``harness.validation_score`` (validation suite x held-out
  truth loss relative to the variant without the share; lower is better).

Every run is resumable and kept: a finished run's scores go to ``<out>/two_stage/<stage>/<name>/seed<k>.json``
with what produced them (commit, command, teacher digest, options), so a later session reads them back instead
of training again. ``--report`` writes ``two_stage.md`` / ``two_stage.json``, ``two_stage_skill_kept.png`` and
``two_stage_curves.png`` from those files alone. The first family's context draws, latency and random-start
curves (issue 30 and 40) are a frozen record: ``two_stage_first.md``, by the retired ``two_stage_first.py``.

    python bench/two_stage.py --stage general [--rungs 256x2,384x2,512x4] [--seeds 0] [--steps 2000]
    python bench/two_stage.py --stage curves --curve-init pruned --curve-variants KD+truth,truth-only
    python bench/two_stage.py --stage task [--variants KD,two-stage,two-stage+general] [--seeds 0,1,2]
    python bench/two_stage.py --report
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    add_training_arguments,
    arguments,
    fmt,
    geomean,
    load_json,
    mean_std,
    pm,
    provenance,
    pyplot,
    restricted,
    run_options,
    save_figure,
    score_student,
    seeds_of,
    times,
    train_in_subprocess,
    unseen_skill_kept,
    write_json,
    write_results,
)
from harness import VALIDATION_SHARE, ScoredRuns, over_seeds, plot_curves, scored_sets, seeds_choosing_share

from chronos_distill.config import GENERAL_CONTEXTS

STAGES = ("general", "task", "curves")
#: the sample-efficiency curves (``--stage curves``): the same general student distilled (alpha 1) and trained on
#: the mix's own truth (alpha 0, the truth-only control), on the same cached batches in the same order, and KD mixed
#: with that truth (alpha 0.5, issue 48's candidate recipe)
CURVE_VARIANTS = {"KD": 1.0, "truth-only": 0.0, "KD+truth": 0.5}
DEFAULT_RUNGS = "256x2,384x2,512x4"
VARIANTS = ("KD", "two-stage", "two-stage+general")
#: suite horizons: the task students' trained horizon, and the teacher's full one
SUITE_HORIZONS = (18, 64)


def shape_of(run: str) -> str:
    """The student shape (``384x2``) of a general run's name (``384x2``, ``384x2@mixed``, ``384x2@mixed-h18``,
    ``384x2@uniform-c2000-pruned``, ``384x2-c2``)."""
    return re.match(r"\d+x\d+", run).group(0)


def rung_shape(rung: str) -> dict[str, int]:
    d_model, layers = (int(v) for v in shape_of(rung).split("x"))
    return {"student_d_model": d_model, "student_num_layers": layers}


def results_file(out: str | Path, stage: str, name: str, seed: int) -> Path:
    """Where one run's scores are kept (committed, so that a later session reads them back)."""
    return Path(out) / "two_stage" / stage / name / f"seed{seed}.json"


class TwoStage(ScoredRuns):
    """Trains (resumable) and scores each run, or reads back its results file; the task runs use the
    cross-domain regime's training series and validation split."""

    def __init__(self, args: argparse.Namespace):
        super().__init__(args, "cross-domain")

    def folder(self, stage: str, name: str, seed: int) -> Path:
        return Path(self.args.runs) / stage / name / f"seed{seed}"

    def run(self, stage: str, name: str, seed: int, options: dict[str, Any], sets: dict[str, dict]) -> dict | None:
        """Train ``distill(**options)`` (resumable) and score it on ``sets`` (kind -> benchmarks) and the suite at
        both horizons, or read back its results file; None with ``--report`` when it has none."""
        args = self.args
        folder = self.folder(stage, name, seed)
        options = run_options(args, seed, folder, cache_batches=args.cache_batches, save_steps=args.save_steps, **options)
        return self.scored_run(results_file(args.out, stage, name, seed), folder, options, sets, script="two_stage.py",
                               report=args.report, horizons=SUITE_HORIZONS, validation_horizon=18,
                               fields=dict(stage=stage, name=name, seed=seed,
                                           start=f"general {args.start}" if options.get("student") else None))

    # -- stage 1 ----------------------------------------------------------------------------------------------
    def general(self, rung: str, seed: int, context: str | None = None) -> dict | None:
        """A general student; ``context`` names a --general-context draw (its run is ``<rung>@<context>``), None
        the default; ``--general-prediction-length H`` caps its horizons at H (run
        ``<rung>@<context>-h<H>``; default: every horizon up to the teacher's)."""
        # the six M1 / M3 test portions, and Tourism's three: a collection no stage of ours trains on
        sets = {"unseen": scored_sets("general")["held-out"], "tourism": self.tourism}
        horizon = self.args.general_prediction_length
        options = dict(general=True, alpha=1.0, teacher_cache=str(Path(self.args.runs) / "teacher-cache"),
                       prediction_length=horizon, min_past=None, **rung_shape(rung))
        if context is not None:
            options["general_context"] = context
        name = (rung if context is None else f"{rung}@{context}") + (f"-h{horizon}" if horizon else "")
        # the levers of issue 40, each in the run's name when it differs from the first family's recipe
        if self.args.cache_batches != 500:
            name += f"-c{self.args.cache_batches}"
        if self.args.general_bank_size is not None:
            options["general_bank_size"] = self.args.general_bank_size
            name += f"-bank{self.args.general_bank_size}"
        if self.args.general_real_share:
            # issue 48's real contexts: M3's training series, less the whole series the validation rule holds out,
            # are the corpus; M1 stays unseen by every stage (the report reads its test portions apart)
            options.update(train_data=str(self.general_corpus()), general_real_share=self.args.general_real_share)
            name += f"-m3real{self.args.general_real_share:g}"
        if self.args.general_alpha != 1.0:
            options["alpha"] = self.args.general_alpha
            name += "-truth-only" if self.args.general_alpha == 0 else f"-alpha{self.args.general_alpha:g}"
        # always given: the family above was trained from random starts, before pruned became --general's default
        options["student_init"] = self.args.general_init
        if self.args.general_init != "random":
            name += f"-{self.args.general_init}"
        entry = self.run("general", name, seed, options, sets)
        if entry is not None and not self.args.report and "validation_general" not in entry:
            # the general stage's own validation rule, scored once the run is recorded
            entry["validation_general"] = self.validate_general(self.folder("general", name, seed) / "model")
            write_json(results_file(self.args.out, "general", name, seed), entry)
        return entry

    @functools.cached_property
    def tourism(self) -> dict:
        """Tourism's three test portions, read once per invocation (every general run is scored on them)."""
        from chronos_distill.data.competition import load_benchmarks

        return load_benchmarks("Tourism")

    def general_corpus(self) -> Path:
        """The real corpus of ``--general-real-share`` runs, written once under ``--runs``: M3's training series
        without the validation rule's held-out series (``M3/<sn>`` ids, a parquet file)."""
        from chronos_distill.data.competition import holdout_series_ids, training_table

        path = Path(self.args.runs) / "corpus" / "m3-training-less-validation.parquet"
        if not path.is_file():
            table = training_table(("M3",))
            held_out = holdout_series_ids(("M1", "M3"), VALIDATION_SHARE)
            path.parent.mkdir(parents=True, exist_ok=True)
            table[~table["item_id"].isin(held_out)].to_parquet(path, index=False)
        return path

    def validate_general(self, model: Path | Any) -> dict:
        """What the ``contexts`` stage chooses on, fixed before its runs: the geometric mean of the student's WQL
        over the teacher's on the last official-horizon steps of held-out whole M1 + M3 *training* series, and
        its suite MAE over the teacher's at 64 steps on fresh series of the validation seed. Never a test portion.
        ``model``: an exported folder or a loaded ``Chronos2Model``."""
        from chronos_distill.chronos2.loading import load_chronos2
        from chronos_distill.data.competition import validation_benchmarks

        if isinstance(model, (str, Path)):
            model = load_chronos2(model, role="student")
        benchmarks = validation_benchmarks(("M1", "M3"), VALIDATION_SHARE)
        real = score_student(model, benchmarks, self.teacher_scores_on("validation", benchmarks))["vs_teacher"]
        suite = self.suite(self.args.validation_suite_seed, 64).ratio(model)["geomean"]
        return {"real_vs_teacher": real, "suite_64": suite, "score": float(np.sqrt(real * suite)),
                "rule": "sqrt(validation M1 + M3 training-series WQL vs teacher x validation suite at 64 vs teacher)"}

    # -- sample-efficiency curves -----------------------------------------------------------------------------
    def curve(self, variant: str, seed: int) -> dict | None:
        """One curve: the ``--curve-rung`` general student trained for ``--curve-steps`` with ``variant``'s alpha
        (:data:`CURVE_VARIANTS`) on the curves' own teacher cache, every ``--curve-every``-step checkpoint kept
        and scored (test: M1 + M3 and the suite at 18 and 64; validation: held-out M1 + M3 training series and the
        validation-seed suite). Resumable: training continues from its last checkpoint, and the points already in
        the results file are not scored again. None with ``--report`` when nothing is recorded."""

        args = self.args
        # a pruned curve is named so, and labels nothing new: it reads the general stage's cache of the same key
        pruned = args.curve_init == "pruned"
        name = f"{args.curve_rung}@{variant}" + ("-pruned" if pruned else "")
        file = results_file(args.out, "curves", name, seed)
        entry = json.loads(file.read_text()) if file.is_file() else None
        if args.report or (entry is not None and entry.get("complete")):
            return entry
        folder = self.folder("curves", name, seed)
        options = dict(general=True, alpha=CURVE_VARIANTS[variant], prediction_length=None, min_past=None,
                       # always given: the first curves were trained before pruned became --general's default
                       student_init=args.curve_init,
                       teacher_cache=str(Path(args.runs) / ("teacher-cache" if pruned else "curve-cache")),
                       cache_batches=args.curve_cache_batches,
                       max_steps=args.curve_steps, save_steps=args.curve_every,
                       logging_steps=max(1, args.curve_every // 5),
                       # every checkpoint is kept: each is a point of the curve
                       trainer_args={"save_total_limit": None}, **rung_shape(args.curve_rung))
        trained = train_in_subprocess(run_options(args, seed, folder, **options))
        record = trained["record"]
        points = dict(entry["points"]) if entry is not None else {}
        sets = {"unseen": scored_sets("general")["held-out"], "tourism": self.tourism}
        for checkpoint in sorted((folder / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
            step = checkpoint.name.split("-")[1]
            if step in points:
                continue
            student = student_at_checkpoint(trained["model_dir"], checkpoint)
            point: dict[str, Any] = {kind: score_student(student, b, self.teacher_scores_on(kind, b)) for kind, b in sets.items()}
            point["suite"] = {str(h): self.suite(args.suite_seed, h).ratio(student) for h in SUITE_HORIZONS}
            point["validation_general"] = self.validate_general(student)
            points[step] = point
            print(f"curve {name} seed {seed} step {step}: unseen {point['unseen']['vs_teacher']:.4f} suite 64 "
                  f"{point['suite']['64']['geomean']:.3f} validation {point['validation_general']['score']:.4f}",
                  flush=True)
            entry = {"stage": "curves", "name": name, "variant": variant, "alpha": CURVE_VARIANTS[variant],
                     "seed": seed, "complete": False, "points": points,
                     "teacher_cache": {k: v for k, v in (record["training"]["teacher_cache"] or {}).items()
                                       if k != "folder"},
                     **self.run_fields(trained, folder, "two_stage.py")}
            file.parent.mkdir(parents=True, exist_ok=True)
            write_json(file, entry)
        if entry is not None:
            entry["complete"] = str(args.curve_steps) in points
            write_json(file, entry)
        return entry

    # -- stage 2 ----------------------------------------------------------------------------------------------
    def task(self, variant: str, seed: int, share: float | None = None) -> dict | None:
        """A task student (the module doc's variants); ``share``: its --transfer-general (run ``<variant>@<share>``)."""
        options: dict[str, Any] = dict(alpha=0.5, train_data=self.train_table, validation_data=self.validation_table,
                                       teacher_cache=str(Path(self.args.runs) / "teacher-cache"))
        if variant != "KD":
            options["student"] = str(self.start_model())
        if share:
            options["transfer_general"] = share
        # scored in-domain on M3, held out on M1
        return self.run("task", variant if share is None else f"{variant}@{share}", seed, options,
                        scored_sets("cross-domain"))

    def start_model(self) -> Path:
        rung, seed = self.args.start.split(":") if ":" in self.args.start else (self.args.start, "0")
        model = self.folder("general", rung, int(seed)) / "model"
        if not (model / "distillation.json").is_file():
            raise SystemExit(f"the general student {self.args.start} is not trained in {model}: run "
                             f"python bench/two_stage.py --stage general --rungs {rung} --seeds {seed} first")
        return model


def student_at_checkpoint(model_dir: str | Path, checkpoint: Path):
    """The student of a training checkpoint (``checkpoints/checkpoint-N``, the Trainer's state of the student and
    the terms' projections) in the exported student's config: a frozen ``Chronos2Model``."""
    from safetensors.torch import load_file

    from chronos_distill.chronos2.loading import load_chronos2

    model = load_chronos2(model_dir, role="student")
    state = load_file(checkpoint / "model.safetensors")
    model.load_state_dict({k.removeprefix("student."): v for k, v in state.items() if k.startswith("student.")},
                          strict=True)
    return model


def run_task_stage(stage: TwoStage, args: argparse.Namespace) -> None:
    """Every variant at every seed; the general share chosen on the first seed (see the module doc)."""
    done = seeds_choosing_share(args.variants, seeds_of(args), stage.task, share_variant="two-stage+general",
                                reference="two-stage", shares=args.general_shares)
    if done["choice"]:
        print(f"general share chosen on seed {done['choice']['seed']}: {done['choice']['chosen']:g}", flush=True)


# -- report -------------------------------------------------------------------------------------------------

def collect(args: argparse.Namespace) -> dict:
    """Every results file under ``<out>/two_stage`` (the report reads nothing else)."""
    root = Path(args.out) / "two_stage"
    found: dict[str, dict] = {"general": {}, "task": {}, "curves": {}}
    for stage in found:
        for file in sorted((root / stage).glob("*/seed*.json")):
            entry = json.loads(file.read_text())
            found[stage].setdefault(file.parent.name, {})[file.stem.removeprefix("seed")] = entry
    return found


def report_markdown(found: dict, args: argparse.Namespace) -> str:
    lines = ["# Two-stage distillation: a family of general students, and task students that start from one", "",
             "`python bench/two_stage.py --report` from the per-run results in `two_stage/`; each names its commit, "
             "command, teacher digest and options.", ""]
    general = found["general"]
    if general:
        any_entry = next(iter(next(iter(general.values())).values()))
        prov, opts = any_entry["provenance"], any_entry["options"]
        lines += ["## Stage 1: general students (`--general`, every horizon up to the teacher's)", "",
                  f"Teacher {prov['teacher']['name']} (`{prov['teacher']['alias']}`, weights sha256 "
                  f"{str(prov['teacher']['weights_sha256'])[:12]}); {opts['max_steps']} steps at batch "
                  f"{opts['batch_size']}, learning rate {opts['learning_rate']}, one teacher cache of "
                  f"{opts['cache_batches']} batches for every rung and seed (another, where the name says -c<N>). Scores relative to the teacher "
                  "(1.0 keeps everything); M1 + M3: WQL on the six test portions at their official horizons "
                  "(geometric mean); suite: median MAE on fresh seasonality-suite series.", "",
                  "Validation = sqrt(held-out M1 + M3 *training*-series WQL vs teacher x validation-seed suite at 64 "
                  "vs teacher), the rule every choice below is made on (lower is better; never a test portion). "
                  "Run names: @<context> the --general-context draw, -c<N> a teacher cache of N batches, -pruned "
                  "--student-init pruned, -bank<N> --general-bank-size N, -truth-only alpha 0 (the same stream's own "
                  "truth, no teacher), -alpha<A> KD mixed with that truth at alpha A, -m3real<S> a share S of real "
                  "contexts from M3's training series less the validation series (M1 alone is then the real set no "
                  "stage saw). Tourism: its three test portions at their official horizons (4 / 8 / 24), a "
                  "collection no stage trains on, scored for the runs whose model was still on the machine.", "",
                  "| student | parameters | seeds | M1 + M3 WQL vs teacher | M1 + M3 WQL vs seasonal naive "
                  "| M1 + M3 skill kept | M1 alone WQL vs teacher | M1 alone skill kept | Tourism WQL vs teacher "
                  "| Tourism skill kept | suite at 18 | suite at 64 | validation | s / step |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        teacher_vs_naive = None
        for rung, seeds in sorted(general.items(), key=lambda kv: next(iter(kv[1].values()))["parameters"]):
            entries = list(seeds.values())
            unseen = [e["unseen"] for e in entries]
            teacher_vs_naive = geomean(unseen[0]["teacher_wql"][d] / unseen[0]["seasonal_naive_wql"][d]
                                       for d in unseen[0]["teacher_wql"])
            lines.append(f"| {rung} | {entries[0]['parameters']:,} | {','.join(seeds)} | "
                         f"{pm([u['vs_teacher'] for u in unseen])} | {pm([u['vs_seasonal_naive'] for u in unseen])} | "
                         f"{pm([unseen_skill_kept(u) for u in unseen])} | "
                         f"{_ratio_and_kept([restricted(u, 'm1_') for u in unseen])} | "
                         f"{_ratio_and_kept([e['tourism'] for e in entries if 'tourism' in e])} | "
                         f"{pm([e['suite']['18']['geomean'] for e in entries])} | "
                         f"{pm([e['suite']['64']['geomean'] for e in entries])} | "
                         f"{pm([e['validation_general']['score'] for e in entries if 'validation_general' in e])} | "
                         f"{np.median([e['seconds_per_step'] for e in entries]):.2f} |")
        if teacher_vs_naive is not None:
            lines += ["", f"The teacher's M1 + M3 WQL is {teacher_vs_naive:.3f}x seasonal naive's; seasonal naive is "
                      f"{1 / teacher_vs_naive:.3f}x the teacher's. Step times come from separate runs (the "
                      "latency table of two_stage_first.md is interleaved)."]
    task = found["task"]
    if task:
        lines += ["", "## Stage 2: task students (cross-domain: M3 training series; KD, alpha 0.5)", "",
                  "Scores relative to the teacher: in-domain = M3 test WQL, held-out = M1 test WQL, suite = median MAE "
                  "at the trained horizon (18) and at 64; skill kept = the student's skill over seasonal naive (1 - "
                  "geometric mean of WQL vs seasonal naive) over the teacher's, on M3 and on M1. Each run exports its best checkpoint on the held-out whole "
                  "training series. A cell is the mean and std over 3 or more seeds, else each seed's value.", "",
                  "| variant | starts from | seeds | in-domain (M3) | held-out (M1) | skill kept M3 / M1 | suite at 18 "
                  "| suite at 64 | s / step |", "|---|---|---|---|---|---|---|---|---|"]
        for name, seeds in task.items():
            entries = list(seeds.values())
            start = entries[0].get("start") or "random init"
            lines.append(f"| {name} | {start} | {','.join(seeds)} | "
                         f"{pm([e['in-domain']['vs_teacher'] for e in entries])} | "
                         f"{pm([e['held-out']['vs_teacher'] for e in entries])} | "
                         f"{pm([unseen_skill_kept(e['in-domain']) for e in entries])} / "
                         f"{pm([unseen_skill_kept(e['held-out']) for e in entries])} | "
                         f"{pm([e['suite']['18']['geomean'] for e in entries])} | "
                         f"{pm([e['suite']['64']['geomean'] for e in entries])} | "
                         f"{np.median([e['seconds_per_step'] for e in entries]):.2f} |")
    trials = {name.split("@")[1]: seeds for name, seeds in task.items() if name.startswith("two-stage+general@")}
    first = min((int(seed) for seeds in trials.values() for seed in seeds), default=None)
    # the choice the task stage made, read back from the recorded runs by the same rule
    choice = first is not None and seeds_choosing_share(
        ["two-stage", "two-stage+general"], [first],
        lambda variant, seed, share: task.get(variant if share is None else f"{variant}@{share:g}", {}).get(str(seed)),
        share_variant="two-stage+general", reference="two-stage",
        shares=[float(share) for share, seeds in trials.items() if str(first) in seeds])["choice"]
    if choice:
        lines += ["", f"General share chosen on seed {first}'s validation (suite at the validation seed x held-out "
                  "truth loss relative to two-stage; lower is better, the rule of bench/harness.py): "
                  + ", ".join(f"{float(k):g}: {v:.4f}" for k, v in choice["scores"].items())
                  + f"; chosen {choice['chosen']:g}."]
    lines += pruned_curves_markdown(found["curves"])
    return "\n".join(lines) + "\n"


def curve_points(entry: dict) -> list[tuple[int, dict]]:
    """A curve's scored checkpoints, in step order."""
    return sorted(((int(step), point) for step, point in entry["points"].items()), key=lambda sp: sp[0])


def steps_to_match(kd: dict, truth: dict, metric: str) -> dict:
    """At how many steps the distilled curve first reaches the truth-only curve's best ``metric`` (a name of
    :data:`PRUNED_CURVE_COLUMNS`; lower is better): ``{"truth_best", "truth_step", "kd_step"}``, ``kd_step`` None
    when it never does."""
    read = PRUNED_CURVE_COLUMNS[metric]
    truth_step, best = min(((step, read(point)) for step, point in curve_points(truth)), key=lambda sv: sv[1])
    kd_step = next((step for step, point in curve_points(kd) if read(point) <= best), None)
    return {"truth_best": best, "truth_step": truth_step, "kd_step": kd_step}


def curve_compute_seconds(entry: dict, step: int) -> float:
    """CPU seconds to reach ``step``: the student's steps, plus the teacher's labelling of the cache when the run
    reads the teacher (the cache is built once for every run of a family; a truth-only run needs no teacher)."""
    labelling = (entry.get("teacher_cache") or {}).get("build_seconds") or 0.0
    return step * entry["seconds_per_step"] + (labelling if entry["alpha"] > 0 else 0.0)


def match_lines(kd: dict, truth: dict, metrics, kd_label: str, compute: bool = False) -> list[str]:
    """One line per metric: truth-only's best, and the step at which the distilled curve first reaches it; with
    ``compute``, the CPU-hours each curve took to get there (:func:`curve_compute_seconds`)."""
    lines = []
    for metric in metrics:
        match = steps_to_match(kd, truth, metric)
        hours = {key: f"; {curve_compute_seconds(entry, match[step]) / 3600:.2f} CPU-h" if compute else ""
                 for key, entry, step in (("kd", kd, "kd_step"), ("truth", truth, "truth_step"))
                 if match[step] is not None}
        reached = (f"{kd_label} reaches it at step {match['kd_step']} ({match['kd_step'] / match['truth_step']:.2f}x "
                   f"the steps{hours['kd']})" if match["kd_step"] is not None else
                   f"{kd_label} never reaches it within {curve_points(kd)[-1][0]} steps")
        lines.append(f"- {metric}: truth-only's best {match['truth_best']:.3f} at step {match['truth_step']}"
                     + (f" ({hours['truth'][2:]})" if compute else "") + "; " + reached + ".")
    return lines


#: the columns of a pruned start's curve (issue 48): (label, how to read it off one scored checkpoint)
PRUNED_CURVE_COLUMNS = {
    "M1 + M3 WQL vs teacher": lambda p: p["unseen"]["vs_teacher"],
    "M1 + M3 skill kept": lambda p: unseen_skill_kept(p["unseen"]),
    "Tourism WQL vs teacher": lambda p: p["tourism"]["vs_teacher"],
    "Tourism skill kept": lambda p: unseen_skill_kept(p["tourism"]),
    "suite at 18": lambda p: p["suite"]["18"]["geomean"],
    "suite at 64": lambda p: p["suite"]["64"]["geomean"],
    "validation": lambda p: p["validation_general"]["score"],
    "M1 + M3 series crossing": lambda p: p["unseen"]["crossing"]["rows_crossing"],
}


def pruned_curves_markdown(curves: dict) -> list[str]:
    """The pruned start's own curves (``--stage curves --curve-init pruned``): each scored step's figures, over
    the seeds recorded at that step (``pm``: mean ± std from 3, else each seed's value)."""
    lines: list[str] = []
    for name, seeds in sorted(curves.items()):
        if not name.endswith("-pruned"):
            continue
        entries = list(seeds.values())
        first = entries[0]
        opts = first["options"]
        lines += ["", f"## The pruned start's own curve: {name} (`--stage curves --curve-init pruned`)", "",
                  f"The {shape_of(name)} general student pruned from the teacher, alpha {first['alpha']:g}, trained for "
                  f"{opts['max_steps']} steps at batch {opts['batch_size']} (learning rate {opts['learning_rate']}, "
                  f"cosine over the whole run) on the general stage's {opts['cache_batches']}-batch cache, every "
                  f"{opts['save_steps']} steps scored; seeds {', '.join(sorted(seeds))}. The 2000-step runs of the "
                  "levers table ran their own schedule to 2000.", "",
                  "| step | " + " | ".join(PRUNED_CURVE_COLUMNS) + " |", "|---" * (len(PRUNED_CURVE_COLUMNS) + 1) + "|"]
        steps = sorted({int(step) for entry in entries for step in entry["points"]})
        for step in steps:
            points = [entry["points"][str(step)] for entry in entries if str(step) in entry["points"]]
            cells = [pm([read(point) for point in points]) for read in PRUNED_CURVE_COLUMNS.values()]
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
    # the recommended recipe against the truth-only control from the same start, seed by seed (issue 48, item 6)
    for name, seeds in sorted(curves.items()):
        control = curves.get(name.replace("@KD+truth-", "@truth-only-"), {}) if "@KD+truth-pruned" in name else {}
        for seed in sorted(set(seeds) & set(control)):
            recipe, truth = seeds[seed], control[seed]
            last = min(curve_points(recipe)[-1][0], curve_points(truth)[-1][0])
            lines += ["", f"KD + truth against the truth-only control from the pruned start, seed {seed} (1 seed). "
                      "Steps-to-match (the first scored step at which KD + truth reaches truth-only's best; a match "
                      "at the first scored step is an upper bound), with the CPU-hours each took to get there; compute "
                      f"to step {last}: {curve_compute_seconds(recipe, last) / 3600:.2f} CPU-h for KD + truth (its "
                      f"steps and the teacher's labelling of the cache) against {curve_compute_seconds(truth, last) / 3600:.2f} "
                      "for truth-only (its steps alone):", ""]
            lines += match_lines(recipe, truth, PRUNED_MATCH_METRICS, "KD + truth", compute=True)
    return lines


#: what the pruned curves are matched on (names of :data:`PRUNED_CURVE_COLUMNS`; lower is better for each)
PRUNED_MATCH_METRICS = ("M1 + M3 WQL vs teacher", "Tourism WQL vs teacher", "suite at 64", "validation")


def _ratio_and_kept(scored: list[dict]) -> str:
    """Two cells: WQL vs the teacher and skill kept over the runs scored there ("-" where none was)."""
    if not scored:
        return "- | -"
    return f"{pm([s['vs_teacher'] for s in scored])} | {pm([unseen_skill_kept(s) for s in scored])}"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The options of every stage, parsed and checked once."""
    parser = arguments(__doc__)
    add_training_arguments(parser, steps=2000, runs="runs/bench-two-stage")
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--report", action="store_true", help="tables and plots from the results files only")
    parser.add_argument("--rungs", default=DEFAULT_RUNGS, help="general students, d_model x layers")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="task variants, of " + ", ".join(VARIANTS))
    parser.add_argument("--start", default="384x2:0", help="the general student task runs start from (rung:seed)")
    parser.add_argument("--general-shares", default="0.25,0.5", help="candidate shares of two-stage+general")
    parser.add_argument("--general-context", default=None, choices=GENERAL_CONTEXTS,
                        help="the general stage's --general-context (its runs are named <rung>@<context>)")
    parser.add_argument("--general-prediction-length", type=int, default=None,
                        help="cap the general students' horizons (default: every horizon up to the teacher's)")
    parser.add_argument("--cache-batches", type=int, default=500,
                        help="general runs: batches of the teacher cache (named -c<N> when not 500)")
    parser.add_argument("--general-alpha", type=float, default=1.0,
                        help="general runs: --alpha (0 the truth-only control, named -truth-only)")
    parser.add_argument("--general-real-share", type=float, default=0.0,
                        help="general runs: --general-real-share with M3's training series (less the validation "
                        "series) as the corpus (named -m3real<S>); M1 stays unseen")
    parser.add_argument("--general-init", default="random", choices=("random", "pruned"),
                        help="general runs: --student-init (named -pruned when pruned)")
    parser.add_argument("--general-bank-size", type=int, default=None,
                        help="general runs: --general-bank-size (named -bank<N>; default the product's)")
    parser.add_argument("--save-steps", type=int, default=250)
    parser.add_argument("--suite-seed", type=int, default=3)
    parser.add_argument("--validation-suite-seed", type=int, default=2)
    parser.add_argument("--suite-series", type=int, default=32)
    parser.add_argument("--curve-rung", default="384x2", help="the student of the curves stage")
    parser.add_argument("--curve-steps", type=int, default=8000, help="steps of each curve")
    parser.add_argument("--curve-every", type=int, default=500, help="a scored checkpoint every N steps")
    parser.add_argument("--curve-cache-batches", type=int, default=2000,
                        help="the curves' teacher cache: batches labelled once, shared by both variants")
    parser.add_argument("--curve-variants", default="KD,truth-only", help="of " + ", ".join(CURVE_VARIANTS))
    parser.add_argument("--curve-init", default="random", choices=("random", "pruned"),
                        help="the curves' --student-init (named -pruned when pruned)")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.rungs = [r.strip() for r in args.rungs.split(",") if r.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    args.general_shares = [float(v) for v in args.general_shares.split(",") if v.strip()]
    args.curve_variants = [v.strip() for v in args.curve_variants.split(",") if v.strip()]
    if sorted(set(args.curve_variants) - set(CURVE_VARIANTS)):
        parser.error(f"unknown curve variant(s); choose from {list(CURVE_VARIANTS)}")
    if sorted(set(args.variants) - set(VARIANTS)):
        parser.error(f"unknown variant(s); choose from {list(VARIANTS)}")
    if not args.report and args.stage is None:
        parser.error(f"give --stage ({', '.join(STAGES)}) or --report")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.report:
        found = collect(args)
        plot_skill_kept(found, Path(args.out) / "two_stage_skill_kept.png")
        task = next(iter(next(iter(found["task"].values())).values()), None) if found["task"] else None
        if task is not None:
            plot_curves(found["task"], Path(args.out) / "two_stage_curves.png",
                        f"Task students distilled on M3 from teacher {task['provenance']['teacher']['name']}, "
                        f"{task['options']['max_steps']} steps")
        found["provenance"] = provenance(args.teacher, args.argv, "two_stage.py")  # this report's own
        write_results(args.out, "two_stage", report_markdown(found, args), found, page=page)
        return 0
    stage = TwoStage(args)
    if args.stage == "general":
        over_seeds(args.rungs, seeds_of(args), lambda rung, seed: stage.general(rung, seed, args.general_context))
    elif args.stage == "task":
        run_task_stage(stage, args)
    else:
        over_seeds(args.curve_variants, seeds_of(args), stage.curve)
    return 0


#: Other compact forecasters' skill kept against their own large model, as issue 48 quotes them (each on its own
#: benchmark and teacher: drawn beside ours for scale, not as a like-for-like comparison): label -> (parameters,
#: skill kept).
ANCHORS = {
    "Chronos-2-Small / Chronos-2 (fev-bench)": (28e6, 0.96),
    "Chronos-Bolt mini / base": (21e6, 0.95),
    "Chronos-Bolt tiny / base": (9e6, 0.88),
    "Toto-2.0 22m": (22e6, 0.965),
    "Toto-2.0 4m": (4e6, 0.91),
    "TimeTron-v2 / Chronos-2 (latent KD)": (33e6, 0.75),
}


def plot_skill_kept(found: dict, path: Path) -> bool:
    """The skill each general student keeps on M1 + M3 (:func:`common.unseen_skill_kept`) against its parameters,
    with the field's published points (:data:`ANCHORS`) drawn beside them and labelled as other teachers'; False
    when there is nothing to draw."""
    general = found["general"]
    if not general:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.4, 5.0))
    # label offsets (points) that keep the anchors' names apart
    offsets = {"Toto-2.0 22m": (-6, 6, "right"), "Toto-2.0 4m": (-6, -11, "right"),
               "Chronos-Bolt mini / base": (6, -10, "left")}
    for label, (parameters, kept) in ANCHORS.items():
        dx, dy, ha = offsets.get(label, (6, -3, "left"))
        ax.scatter([parameters], [kept], marker="D", color="grey", s=36, zorder=2)
        ax.annotate(label, (parameters, kept), textcoords="offset points", xytext=(dx, dy), fontsize=7,
                    color="dimgrey", ha=ha)
    same_shape: dict[str, int] = {}
    for rung, seeds in general.items():
        entries = list(seeds.values())
        # a run whose real contexts came from M3's training series is read on M1 alone, the real set it never saw
        real = "-m3real" in rung
        values = [unseen_skill_kept(restricted(e["unseen"], "m1_") if real else e["unseen"]) for e in entries]
        # runs of one shape share a size: each is drawn a little right of the last
        dodge = same_shape[shape_of(rung)] = same_shape.get(shape_of(rung), -1) + 1
        x = entries[0]["parameters"] * 1.04 ** dodge
        labelled = rung.endswith("-pruned")
        ax.errorbar(x, np.mean(values), yerr=np.std(values, ddof=1) if len(values) > 2 else None,
                    marker="o", color="tab:blue" if labelled else "lightsteelblue", linestyle="none", markersize=6,
                    capsize=3, zorder=3)
        if labelled:
            short = rung.replace("@uniform-c2000", "").replace("-pruned", " pruned")
            # left of its point: a real-contexts run (the anchors sit right at its height) and the smallest rung
            # (Toto-2.0 4m sits right of it)
            left = real or entries[0]["parameters"] < 3e6
            ax.annotate(f"{short}{', M1 alone' if real else ''} ({len(values)} seed{'s' * (len(values) > 1)})",
                        # the others right of it, alternately above and below, clear of their neighbours' bars
                        (x, np.mean(values)), textcoords="offset points", fontsize=7, color="tab:blue",
                        xytext=(-8, -3) if left else (8, 3 if dodge % 2 else -8), ha="right" if left else "left")
    ax.axhline(1.0, color="black", linestyle=":", linewidth=1)
    ax.scatter([], [], marker="o", color="tab:blue", label="our pruned general students, 2000-batch cache (M1 + M3 "
               "test portions; M1 alone where M3 gave real contexts)")
    ax.scatter([], [], marker="o", color="lightsteelblue", label="our earlier general students (random starts, "
               "other contexts)")
    ax.scatter([], [], marker="D", color="grey", label="others' students of their own teachers (published; not like-for-like)")
    ax.set_xscale("log")
    ax.set_xlim(5e5, 1.2e8)
    ax.set_xlabel("student parameters (our runs of one shape drawn side by side, each 4% right of the last)")
    ax.set_ylabel("skill kept: student skill / teacher skill over seasonal naive")
    ax.set_ylim(0.6, 1.08)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    any_entry = next(iter(next(iter(general.values())).values()))
    ax.set_title(f"Skill kept by general students of {any_entry['provenance']['teacher']['name']}, "
                 f"{any_entry['options']['max_steps']} steps each", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return True


#: the targets the issues set, quoted beside what was measured (no measurement: named once here)
TARGETS = {'general_suite_64': '1.15x', 'task_suite_18': '1.3x'}


def two_stage_figures(folder: Path) -> dict[str, str]:
    """The figures the pages quote (every run's own are in ``two_stage.md``)."""
    r = load_json(folder, "two_stage.json")
    pruned = load_json(folder, "two_stage/general/384x2@uniform-c2000-pruned/seed0.json")
    out = {"pruned_validation": fmt(pruned["validation_general"]["score"])}  # seed 0's
    # every seed run of the pruned start (KD alone), of KD mixed with the truth (issue 48's default) and of the
    # truth-only control (mean ± std from 3, else each seed's value)
    read = {"unseen_pm": lambda runs: pm([run["unseen"]["vs_teacher"] for run in runs], 3, "x"),
            "kept_pm": lambda runs: pm([unseen_skill_kept(run["unseen"]) for run in runs], 3),
            "suite_pm": lambda runs: pm([run["suite"]["64"]["geomean"] for run in runs], 3, "x"),
            "seeds": lambda runs: str(len(runs)),
            # Tourism, over the runs scored there (a run whose model had left the machine was not)
            "tourism_pm": lambda runs: pm([run["tourism"]["vs_teacher"] for run in runs if "tourism" in run], 3, "x"),
            "tourism_kept_pm": lambda runs: pm([unseen_skill_kept(run["tourism"]) for run in runs if "tourism" in run], 3)}
    tourism = ("tourism_pm", "tourism_kept_pm")
    for kind, name, quoted in (("pruned", "384x2@uniform-c2000-pruned", ("unseen_pm", "kept_pm", "suite_pm", "seeds")),
                               ("control", "384x2@uniform-c2000-truth-only-pruned", ("kept_pm",) + tourism),
                               ("kd_truth", "384x2@uniform-c2000-alpha0.5-pruned",
                                ("unseen_pm", "kept_pm", "seeds") + tourism),
                               # issue 48's family at the final recipe: the ~2M rung, where it was run
                               ("small", "256x2@uniform-c2000-alpha0.5-pruned", ("unseen_pm", "kept_pm") + tourism)):
        runs = _general_runs(folder, name)
        if runs:
            out.update({f"{kind}_{figure}": read[figure](runs) for figure in quoted})
            if kind == "small":
                out["small_parameters"] = f"{runs[0]['parameters'] / 1e6:.1f}M"
    # issue 48: the default recipe's own curve from the pruned start, at its last scored step over its seeds
    # and the truth-only control's from the same start (``control_curve_*``), where it is recorded
    for prefix, name in (("curve", "384x2@KD+truth-pruned"), ("control_curve", "384x2@truth-only-pruned")):
        curve = r["curves"].get(name)
        if not curve:
            continue
        last_step = max(int(step) for entry in curve.values() for step in entry["points"])
        ends = [entry["points"][str(last_step)] for entry in curve.values() if str(last_step) in entry["points"]]
        out.update({f"{prefix}_steps": str(last_step),
                    f"{prefix}_unseen": pm([p["unseen"]["vs_teacher"] for p in ends], 3, "x"),
                    f"{prefix}_kept": pm([unseen_skill_kept(p["unseen"]) for p in ends], 3),
                    f"{prefix}_tourism": pm([p["tourism"]["vs_teacher"] for p in ends], 3, "x"),
                    f"{prefix}_tourism_kept": pm([unseen_skill_kept(p["tourism"]) for p in ends], 3),
                    f"{prefix}_suite_64": pm([p["suite"]["64"]["geomean"] for p in ends], 3, "x"),
                    f"{prefix}_crossing": pm([100 * p["unseen"]["crossing"]["rows_crossing"] for p in ends], 1, "%")})
    # the recipe's curve against the control's from the same start, seed 0: where it first reaches the control's
    # best on M1 + M3 and on Tourism, and the compute to the last step (the teacher's labelling counted for it)
    recipe, control = (r["curves"].get(name, {}).get("0") for name in ("384x2@KD+truth-pruned", "384x2@truth-only-pruned"))
    if recipe and control and control.get("complete"):
        last = min(curve_points(recipe)[-1][0], curve_points(control)[-1][0])
        for key, metric in (("unseen", "M1 + M3 WQL vs teacher"), ("tourism", "Tourism WQL vs teacher")):
            match = steps_to_match(recipe, control, metric)
            out[f"match_{key}"] = (f"{match['kd_step']} steps ({match['kd_step'] / match['truth_step']:.2f}x)"
                                   if match["kd_step"] is not None else f"no step up to {last}")
            out[f"match_{key}_control_step"] = str(match["truth_step"])
            if key == "unseen" and match["kd_step"] is not None:  # the compute of each to get there, labelling counted
                out[f"match_{key}_compute"] = (f"{curve_compute_seconds(recipe, match['kd_step']) / 3600:.2f} CPU-h "
                                               f"against {curve_compute_seconds(control, match['truth_step']) / 3600:.2f}")
        out.update({"match_compute_recipe": fmt(curve_compute_seconds(recipe, last) / 3600, 2),
                    "match_compute_control": fmt(curve_compute_seconds(control, last) / 3600, 2)})
    # stage two: the task students over their seeds, and the step cost of the one with a general share
    task = {name: list(r["task"][name].values()) for name in ("KD", "two-stage")}
    for key, name in (("kd", "KD"), ("two_stage", "two-stage")):
        out.update({f"{key}_in_domain": pm([run["in-domain"]["vs_teacher"] for run in task[name]]),
                    f"{key}_suite_18": times(mean_std([run["suite"]["18"]["geomean"] for run in task[name]])[0])})
    step = mean_std([run["seconds_per_step"] for run in task["two-stage"]])[0]
    out["share_step_ratio"] = times(r["task"]["two-stage+general@0.25"]["0"]["seconds_per_step"] / step, 1)
    return out


def _general_runs(folder: Path, name: str) -> list[dict]:
    """Every seed's record of one ``bench/two_stage.py --stage general`` run, in seed order."""
    folder = folder / "two_stage" / "general" / name
    return [json.loads(path.read_text()) for path in sorted(folder.glob("seed*.json"))]


#: the issue-40 lever runs: row label -> general run name
LEVER_ROWS = {
    "random start, 500-batch cache (the earlier recipe)": "384x2@uniform",
    "random start, 2000-batch cache": "384x2@uniform-c2000",
    "pruned start, 2000-batch cache (KD alone, `--alpha 1`)": "384x2@uniform-c2000-pruned",
    "pruned start, truth-only (`--alpha 0`)": "384x2@uniform-c2000-truth-only-pruned",
    "pruned start, KD mixed with the stream's truth (`--alpha 0.5`, now the default)": "384x2@uniform-c2000-alpha0.5-pruned",
    "pruned start, real M3 contexts at share 0.25 (`--general-real-share 0.25`)": "384x2@uniform-c2000-m3real0.25-pruned",
    "pruned start, real M3 contexts at share 0.5": "384x2@uniform-c2000-m3real0.5-pruned",
}


#: stage two's task students: row label -> task run name
TASK_ROWS = {"KD from scratch": "KD", "two-stage: KD from the 384x2 general student": "two-stage"}


def two_stage_levers_table(folder: Path) -> str:
    """The issue-40 levers: validation score (what chose), M1 + M3 test WQL and the suite at 18 and 64 steps, each
    vs the teacher, and the share of the teacher's skill over seasonal naive kept on M1 + M3 and on M1 alone (the
    real set no stage of a real-share run saw) (``pm``: mean ± std
    from 3 seeds, else each seed's value and the count)."""
    lines = ["| general student | validation | M1 + M3 test WQL | M1 + M3 skill kept | M1 skill kept | suite at 18 "
             "| suite at 64 |", "|---|---|---|---|---|---|---|"]
    for label, name in LEVER_ROWS.items():
        runs = _general_runs(folder, name)
        if not runs:  # a lever not run yet
            continue
        columns = [[r["validation_general"]["score"] for r in runs], [r["unseen"]["vs_teacher"] for r in runs],
                   [unseen_skill_kept(r["unseen"]) for r in runs],
                   [unseen_skill_kept(restricted(r["unseen"], "m1_")) for r in runs],
                   [r["suite"]["18"]["geomean"] for r in runs], [r["suite"]["64"]["geomean"] for r in runs]]
        lines.append(f"| {label} | " + " | ".join(pm(values) for values in columns) + " |")
    return "\n".join(lines)


def two_stage_task_table(folder: Path) -> str:
    """Stage two (cross-domain): WQL vs the teacher in-domain (M3) and held out (M1), the suite at 18 and 64 steps."""
    lines = ["| task student | in-domain (M3) | held-out (M1) | suite at 18 | suite at 64 |", "|---|---|---|---|---|"]
    for label, name in TASK_ROWS.items():
        runs = [json.loads(path.read_text()) for path in sorted((folder / "two_stage" / "task" / name).glob("seed*.json"))]
        real = [pm([r[kind]["vs_teacher"] for r in runs]) for kind in ("in-domain", "held-out")]
        suite = [pm([r["suite"][h]["geomean"] for r in runs], 2, "x") for h in ("18", "64")]
        lines.append(f"| {label} | " + " | ".join(real + suite) + " |")
    return "\n".join(lines)


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from ``folder``'s results (:func:`common.write_page`)."""
    return {"figures": {**two_stage_figures(folder), **{f"target_{k}": v for k, v in TARGETS.items()}},
            "blocks": {"two-stage-levers": two_stage_levers_table(folder),
                       "two-stage-task": two_stage_task_table(folder)}}


if __name__ == "__main__":
    raise SystemExit(main())
