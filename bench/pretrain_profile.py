"""Where a pretraining step's time goes: generating the batch versus the model's forward, backward and update.

One step of ``chronos-distill pretrain`` is split into

- **data**: ``PretrainStream.batch`` on the main process (``num_workers 0``): KernelSynth crops, seasonal,
  multivariate, intermittent, TSMixup and real series, augmentation, padding into tensors;
- **model**: ``Chronos2Model`` forward with its quantile loss, backward, gradient clipping and an AdamW step,
  the work the Trainer does per step (its own bookkeeping is left out).

Both are timed on the same batches, interleaved (data, model, data, model, ...), for v1's mix (every batch may
reach the full 512-step context) and for v2's (the longest context drawn per batch from 512, 256 and 128). The
model is the reference teacher's shape (512-d, 4 layers, 14M parameters), at batch 64.

    OMP_NUM_THREADS=1 python bench/pretrain_profile.py [--threads 1] [--steps 12] [--out bench/results]

Writes ``pretrain_profile.md`` and ``pretrain_profile.json``: median and interquartile range per part.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import arguments, command_line, fmt, load_json, pct, provenance, write_results

from chronos_distill.chronos2.loading import load_teacher
from chronos_distill.config import PretrainConfig
from chronos_distill.data.synthetic import kernel_synth
from chronos_distill.pretraining.stream import PretrainStream, real_series

V1_MIX = dict(seasonal_weight=0.5, real_weight=0.25, multivariate_weight=0.1, intermittent_weight=0.05,
              kernel_bank_size=256)
V2_MIX = dict(V1_MIX, focus_periods=[7, 12, 24], focus_share=0.4, few_cycles_share=0.25, multiplicative_share=0.4,
              context_buckets=[512, 256, 128], real_holdout=0.1)


def quartiles(values: list[float]) -> dict[str, float]:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(median), "iqr": float(q3 - q1), "n": len(values)}


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per mix (after one warm-up step)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = command_line("pretrain_profile.py", argv)

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    bank = [kernel_synth(rng, 512) for _ in range(V1_MIX["kernel_bank_size"])]
    bank_s = time.perf_counter() - start
    model = load_teacher("reference").train().requires_grad_(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    streams = {name: PretrainStream(PretrainConfig(output="-", **mix), real_series(["M1", "M3"], mix.get("real_holdout", 0.0)))
               for name, mix in (("v1", V1_MIX), ("v2", V2_MIX))}
    times: dict[str, dict[str, list[float]]] = {name: {"data": [], "model": []} for name in streams}
    contexts: dict[str, list[int]] = {name: [] for name in streams}
    for step in range(args.steps + 1):
        for name, stream in streams.items():  # interleaved: the mixes share whatever the machine is doing
            start = time.perf_counter()
            batch = stream.batch(rng, bank)
            data_s = time.perf_counter() - start
            start = time.perf_counter()
            out = model(context=batch["context"], group_ids=batch["group_ids"], future_target=batch["future_target"],
                        future_covariates=batch["future_covariates"], num_output_patches=batch["num_output_patches"])
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            model_s = time.perf_counter() - start
            if step:  # the first step warms up allocators and kernels
                times[name]["data"].append(data_s)
                times[name]["model"].append(model_s)
                contexts[name].append(int(batch["context"].shape[1]))

    result = {"command": command, "provenance": provenance("reference", argv, "pretrain_profile.py"),
              "threads": args.threads, "kernel_bank_s": bank_s, "mixes": {}}
    for name in streams:
        data, model_t = times[name]["data"], times[name]["model"]
        total = np.array(data) + np.array(model_t)
        result["mixes"][name] = {"data": quartiles(data), "model": quartiles(model_t), "step": quartiles(list(total)),
                                 "data_share": float(np.sum(data) / np.sum(total)),
                                 "mean_context": float(np.mean(contexts[name]))}
    lines = ["# Where a pretraining step's time goes", "", f"`{command}`", "",
             f"Reference teacher shape (512-d, 4 layers), batch 64, {args.threads} thread(s), {args.steps} steps per mix, "
             "interleaved; median (IQR) in seconds.", "",
             "| mix | data | model (forward, backward, AdamW) | step | data share | mean padded context |",
             "|---|---|---|---|---|---|"]
    for name, r in result["mixes"].items():
        cell = lambda q: f"{q['median']:.3f} ({q['iqr']:.3f})"  # noqa: E731
        lines.append(f"| {name} | {cell(r['data'])} | {cell(r['model'])} | {cell(r['step'])} | {r['data_share']:.1%} "
                     f"| {r['mean_context']:.0f} |")
    lines += ["", f"The KernelSynth bank ({V1_MIX['kernel_bank_size']} samples, once per run and worker): {bank_s:.1f} s."]
    write_results(args.out, "pretrain_profile", "\n".join(lines) + "\n", result, page=page)

# -- what the pages quote (common.write_page; scripts/render_docs.py copies it) --------------------------------


def pretrain_profile_figures(folder: Path) -> dict[str, str]:
    mixes = load_json(folder, "pretrain_profile.json")["mixes"]
    return {"data_share": pct(mixes["v1"]["data_share"]), "data_s": fmt(mixes["v1"]["data"]["median"]) + " s",
            "model_s": fmt(mixes["v1"]["model"]["median"]) + " s", "v2_step_s": fmt(mixes["v2"]["step"]["median"]) + " s"}


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from this benchmark's results in ``folder``, by name: figures in the prose, and blocks
    (tables, a command); written into its results file's ``"page"`` (:func:`common.write_page`)."""
    return {"figures": pretrain_profile_figures(folder)}


if __name__ == "__main__":
    main(sys.argv[1:])
