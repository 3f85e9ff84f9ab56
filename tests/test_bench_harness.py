"""The benchmarks' harness (bench/harness.py), on toy experiments: the one validation split, the variants x seeds
loop, and the share chosen on the first seed's validation."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402


def test_the_validation_split_holds_out_whole_series():
    table = harness.training_table("cross-domain")
    train, validation = harness.hold_out_series(table)
    assert set(train["item_id"]).isdisjoint(validation["item_id"])
    assert set(train["item_id"]) | set(validation["item_id"]) == set(table["item_id"])
    assert validation["item_id"].nunique() == round(harness.VALIDATION_SHARE * table["item_id"].nunique())
    again, _ = harness.hold_out_series(table)
    assert again.equals(train)  # the same split for every variant and seed


def test_the_variants_by_seeds_loop_is_seed_major_and_leaves_out_what_was_not_run():
    calls = []
    runs = harness.over_seeds(["a", "b"], [0, 1, 2], lambda name, seed: calls.append((name, seed)) or
                              (None if (name, seed) == ("b", 2) else {"wql": seed + (name == "b")}))
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]  # a stopped run has both at seed 0
    assert runs == {"a": {"0": {"wql": 0}, "1": {"wql": 1}, "2": {"wql": 2}}, "b": {"0": {"wql": 1}, "1": {"wql": 2}}}


def test_the_share_is_chosen_on_the_first_seed_by_the_validation_rule_and_run_at_every_seed():
    """A toy experiment: the share whose validation score (suite x truth loss over the reference's) is lowest on
    seed 0 is the one run at seeds 1 and 2; the other candidates are tried at seed 0 only; a missing reference
    (a report of a budget cut) leaves the share unchosen and says so."""
    def entry(suite: float, loss: float) -> dict:
        return {"validation": {"suite": suite, "truth_loss": loss}}

    # validation scores at seed 0: KD 1.0 x 1.0, share 0.25: 0.9 x 0.5 / 1.0, share 0.5: 1.0 x 0.8 / 1.0
    scores = {None: (1.0, 1.0), 0.25: (0.9, 0.5), 0.5: (1.0, 0.8)}
    calls = []

    def run(variant, seed, share):
        calls.append((variant, seed, share))
        return entry(*scores[share]) | {"seed": seed, "share": share}

    done = harness.seeds_choosing_share(["KD", "KD+general"], [0, 1, 2], run, share_variant="KD+general",
                                        reference="KD", shares=[0.25, 0.5])
    assert done["choice"] == {"seed": 0, "scores": {"0.0": 1.0, "0.25": 0.45, "0.5": 0.8}, "chosen": 0.25}
    assert [c for c in calls if c[0] == "KD+general"] == [("KD+general", 0, 0.25), ("KD+general", 0, 0.5),
                                                          ("KD+general", 1, 0.25), ("KD+general", 2, 0.25)]
    assert {seed: e["share"] for seed, e in done["runs"]["KD+general"].items()} == {"0": 0.25, "1": 0.25, "2": 0.25}
    assert done["not_run"] == []

    scores[0.25], scores[0.5] = (1.2, 1.0), (1.0, 1.5)  # no share beats KD itself: share 0 reuses its runs
    done = harness.seeds_choosing_share(["KD", "KD+general"], [0, 1], run, share_variant="KD+general",
                                        reference="KD", shares=[0.25, 0.5])
    assert done["choice"]["chosen"] == 0.0 and done["runs"]["KD+general"] == done["runs"]["KD"]

    missing = harness.seeds_choosing_share(["KD", "KD+general"], [0, 1], lambda v, s, share: None if v == "KD" else run(v, s, share),
                                           share_variant="KD+general", reference="KD", shares=[0.25])
    assert missing["choice"] is None and "KD+general share trials, seed 0" in missing["not_run"]
