"""Read what a Chronos-2 model computes without forking it: forward hooks on its own submodules.

The student and the teacher are plain ``Chronos2Model`` instances; everything the losses (and the pruning
scorer) need beyond the model's return value is captured through hooks, the way torchdistill extracts
features, so that the exported student stays byte-for-byte a Chronos-2 model.

- :class:`Hook` / :func:`hooked`: the one way the project registers hooks; they are removed on exit, also
  when the forward pass raises.
- :class:`Chronos2Layout`: the one place that knows where things sit inside a ``Chronos2Model`` (blocks,
  their time / group attention and MLP, the patch embeddings).
- :func:`capture_outputs`: the outputs of named modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Hook:
    """``fn`` on ``module``: after its forward (``when="forward"``: ``fn(module, args, output)``) or before it
    (``when="pre"``: ``fn(module, args)``); with ``with_kwargs`` the keyword arguments come after ``args``."""

    module: nn.Module
    fn: Callable
    when: str = "forward"
    with_kwargs: bool = False


@contextmanager
def hooked(hooks: Iterable[Hook]) -> Iterator[None]:
    """Register ``hooks`` for the forward passes run inside the ``with`` block, and remove them on exit."""
    handles = []
    try:
        for hook in hooks:
            register = hook.module.register_forward_hook if hook.when == "forward" else hook.module.register_forward_pre_hook
            handles.append(register(hook.fn, with_kwargs=hook.with_kwargs))
        yield
    finally:
        for handle in handles:
            handle.remove()


@dataclass(frozen=True)
class Chronos2Layout:
    """Where the parts of a ``Chronos2Model`` are (``chronos.chronos2.model``): its encoder holds ``block[i]``,
    each with ``layer[0]`` time attention, ``layer[1]`` group attention, ``layer[2]`` the MLP."""

    model: nn.Module

    #: index of each attention kind inside a block's ``layer``
    ATTENTION_LAYER = {"time": 0, "group": 1}

    @property
    def encoder(self) -> nn.Module:
        return self.model.encoder

    def blocks(self) -> list[nn.Module]:
        return list(self.model.encoder.block)

    def block(self, index: int) -> nn.Module:
        return self.model.encoder.block[index]

    def attention_layer(self, kind: str, index: int) -> nn.Module:
        """The time or group attention sublayer of block ``index`` (its ``layer_norm`` and ``self_attention``)."""
        return self.block(index).layer[self.ATTENTION_LAYER[kind]]

    def attention(self, kind: str, index: int) -> nn.Module:
        """The ``MHA`` of the time or group attention of block ``index`` (``q``, ``k``, ``v``, ``o``)."""
        return self.attention_layer(kind, index).self_attention

    def feed_forward(self, index: int) -> nn.Module:
        """The MLP sublayer of block ``index`` (its ``layer_norm`` and ``mlp.wi`` / ``mlp.wo``)."""
        return self.block(index).layer[2]

    @property
    def final_norm(self) -> nn.Module:
        return self.model.encoder.final_layer_norm

    @property
    def input_embedding(self) -> nn.Module:
        return self.model.input_patch_embedding

    @property
    def quantile_head(self) -> nn.Module:
        """The output patch embedding: each future token -> num_quantiles x output_patch_size values."""
        return self.model.output_patch_embedding

    @property
    def special_tokens(self) -> nn.Module:
        """The embedding of the special tokens ([REG]), one row per token, d_model columns."""
        return self.model.shared

    def name(self, module: nn.Module) -> str:
        """``module``'s qualified name in the model, the prefix of its parameters' state-dict keys: code that
        edits a state dict (pruning) asks here instead of spelling the keys."""
        if not hasattr(self, "_names"):
            object.__setattr__(self, "_names", {id(m): n for n, m in self.model.named_modules()})
        return self._names[id(module)]

    def weight(self, module: nn.Module, kind: str = "weight") -> str:
        """The state-dict key of ``module``'s ``weight`` (or ``bias``)."""
        return f"{self.name(module)}.{kind}"


@contextmanager
def capture_outputs(modules: Mapping[str, nn.Module]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of each named module during the forward passes run inside the ``with`` block.

    Yields a dict that fills up as the modules run: ``captured[name]`` is the module's (last) output tensor,
    with its autograd graph intact, so losses on it reach the module's parameters.
    """
    captured: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            captured[name] = output

        return hook

    with hooked(Hook(module, keep(name)) for name, module in modules.items()):
        yield captured
