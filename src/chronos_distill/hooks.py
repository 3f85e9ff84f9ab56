"""Read what a Chronos-2 model computes without forking it: forward hooks on its own submodules.

The student and the teacher are plain ``Chronos2Model`` instances; everything the losses need beyond the
model's return value is captured here, the way torchdistill extracts features, so that the exported student
stays byte-for-byte a Chronos-2 model.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping

import torch
from torch import nn


@contextmanager
def capture_outputs(modules: Mapping[str, nn.Module]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of each named module during the forward passes run inside the ``with`` block.

    Yields a dict that fills up as the modules run: ``captured[name]`` is the module's (last) output tensor,
    with its autograd graph intact, so losses on it reach the module's parameters. Hooks are removed on exit,
    also when the forward pass raises.
    """
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            captured[name] = output

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()
