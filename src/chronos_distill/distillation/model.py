"""The module the Trainer trains: the student plus its training-only feature projections.

``DistillationModel`` holds the student ``Chronos2Model`` as ``.student`` and, when feature distillation is on,
one :class:`~chronos_distill.distillation.losses.FeatureProjection` per matched block pair as ``.projections``. Wrapping them
in one ``nn.Module`` is what lets transformers' ``Trainer`` optimise, checkpoint, resume and (under
``torchrun`` / ``accelerate``) synchronise the projections together with the student, with no code of ours;
the export takes ``.student`` only, so the projections never reach the exported model.

Its forward pass runs the student once under :func:`chronos_distill.chronos2.taps.tap`, with the taps the objective needs
(:mod:`chronos_distill.distillation.objective`), and returns its normalised quantiles, projected hidden states and
attention projections (:class:`StudentPass`). The losses themselves live in the objective.
"""

from __future__ import annotations

import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.config import Chronos2CoreConfig
from torch import nn

from chronos_distill.chronos2.forward import normalised_quantiles
from chronos_distill.chronos2.pruning import channel_embedding
from chronos_distill.chronos2.taps import tap
from chronos_distill.distillation.losses.feature import FeatureProjection
from chronos_distill.distillation.plan import IntermediatePlan, Needs, StudentPass, projection_key


class DistillationModel(nn.Module):
    """Student ``Chronos2Model`` + training-only projections (student d_model -> teacher d_model).

    Parameters
    ----------
    student
        The student being trained; exported alone.
    teacher_config
        The teacher's config (its d_model sizes the projections).
    plan
        Feature / attention distillation plan; ``None`` for output distillation only.
    """

    def __init__(self, student: Chronos2Model, teacher_config: Chronos2CoreConfig, plan: IntermediatePlan | None = None,
                 needs: Needs | None = None):
        super().__init__()
        self.student = student
        self.plan = plan
        # the student-side taps the objective needs (default: the plan's, for use without an objective)
        self.needs = needs if needs is not None else (plan.needs("student") if plan is not None else Needs())
        self.projections: nn.ModuleDict | None = None
        if plan is not None and plan.features:
            self.projections = nn.ModuleDict(
                {
                    projection_key(s, t): FeatureProjection(
                        student.config.d_model, teacher_config.d_model, normalise=plan.feature_projection == "linear_norm"
                    )
                    for s, t in plan.pairs
                }
            )

    @torch.no_grad()
    def init_projections_from_channels(self, channels: torch.Tensor) -> None:
        """Start every projection as the embedding of a pruned student's kept channels back into the teacher's
        width (student channel j -> teacher channel channels[j]), so the feature loss starts from the pruning
        residual instead of from noise."""
        if self.projections is None:
            return
        for projection in self.projections.values():
            weight = projection.linear.weight  # (teacher width, student width)
            weight.copy_(channel_embedding(channels, weight.shape[0]))

    def forward(
        self,
        context: torch.Tensor,
        group_ids: torch.Tensor | None = None,
        future_covariates: torch.Tensor | None = None,
        num_output_patches: int = 1,
    ) -> StudentPass:
        """context (batch, context_length); group_ids (batch,); future_covariates (batch, H) or None."""
        batch = {"context": context, "group_ids": group_ids, "future_covariates": future_covariates,
                 "num_output_patches": num_output_patches}
        with tap(self.student, self.needs.blocks, self.needs.attention) as tapped:
            quantiles = normalised_quantiles(self.student, batch)
        features = {}
        if self.projections is not None:
            for s, t in self.plan.pairs:
                features[(s, t)] = self.projections[projection_key(s, t)](tapped.hidden[s])
        return StudentPass(quantiles=quantiles, features=features, tapped=tapped)
