"""``distill()``: one distillation run from options to exported student, through
:class:`~chronos_distill.distillation.trainer.DistillationTrainer` built from names (the output folder rules
live in :mod:`chronos_distill.training.run_folder`, the pieces of a run in :mod:`chronos_distill.distillation.build`,
the record in :mod:`chronos_distill.distillation.record`).

Order matters for the user: every check that can fail (options, output folder, teacher, data, student
config) runs before the first training step, so a bad input costs seconds, not hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chronos.chronos2 import Chronos2Model

from chronos_distill.config import DistillConfig
from chronos_distill.distillation.preflight import CheckedInputs
from chronos_distill.distillation.trainer import DistillationTrainer
from chronos_distill.training.run_folder import model_folder


@dataclass
class DistillResult:
    """What a run produced: the run folder (``output``), the publishable model folder in it (``model_dir``,
    see :mod:`chronos_distill.training.run_folder`), the trained student, the record in distillation.json, and the
    trainer (its ``state.log_history`` has every logged value; ``trainer.teacher`` is the frozen teacher)."""

    output: Path
    model_dir: Path
    student: Chronos2Model
    record: dict[str, Any]
    trainer: DistillationTrainer


def distill(config: DistillConfig | None = None, checked: CheckedInputs | None = None, **options: Any) -> DistillResult:
    """Distill a Chronos-2 teacher into a smaller Chronos-2 student and export it.

    Pass a :class:`DistillConfig`, or its fields as keyword arguments (or both: keywords override the options the
    config was given, and the defaults that depend on them are worked out again, see :meth:`DistillConfig.replace`).
    ``train_data`` / ``validation_data`` may be a file path, a pandas DataFrame or any input
    ``Chronos2Pipeline.fit`` accepts. ``checked``: see :class:`~chronos_distill.distillation.trainer.DistillationTrainer`. With ``resume`` the run continues from
    its last complete checkpoint; SIGTERM / SIGINT checkpoint and stop; a full disk is one line: this is
    ``DistillationTrainer(args=cfg).train()`` then ``save_model()`` (see
    :meth:`~chronos_distill.distillation.trainer.DistillationTrainer.train`).
    """
    cfg = config.replace(**options) if config is not None else DistillConfig(**options)
    trainer = DistillationTrainer(args=cfg, checked=checked)
    output = Path(cfg.output).expanduser()
    trainer.train()
    trainer.save_model()
    # every rank returns the record (rank 0 exported it; the others build the same one)
    return DistillResult(output=output, model_dir=model_folder(output), student=trainer.student,
                         record=trainer.published_record or trainer.record(), trainer=trainer)
