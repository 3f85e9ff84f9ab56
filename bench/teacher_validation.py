"""Choosing a pretraining checkpoint on validation data only.

Every checkpoint of a pretraining run (``RUN/checkpoints/checkpoint-N``, and the exported ``RUN/model``) is
scored on two validation sets that no benchmark uses:

- **the seasonality suite with fresh series**: the cases of :mod:`chronos_distill.evaluation.seasonality_suite` drawn with
  ``--suite-seed`` (2 for teacher v2; v1 was chosen on seed 1, and ``bench/teacher.py`` reports seed 0). The
  score is the geometric mean over the noisy cases of the median's MAE relative to seasonal naive's.
- **whole M1/M3 series held out of pretraining** (``pretrain --real-holdout``,
  :func:`chronos_distill.data.competition.validation_benchmarks`): each held-out series' last ``h`` training
  steps (the official horizon of its subset) are forecast from the steps before; the score is the geometric mean
  over the six subsets of WQL relative to seasonal naive's. Test portions are never read.

The rule, fixed before teacher v2's run: the chosen checkpoint has the lowest product of the two scores (the
sum of their logs); on a tie the later one.

    python bench/teacher_validation.py RUN [--holdout 0.1] [--suite-seed 2] [--out RUN/validation.json]

Scores already in ``--out`` are kept, so the script can be rerun while the run goes on.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from chronos_distill.chronos2.loading import load_chronos2
from chronos_distill.data.competition import validation_benchmarks
from chronos_distill.evaluation.scoring import evaluate_models
from chronos_distill.evaluation.seasonality_suite import SUITE, score_suite
from chronos_distill.files import write_json_atomic


def candidates(run: Path) -> dict[str, Path]:
    """``{"step 400": folder, ..., "final": RUN/model}`` in step order."""
    folders = {}
    for folder in (run / "checkpoints").glob("checkpoint-*"):
        match = re.fullmatch(r"checkpoint-(\d+)", folder.name)
        if match and (folder / "model.safetensors").exists():
            folders[int(match.group(1))] = folder
    named = {f"step {step}": folders[step] for step in sorted(folders)}
    if (run / "model" / "model.safetensors").exists():
        named["final"] = run / "model"
    return named


def score(folder: Path | str, holdout: float, suite_seed: int) -> dict:
    model = load_chronos2(folder, role="checkpoint")
    noisy = [case for case in SUITE if case.noise_scale > 0]
    suite = score_suite(model, cases=noisy, seed=suite_seed)
    results, _ = evaluate_models({"model": model}, validation_benchmarks(["M1", "M3"], holdout))
    suite_score = math.exp(sum(math.log(s["vs_seasonal_naive"]) for s in suite.values()) / len(suite))
    holdout_score = results["relative"]["model"]["WQL"]
    return {"suite_vs_seasonal_naive": suite_score, "holdout_wql_vs_seasonal_naive": holdout_score,
            "product": suite_score * holdout_score,
            "suite": {name: s["vs_seasonal_naive"] for name, s in suite.items()},
            "holdout": {d: r["scores"]["model"]["WQL"] / r["scores"]["seasonal_naive"]["WQL"]
                        for d, r in results["datasets"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--holdout", type=float, default=0.1, help="the run's --real-holdout")
    parser.add_argument("--suite-seed", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--baseline", default=None, help="also score this model (e.g. reference-v1), not a candidate")
    args = parser.parse_args()
    out = args.out or args.run / "validation.json"
    scores = json.loads(out.read_text()) if out.exists() else {}
    if args.baseline and "baseline" not in scores:
        baseline = score(args.baseline, args.holdout, args.suite_seed)
        print(f"baseline {args.baseline}: suite {baseline['suite_vs_seasonal_naive']:.3f}  held-out M1/M3 "
              f"{baseline['holdout_wql_vs_seasonal_naive']:.3f}  " + "  ".join(f"{k} {v:.2f}" for k, v in baseline["suite"].items()))
        scores["baseline"] = {"source": args.baseline, **baseline}
        write_json_atomic(out, scores)
    for name, folder in candidates(args.run).items():
        if name not in scores or name == "final":
            scores[name] = score(folder, args.holdout, args.suite_seed)
            write_json_atomic(out, scores)
        s = scores[name]
        print(f"{name:>10}  suite {s['suite_vs_seasonal_naive']:.3f}  held-out M1/M3 {s['holdout_wql_vs_seasonal_naive']:.3f}"
              f"  product {s['product']:.3f}  " + "  ".join(f"{k} {v:.2f}" for k, v in s["suite"].items()))
    chosen = [n for n in scores if n != "baseline"]
    if chosen:
        best = min(reversed(chosen), key=lambda n: scores[n]["product"])  # a tie goes to the later one
        print(f"chosen: {best}")


if __name__ == "__main__":
    main()
