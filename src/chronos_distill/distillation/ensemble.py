"""Several teachers, one target: the weighted quantile average (Vincentization) of an ensemble of forecasters.

``--teacher A,B,...`` with ``--teacher-weights w1,w2,...`` (or ``auto``) distils their combination:

- **Common space.** Every member's quantiles are brought into the *first* teacher's normalised space: its
  ``InstanceNorm`` statistics of the context (truncated to its context length), the space the truth and the
  student's loss live in. A Chronos-2 member with the same context length and arcsinh setting as the first
  normalises identically, so its normalised quantiles are used as they are; another one's are mapped back to
  the data's units with its own statistics and normalised with the first's. A statistical member
  (:mod:`chronos_distill.distillation.statistical_teacher`) forecasts in the data's units and is normalised
  with the first's statistics.
- **Levels.** Every member is interpolated onto the first teacher's quantile levels (as a single teacher's are
  onto the student's); the combination keeps those levels.
- **Combination.** With two or more members, each member's quantiles are sorted across levels (a quantile
  function never decreases; a network's raw outputs may cross) and averaged level by level with the weights.
  The average of non-decreasing functions is non-decreasing, so the target is a valid quantile function, and
  quantile averaging keeps the members' sharpness where averaging their distributions would widen them.
- **Members.** Weights are normalised to sum 1; a member of weight 0 is left out (never run). The same Chronos-2
  checkpoint listed twice is one member with the summed weight, so two identical teachers give exactly the single
  teacher's targets.
- **auto.** :func:`greedy_weights` is greedy ensemble selection (Caruana et al. 2004, AutoGluon's weighted
  ensemble): starting from nothing, add with replacement the member that most lowers the validation loss of the
  average so far, ``iterations`` times; a member's weight is how often it was picked. A member that never helps
  gets weight 0.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from chronos.chronos2 import Chronos2Model

from chronos_distill.chronos2.forward import normalised_quantiles, reexpress, same_normalised_space, unwrap
from chronos_distill.chronos2.student import digest_weights
from chronos_distill.data.windows import SEASON_KEY
from chronos_distill.distillation.losses.normalised import NormalisedTruth
from chronos_distill.distillation.losses.output import align_quantiles, pinball_loss
from chronos_distill.distillation.statistical_teacher import StatisticalTeacher
from chronos_distill.errors import ConfigError

#: Rounds of greedy ensemble selection (AutoGluon uses 100).
GREEDY_ITERATIONS = 100


@dataclass
class Member:
    """One teacher of the ensemble: its name as given, its normalised weight and the forecaster."""

    name: str
    weight: float
    model: Chronos2Model | StatisticalTeacher
    names: list[str] = field(default_factory=list)  # every listed name merged into this member

    @property
    def label(self) -> str:
        """The name shown in logs and records (:func:`display_name`)."""
        return display_name(self.name)

    @property
    def is_chronos2(self) -> bool:
        return isinstance(unwrap(self.model), Chronos2Model)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of a model's config and weights (the same checkpoint loaded twice has the same fingerprint)."""
    digest = hashlib.sha256()
    digest_weights(digest, model)
    return digest.hexdigest()


def display_name(name: str) -> str:
    """A teacher's name in logs and records: a local folder by its last part, anything else as given."""
    return Path(name.rstrip("/")).name if "/" in name and Path(name).expanduser().exists() else name


def quantile_average(quantiles: Sequence[torch.Tensor], weights: Sequence[float], dim: int) -> torch.Tensor:
    """Vincentization: each member's quantiles sorted along the levels axis ``dim``, then averaged level by level
    with ``weights`` (summing to 1). Non-decreasing along ``dim`` whatever the members."""
    stacked = torch.stack([q.sort(dim=dim).values for q in quantiles])
    shape = (-1,) + (1,) * (stacked.ndim - 1)
    return (torch.as_tensor(list(weights), dtype=stacked.dtype, device=stacked.device).reshape(shape) * stacked).sum(0)


def check_compatible(first: Chronos2Model, members: Sequence[Member], prediction_length: int,
                     context_length: int) -> None:
    """Refuse, before any training, a member that cannot join ``first``: another patch size, a horizon it cannot
    predict, a context it cannot read, quantile levels that do not cover the first's."""
    base = first.chronos_config
    levels = list(base.quantiles)
    for member in members:
        if not member.is_chronos2:
            continue
        own = unwrap(member.model).chronos_config
        for key in ("input_patch_size", "output_patch_size"):
            if getattr(own, key) != getattr(base, key):
                raise ConfigError(f"teacher {member.name} has {key} {getattr(own, key)}, the first teacher "
                                  f"{getattr(base, key)}: teachers must share the patch size to combine their "
                                  "forecasts patch by patch")
        if prediction_length > own.max_output_patches * own.output_patch_size:
            raise ConfigError(f"teacher {member.name} predicts at most {own.max_output_patches * own.output_patch_size} "
                              f"steps, fewer than prediction_length {prediction_length}")
        if context_length > own.context_length:
            raise ConfigError(f"teacher {member.name} reads {own.context_length} context steps, fewer than the run's "
                              f"context_length {context_length}: it could not read the windows the others read")
        if min(levels) < min(own.quantiles) or max(levels) > max(own.quantiles):
            raise ConfigError(f"teacher {member.name}'s quantile levels [{min(own.quantiles)}, {max(own.quantiles)}] "
                              f"do not cover the first teacher's [{min(levels)}, {max(levels)}]: they cannot be "
                              "interpolated onto them")


class TeacherEnsemble:
    """The combined target of several teachers (see the module doc). ``first``, the first teacher, sets the
    normalised space and the levels (with ``auto`` weights it may itself get weight 0 and not be a member)."""

    def __init__(self, members: Sequence[Member], first: Chronos2Model):
        members = [m for m in members if m.weight > 0]
        if not members:
            raise ConfigError("every teacher has weight 0")
        self.members = _merge_identical(members)
        total = sum(m.weight for m in self.members)
        for member in self.members:
            member.weight /= total
        self.first = unwrap(first)
        self.levels = list(self.first.chronos_config.quantiles)

    @property
    def weights(self) -> dict[str, float]:
        return {m.label: m.weight for m in self.members}

    def __len__(self) -> int:
        return len(self.members)

    def member_quantiles(self, batch: dict[str, Any], known: dict[int, torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Each member's quantiles (batch, len(levels), horizon) in the first teacher's normalised space;
        ``known`` gives members already run (by index), e.g. the feature teacher run with its taps."""
        known = known or {}
        context = batch["context"]
        first_cfg = self.first.chronos_config
        _, first_loc_scale = self.first.instance_norm(context[..., -first_cfg.context_length:].float())
        horizon = int(batch["num_output_patches"]) * first_cfg.output_patch_size
        out = []
        for index, member in enumerate(self.members):
            if index in known:
                values = known[index]
                levels = list(unwrap(member.model).chronos_config.quantiles)
            elif member.is_chronos2:
                model = unwrap(member.model)
                values = normalised_quantiles(member.model, batch).float()
                levels = list(model.chronos_config.quantiles)
            else:
                raw = member.model.raw_quantiles(context, horizon, batch.get(SEASON_KEY)).to(context.device)
                values, _ = self.first.instance_norm(raw.flatten(1), first_loc_scale)
                out.append(values.reshape(raw.shape))
                continue
            model = unwrap(member.model)
            if model is not self.first and not same_normalised_space(model, self.first):
                values = reexpress(values, model, self.first, context, first_loc_scale)
            out.append(align_quantiles(values, levels, self.levels))
        return out

    def combine(self, quantiles: Sequence[torch.Tensor]) -> torch.Tensor:
        """The weighted level-by-level average of the members' (sorted) quantiles: (batch, len(levels), horizon).
        One member: its quantiles unchanged."""
        if len(quantiles) == 1:
            return quantiles[0]
        return quantile_average(quantiles, [m.weight for m in self.members], dim=1)

    @torch.no_grad()
    def __call__(self, batch: dict[str, Any], known: dict[int, torch.Tensor] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(target, distances)``: the combined quantiles, and each member's mean absolute distance to them over
        the batch (members,) in the normalised space (0 for a single member)."""
        quantiles = self.member_quantiles(batch, known)
        target = self.combine(quantiles)
        distances = torch.stack([(q - target).abs().mean() for q in quantiles])
        return target, distances

    def fingerprint(self, digest) -> None:
        """Feed what the target depends on into ``digest`` (the teacher cache key): each member's weights (or its
        statistical model and season) and its weight; a single Chronos-2 teacher feeds exactly what it always did."""
        for member in self.members:
            model = unwrap(member.model)
            if member.is_chronos2:
                digest_weights(digest, model)
            else:
                digest.update(repr(sorted(member.model.describe().items())).encode())
            if len(self.members) > 1:
                digest.update(f"weight {member.weight!r}".encode())

    def describe(self) -> list[dict[str, Any]]:
        """Each member: its name(s), weight and kind, for the run's record and card."""
        described = []
        for member in self.members:
            model = unwrap(member.model)
            entry = {"name": member.label, "weight": member.weight}
            if len(member.names) > 1:
                entry["listed_as"] = [display_name(n) for n in member.names]
            if member.is_chronos2:
                entry.update(kind="chronos-2", parameters=sum(p.numel() for p in model.parameters()))
            else:
                entry.update(member.model.describe())
            described.append(entry)
        return described

    def to(self, device) -> "TeacherEnsemble":
        for member in self.members:
            if member.is_chronos2:
                member.model = member.model.to(device)
        return self


def _merge_identical(members: list[Member]) -> list[Member]:
    """The same Chronos-2 checkpoint listed more than once becomes one member with the summed weight."""
    merged: list[Member] = []
    seen: dict[str, Member] = {}
    for member in members:
        key = weights_fingerprint(unwrap(member.model)) if member.is_chronos2 else None
        if key is not None and key in seen:
            seen[key].weight += member.weight
            seen[key].names.append(member.name)
            continue
        member = Member(member.name, member.weight, member.model, [member.name])
        merged.append(member)
        if key is not None:
            seen[key] = member
    return merged


def greedy_weights(member_quantiles: Sequence[torch.Tensor], truth: NormalisedTruth, levels: Sequence[float],
                   iterations: int = GREEDY_ITERATIONS) -> tuple[list[float], dict[str, Any]]:
    """Greedy ensemble selection with replacement on validation windows: ``member_quantiles`` are each member's
    (batch, len(levels), horizon) forecasts in the common space (sorted across levels here), ``truth`` the
    normalised truth and its mask. Returns the weights (how often each member was picked / ``iterations``) and a
    record: each member's own validation loss, the ensemble's, and the order of the picks."""
    level_tensor = torch.tensor(list(levels), dtype=torch.float32)
    sorted_q = [q.float().sort(dim=1).values for q in member_quantiles]

    def loss(quantiles: torch.Tensor) -> float:
        return float(pinball_loss(quantiles, truth, level_tensor.to(quantiles.device)))

    own = [loss(q) for q in sorted_q]
    counts = np.zeros(len(sorted_q), dtype=np.int64)
    running = torch.zeros_like(sorted_q[0])
    picks = []
    for step in range(1, iterations + 1):
        trials = [loss((running * (step - 1) + q) / step) for q in sorted_q]
        best = int(np.argmin(trials))  # ties go to the earlier member
        counts[best] += 1
        running = (running * (step - 1) + sorted_q[best]) / step
        picks.append(best)
    weights = (counts / iterations).tolist()
    return weights, {"member_losses": own, "ensemble_loss": loss(running), "iterations": iterations,
                     "picks": picks[:20]}
