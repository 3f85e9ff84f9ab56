"""Which student encoder block learns from which teacher encoder block (feature and attention distillation).

A ``layer_map`` option is one of

* ``uniform``: student block ``i`` (of ``S``) is matched with teacher block ``round((i + 1) * T / S) - 1`` (of
  ``T``), halves rounded up, so the blocks are spread evenly and the last blocks always meet
  (12 -> 6: 1, 3, 5, 7, 9, 11; 6 -> 3: 1, 3, 5);
* ``last``: only the last blocks, ``(S - 1, T - 1)``;
* explicit pairs ``"student:teacher,..."``, e.g. ``"0:2,1:5"`` (0-based block indices).
"""

from __future__ import annotations

import math

from chronos_distill.config import check_layer_map_syntax
from chronos_distill.errors import ConfigError


def resolve_layer_map(layer_map: str, student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """The (student block, teacher block) pairs of ``layer_map`` for these depths, validated against both."""
    check_layer_map_syntax(layer_map)
    if layer_map == "uniform":
        return [(i, math.floor((i + 1) * teacher_layers / student_layers + 0.5) - 1) for i in range(student_layers)]
    if layer_map == "last":
        return [(student_layers - 1, teacher_layers - 1)]
    pairs = []
    for item in layer_map.split(","):
        s, t = (int(part) for part in item.split(":"))
        if s >= student_layers:
            raise ConfigError(f"layer_map pair {s}:{t}: the student has blocks 0..{student_layers - 1}")
        if t >= teacher_layers:
            raise ConfigError(f"layer_map pair {s}:{t}: the teacher has blocks 0..{teacher_layers - 1}")
        pairs.append((s, t))
    students = [s for s, _ in pairs]
    if len(set(students)) != len(students):
        raise ConfigError(f"layer_map {layer_map!r} matches a student block more than once")
    return pairs
