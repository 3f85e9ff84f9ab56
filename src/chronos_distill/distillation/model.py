"""The module the Trainer trains: the student plus the loss terms' training-only modules.

``DistillationModel`` holds the student ``Chronos2Model`` as ``.student`` and the modules the objective's terms
own as ``.terms`` (today the feature term's projections, student d_model -> teacher d_model). Wrapping them in one
``nn.Module`` is what lets transformers' ``Trainer`` optimise, checkpoint, resume and (under ``torchrun`` /
``accelerate``) synchronise them together with the student, with no code of ours; the export takes ``.student``
only, so nothing training-only reaches the exported model.

Its forward pass runs the student once under :func:`chronos_distill.chronos2.taps.tap`, with the taps the
objective needs (:mod:`chronos_distill.distillation.objective`), and returns its normalised quantiles and what
the hooks recorded (:class:`StudentPass`). The losses, projections included, live in the objective's terms.
"""

from __future__ import annotations

import torch
from chronos.chronos2 import Chronos2Model
from torch import nn

from chronos_distill.chronos2.forward import normalised_quantiles
from chronos_distill.chronos2.taps import tap
from chronos_distill.distillation.plan import Needs, StudentPass


class DistillationModel(nn.Module):
    """The student ``Chronos2Model`` (``.student``, exported alone) and the loss terms' trainable modules
    (``.terms``, e.g. the feature term's projections: trained, checkpointed and synchronised with the student by
    the Trainer, never exported).

    Parameters
    ----------
    student
        The student being trained.
    terms
        :meth:`DistillationObjective.modules`: the terms' modules by term name (empty: none).
    needs
        The student-side taps the objective needs (hidden states, attention projections of which blocks).
    """

    def __init__(self, student: Chronos2Model, terms: nn.ModuleDict | None = None, needs: Needs | None = None):
        super().__init__()
        self.student = student
        self.terms = terms if terms is not None else nn.ModuleDict()
        self.needs = needs if needs is not None else Needs()

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
        return StudentPass(quantiles=quantiles, tapped=tapped)
