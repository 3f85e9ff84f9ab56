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

Each variant trains in its own process, which reports its seconds per step and its peak resident memory (CPU;
peak CUDA memory on a GPU): peaks of one process would mix the variants. Then all students are scored on M3.

    python bench/ablation.py [--teacher reference] [--steps 1000] [--out bench/results]

Writes ``ablation.md`` and ``ablation.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
from pathlib import Path

import torch

VARIANTS = {
    "output": dict(alpha=0.5),
    "+feature": dict(alpha=0.5, feature_weight=0.2),
    "+attention": dict(alpha=0.5, attention_weight=0.2),
    "all": dict(alpha=0.5, feature_weight=0.1, attention_weight=0.1),
}
SHARED_LOSS_OPTIONS = dict(feature_loss="mse", feature_projection="linear_norm", attention_loss="kl",
                           attention_kind="both", layer_map="uniform")


def train_variant(args, name: str) -> dict:
    """Distill one variant in this process and return its cost figures."""
    from chronos_distill import distill
    from chronos_distill.benchmarks import training_table

    options = dict(
        teacher=args.teacher, train_data=training_table(("M1", "M3")), prediction_length=args.prediction_length,
        min_past=args.min_past, max_steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
        seed=args.seed, save_steps=args.steps, logging_steps=max(1, args.steps // 20), overwrite=True,
        output=str(Path(args.runs) / _folder(name)), **SHARED_LOSS_OPTIONS, **VARIANTS[name],
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = distill(**options)
    training = result.record["training"]
    peak_mb = (torch.cuda.max_memory_allocated() if torch.cuda.is_available()
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    return {
        "output": str(result.output),
        "seconds_per_step": training["train_runtime_s"] / training["steps"],
        "peak_memory_mb": peak_mb,
        "memory_kind": "cuda max allocated" if torch.cuda.is_available() else "process peak RSS",
        "final_losses": result.record["final_losses"],
        "loss": result.record["loss"],
    }


def _folder(name: str) -> str:
    return name.replace("+", "plus-")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="reference")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--prediction-length", type=int, default=18)
    parser.add_argument("--min-past", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/bench-ablation")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: train one variant, print its JSON
    args = parser.parse_args(argv)
    raw_args = list(argv if argv is not None else sys.argv[1:])

    if args.worker:
        print("ABLATION-RESULT " + json.dumps(train_variant(args, args.worker)))
        return 0

    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    costs = {}
    for name in names:
        done = subprocess.run([sys.executable, __file__, *raw_args, "--worker", name], capture_output=True, text=True)
        if done.returncode:
            sys.stderr.write(done.stderr[-5000:])
            raise SystemExit(f"variant {name} failed")
        line = next(l for l in done.stdout.splitlines() if l.startswith("ABLATION-RESULT "))
        costs[name] = json.loads(line.split(" ", 1)[1])
        print(f"{name}: {costs[name]['seconds_per_step']:.3f} s/step, peak {costs[name]['peak_memory_mb']:.0f} MB",
              flush=True)

    from chronos_distill import load_teacher
    from chronos_distill.benchmarks import load_m3_benchmarks
    from chronos_distill.evaluation import evaluate_models
    from chronos_distill.report import markdown_table

    models = {"teacher": load_teacher(args.teacher)}
    models.update({name: load_teacher(costs[name]["output"], role="student") for name in names})
    benchmarks = {f"m3_{k}": b for k, b in load_m3_benchmarks().items()}
    results, _ = evaluate_models(models, benchmarks)
    results["cost"] = costs
    results["command"] = "python bench/ablation.py " + " ".join(shlex.quote(a) for a in raw_args)
    results["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"

    subsets = list(results["datasets"])
    header = ("| variant | " + " | ".join(f"{d} WQL" for d in subsets) + " | " + " | ".join(f"{d} MASE" for d in subsets)
              + " | WQL vs teacher (geo-mean) | s/step | peak memory (MB) |")
    lines = [header, "|" + "---|" * (len(subsets) * 2 + 4)]
    for name in ["teacher", *names]:
        scores = [results["datasets"][d]["scores"][name] for d in subsets]
        relative = results["relative"][name]["WQL"] / results["relative"]["teacher"]["WQL"]
        cost = costs.get(name)
        lines.append(
            f"| {name} | " + " | ".join(f"{s['WQL']:.4f}" for s in scores) + " | "
            + " | ".join(f"{s['MASE']:.3f}" for s in scores) + f" | {relative:.3f} | "
            + (f"{cost['seconds_per_step']:.3f} | {cost['peak_memory_mb']:.0f} |" if cost else "- | - |")
        )
    text = "\n".join([
        "# Ablation: output vs feature vs attention distillation (M3)", "", f"Command: `{results['command']}`",
        f"Device: {results['device']}; {args.steps} steps per variant.", "", *lines, "",
        "Full scores (with seasonal naive):", "", markdown_table(results), "",
    ])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.md").write_text(text)
    (out / "ablation.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
