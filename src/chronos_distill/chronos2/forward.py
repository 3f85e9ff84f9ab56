"""One forward pass of a Chronos-2 model on a training batch, returning its quantiles in normalised space.

``Chronos2Model.forward`` returns quantiles in the data's original units (after the inverse of its instance
normalisation). Distillation compares models in the normalised space instead, where every series has the
same scale; the quantile head's raw output is exactly that, so it is read with a forward hook on
``model.output_patch_embedding`` instead of undoing the model's inverse transform.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

import torch
from einops import rearrange
from torch import nn

from chronos_distill.chronos2.hooks import Chronos2Layout, capture_outputs

#: Keys of a ``Chronos2Dataset`` batch that are model inputs (``future_target`` is the truth, kept apart).
MODEL_INPUT_KEYS = ("context", "group_ids", "future_covariates", "num_output_patches")


@contextlib.contextmanager
def fp32_eval(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in fp32 and eval mode for the duration of the block, then as it was: every parameter's and
    buffer's dtype and every module's train/eval flag are restored (bf16 and fp16 values survive the round
    trip through fp32 exactly). For forecasting and exporting a model that a caller may still be training."""
    dtypes = {name: t.dtype for name, t in [*model.named_parameters(), *model.named_buffers()]}
    modes = {name: m.training for name, m in model.named_modules()}
    try:
        yield model.float().eval()
    finally:
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if tensor.dtype != dtypes[name]:
                tensor.data = tensor.data.to(dtypes[name])
        for name, module in model.named_modules():
            module.training = modes[name]


def unwrap(model: nn.Module) -> nn.Module:
    """The ``Chronos2Model`` inside a DDP / compile wrapper (wrappers keep it under ``.module``)."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


def normalised_quantiles(model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
    """Run ``model`` on ``batch`` and return its quantile predictions in normalised space.

    Parameters
    ----------
    model
        A ``Chronos2Model`` (possibly wrapped for distributed training; the wrapper is what gets called, so
        gradient synchronisation works).
    batch
        A ``Chronos2Dataset`` batch: ``context`` (batch, context_length), ``group_ids`` (batch,),
        ``future_covariates`` (batch, H), ``num_output_patches`` (int).

    Returns
    -------
    Tensor of shape (batch, num_quantiles, num_output_patches * output_patch_size).
    """
    inner = unwrap(model)
    num_output_patches = int(batch["num_output_patches"])
    with capture_outputs({"head": Chronos2Layout(inner).quantile_head}) as captured:
        model(**{k: batch[k] for k in MODEL_INPUT_KEYS if batch.get(k) is not None})
    # the head maps each future patch embedding to (num_quantiles * output_patch_size) values
    return rearrange(
        captured["head"],
        "b n (q p) -> b q (n p)",
        n=num_output_patches,
        q=inner.num_quantiles,
        p=inner.chronos_config.output_patch_size,
    )


def same_normalised_space(a: nn.Module, b: nn.Module) -> bool:
    """Whether two Chronos-2 models normalise every window identically: the same context length (the instance
    norm's statistics come from the context each reads) and the same arcsinh setting."""
    a, b = unwrap(a).chronos_config, unwrap(b).chronos_config
    return a.context_length == b.context_length and a.use_arcsinh == b.use_arcsinh


def reexpress(values: torch.Tensor, source: nn.Module, target: nn.Module, context: torch.Tensor,
              target_loc_scale: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Quantiles (batch, q, h) in ``source``'s normalised space, in ``target``'s instead: back to the data's units
    with the statistics of the context ``source`` reads, then normalised with those of the context ``target`` reads
    (``target_loc_scale`` when already computed). Differentiable: a student's quantiles keep their gradient.
    ``context``: (batch, time), the batch's context as both models are given it."""
    source, target = unwrap(source), unwrap(target)
    _, own = source.instance_norm(context[..., -source.chronos_config.context_length:].float())
    if target_loc_scale is None:
        _, target_loc_scale = target.instance_norm(context[..., -target.chronos_config.context_length:].float())
    raw = source.instance_norm.inverse(values.flatten(1), own)
    return target.instance_norm(raw, target_loc_scale)[0].reshape(values.shape)
