"""What feature and attention distillation read inside a Chronos-2 forward pass, through forward hooks.

Nothing is forked and the model is not switched to eager attention: hooks record

* the token mask and group ids the encoder receives (a pre-hook on ``model.encoder``), so losses skip
  padding tokens exactly where the model's own attention does;
* the hidden state after each chosen encoder block (``model.encoder.block[i]``), shape (batch, tokens, d_model);
* for attention distillation, the outputs of the q, k and v projections of the chosen blocks' time attention
  (``block.layer[0].self_attention``) and group attention (``block.layer[1].self_attention``). The attention
  maps of only those blocks are then recomputed from them (see :mod:`chronos_distill.distillation.losses.attention`); the
  forward pass itself keeps its fused SDPA kernels.

Tokens are the context patches, the [REG] token and the future patches, in that order; teacher and student
share the patching, so token ``j`` is the same stretch of time in both.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.config import Chronos2CoreConfig
from chronos.chronos2.layers import MHA

from chronos_distill.chronos2.hooks import Chronos2Layout, Hook, hooked
from chronos_distill.config import ATTENTION_KINDS  # noqa: F401  (the option choices)
from chronos_distill.errors import ConfigError


@dataclass
class AttentionProjections:
    """The q, k, v projection outputs of one attention module, before heads are split.

    Time attention: each (batch, tokens, heads * d_kv); group attention: (tokens, batch, heads * d_kv)
    (Chronos-2 attends across the batch axis there). ``module`` is the ``MHA`` that produced them (for its
    head count and its rotary embedding).
    """

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    module: MHA


@dataclass
class Tapped:
    """Everything one forward pass recorded; filled while the model runs."""

    token_mask: torch.Tensor | None = None  # (batch, tokens), 1 for a real token, 0 for padding
    group_ids: torch.Tensor | None = None  # (batch,)
    hidden: dict[int, torch.Tensor] = field(default_factory=dict)  # block -> (batch, tokens, d_model)
    attention: dict[tuple[str, int], AttentionProjections] = field(default_factory=dict)  # (kind, block)


@contextmanager
def tap(model: Chronos2Model, blocks: Sequence[int] = (), attention: Sequence[tuple[str, int]] = ()) -> Iterator[Tapped]:
    """Record block outputs and attention projections of ``model`` during forward passes inside the block.

    ``blocks``: encoder block indices whose output hidden state is kept. ``attention``: (kind, block) pairs,
    kind ``"time"`` or ``"group"``, whose q/k/v projections are kept. Tensors keep their autograd graph.
    Hooks are removed on exit, also when the forward pass raises.
    """
    tapped = Tapped()
    layout = Chronos2Layout(model)

    def on_encoder(_module, _args, kwargs):
        tapped.token_mask = kwargs["attention_mask"]
        tapped.group_ids = kwargs["group_ids"]

    def on_block(index: int):
        def hook(_module, _inputs, output):
            tapped.hidden[index] = output.hidden_states

        return hook

    def on_projection(key: tuple[str, int], name: str, module: MHA):
        def hook(_module, _inputs, output):
            slot = tapped.attention.get(key)
            if slot is None:
                slot = tapped.attention[key] = AttentionProjections(q=None, k=None, v=None, module=module)  # type: ignore[arg-type]
            setattr(slot, name, output)

        return hook

    hooks = [Hook(layout.encoder, on_encoder, when="pre", with_kwargs=True)]
    hooks += [Hook(layout.block(index), on_block(index)) for index in blocks]
    for kind, index in attention:
        mha = layout.attention(kind, index)
        hooks += [Hook(getattr(mha, name), on_projection((kind, index), name, mha)) for name in ("q", "k", "v")]
    with hooked(hooks):
        yield tapped


def check_token_alignment(teacher: Chronos2CoreConfig, student: Chronos2CoreConfig) -> None:
    """Refuse a teacher / student pair whose tokens would not line up (feature and attention losses
    compare token ``j`` of one with token ``j`` of the other)."""
    t, s = teacher.chronos_config, student.chronos_config
    for name in ("input_patch_size", "input_patch_stride", "output_patch_size", "use_reg_token"):
        if t[name] != s[name]:
            raise ConfigError(
                f"teacher and student differ in {name} ({t[name]} vs {s[name]}): their tokens cover different "
                "stretches of time, so hidden states and attention maps cannot be compared token by token"
            )
