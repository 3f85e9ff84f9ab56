"""Teacher diagnostics: M3 against seasonal naive, and the synthetic seasonality suite, model by model.

For each model (by default the bundled reference teachers v0 and v1, side by side):

- M3 yearly / quarterly / monthly test portions (official horizons): WQL and MASE, and the WQL gain over
  seasonal naive per subset (the reference teacher's target: at least 20% on each);
- the seasonality suite of :mod:`chronos_distill.evaluation.seasonality_suite`: for periods 4, 7, 12, 24 and 52 with
  noise, two periods at once, a multiplicative season on a trend and a clean period-12 sine, the MAE of the
  model's median relative to the mean forecast (target: at most 0.5) and to seasonal naive (target: at most 1
  for periods 4, 7, 12, 24 and the 7 + 24 mix).

    python bench/teacher.py [--model v0=reference-v0,v1=reference-v1,v2=reference-v2] [--out bench/results]

Writes ``teacher.md`` and ``teacher.json`` into ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import arguments, command_line, fmt, load_json, provenance, write_results

from chronos_distill.chronos2.loading import load_chronos2
from chronos_distill.data.competition import load_m3_benchmarks
from chronos_distill.evaluation.scoring import evaluate_models
from chronos_distill.evaluation.seasonality_suite import SUITE, score_suite

TARGET_WQL_GAIN = 0.20  # each M3 subset at most 0.80x seasonal naive's WQL
TARGET_VS_MEAN = 0.5
#: Cases where the median's MAE should be at most seasonal naive's (teacher v2's targets).
NAIVE_TARGET_CASES = ("period 4", "period 7", "period 12", "period 24", "periods 7 + 24")


def parse_models(text: str) -> dict[str, str]:
    models = {}
    for entry in text.split(","):
        name, _, source = entry.partition("=")
        models[name if source else Path(name).name] = source or name
    return models


def markdown(result: dict, command: str) -> str:
    names = list(result["models"])
    m3 = result["m3"]["datasets"]
    lines = ["# Teacher diagnostics", "", f"`{command}`", "", "## M3 test portions (official horizons)", "",
             "| model | " + " | ".join(f"{d.removeprefix('m3_')} WQL" for d in m3)
             + " | " + " | ".join(f"{d.removeprefix('m3_')} MASE" for d in m3) + " |",
             "|---|" + "---|" * (2 * len(m3))]
    for model in ["seasonal_naive", *names]:
        wql = " | ".join(f"{m3[d]['scores'][model]['WQL']:.4f}" for d in m3)
        mase = " | ".join(f"{m3[d]['scores'][model]['MASE']:.3f}" for d in m3)
        lines.append(f"| {model.replace('_', ' ')} | {wql} | {mase} |")
    lines += ["", "WQL gain over seasonal naive (target: at least 20% on each subset):", "",
              "| model | " + " | ".join(d.removeprefix("m3_") for d in m3) + " | all met |", "|---|" + "---|" * (len(m3) + 1)]
    for model in names:
        gains = {d: 1 - m3[d]["scores"][model]["WQL"] / m3[d]["scores"]["seasonal_naive"]["WQL"] for d in m3}
        met = all(g >= TARGET_WQL_GAIN for g in gains.values())
        lines.append(f"| {model} | " + " | ".join(f"{g:.1%}" for g in gains.values()) + f" | {'yes' if met else 'no'} |")
    lines += ["", "## Seasonality suite (median MAE relative to the mean forecast / to seasonal naive)", "",
              "Targets: at most 0.5x the mean forecast on every case; at most 1x seasonal naive for "
              + ", ".join(NAIVE_TARGET_CASES) + " (marked * when met).",
              "", "| case | " + " | ".join(f"{m} vs mean | {m} vs seasonal naive" for m in names) + " |",
              "|---|" + "---|---|" * len(names)]
    for case in SUITE:
        cells = []
        for model in names:
            s = result["suite"][model][case.name]
            naive = f"{s['vs_seasonal_naive']:.3f}" if s["seasonal_naive_MAE"] > 1e-9 else "- (naive exact)"
            if case.name in NAIVE_TARGET_CASES and s["vs_seasonal_naive"] <= 1:
                naive += " *"
            cells.append(f"{s['vs_mean']:.3f} | {naive}")
        lines.append(f"| {case.name} | " + " | ".join(cells) + " |")
    lines += ["", "Cases: 32 seeded series each, context 512, horizon 64; noise 0.3x the seasonal amplitude "
              "except the clean sine; seasonal naive repeats the known period (168 for 7 + 24)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__)
    parser.add_argument("--model", default="v0=reference-v0,v1=reference-v1,v2=reference-v2",
                        help="NAME=SOURCE pairs: bundled aliases, folders or hub ids")
    args = parser.parse_args(argv)
    command = command_line("teacher.py", argv)
    sources = parse_models(args.model)
    models = {name: load_chronos2(source, role="model") for name, source in sources.items()}
    m3, _ = evaluate_models(models, {f"m3_{k}": v for k, v in load_m3_benchmarks().items()})
    result = {"command": command, "provenance": provenance(None, argv, "teacher.py", models=sources),
              "models": sources, "m3": m3, "suite": {name: score_suite(model) for name, model in models.items()}}
    write_results(args.out, "teacher", markdown(result, command), result, page=page)


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote (:func:`common.write_page`): each teacher's M3 WQL relative to seasonal naive (the rest
    is in ``teacher.md``), and our seasonal naive on M3's test portions, which the published scores validate."""
    m3 = load_json(folder, "teacher.json")["m3"]
    naive = {f"seasonal_naive_{metric}_{subset}": fmt(m3["datasets"][f"m3_{subset}"]["scores"]["seasonal_naive"][metric], digits)
             for metric, digits in (("WQL", 4), ("MASE", 3)) for subset in ("yearly", "quarterly", "monthly")}
    return {"figures": {**{f"{v}_m3": fmt(m3["relative"][v]["WQL"]) for v in ("v0", "v1", "v2")}, **naive}}


if __name__ == "__main__":
    main(sys.argv[1:])
