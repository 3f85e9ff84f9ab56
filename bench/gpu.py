"""The GPU check (issue 42): one command, under 8 minutes on one GPU, that measures what the CPU figures cannot.

(a) The distillation step of a random 768/12 teacher (the shape of ``amazon/chronos-2``) into the default 384/6
    student, context 2048, horizon 64, at batch 64 (and 256 when memory allows): fp32 vs bf16 autocast, with a
    teacher cache (the student's step alone), with feature + attention terms, and with ``torch.compile`` (the
    ``TrainingArguments`` option, which ``--trainer-args '{"torch_compile": true}'`` sets; off unless it wins). Steps/s after a warm-up, peak
    memory, and model FLOPs utilisation: the FLOPs of one step counted from the shapes (:func:`step_flops`:
    the student's forward and backward, three forwards, and the teacher's forward unless cached) over the GPU's
    dense bf16 peak (:data:`PEAK_TFLOPS`, vendor datasheets; an unknown GPU is measured with a large matmul).
(b) The demo at GPU speed: the bundled reference teacher distilled for 300 steps in bf16 on M1 + M3, its loss
    and M3 monthly WQL against the CPU fp32 demo's (``bench/results/demo/demo.json``): bf16 must not cost accuracy.
(c) Inference: forecasts/s of teacher and student through ``Chronos2Pipeline.predict`` at batch 1, 64 and 1024
    (the model card's anchor: more than 300 forecasts/s on an A10G), and the time to forecast all of M3.
(d) With more than one GPU: a 2-process ``torchrun`` step with NCCL against one process.

``--dry-run`` runs every part on the CPU at tiny sizes in seconds (a test runs it, so the script cannot rot while
no GPU is lent): a 64/2 teacher, a 32/1 student, context 128, a few steps, a few M3 series, and part (d) as two
gloo processes. Its figures mean nothing; it writes ``gpu-dry-run.json`` / ``.md`` so as never to overwrite a real
run's ``gpu.json`` / ``gpu.md``.

    python bench/gpu.py [--out bench/results] [--dry-run]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import CHRONOS2_SHAPES, arguments, provenance, provenance_line, write_results

#: dense bf16 (fp16 where the GPU has no bf16) tensor-core peak, TFLOP/s, from the vendors' datasheets; matched
#: against ``torch.cuda.get_device_name`` (longest key first)
PEAK_TFLOPS = {"H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 756.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
               "A10G": 70.0, "A10": 125.0, "V100": 125.0, "T4": 65.0, "RTX 4090": 165.0, "RTX 3090": 71.0}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The shapes of one check: teacher and student widths and depths, context, horizon, batches, steps."""

    teacher: dict[str, int]
    student: dict[str, int]
    context: int
    horizon: int
    batches: tuple[int, ...]
    warmup: int
    steps: int
    demo_steps: int
    demo_batch: int
    demo_series: int | None  # M3 monthly series scored (None: all)
    predict_batches: tuple[int, ...]
    compile_backend: str = "inductor"


FULL = Sizes(teacher=CHRONOS2_SHAPES["teacher 768-d/12 layers"],
             student=dict(student_d_model=384, student_num_layers=6), context=2048, horizon=64, batches=(64, 256),
             warmup=3, steps=10, demo_steps=300, demo_batch=64, demo_series=None, predict_batches=(1, 64, 1024))
DRY = Sizes(teacher=dict(d_model=64, num_layers=2, num_heads=4, d_kv=16, d_ff=128),
            student=dict(student_d_model=32, student_num_layers=1, student_num_heads=2, student_d_ff=64), context=128,
            horizon=32, batches=(8,), warmup=1, steps=2, demo_steps=2, demo_batch=8, demo_series=16, predict_batches=(1, 8),
            compile_backend="eager")


# -- FLOPs ------------------------------------------------------------------------------------------------------
def forward_flops(config: Any, batch: int, context: int, num_output_patches: int) -> int:
    """Matmul FLOPs (2 per multiply-add) of one ``Chronos2Model`` forward over ``batch`` series of ``context``
    steps forecasting ``num_output_patches`` patches.

    Per token: the input patch embedding (a residual block from 3 x patch to d_model through d_ff), in each layer
    the time and group attentions' q, k, v, o projections and the MLP; per series, time attention's scores and
    weighted values over its tokens; per time position, group attention's over the whole batch (it attends across
    every row with a mask that keeps each group to itself, so it costs batch^2 whatever the groups); per output
    patch, the output embedding (a residual block from d_model to quantiles x patch). Elementwise work is not
    counted."""
    cc = config.chronos_config
    patch, quantiles = cc["input_patch_size"], len(cc["quantiles"])
    d, ff, layers, inner = config.d_model, config.d_ff, config.num_layers, config.num_heads * config.d_kv
    context_patches = math.ceil(min(context, cc["context_length"]) / patch)
    embedded = context_patches + num_output_patches  # every patch token; the [REG] token is an embedding lookup
    tokens = embedded + int(cc.get("use_reg_token", False))

    def residual_block(i: int, h: int, o: int) -> int:
        return 2 * (i * h + h * o + i * o)

    flops = batch * embedded * residual_block(3 * patch, ff, d)
    per_token_layer = 2 * (4 * 2 * d * inner) + 2 * 2 * d * ff  # two attentions' projections, the MLP
    flops += layers * batch * tokens * per_token_layer
    flops += layers * batch * 2 * 2 * tokens * tokens * inner  # time attention: scores and values
    flops += layers * tokens * 2 * 2 * batch * batch * inner  # group attention, per time position
    flops += batch * num_output_patches * residual_block(d, ff, quantiles * cc["output_patch_size"])
    return flops


def step_flops(teacher: Any, student: Any, batch: int, context: int, num_output_patches: int, cached: bool) -> int:
    """One distillation step: the student's forward and backward (3 forwards), and the teacher's forward unless
    its quantiles come from the cache."""
    student_context = min(context, student.chronos_config["context_length"])
    flops = 3 * forward_flops(student, batch, student_context, num_output_patches)
    return flops if cached else flops + forward_flops(teacher, batch, context, num_output_patches)


def peak_flops(device: str) -> tuple[float, str]:
    """The device's dense bf16 peak (FLOP/s) and where it comes from: the datasheet table, else a measured
    large bf16 matmul (or fp32 on the CPU)."""
    if device == "cuda":
        name = torch.cuda.get_device_name()
        for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
            if key in name:
                return PEAK_TFLOPS[key] * 1e12, f"datasheet ({key})"
    n = 8192 if device == "cuda" else 512
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    _sync(device)
    start, repeats = time.perf_counter(), 10
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start), f"measured ({n}x{n} {dtype} matmul)"


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# -- (a) the distillation step ------------------------------------------------------------------------------
def teacher_folder(sizes: Sizes, tmp: Path) -> Path:
    """A random teacher of ``sizes.teacher`` saved as a Chronos-2 folder (its weights scaled up, as the tests do,
    so its forecasts depend on the input)."""
    from chronos.chronos2 import Chronos2Model, Chronos2Pipeline

    from chronos_distill.chronos2.architecture import chronos2_config

    folder = tmp / "teacher"
    if not folder.is_dir():
        torch.manual_seed(0)
        patches = math.ceil(sizes.horizon / 16)
        model = Chronos2Model(chronos2_config(context_length=sizes.context, max_output_patches=patches, **sizes.teacher))
        Chronos2Pipeline(model).save_pretrained(folder)
    return folder


def training_table(sizes: Sizes):
    from chronos_distill.data.synthetic import seasonal_long_table

    return seasonal_long_table(n_series=64, length=sizes.context + sizes.horizon + 16, seed=0)


def step_variant(sizes: Sizes, tmp: Path, name: str, batch: int, device: str, **options: Any) -> dict[str, Any]:
    """Steps/s, peak memory and MFU of one variant: its trainer built as ``distill`` builds it, ``warmup`` steps,
    then ``steps`` timed."""
    from chronos_distill import DistillationTrainer

    args = dict(output=str(tmp / f"{name}-{batch}"), prediction_length=sizes.horizon, batch_size=batch,
                max_steps=1000, overwrite=True, **sizes.student, **options)
    trainer = DistillationTrainer(teacher_model=str(teacher_folder(sizes, tmp)), args=args,
                                  train_dataset=training_table(sizes))
    trainer.create_optimizer_and_scheduler(num_training_steps=1000)
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which a timed step bypasses
    trainer.model.train()
    batches = iter(trainer.get_train_dataloader())

    def step() -> None:
        inputs = {k: v.to(trainer.args.device) if torch.is_tensor(v) else v for k, v in next(batches).items()}
        trainer.training_step(trainer.model, inputs)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)

    for _ in range(sizes.warmup):
        step()
    _sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(sizes.steps):
        step()
    _sync(device)
    seconds = (time.perf_counter() - start) / sizes.steps
    flops = step_flops(trainer.models.teacher.config, trainer.student.config, batch, sizes.context,
                       math.ceil(sizes.horizon / 16), cached="teacher_cache" in options)
    return {"variant": name, "batch": batch, "steps_per_s": 1 / seconds, "seconds_per_step": seconds,
            "flops_per_step": flops,
            "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None}


def part_a(sizes: Sizes, tmp: Path, device: str, peak: float) -> list[dict[str, Any]]:
    bf16 = {"trainer_args": {"bf16": True}}
    variants = {"fp32": {}, "bf16": bf16, "bf16 + teacher cache": {**bf16, "teacher_cache": str(tmp / "cache"),
                                                                    "cache_batches": sizes.warmup + sizes.steps},
                "bf16 + feature + attention": {**bf16, "feature_weight": 0.1, "attention_weight": 0.1},
                # TrainingArguments' own torch.compile (a dry run takes the eager backend: the same path, no compiler)
                "bf16 + torch.compile": {"trainer_args": {"bf16": True, "torch_compile": True,
                                                          "torch_compile_backend": sizes.compile_backend}}}
    rows = []
    for batch in sizes.batches:
        for name, options in variants.items():
            try:
                row = step_variant(sizes, tmp, name, batch, device, **options)
            except torch.cuda.OutOfMemoryError:
                rows.append({"variant": name, "batch": batch, "skipped": "out of memory"})
                torch.cuda.empty_cache()
                continue
            row["mfu"] = row["flops_per_step"] * row["steps_per_s"] / peak
            rows.append(row)
            print(f"(a) {name} batch {batch}: {row['steps_per_s']:.2f} steps/s, MFU {row['mfu']:.1%}", flush=True)
    return rows


# -- (b) the demo in bf16 -----------------------------------------------------------------------------------
def part_b(sizes: Sizes, tmp: Path) -> dict[str, Any]:
    from chronos_distill import distill
    from chronos_distill.data.competition import load_m3, training_table
    from chronos_distill.demo import PREDICTION_LENGTH
    from chronos_distill.evaluation.scoring import evaluate_models

    result = distill(teacher="reference", train_data=training_table(("M1", "M3")), prediction_length=PREDICTION_LENGTH,
                     min_past=6, output=str(tmp / "demo"), max_steps=sizes.demo_steps, batch_size=sizes.demo_batch,
                     learning_rate=1e-3, save_steps=sizes.demo_steps, logging_steps=1, seed=0, overwrite=True,
                     trainer_args={"bf16": True})
    monthly = load_m3("monthly")
    if sizes.demo_series is not None:
        monthly = dataclasses.replace(monthly, item_ids=monthly.item_ids[:sizes.demo_series],
                                      contexts=monthly.contexts[:sizes.demo_series], truth=monthly.truth[:sizes.demo_series])
    scores, _ = evaluate_models({"student": result.student.float().eval()}, {"m3_monthly": monthly})
    losses = [e["distill_loss"] for e in result.trainer.state.log_history if "distill_loss" in e]
    cpu = json.loads((Path(__file__).parent / "results" / "demo" / "demo.json").read_text())
    wql = scores["datasets"]["m3_monthly"]["scores"]["student"]["WQL"]
    cpu_wql = cpu["m3_monthly"]["student"]["WQL"]
    return {"steps": sizes.demo_steps, "distill_loss_curve": losses, "first_distill_loss": losses[0],
            "last_distill_loss": losses[-1], "cpu_fp32_first_distill_loss": cpu["first_distill_loss"],
            "cpu_fp32_last_distill_loss": cpu["last_distill_loss"], "m3_monthly_wql": wql,
            "cpu_fp32_m3_monthly_wql": cpu_wql, "wql_vs_cpu": wql / cpu_wql, "series": len(monthly),
            "train_runtime_s": result.record["training"]["train_runtime_s"]}


# -- (c) inference ------------------------------------------------------------------------------------------
def part_c(sizes: Sizes, tmp: Path, device: str) -> dict[str, Any]:
    from chronos.chronos2 import Chronos2Pipeline

    from chronos_distill.chronos2.student import build_student
    from chronos_distill.config import DistillConfig
    from chronos_distill.data.competition import load_m3

    teacher = Chronos2Pipeline.from_pretrained(teacher_folder(sizes, tmp)).model
    student = build_student(teacher, DistillConfig(teacher="t", train_data="x", prediction_length=sizes.horizon,
                                                   output="o", **sizes.student))
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"forecasts_per_s": {}}
    for name, model in (("teacher", teacher), ("student", student)):
        pipeline = Chronos2Pipeline(model.to(device).eval())
        for batch in sizes.predict_batches:
            series = [torch.tensor(rng.standard_normal(sizes.context), dtype=torch.float32) for _ in range(batch)]
            pipeline.predict(series, prediction_length=sizes.horizon, batch_size=batch)  # warm-up
            _sync(device)
            start = time.perf_counter()
            pipeline.predict(series, prediction_length=sizes.horizon, batch_size=batch)
            _sync(device)
            out["forecasts_per_s"][f"{name} batch {batch}"] = batch / (time.perf_counter() - start)
    m3 = [load_m3(kind) for kind in ("yearly", "quarterly", "monthly")]
    pipeline = Chronos2Pipeline(student)
    start, n = time.perf_counter(), 0
    for benchmark in m3:
        contexts = benchmark.contexts[:sizes.demo_series] if sizes.demo_series else benchmark.contexts
        pipeline.predict([torch.tensor(c, dtype=torch.float32) for c in contexts], prediction_length=benchmark.horizon,
                         batch_size=1024)
        n += len(contexts)
    _sync(device)
    out["student_all_of_m3_s"], out["m3_series"] = time.perf_counter() - start, n
    return out


# -- (d) two processes --------------------------------------------------------------------------------------
def part_d(sizes: Sizes, tmp: Path, device: str, dry_run: bool) -> dict[str, Any] | None:
    """Steps/s of 2 processes (NCCL; gloo on the CPU in a dry run) against one, same per-process batch."""
    if not dry_run and torch.cuda.device_count() < 2:
        return None
    folder = teacher_folder(sizes, tmp)
    table = tmp / "table.parquet"
    training_table(sizes).to_parquet(table, index=False)
    out = {}
    for processes in (1, 2):
        spec = dict(teacher=str(folder), train_data=str(table), prediction_length=sizes.horizon,
                    batch_size=sizes.batches[0], max_steps=sizes.warmup + sizes.steps, save_steps=10**6,
                    output=str(tmp / f"ddp-{processes}"), overwrite=True, **sizes.student,
                    **({} if dry_run else {"trainer_args": {"bf16": True}}))
        if processes == 1:  # the baseline in this process: one process is what torchrun would start
            ddp_worker(json.dumps(spec))
        else:
            command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                       "--master_port", "29502", __file__, "--ddp-worker", json.dumps(spec)]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
            if done.returncode != 0:
                raise RuntimeError(f"torchrun with {processes} processes failed:\n{done.stderr[-2000:]}")
        record = json.loads((tmp / f"ddp-{processes}" / "model" / "distillation.json").read_text())
        out[f"{processes} process(es)"] = {"train_runtime_s": record["training"]["train_runtime_s"],
                                           "samples_per_s": processes * sizes.batches[0] * spec["max_steps"]
                                           / record["training"]["train_runtime_s"]}
    out["scaling"] = out["2 process(es)"]["samples_per_s"] / out["1 process(es)"]["samples_per_s"]
    return out


def ddp_worker(spec: str) -> None:
    from chronos_distill import distill

    distill(**json.loads(spec))


# -- report -------------------------------------------------------------------------------------------------
def markdown(results: dict[str, Any]) -> str:
    prov = results["provenance"]
    lines = ["# GPU check (issue 42)", "", f"`{prov['command']}`", "", provenance_line(prov), "",
             f"Device: {results['device']['name']} (CUDA {results['device']['cuda']}, driver {results['device']['driver']}); "
             f"peak {results['device']['peak_tflops']:.1f} TFLOP/s, {results['device']['peak_source']}.", ""]
    if results["dry_run"]:
        lines += ["**Dry run on the CPU at tiny sizes: these figures say only that every part runs.**", ""]
    lines += ["## (a) Distillation step", "", "| variant | batch | steps/s | MFU | peak memory (MB) |", "|---|---|---|---|---|"]
    for row in results["a_step"]:
        if "skipped" in row:
            lines.append(f"| {row['variant']} | {row['batch']} | {row['skipped']} | | |")
            continue
        memory = f"{row['peak_memory_mb']:.0f}" if row["peak_memory_mb"] is not None else "-"
        lines.append(f"| {row['variant']} | {row['batch']} | {row['steps_per_s']:.2f} | {row['mfu']:.1%} | {memory} |")
    b = results["b_demo"]
    lines += ["", "## (b) The demo in bf16", "",
              f"{b['steps']} steps: distill loss {b['first_distill_loss']:.4f} -> {b['last_distill_loss']:.4f} "
              f"(CPU fp32 demo: {b['cpu_fp32_first_distill_loss']:.4f} -> {b['cpu_fp32_last_distill_loss']:.4f}); "
              f"student M3 monthly WQL {b['m3_monthly_wql']:.4f} on {b['series']} series against the CPU fp32 run's "
              f"{b['cpu_fp32_m3_monthly_wql']:.4f} ({b['wql_vs_cpu']:.3f}x; target within 1%).",
              "", "## (c) Inference", "", "| model, batch | forecasts/s |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in results["c_inference"]["forecasts_per_s"].items()]
    c = results["c_inference"]
    lines += ["", f"The student forecasts {c['m3_series']} M3 series in {c['student_all_of_m3_s']:.2f} s.", "",
              "## (d) Two processes", ""]
    d = results["d_ddp"]
    lines.append("One GPU: not run." if d is None else
                 f"2 processes give {d['scaling']:.2f}x the samples/s of one ({d['1 process(es)']['samples_per_s']:.1f} "
                 f"-> {d['2 process(es)']['samples_per_s']:.1f}).")
    return "\n".join(lines) + "\n"


def device_info(device: str) -> dict[str, Any]:
    if device != "cuda":
        return {"name": "cpu", "cuda": None, "driver": None}
    driver = None
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        pass
    return {"name": torch.cuda.get_device_name(), "cuda": torch.version.cuda, "driver": driver}


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, str(Path(__file__).parent / "results"))
    parser.add_argument("--dry-run", action="store_true", help="every part on the CPU at tiny sizes, in seconds")
    parser.add_argument("--ddp-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ddp_worker:
        ddp_worker(args.ddp_worker)
        return 0
    device = "cpu" if args.dry_run or not torch.cuda.is_available() else "cuda"
    if device == "cpu" and not args.dry_run:
        raise SystemExit("no CUDA device here: bench/gpu.py measures a GPU; run it with --dry-run to check it on the CPU")
    sizes = DRY if args.dry_run else FULL
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 in the comparison
    started = time.perf_counter()
    peak, source = peak_flops(device)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        results: dict[str, Any] = {
            "dry_run": args.dry_run, "sizes": dataclasses.asdict(sizes),
            "device": {**device_info(device), "peak_tflops": peak / 1e12, "peak_source": source},
            "a_step": part_a(sizes, tmp, device, peak), "b_demo": part_b(sizes, tmp),
            "c_inference": part_c(sizes, tmp, device), "d_ddp": part_d(sizes, tmp, device, args.dry_run)}
    results["wall_seconds"] = time.perf_counter() - started
    # the teacher named is the demo's (part b); parts a, c and d use a random teacher of amazon/chronos-2's shape
    results["provenance"] = provenance("reference", argv, "gpu.py")
    stem = "gpu-dry-run" if args.dry_run else "gpu"
    write_results(args.out, stem, markdown(results), results)
    print(f"wrote {stem}.json and {stem}.md in {args.out} ({results['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
