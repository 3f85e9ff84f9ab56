"""Attention distillation for Chronos-2's time attention and group attention.

Teacher and student may differ in head count and head size, so heads are never matched one to one:

* ``kl``: the head-averaged attention map of the student vs the teacher's, KL(teacher || student) per query
  row (TinyBERT / the design note's attention transfer, made head-count free by averaging);
* ``relation``: MiniLM-v2 self-relations. q, k and v (all heads concatenated) are re-split into a common
  number of relation heads R; softmax(x x^T / sqrt(d_r)) is compared by KL for each of q, k, v. Needs no head
  matching, only that R divides both models' q/k/v widths.

Maps are recomputed from the hooked q/k/v projections of the matched blocks only (:mod:`chronos_distill.chronos2.taps`):
the forward pass keeps its fused attention kernels, and the extra memory is one (batch, heads, tokens, tokens)
map per matched block for time attention, (tokens, heads, batch, batch) for group attention, and R maps of the
same size per q/k/v for ``relation``, with their autograd buffers on the student side. Unmatched blocks cost
nothing. Time attention uses the queries and keys after RoPE, as the model does; Chronos-2 does not scale its
attention scores, and neither does the ``kl`` map.

Masks follow the model's: padding keys get zero probability; group attention only spans series of the same
group. Query rows are averaged over real tokens; for group attention only rows of series whose group has more
than one series count (a group of one attends only to itself, which teaches nothing).
"""

from __future__ import annotations

import math

import torch
from chronos.chronos2.layers import Chronos2RotaryEmbedding
from einops import rearrange

from chronos_distill.chronos2.taps import AttentionProjections, Tapped
from chronos_distill.config import ATTENTION_LOSSES  # noqa: F401  (the option choices)


def row_kl(teacher: torch.Tensor, student: torch.Tensor, row_weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean over query rows of KL(teacher || student); maps (..., rows, keys) are probabilities.

    row_weight broadcasts to (..., rows). Zero-probability teacher entries contribute nothing; the student's
    probabilities are floored at 1e-12 where they underflow.
    """
    kl = (torch.special.xlogy(teacher, teacher) - teacher * student.clamp_min(1e-12).log()).sum(-1)
    weight = row_weight.to(kl.dtype).expand_as(kl)
    return (kl * weight).sum() / weight.sum().clamp_min(1.0)


def _masked_softmax(scores: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    return scores.masked_fill(~allowed, torch.finfo(scores.dtype).min).softmax(-1)


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    return rearrange(x, "n l (h d) -> n h l d", h=num_heads)


class AttentionView:
    """One model's attention inputs for one (kind, block), as (N, L, ·) sequences with their masks.

    Time attention: N = batch, L = tokens. Group attention: N = tokens, L = batch (series attend to the series of
    their group at the same token). ``allowed`` (N, 1, L, L) says which (query, key) pairs the model lets attend;
    ``row_weight`` (N, 1, L) which query rows count in the loss.
    """

    def __init__(self, kind: str, projections: AttentionProjections, tapped: Tapped):
        module = projections.module
        self.num_heads = module.n_heads
        token_mask = tapped.token_mask.bool()  # (batch, tokens)
        q, k, v = projections.q.float(), projections.k.float(), projections.v.float()
        if kind == "time":
            if module.use_rope:
                # the model applies RoPE to q and k inside its attention; positions are 0..tokens-1
                qh, kh = _heads(q, self.num_heads), _heads(k, self.num_heads)
                positions = torch.arange(q.shape[1], device=q.device).unsqueeze(0)
                cos, sin = module.rope_embed(qh, positions)
                qh, kh = Chronos2RotaryEmbedding.apply_rotary_pos_emb(qh, kh, cos.float(), sin.float())
                q, k = rearrange(qh, "n h l d -> n l (h d)"), rearrange(kh, "n h l d -> n l (h d)")
            self.allowed = token_mask[:, None, None, :].expand(-1, 1, token_mask.shape[1], -1)
            self.row_weight = token_mask[:, None, :]
        elif kind == "group":
            group_ids = tapped.group_ids
            same_group = group_ids[:, None] == group_ids[None, :]  # (batch, batch)
            key_ok = rearrange(token_mask, "b t -> t 1 1 b")
            self.allowed = same_group[None, None] & key_ok  # (tokens, 1, batch, batch)
            group_size = same_group.sum(-1)  # (batch,)
            self.row_weight = rearrange(token_mask & (group_size > 1)[:, None], "b t -> t 1 b")
        else:
            raise ValueError(f"unknown attention kind {kind!r}")
        self.q, self.k, self.v = q, k, v

    def head_averaged_map(self) -> torch.Tensor:
        """(N, 1, L, L): the model's attention probabilities averaged over its heads."""
        scores = _heads(self.q, self.num_heads) @ _heads(self.k, self.num_heads).transpose(-1, -2)
        return _masked_softmax(scores, self.allowed).mean(1, keepdim=True)

    def relations(self, relation_heads: int) -> list[torch.Tensor]:
        """[q-q, k-k, v-v] self-relations, each (N, relation_heads, L, L)."""
        out = []
        for x in (self.q, self.k, self.v):
            if x.shape[-1] % relation_heads:
                raise ValueError(f"relation_heads {relation_heads} does not divide the attention width {x.shape[-1]}")
            xr = _heads(x, relation_heads)
            scores = xr @ xr.transpose(-1, -2) / math.sqrt(xr.shape[-1])
            out.append(_masked_softmax(scores, self.allowed))
        return out


def attention_loss(
    student: Tapped,
    teacher: Tapped,
    pairs: list[tuple[int, int]],
    kinds: tuple[str, ...],
    loss: str,
    relation_heads: int | None = None,
) -> torch.Tensor:
    """Mean attention loss over matched (student block, teacher block) pairs and attention kinds.

    A kind with no query row to count (group attention on a batch of single-series groups) is left out of the
    mean rather than entering it as a zero, which would dilute the other kind's loss; with no row at all the
    loss is a zero that still depends on the student (so backward works).
    """
    terms, counted = [], []
    for kind in kinds:
        for s_block, t_block in pairs:
            s_view = AttentionView(kind, student.attention[(kind, s_block)], student)
            t_view = AttentionView(kind, teacher.attention[(kind, t_block)], teacher)
            if s_view.q.shape[:2] != t_view.q.shape[:2]:
                raise ValueError(
                    f"{kind} attention of student block {s_block} covers {tuple(s_view.q.shape[:2])} and of teacher "
                    f"block {t_block} {tuple(t_view.q.shape[:2])}: the two models did not see the same tokens"
                )
            counted.append(s_view.row_weight.any())  # stays on the device: no sync in the training step
            if loss == "kl":
                terms.append(row_kl(t_view.head_averaged_map().detach(), s_view.head_averaged_map(), s_view.row_weight))
            elif loss == "relation":
                if relation_heads is None:
                    raise ValueError("attention loss 'relation' needs relation_heads")
                rels = zip(t_view.relations(relation_heads), s_view.relations(relation_heads))
                terms.append(torch.stack([row_kl(t.detach(), s, s_view.row_weight) for t, s in rels]).mean())
            else:
                raise ValueError(f"unknown attention loss {loss!r}; expected one of {ATTENTION_LOSSES}")
    weight = torch.stack(counted).to(terms[0].dtype)
    return (torch.stack(terms) * weight).sum() / weight.sum().clamp_min(1.0)


def default_relation_heads(student_width: int, teacher_width: int, student_heads: int, teacher_heads: int) -> int:
    """The largest R <= max(head counts) dividing both q/k/v widths (512 vs 384 -> 8; 768 vs 384 -> 12)."""
    common = math.gcd(student_width, teacher_width)
    for r in range(max(student_heads, teacher_heads), 0, -1):
        if common % r == 0:
            return r
    return 1
