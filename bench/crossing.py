"""Quantile crossing on M3's test contexts (issue 48, item 4): for the teacher and each student, the share of
series whose forecast has a higher quantile level below a lower one at some step, and the mean crossing mass
(:func:`chronos_distill.evaluation.metrics.quantile_crossing`), at the model's own quantile levels (the 21 a
Chronos-2 model emits, as ``predict_quantiles`` returns them) and at the nine a ``predict_df`` user gets by default.
Target: every exported student's share no higher than the teacher's + 1 point.

    python bench/crossing.py --models reference,demo=runs/demo/student/model --out bench/results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import arguments, provenance, write_results

from chronos_distill.chronos2.loading import load_chronos2
from chronos_distill.data.competition import load_m3_benchmarks
from chronos_distill.evaluation.metrics import QUANTILE_LEVELS, quantile_crossing
from chronos_distill.evaluation.scoring import forecast_quantiles

#: a student's share of crossing series may exceed the teacher's by at most this (issue 48)
TARGET_POINTS = 0.01


def crossing_of(source: str, benchmarks: dict) -> dict:
    """Each M3 subset's crossing figures, and all series pooled (a subset weighs by its series), at the model's own
    levels and at the nine a ``predict_df`` user gets by default (0.1 ... 0.9, interpolated from them)."""
    model = load_chronos2(source)
    out = {}
    for key, levels in (("own_levels", list(model.chronos_config.quantiles)), ("levels_0.1_to_0.9", QUANTILE_LEVELS)):
        per_set = {name: {**quantile_crossing(forecast_quantiles(model, bench, levels=levels)),
                          "series": len(bench.item_ids)} for name, bench in benchmarks.items()}
        total = sum(s["series"] for s in per_set.values())
        pooled = {k: sum(s[k] * s["series"] for s in per_set.values()) / total for k in ("rows_crossing", "crossing_mass")}
        out[key] = {"levels": len(levels), "sets": per_set, "all": {**pooled, "series": total}}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--models", required=True, help="NAME=SOURCE (or SOURCE), comma-separated; the first is the "
                        "teacher the others are compared with")
    args = parser.parse_args(argv)
    named = {}
    for entry in args.models.split(","):
        name, _, source = entry.rpartition("=") if "=" in entry else (entry, "", entry)
        named[name] = source
    teacher_name = next(iter(named))
    benchmarks = load_m3_benchmarks()
    results = {name: crossing_of(source, benchmarks) for name, source in named.items()}
    for key in ("own_levels", "levels_0.1_to_0.9"):
        teacher_share = results[teacher_name][key]["all"]["rows_crossing"]
        for result in results.values():
            result[key]["within_target"] = result[key]["all"]["rows_crossing"] <= teacher_share + TARGET_POINTS
    given = sys.argv[1:] if argv is None else argv
    record = {"provenance": provenance(named[teacher_name], given, "crossing.py",
                                       models={n: s for n, s in named.items() if n != teacher_name}),
              "teacher": teacher_name, "target_points": TARGET_POINTS, "models": results}
    lines = ["# Quantile crossing on M3's test contexts", "", f"Command: `python bench/crossing.py {' '.join(given)}`",
             "", "Share of series with any crossing (a higher level below a lower one at some step) and the mean "
             "crossing mass (the amount, over steps and level pairs, per step, relative to the forecast's mean "
             f"level), at each model's own quantile levels. Target: a student's share at most the teacher's "
             f"({teacher_name}) + {TARGET_POINTS:.0%} point.", "",
             "| model | levels | series crossing | crossing mass | yearly | quarterly | monthly | within target |",
             "|---|---|---|---|---|---|---|---|"]
    for name, result in results.items():
        for key, label in (("own_levels", "its own 21"), ("levels_0.1_to_0.9", "0.1 ... 0.9")):
            r = result[key]
            lines.append(f"| {name} | {label} | {r['all']['rows_crossing']:.1%} | {r['all']['crossing_mass']:.2e} | "
                         + " | ".join(f"{r['sets'][s]['rows_crossing']:.1%}" for s in r["sets"])
                         + f" | {'yes' if r['within_target'] else 'no'} |")
    write_results(args.out, "crossing", "\n".join(lines) + "\n", record, page=page)
    return 0


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote (:func:`common.write_page`): each model's share of M3 series crossing at the nine
    levels a ``predict_df`` user gets, and whether each student is within the target."""
    result = json.loads((folder / "crossing.json").read_text())
    at_nine = {name: model["levels_0.1_to_0.9"] for name, model in result["models"].items()}
    return {"figures": {**{f"{name}_share": f"{r['all']['rows_crossing']:.1%}" for name, r in at_nine.items()},
                        **{f"{name}_target": "met" if r["within_target"] else "missed" for name, r in at_nine.items()
                           if name != result["teacher"]}}}


if __name__ == "__main__":
    raise SystemExit(main())
