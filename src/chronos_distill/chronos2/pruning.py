"""Students that start inside the teacher: structured width and depth pruning (the Minitron recipe).

:func:`estimate_importance` runs calibration batches of the user's data through the teacher and reads, with
forward hooks, activation-based importance scores (all averaged over real tokens, padding patches excluded):

* **residual channels** (d_model): root mean square of each channel at the inputs of every sublayer (the
  outputs of the RMS norms before time attention, group attention, MLP, and the final norm), summed over
  those norms. This is Minitron's estimator: a channel that carries little signal into any sublayer can go;
* **attention heads**, time and group attention separately: the mean L2 norm of each head's output (the input
  of the ``o`` projection, per head), i.e. how much the head writes;
* **MLP neurons** (and the hidden units of the input and output patch embeddings): mean absolute activation
  (the patch embeddings run before the encoder builds its token mask, so there every patch counts);
* **blocks**: ShortGPT's block influence, 1 - cosine similarity between a block's input and output hidden state:
  a block that barely turns its input contributes little.

:func:`prune` then keeps the most important blocks (in their order), channels, heads and neurons and slices
every weight that reads or writes them into a plain ``Chronos2Model`` of the student's config. Kept indices
stay in their original order, so pruning a model to its own size reproduces it exactly.

Head pruning keeps whole heads, so the student's head size d_kv must equal the teacher's; student quantile levels
must be a subset of the teacher's (their rows of the head are kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.config import Chronos2CoreConfig
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from chronos_distill.chronos2.forward import MODEL_INPUT_KEYS
from chronos_distill.chronos2.hooks import Chronos2Layout, Hook, hooked
from chronos_distill.chronos2.taps import tap
from chronos_distill.errors import ConfigError


@dataclass
class Importance:
    """Importance scores of a teacher's parts (higher = more important).

    channels (d_model,); time_heads, group_heads (num_layers, num_heads); neurons (num_layers, d_ff);
    input_hidden, output_hidden (d_ff,): hidden units of the patch embeddings; blocks (num_layers,).
    """

    channels: torch.Tensor
    time_heads: torch.Tensor
    group_heads: torch.Tensor
    neurons: torch.Tensor
    input_hidden: torch.Tensor
    output_hidden: torch.Tensor
    blocks: torch.Tensor
    norm_energy: dict[str, torch.Tensor] | None = None  # per RMS norm (state-dict prefix): mean x^2 per channel of its input


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over all leading axes of values (..., n) weighted by mask (...), or unweighted without one."""
    if mask is None:
        return values.reshape(-1, values.shape[-1]).mean(0)
    weight = mask.to(values.dtype).unsqueeze(-1)
    return (values * weight).reshape(-1, values.shape[-1]).sum(0) / weight.sum().clamp_min(1.0)


@torch.no_grad()
def estimate_importance(teacher: Chronos2Model, batches: Iterable[Mapping]) -> Importance:
    """Run ``batches`` (``Chronos2Dataset`` batches) through ``teacher`` and score its parts (see module doc)."""
    config = teacher.config
    layers, heads, d_kv = config.num_layers, config.num_heads, config.d_kv
    sums = {
        "channels": torch.zeros(config.d_model),
        "time_heads": torch.zeros(layers, heads),
        "group_heads": torch.zeros(layers, heads),
        "neurons": torch.zeros(layers, config.d_ff),
        "input_hidden": torch.zeros(config.d_ff),
        "output_hidden": torch.zeros(config.d_ff),
        "blocks": torch.zeros(layers),
    }
    state: dict = {}
    energy: dict[str, torch.Tensor] = {}

    def token_mask(transposed: bool = False):
        mask = state["tapped"].token_mask.bool()
        return mask.T if transposed else mask

    def on_norm(name: str, transposed: bool):
        def hook(_m, args, out):
            mask = token_mask(transposed)
            sums["channels"].add_(_masked_mean(out.float().pow(2), mask).sqrt().cpu())
            value = _masked_mean(args[0].float().pow(2), mask).cpu()
            energy[name] = energy.get(name, 0) + value
        return hook

    def on_attention_output(kind: str, layer: int, transposed: bool):
        def hook(_m, args):
            per_head = rearrange(args[0].float(), "... (h d) -> ... h d", h=heads, d=d_kv).norm(dim=-1)
            sums[kind][layer].add_(_masked_mean(per_head, token_mask(transposed)).cpu())
        return hook

    def on_neurons(key: str, layer: int | None, masked: bool):
        def hook(_m, args):
            value = _masked_mean(args[0].float().abs(), token_mask() if masked else None).cpu()
            (sums[key][layer] if layer is not None else sums[key]).add_(value)
        return hook

    def on_block(layer: int):
        def hook(_m, args, kwargs, out):
            cosine = F.cosine_similarity(args[0].float(), out.hidden_states.float(), dim=-1)
            sums["blocks"][layer] += float(_masked_mean((1 - cosine).unsqueeze(-1), token_mask()))
        return hook

    layout = Chronos2Layout(teacher)
    hooks = []
    for i in range(layers):
        time_attn, group_attn, feed_forward = (layout.attention_layer("time", i), layout.attention_layer("group", i),
                                               layout.feed_forward(i))
        hooks += [
            Hook(time_attn.layer_norm, on_norm(layout.name(time_attn), False)),
            Hook(group_attn.layer_norm, on_norm(layout.name(group_attn), True)),  # group attention: (time, batch, d)
            Hook(feed_forward.layer_norm, on_norm(layout.name(feed_forward), False)),
            Hook(time_attn.self_attention.o, on_attention_output("time_heads", i, False), when="pre"),
            Hook(group_attn.self_attention.o, on_attention_output("group_heads", i, True), when="pre"),
            Hook(feed_forward.mlp.wo, on_neurons("neurons", i, True), when="pre"),
            Hook(layout.block(i), on_block(i), with_kwargs=True),
        ]
    hooks += [
        Hook(layout.final_norm, on_norm(layout.name(layout.final_norm), False)),
        Hook(layout.input_embedding.output_layer, on_neurons("input_hidden", None, False), when="pre"),
        Hook(layout.quantile_head.output_layer, on_neurons("output_hidden", None, False), when="pre"),
    ]
    count = 0
    with hooked(hooks):
        for batch in batches:
            inputs = {k: batch[k] for k in MODEL_INPUT_KEYS if batch.get(k) is not None}
            with tap(teacher) as tapped:
                state["tapped"] = tapped
                teacher(**{k: v.to(teacher.device) if torch.is_tensor(v) else v for k, v in inputs.items()})
            count += 1
    if not count:
        raise ValueError("importance estimation needs at least one calibration batch")
    return Importance(**{k: v / count for k, v in sums.items()}, norm_energy={k: v / count for k, v in energy.items()})


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k highest scores, in ascending index order (ties: lower index first)."""
    order = torch.sort(scores, descending=True, stable=True).indices[:k]
    return torch.sort(order).values


def _head_rows(kept_heads: torch.Tensor, d_kv: int) -> torch.Tensor:
    return (kept_heads[:, None] * d_kv + torch.arange(d_kv)).reshape(-1)


def check_prunable(teacher: Chronos2CoreConfig, student: Chronos2CoreConfig) -> None:
    """Refuse a student config that pruning cannot reach from this teacher, with the reason."""
    for name in ("d_model", "num_layers", "num_heads", "d_ff"):
        if getattr(student, name) > getattr(teacher, name):
            raise ConfigError(
                f"student_init pruned: the student's {name} {getattr(student, name)} exceeds the teacher's "
                f"{getattr(teacher, name)}; pruning can only remove"
            )
    if student.d_kv != teacher.d_kv:
        raise ConfigError(
            f"student_init pruned keeps whole heads, so the student's head size must be the teacher's d_kv "
            f"{teacher.d_kv} (got {student.d_kv}); set --student-num-heads {student.d_model // teacher.d_kv} or use "
            "--student-init random"
        )
    missing = set(student.chronos_config["quantiles"]) - set(teacher.chronos_config["quantiles"])
    if missing:
        raise ConfigError(f"student_init pruned: student quantiles {sorted(missing)} are not among the teacher's")


@torch.no_grad()
def prune(teacher: Chronos2Model, student_config: Chronos2CoreConfig, importance: Importance) -> tuple[Chronos2Model, torch.Tensor]:
    """A ``Chronos2Model`` of ``student_config`` made of the teacher's most important parts.

    Returns the student (fp32, on CPU) and the kept residual channels (student d_model,), whose embedding back
    into the teacher's width initialises feature-distillation projections. ``student_config`` must pass
    :func:`check_prunable` (``build_pruned_student`` checks it before any forward pass).
    """
    t_cfg = teacher.config
    channels = _top(importance.channels, student_config.d_model)
    blocks = _top(importance.blocks, student_config.num_layers)
    d_kv, n_heads, d_ff = t_cfg.d_kv, student_config.num_heads, student_config.d_ff
    input_hidden = _top(importance.input_hidden, d_ff)
    output_hidden = _top(importance.output_hidden, d_ff)
    levels = list(teacher.chronos_config.quantiles)
    patch = teacher.chronos_config.output_patch_size
    quantile_rows = torch.cat(
        [torch.arange(levels.index(q) * patch, (levels.index(q) + 1) * patch) for q in student_config.chronos_config["quantiles"]]
    )

    source = {k: v.detach().float().cpu() for k, v in teacher.state_dict().items()}
    student = Chronos2Model(student_config).float()
    T, S = Chronos2Layout(teacher), Chronos2Layout(student)  # noqa: N806  (teacher's and student's layouts)
    new: dict[str, torch.Tensor] = {}

    def copy(teacher_part: nn.Module, student_part: nn.Module, rows=None, columns=None, kind: str = "weight") -> None:
        """The student part's ``weight`` (or ``bias``) as the teacher part's, sliced to the kept rows / columns."""
        value = source[T.weight(teacher_part, kind)]
        value = value[rows] if rows is not None else value
        new[S.weight(student_part, kind)] = value[:, columns] if columns is not None else value

    copy(T.special_tokens, S.special_tokens, columns=channels)
    for t_emb, s_emb, hidden, outputs, inputs in (
            (T.input_embedding, S.input_embedding, input_hidden, channels, None),
            (T.quantile_head, S.quantile_head, output_hidden, quantile_rows, channels)):
        copy(t_emb.hidden_layer, s_emb.hidden_layer, rows=hidden, columns=inputs)
        copy(t_emb.hidden_layer, s_emb.hidden_layer, rows=hidden, kind="bias")
        copy(t_emb.output_layer, s_emb.output_layer, rows=outputs, columns=hidden)
        copy(t_emb.output_layer, s_emb.output_layer, rows=outputs, kind="bias")
        copy(t_emb.residual_layer, s_emb.residual_layer, rows=outputs, columns=inputs)
        copy(t_emb.residual_layer, s_emb.residual_layer, rows=outputs, kind="bias")
    copy(T.final_norm, S.final_norm, rows=channels)
    sublayers = {S.name(S.final_norm): T.name(T.final_norm)}  # student norm -> teacher norm, for the correction
    for s, t in enumerate(blocks.tolist()):
        for kind, scores in (("time", importance.time_heads[t]), ("group", importance.group_heads[t])):
            rows = _head_rows(_top(scores, n_heads), d_kv)
            t_attn, s_attn = T.attention(kind, t), S.attention(kind, s)
            for proj in ("q", "k", "v"):
                copy(getattr(t_attn, proj), getattr(s_attn, proj), rows=rows, columns=channels)
            copy(t_attn.o, s_attn.o, rows=channels, columns=rows)
            copy(T.attention_layer(kind, t).layer_norm, S.attention_layer(kind, s).layer_norm, rows=channels)
            sublayers[S.name(S.attention_layer(kind, s).layer_norm)] = T.name(T.attention_layer(kind, t))
        neurons = _top(importance.neurons[t], d_ff)
        t_mlp, s_mlp = T.feed_forward(t), S.feed_forward(s)
        copy(t_mlp.mlp.wi, s_mlp.mlp.wi, rows=neurons, columns=channels)
        copy(t_mlp.mlp.wo, s_mlp.mlp.wo, rows=channels, columns=neurons)
        copy(t_mlp.layer_norm, s_mlp.layer_norm, rows=channels)
        sublayers[S.name(s_mlp.layer_norm)] = T.name(t_mlp)

    if importance.norm_energy:
        # An RMS norm divides by the root mean square over the channels it sees; with fewer channels (and the
        # strongest ones kept) that RMS changes, so the kept channels would come out rescaled. Fold the
        # calibration-average ratio into each norm's gain so they keep the teacher's scale.
        ratio = t_cfg.d_model / student_config.d_model
        for norm, src in sublayers.items():
            e = importance.norm_energy[src]
            key = f"{norm}.weight"
            new[key] = new[key] * float(torch.sqrt(e[channels].sum() / e.sum().clamp_min(1e-12) * ratio))
    student.load_state_dict(new, strict=True)
    return student, channels


def channel_embedding(channels: torch.Tensor, teacher_width: int) -> torch.Tensor:
    """(teacher_width, student_width) matrix putting student channel j back at teacher channel channels[j]."""
    matrix = torch.zeros(teacher_width, len(channels))
    matrix[channels, torch.arange(len(channels))] = 1.0
    return matrix
