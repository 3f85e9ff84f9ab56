"""``DistillationConfig``: the trainer's arguments as TRL's are, a ``transformers.TrainingArguments`` subclass.

TRL's ``GKDConfig`` is ``TrainingArguments`` plus the distillation fields; this is the same for
:class:`~chronos_distill.distillation.trainer.DistillationTrainer`. Nothing is defined twice:

- the distillation fields (``teacher``, ``alpha``, ``general``, ``teacher_cache``, the table layout, ...) are the
  fields of :class:`~chronos_distill.config.DistillConfig` themselves, copied with their defaults, help and bounds
  (the class is made with :func:`dataclasses.make_dataclass` from that list, so a new option appears here by itself);
- the ``TrainingArguments`` fields that have an option of their own (``max_steps``, ``per_device_train_batch_size``,
  ``learning_rate``, ``logging_steps``, ``seed``, ...) default to the command's defaults
  (``DistillConfig.TRAINING_DEFAULTS``), and the shared choices (cosine schedule, two checkpoints kept, ...)
  to :data:`~chronos_distill.training.arguments.SHARED_CHOICES`;
- ``output_dir`` is the run folder (``output``: the student in ``model/``, checkpoints in ``checkpoints/``).

It parses with ``transformers.HfArgumentParser`` (``--teacher``, ``--alpha``, ``--gradient_accumulation_steps``,
...), as TRL's configs do: a copied field keeps the option's help and choices, and a data path or a mapping is
text there (a path, JSON), checked with the other options.

Every other ``TrainingArguments`` field a user sets (``gradient_accumulation_steps``, ``max_grad_norm``,
``torch_compile``, ``report_to``, ...) reaches the Trainer as the command line's ``trainer_args`` does: the run's
options are :meth:`DistillationConfig.distill_options`, and the trainer validates them once, into a
``DistillConfig``, when it is built (a teacher or data object given to the trainer takes the place of its name,
so the config alone cannot be complete).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from transformers import TrainingArguments

from chronos_distill.config import DistillConfig, TrainingOptions
from chronos_distill.config.options import OWN_OPTIONS, option_kind
from chronos_distill.errors import ConfigError
from chronos_distill.training.arguments import SHARED_CHOICES

#: The training options that are ``TrainingArguments`` fields under another name (the others keep theirs).
_RENAMED = {"batch_size": "per_device_train_batch_size", "num_workers": "dataloader_num_workers", "output": "output_dir"}
_TRAINING_ARGUMENT_NAMES = {f.name for f in dataclasses.fields(TrainingArguments)}
#: option -> the TrainingArguments field that carries it
TRAINING_ARGUMENT_OF_OPTION = {
    name: _RENAMED.get(name, name) for name in [*(f.name for f in dataclasses.fields(TrainingOptions)), "output"]
    if _RENAMED.get(name, name) in _TRAINING_ARGUMENT_NAMES
}
#: The TrainingArguments fields an option sets besides its own field (eval batch size, eval steps, warmup steps):
#: set on a DistillationConfig they are refused, as in trainer_args, naming the option to set instead.
_SET_BY_AN_OPTION = sorted((set(OWN_OPTIONS) & _TRAINING_ARGUMENT_NAMES) - set(TRAINING_ARGUMENT_OF_OPTION.values()))
#: The distillation fields: every DistillConfig option that is not a TrainingArguments field (nor trainer_args,
#: which the TrainingArguments fields themselves take the place of).
_DISTILLATION_FIELDS = [f for f in dataclasses.fields(DistillConfig)
                        if f.name not in TRAINING_ARGUMENT_OF_OPTION and f.name != "trainer_args"]
_clashes = {f.name for f in _DISTILLATION_FIELDS} & _TRAINING_ARGUMENT_NAMES
assert not _clashes, f"DistillConfig options named like TrainingArguments fields: {sorted(_clashes)}"


def _copy(f: dataclasses.Field) -> tuple[str, Any, dataclasses.Field]:
    """The option's field, with the command's default where it fills one in (``warmup_ratio``). Its metadata is
    what ``HfArgumentParser`` passes to ``argparse`` (help, choices): the bounds are checked when the options are
    (``DistillConfig``); a data path is text on a command line (in Python, a DataFrame too)."""
    metadata = {"help": f.metadata["help"], **({"choices": f.metadata["choices"]} if f.metadata.get("choices") else {})}
    # text on a command line: a data path (in Python, a DataFrame too), a mapping as JSON (read with the options)
    annotation = {"path": "str | None", "dict": "str"}.get(option_kind(f), f.type)
    if f.name in DistillConfig.TRAINING_DEFAULTS:
        return f.name, annotation, dataclasses.field(default=DistillConfig.TRAINING_DEFAULTS[f.name], metadata=metadata)
    return f.name, annotation, dataclasses.field(default=f.default, default_factory=f.default_factory,
                                                 metadata=metadata)


def _default(name: str, value: Any) -> tuple[str, Any, dataclasses.Field]:
    """A TrainingArguments field with the command's default instead of transformers' (its type and help kept)."""
    base = next(f for f in dataclasses.fields(TrainingArguments) if f.name == name)
    return name, typing.get_type_hints(TrainingArguments)[name], dataclasses.field(default=value, metadata=base.metadata)


def _post_init(self) -> None:
    TrainingArguments.__post_init__(self)
    reference = self.reference_arguments()
    moved = [name for name in _SET_BY_AN_OPTION if getattr(self, name) != getattr(reference, name)]
    if moved:
        raise ConfigError(f"DistillationConfig: {moved} follow their options "
                          f"({', '.join(f'{n} -> {OWN_OPTIONS[n]}' for n in moved)}); set those instead")


def _reference_arguments(self) -> TrainingArguments:
    """Plain ``TrainingArguments`` with this class's defaults and this run folder: what a field is compared with to
    tell whether it was set."""
    return TrainingArguments(output_dir=self.output_dir, **_TRAINING_DEFAULTS)


def _passed_through(self) -> dict[str, Any]:
    """The ``TrainingArguments`` fields set away from this class's defaults that no option carries: the run's
    ``trainer_args`` (JSON values, as ``to_dict`` writes them)."""
    reference, values = self.reference_arguments(), self.to_dict()
    owned = {*TRAINING_ARGUMENT_OF_OPTION.values(), *_SET_BY_AN_OPTION}
    return {f.name: values[f.name] for f in dataclasses.fields(TrainingArguments)
            if f.init and f.name not in owned and f.name in values
            and getattr(self, f.name) != getattr(reference, f.name)}


def _distill_options(self) -> dict[str, Any]:
    """The run's options, by the names of ``DistillConfig`` (``distill(**options)`` runs the same), for the trainer
    to validate with the objects it is given."""
    options = {f.name: getattr(self, f.name) for f in _DISTILLATION_FIELDS}
    options.update({option: getattr(self, field) for option, field in TRAINING_ARGUMENT_OF_OPTION.items()})
    options["trainer_args"] = self.passed_through()
    return options


#: The defaults that differ from transformers': the command's training defaults and the shared choices.
_TRAINING_DEFAULTS = {**{TRAINING_ARGUMENT_OF_OPTION[o]: v for o, v in DistillConfig.TRAINING_DEFAULTS.items()
                         if o in TRAINING_ARGUMENT_OF_OPTION}, **SHARED_CHOICES}

DistillationConfig = dataclasses.make_dataclass(
    "DistillationConfig",
    [_copy(f) for f in _DISTILLATION_FIELDS]
    + [_default(name, value) for name, value in _TRAINING_DEFAULTS.items()],
    bases=(TrainingArguments,),
    namespace={"__post_init__": _post_init, "reference_arguments": _reference_arguments,
               "passed_through": _passed_through, "distill_options": _distill_options,
               "__module__": __name__},
)
DistillationConfig.__doc__ = """``TrainingArguments`` with the distillation options, for
:class:`~chronos_distill.distillation.trainer.DistillationTrainer` (as TRL's ``GKDConfig`` is for ``GKDTrainer``).

``DistillationConfig(output_dir="runs/mine", teacher="amazon/chronos-2", prediction_length=24, max_steps=2000,
alpha=0.7, gradient_accumulation_steps=2)``: ``output_dir`` is the run folder; each distillation field is the
``distill`` option of that name (see ``docs/cli.md``); every ``TrainingArguments`` field works as in
``transformers``, with chronos-distill's defaults where they differ (module docstring)."""
