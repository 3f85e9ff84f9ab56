"""Speed benchmark: distillation steps against their compute floor, the teacher cache, forecast cost, memory.

(a) seconds per distillation step vs the floor: one teacher forward (no grad) + student forward/backward +
    optimizer step, timed bare in the same process on the same batch; for output KD and feature+attention KD,
    all three interleaved on one batch (so the feature and attention terms' cost is read within one process).
(b) the design note's way (``Chronos2Pipeline.predict`` of the teacher per batch, MSE on the median) vs ours
    (``median_mse`` output loss in the trainer), same batch.
(c) a step in epochs 2+ with the teacher cache vs plain student training (student forward/backward + step).
(d) forecast latency and throughput of the real shapes with random weights, 768-d/12-layer teacher vs
    384-d/6-layer student, batch 1 and 64, context 2048, horizon 64.
(e) peak memory of output-only vs feature+attention distillation at context 2048 (each in its own process:
    peak RSS on CPU, peak allocated memory on CUDA).

(a)-(c) use the teacher given by ``--teacher`` (default: the bundled reference teacher) and the default student
on batches of the M1 + M3 transfer set. The variants of each comparison are timed in turn, repeat after repeat
(``bench/common.py``'s interleaved timing), after a warm-up round: medians and interquartile ranges over
``--repeats``. (e) builds the 768/12 teacher once in the parent process; each worker only loads it and trains,
so its peak memory is the distillation's.

    python bench/speed.py [--teacher reference] [--repeats 10] [--out bench/results]

Writes ``speed.md`` and ``speed.json`` into ``--out`` (``speed-<device>`` on a GPU).
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from common import (
    CHRONOS2_SHAPES,
    arguments,
    command_line,
    fmt,
    interleaved_timing,
    load_json,
    peak_rss_mb,
    provenance,
    provenance_line,
    times,
    write_results,
)
from torch.nn import functional as F

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
#: measurement letter (module doc) -> its key in speed.json
PARTS = {"a": "a_step_vs_floor", "b": "b_design_note_vs_ours", "c": "c_cache", "d": "d_forecast",
         "e": "e_memory_context2048"}


def timed(variants: dict, repeats: int) -> dict:
    """Interleaved median and IQR of each variant (see ``common.interleaved_timing``), each step followed by a
    device sync, so that a timer measures the work, not its launch."""
    def synced(step):
        def run():
            step()
            if DEVICE == "cuda":
                torch.cuda.synchronize()
        return run

    return interleaved_timing({name: synced(step) for name, step in variants.items()}, repeats=repeats)


def _inputs(batch):
    return {k: batch[k] for k in ("context", "group_ids", "future_covariates", "num_output_patches")
            if batch.get(k) is not None}


def prepared(args, tmp: Path, name: str, **options):
    """A trainer built exactly as ``distill`` builds it, its optimizer, and one training batch on the device."""
    from chronos_distill import DistillationTrainer, DistillConfig

    cfg = DistillConfig(teacher=args.teacher, train_data=args.transfer, prediction_length=args.prediction_length,
                        min_past=6, batch_size=args.batch_size, max_steps=1000, output=str(tmp / name), **options)
    trainer = DistillationTrainer(args=cfg)
    trainer.create_optimizer_and_scheduler(num_training_steps=cfg.max_steps)
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which we bypass to time one step
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.model.train()
    return trainer, batch


def trainer_step(trainer, batch):
    def step():
        trainer.training_step(trainer.model, batch)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
    return step


def floor_step(teacher, student, batch, with_teacher: bool = True):
    """Bare: teacher forward without grad + student forward/backward (its own loss) + AdamW step."""
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    inputs = _inputs(batch)

    def step():
        if with_teacher:
            with torch.no_grad(), torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=DEVICE == "cuda"):
                teacher(**inputs)
        with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=DEVICE == "cuda"):
            loss = student(**inputs, future_target=batch["future_target"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def design_note_step(teacher, student, batch, horizon: int, alpha: float = 0.5):
    """The design note's loop: ``teacher_pipeline.predict`` on the batch's series, MSE on the median."""
    from chronos.chronos2 import Chronos2Pipeline

    pipeline = Chronos2Pipeline(teacher)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    contexts = [row[~torch.isnan(row)].cpu() for row in batch["context"]]
    truth = batch["future_target"][:, :horizon]
    median_index = student.chronos_config.quantiles.index(0.5)

    def step():
        quantiles, _ = pipeline.predict_quantiles(contexts, prediction_length=horizon, quantile_levels=[0.5],
                                                  batch_size=len(contexts))
        teacher_median = torch.cat([q[:, :, 0] for q in quantiles]).to(DEVICE)
        predictions = student(**_inputs(batch)).quantile_preds[:, median_index, :horizon]
        mask = ~torch.isnan(truth)
        loss = alpha * F.mse_loss(predictions, teacher_median) + (1 - alpha) * F.mse_loss(predictions[mask], truth[mask])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def forecast_costs(repeats: int) -> dict:
    from chronos.chronos2 import Chronos2Model

    from chronos_distill.chronos2.architecture import chronos2_config

    models = {name: Chronos2Model(chronos2_config(**shape, context_length=2048)).to(DEVICE).eval()
              for name, shape in CHRONOS2_SHAPES.items()}
    out = {name: {"parameters": sum(p.numel() for p in model.parameters())} for name, model in models.items()}

    def forecast(model, context):
        def run():
            with torch.inference_mode(), torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=DEVICE == "cuda"):
                model(context=context, num_output_patches=4)
        return run

    for batch_size in (1, 64):
        context = torch.randn(batch_size, 2048).cumsum(-1).to(DEVICE)
        times = timed({name: forecast(model, context) for name, model in models.items()}, repeats)
        for name, t in times.items():
            out[name][f"batch{batch_size}"] = {"latency_s": t["median_s"], "iqr_s": t["iqr_s"],
                                               "series_per_s": batch_size / t["median_s"]}
    teacher, student = CHRONOS2_SHAPES
    out["student_throughput_vs_teacher"] = {f"batch{b}": out[student][f"batch{b}"]["series_per_s"]
                                            / out[teacher][f"batch{b}"]["series_per_s"] for b in (1, 64)}
    return out


def save_memory_teacher(folder: Path) -> None:
    """The random 768/12 teacher of (e), written once by the parent process."""
    from chronos.chronos2 import Chronos2Model, Chronos2Pipeline

    from chronos_distill.chronos2.architecture import chronos2_config

    shape = CHRONOS2_SHAPES["teacher 768-d/12 layers"]
    teacher = Chronos2Model(chronos2_config(**shape, context_length=2048, max_output_patches=4))
    Chronos2Pipeline(teacher).save_pretrained(folder)


def memory_worker(variant: str, batch_size: int, teacher: str) -> dict:
    """Three distillation steps at context 2048 from the saved teacher; returns this process's peak memory."""
    from chronos_distill import distill
    from chronos_distill.data.synthetic import seasonal_long_table

    options = {"output": {}, "feature+attention": dict(feature_weight=0.1, attention_weight=0.1, attention_kind="both")}
    with tempfile.TemporaryDirectory() as tmp:
        if DEVICE == "cuda":
            torch.cuda.reset_peak_memory_stats()
        distill(teacher=teacher, train_data=seasonal_long_table(n_series=32, length=2200, seed=0),
                prediction_length=64, output=f"{tmp}/out", max_steps=3, save_steps=3, batch_size=batch_size,
                **options[variant])
    # VmHWM, not ru_maxrss: the latter survives exec and would report the parent's peak (it built the 768/12 teacher)
    peak_mb = torch.cuda.max_memory_allocated() / 2**20 if DEVICE == "cuda" else peak_rss_mb()
    return {"peak_memory_mb": peak_mb, "kind": "cuda max allocated" if DEVICE == "cuda" else "process peak RSS (VmHWM)"}


def made_by_lines(results: dict) -> list[str]:
    """What produced each measurement: one line when one run made them all, else one per run."""
    runs: dict[str, list[str]] = {}
    by_run: dict[str, dict] = {}
    for key, made in results.get("made_by", {}).items():
        name = f"{made.get('command')} @ {str(made.get('commit'))[:10]}"
        runs.setdefault(name, []).append(key.split("_")[0])
        by_run[name] = made
    if len(runs) <= 1:
        return [provenance_line(results["provenance"])]
    return [f"- ({', '.join(letters)}): `{by_run[name]['command']}`; " + provenance_line(by_run[name])
            for name, letters in runs.items()]


def main(argv=None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--teacher", default="reference")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--prediction-length", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--memory-batch-size", type=int, default=16)
    parser.add_argument("--parts", default="abcde",
                        help="the measurements to run (letters of the module doc); the others are kept from the "
                             "existing speed.json with the provenance of the run that made them [default: all]")
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    parser.add_argument("--memory-teacher", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    raw_args = list(argv if argv is not None else sys.argv[1:])
    if args.memory_worker:
        print("SPEED-RESULT " + json.dumps(memory_worker(args.memory_worker, args.memory_batch_size,
                                                         args.memory_teacher)))
        return 0

    from chronos_distill.chronos2.forward import unwrap
    from chronos_distill.data.competition import training_table

    args.transfer = training_table(("M1", "M3"))
    parts = set(args.parts)
    suffix = "" if DEVICE == "cpu" else "-" + torch.cuda.get_device_name().replace(" ", "_").lower()
    earlier = Path(args.out) / f"speed{suffix}.json"
    kept = json.loads(earlier.read_text()) if parts != set(PARTS.values()) and earlier.is_file() else {}
    results: dict = {"device": torch.cuda.get_device_name() if DEVICE == "cuda" else f"cpu ({torch.get_num_threads()} threads)"}
    this_run = {"command": command_line("speed.py", raw_args), **provenance(args.teacher, raw_args, "speed.py")}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if parts & {"a", "b", "c"}:
            trainer, batch = prepared(args, tmp, "output")
            student = copy.deepcopy(unwrap(trainer.model).student)
        if "a" in parts:  # steps vs floor
            trainer_fa, _ = prepared(args, tmp, "feature-attention", feature_weight=0.1, attention_weight=0.1,
                                        attention_kind="both")
            # one interleaved group on one batch: the cost of the feature and attention terms is the gap between
            # the two KD steps, which separate runs cannot measure (their step times vary by more than that gap)
            a = timed({"floor": floor_step(trainer.teacher, student, batch), "output_kd": trainer_step(trainer, batch),
                       "feature_attention_kd": trainer_step(trainer_fa, batch)}, args.repeats)
            results["a_step_vs_floor"] = {
                "floor": a["floor"], "output_kd": a["output_kd"], "feature_attention_kd": a["feature_attention_kd"],
                "output_kd_vs_floor": a["output_kd"]["median_s"] / a["floor"]["median_s"],
                "feature_attention_kd_vs_floor": a["feature_attention_kd"]["median_s"] / a["floor"]["median_s"],
                "feature_attention_vs_output_kd": a["feature_attention_kd"]["median_s"] / a["output_kd"]["median_s"],
            }
        if "b" in parts:  # design note vs ours, same batch
            trainer_mse, _ = prepared(args, tmp, "median-mse", output_loss="median_mse")
            b = timed({"design_note": design_note_step(trainer.teacher, copy.deepcopy(student), batch,
                                                       args.prediction_length),
                       "ours": trainer_step(trainer_mse, batch)}, args.repeats)
            results["b_design_note_vs_ours"] = {**b, "speedup": b["design_note"]["median_s"] / b["ours"]["median_s"]}
        if "c" in parts:  # cached teacher (epochs 2+) vs plain student training vs the live teacher
            trainer_cache, batch_cache = prepared(args, tmp, "cached", teacher_cache=str(tmp / "cache"),
                                                     cache_batches=4)
            uncached = {k: v for k, v in batch_cache.items() if k != "teacher_quantiles"}  # forces the live teacher
            c = timed({"cached_step": trainer_step(trainer_cache, batch_cache),
                       "student_only_step": floor_step(None, copy.deepcopy(student), batch_cache, with_teacher=False),
                       "live_teacher_step": trainer_step(trainer, uncached)}, args.repeats)
            results["c_cache"] = {**c, "cached_vs_student_only":
                                  c["cached_step"]["median_s"] / c["student_only_step"]["median_s"]}
        if "d" in parts:  # forecast cost of the real shapes
            results["d_forecast"] = forecast_costs(args.repeats)
        if "e" in parts:  # peak memory at context 2048, one process per variant; the teacher is built here
            save_memory_teacher(tmp / "memory-teacher")
            results["e_memory_context2048"] = {}
            for variant in ("output", "feature+attention"):
                worker_args = [w for w in raw_args if not w.startswith("--parts")]
                done = subprocess.run([sys.executable, __file__, *worker_args, "--memory-worker", variant,
                                       "--memory-teacher", str(tmp / "memory-teacher")], capture_output=True, text=True)
                if done.returncode:
                    sys.stderr.write(done.stderr[-4000:])
                    raise SystemExit(f"memory worker {variant} failed")
                line = next(row for row in done.stdout.splitlines() if row.startswith("SPEED-RESULT "))
                results["e_memory_context2048"][variant] = json.loads(line.split(" ", 1)[1])
    results["command"], results["provenance"] = this_run["command"], provenance(args.teacher, raw_args, "speed.py")
    results["made_by"] = {}
    for letter, key in PARTS.items():
        if letter in parts:
            results["made_by"][key] = this_run
        elif key in kept:  # an earlier run's measurement, with what produced it
            results[key] = kept[key]
            results["made_by"][key] = kept.get("made_by", {}).get(key) or {"command": kept["command"],
                                                                        **kept.get("provenance", {})}
        else:
            raise SystemExit(f"speed.py: part {letter} ({key}) was not run and {earlier} does not hold it: add "
                             f"{letter} to --parts")

    a, b, c, d, e = (results[k] for k in ("a_step_vs_floor", "b_design_note_vs_ours", "c_cache", "d_forecast",
                                          "e_memory_context2048"))
    names = [k for k in d if k != "student_throughput_vs_teacher"]

    def cell(t):
        return f"{t['median_s']:.4f} ({t['iqr_s']:.4f})"

    text = "\n".join([
        f"# Speed ({results['device']})", "", f"Command: `{results['command']}`", "",
        *made_by_lines(results), "",
        "Median seconds (IQR) over the repeats; the variants of each group timed in turn.", "",
        "| measurement | seconds | ratio | target |", "|---|---|---|---|",
        f"| (a) floor: teacher fwd + student fwd/bwd + step | {cell(a['floor'])} | 1.00 | |",
        f"| (a) output KD step | {cell(a['output_kd'])} | {a['output_kd_vs_floor']:.2f}x floor | <= 1.10x |",
        f"| (a) feature+attention KD step | {cell(a['feature_attention_kd'])} | {a['feature_attention_kd_vs_floor']:.2f}x floor, "
        f"{a['feature_attention_vs_output_kd']:.2f}x output KD | <= 1.25x floor |",
        f"| (b) design note: pipeline.predict + median MSE | {cell(b['design_note'])} | {b['speedup']:.2f}x ours | |",
        f"| (b) ours, median_mse | {cell(b['ours'])} | 1.00 | |",
        f"| (c) cached teacher step (epochs 2+) | {cell(c['cached_step'])} | {c['cached_vs_student_only']:.2f}x student-only | <= 1.05x |",
        f"| (c) plain student training step | {cell(c['student_only_step'])} | 1.00 | |",
        f"| (c) live teacher step | {cell(c['live_teacher_step'])} | | |",
        "", "(d) forecast, context 2048, horizon 64, random weights:", "",
        "| model | parameters | batch 1 latency (s, IQR) | batch 1 series/s | batch 64 latency (s, IQR) | batch 64 series/s |",
        "|---|---|---|---|---|---|",
        *[f"| {n} | {d[n]['parameters']:,} | {d[n]['batch1']['latency_s']:.4f} ({d[n]['batch1']['iqr_s']:.4f}) "
          f"| {d[n]['batch1']['series_per_s']:.1f} | {d[n]['batch64']['latency_s']:.3f} ({d[n]['batch64']['iqr_s']:.3f}) "
          f"| {d[n]['batch64']['series_per_s']:.1f} |" for n in names],
        "", f"Student throughput vs teacher: batch 1 {d['student_throughput_vs_teacher']['batch1']:.2f}x, "
        f"batch 64 {d['student_throughput_vs_teacher']['batch64']:.2f}x (target >= 6x).", "",
        f"(e) peak memory at context 2048 (768/12 teacher, default student, batch {args.memory_batch_size}, "
        f"{e['output']['kind']}): output KD {e['output']['peak_memory_mb']:.0f} MB, feature+attention KD "
        f"{e['feature+attention']['peak_memory_mb']:.0f} MB.", "",
    ])
    write_results(args.out, f"speed{suffix}", text, results, page=None if suffix else page)
    return 0


#: the targets the issues set, quoted beside what was measured (no measurement: named once here)
TARGETS = {'output_step': '1.10x', 'feature_step': '1.25x', 'cached_step': '1.05x'}


def page(folder: Path) -> dict[str, dict[str, str]]:
    """The figures the pages quote from ``folder``'s results, and the targets (:func:`common.write_page`)."""
    r = load_json(folder, "speed.json")
    a, c, d = r["a_step_vs_floor"], r["c_cache"], r["d_forecast"]
    return {"figures": {
        "feature_vs_output": times(a["feature_attention_vs_output_kd"]),
        "feature_s": fmt(a["feature_attention_kd"]["median_s"], 4) + " s", "output_s": fmt(a["output_kd"]["median_s"], 4) + " s",
        "output_vs_floor": times(a["output_kd_vs_floor"]), "feature_vs_floor": times(a["feature_attention_kd_vs_floor"]),
        "cached_vs_student": times(c["cached_vs_student_only"]), "design_note": times(r["b_design_note_vs_ours"]["speedup"]),
        "throughput_1": times(d["student_throughput_vs_teacher"]["batch1"]),
        "throughput_64": times(d["student_throughput_vs_teacher"]["batch64"]),
        "memory_output": f"{r['e_memory_context2048']['output']['peak_memory_mb']:.0f} MB",
        "memory_feature": f"{r['e_memory_context2048']['feature+attention']['peak_memory_mb']:.0f} MB",
        **{f"target_{k}": v for k, v in TARGETS.items()},
    }}


if __name__ == "__main__":
    raise SystemExit(main())
