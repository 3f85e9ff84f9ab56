"""``DistillationConfig``: the trainer's arguments as TRL's are, a ``transformers.TrainingArguments`` subclass.

TRL's ``GKDConfig`` is ``TrainingArguments`` plus the distillation fields; this is the same for
:class:`~chronos_distill.distillation.trainer.DistillationTrainer`. Why two classes, and nothing defined twice:
``DistillConfig`` is the one definition of every option (its help, bounds and choices; the command line and YAML
are generated from it, and it imports no torch, so ``distill --help`` and a refused option answer at once), while
a ``TrainingArguments`` subclass is what a TRL user hands a trainer and what ``HfArgumentParser`` parses. So:

- the distillation fields (``teacher``, ``alpha``, ``general``, ``teacher_cache``, the table layout, ...) are the
  fields of :class:`~chronos_distill.config.DistillConfig` themselves, copied with their defaults, help and bounds
  (the class is made with :func:`dataclasses.make_dataclass` from that list, so a new option appears here by itself;
  IDEs and type checkers, which cannot read such a class, read its fields from ``distillation_config.pyi``, written
  from the same list by ``python scripts/render_sources.py`` and kept equal to it by a test);
- the ``TrainingArguments`` fields that have an option of their own (``max_steps``, ``per_device_train_batch_size``,
  ``learning_rate``, ``logging_steps``, ``seed``, ...) default to the command's defaults
  (``DistillConfig.TRAINING_DEFAULTS``), and the shared choices (cosine schedule, two checkpoints kept, ...)
  to :data:`~chronos_distill.training.arguments.SHARED_CHOICES`;
- ``output_dir`` is the run folder (``output``: the student in ``model/``, checkpoints in ``checkpoints/``, which is
  the ``output_dir`` of the Trainer's own arguments).

Every setting is kept or refused when the config is built, in one line, before anything is loaded:

- the fields a run cannot honour (:data:`~chronos_distill.config.options.NOT_HONOURED`: epochs of an endless
  sampler, the hub fields, an epoch strategy) and those an option sets (eval batch size, eval steps, warmup steps)
  default to None and are refused when set at all;
- the fields a run chooses by device or by its data (:data:`~chronos_distill.training.arguments.RUN_CHOSEN`:
  ``bf16``, ``use_cpu``, ``optim``, ``report_to``, ...) default to None, "the run's choice": a value set, even
  transformers' own default (``bf16=False``), is passed to the run as set;
- every other field reaches the run with its real value when it differs from this class's default (at the default
  the run's ``TrainingArguments`` hold that value anyway), as the command line's ``trainer_args``
  (:meth:`passed_through`); ``tests/test_every_setting_kept.py`` checks this over every field of the class;
- the distillation fields are validated as the trainer will (:meth:`checked_options`), and transformers' own
  checks run (their ``ValueError`` becomes one line).

It parses with ``transformers.HfArgumentParser`` (``--teacher``, ``--alpha``, ``--gradient_accumulation_steps``,
...), as TRL's configs do: a copied field keeps the option's help and choices, and a data path or a mapping is
text there (a path, JSON), checked with the other options. The trainer validates the run's options once more, into
a ``DistillConfig``, when it is built: a teacher or data object given to it takes the place of its name.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal

from transformers import TrainingArguments

from chronos_distill.config import DistillConfig
from chronos_distill.config.options import (
    EPOCH_STRATEGY_FIELDS,
    NOT_HONOURED,
    OWN_OPTIONS,
    TRAINING_ARGUMENT_FIELDS,
    did_you_mean,
    not_honoured,
    option_kind,
)
from chronos_distill.errors import ConfigError, one_line
from chronos_distill.training.arguments import RUN_CHOSEN, SHARED_CHOICES
from chronos_distill.training.run_folder import CHECKPOINTS

_TRAINING_ARGUMENT_NAMES = {f.name for f in dataclasses.fields(TrainingArguments)}
#: option -> its own TrainingArguments field, under the option's name or another (batch_size is
#: per_device_train_batch_size): the first field TRAINING_ARGUMENT_FIELDS names, where transformers has it
TRAINING_ARGUMENT_OF_OPTION = {
    **{option: fields[0] for option, fields in TRAINING_ARGUMENT_FIELDS.items() if fields[0] in _TRAINING_ARGUMENT_NAMES},
    "output": "output_dir",
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
    kind = option_kind(f)
    metadata = {"help": f.metadata["help"],
                **({"choices": f.metadata["choices"]} if f.metadata.get("choices") and kind != "flag_or_word" else {})}
    # text on a command line: a data path (in Python, a DataFrame too), a mapping as JSON (read with the options);
    # a flag that also takes a word (resume: true, false or auto) as HfArgumentParser reads a Literal's choices
    annotation = {"path": "str | None", "dict": "str"}.get(kind, f.type)
    if kind == "flag_or_word":
        annotation = Literal[(False, True, *f.metadata["choices"])]
    if f.name in DistillConfig.TRAINING_DEFAULTS:
        return f.name, annotation, dataclasses.field(default=DistillConfig.TRAINING_DEFAULTS[f.name], metadata=metadata)
    return f.name, annotation, dataclasses.field(default=f.default, default_factory=f.default_factory,
                                                 metadata=metadata)


def _default(name: str, value: Any) -> tuple[str, Any, dataclasses.Field]:
    """A TrainingArguments field with the command's default instead of transformers' (its type and help kept)."""
    base = next(f for f in dataclasses.fields(TrainingArguments) if f.name == name)
    return name, typing.get_type_hints(TrainingArguments)[name], dataclasses.field(default=value, metadata=base.metadata)


def _post_init(self) -> None:
    """Every setting kept or refused here, in one line, before anything is loaded: the fields a run cannot honour,
    and those an option sets, are refused when set at all; a field the run would choose (device, validation) and
    the user set is remembered as set (:attr:`run_chooses` lists the others); ``TrainingArguments``' own checks run
    (a ``ValueError`` of theirs becomes one line); and the distillation options are validated as the trainer will
    (:meth:`checked_options`)."""
    refused = {name: why for name in (*NOT_HONOURED, *EPOCH_STRATEGY_FIELDS, "accelerator_config")
               if getattr(self, name) is not None and (why := not_honoured(name, getattr(self, name)))}
    if refused:
        raise ConfigError("DistillationConfig: " + "; ".join(f"`{name}` cannot be honoured: {why}"
                                                            for name, why in refused.items()))
    moved = [name for name in _SET_BY_AN_OPTION if getattr(self, name) is not None]
    if moved:
        raise ConfigError(f"DistillationConfig: {moved} follow their options "
                          f"({', '.join(f'{n} -> {OWN_OPTIONS[n]}' for n in moved)}); set those instead")
    options = self.checked_options(trainer_args=False)  # the distillation options first: their errors need no torch
    self.run_chooses = tuple(name for name in RUN_CHOSEN if getattr(self, name) is None)
    unset = [name for name in _UNSET_IS_NONE if getattr(self, name) is None]
    if unset:  # transformers' own checks see what the run would choose on this machine where nothing was set
        from chronos_distill.distillation.build import distill_training_arguments

        run = distill_training_arguments(options, Path(self.output_dir or "trainer_output") / CHECKPOINTS,
                                         has_validation=self.validation_data is not None)
        for name in unset:
            setattr(self, name, getattr(run, name) if name in RUN_CHOSEN else _TRANSFORMERS_DEFAULTS[name])
    try:
        TrainingArguments.__post_init__(self)
    except (ValueError, ImportError) as exc:  # e.g. fp16 without a GPU, deepspeed not installed
        raise ConfigError(f"DistillationConfig: {one_line(exc)}") from exc
    for name in unset:  # and None again: "not set" survives dataclasses.replace and HfArgumentParser round trips
        setattr(self, name, None)


def _new(cls, *args: Any, **kwargs: Any):
    """A misspelt keyword is refused in one line naming the nearest field, not with dataclasses' ``TypeError``."""
    unknown = [name for name in kwargs if name not in _INIT_FIELDS]
    if unknown:
        name = unknown[0]
        if name in TRAINING_ARGUMENT_OF_OPTION:  # the command's vocabulary: say the TrainingArguments name
            raise ConfigError(f"DistillationConfig: `{name}` is `{TRAINING_ARGUMENT_OF_OPTION[name]}` here (the "
                              f"TrainingArguments name; `{name}` is DistillConfig's and the command line's)")
        raise ConfigError(f"DistillationConfig: unknown field `{name}`{did_you_mean(name, _INIT_FIELDS)}")
    return object.__new__(cls)


def _reference_arguments(self) -> TrainingArguments:
    """Plain ``TrainingArguments`` with this class's defaults and this run folder: what a field is compared with to
    tell whether it was set."""
    return TrainingArguments(output_dir=self.output_dir, **_TRAINING_DEFAULTS)


def _passed_through(self) -> dict[str, Any]:
    """The ``TrainingArguments`` fields no option carries that the run must be given: every field the run would
    choose and the user set (even to transformers' default), and every other field away from this class's default
    (at its default, the run's ``TrainingArguments`` hold that value anyway). The run's ``trainer_args`` (JSON
    values, as ``to_dict`` writes them; the hub token, the one secret ``to_dict`` hides, is refused)."""
    reference, values = self.reference_arguments(), self.to_dict()
    owned = {*TRAINING_ARGUMENT_OF_OPTION.values(), *_SET_BY_AN_OPTION, *NOT_HONOURED}  # (the last two: refused)
    return {f.name: values[f.name] for f in dataclasses.fields(TrainingArguments)
            if f.init and f.name not in owned and f.name in values
            and (getattr(self, f.name) is not None if f.name in RUN_CHOSEN
                 else getattr(self, f.name) != getattr(reference, f.name))}


def _distill_options(self) -> dict[str, Any]:
    """The run's options, by the names of ``DistillConfig`` (``distill(**options)`` runs the same), for the trainer
    to validate with the objects it is given."""
    options = {f.name: getattr(self, f.name) for f in _DISTILLATION_FIELDS}
    options.update({option: getattr(self, field) for option, field in TRAINING_ARGUMENT_OF_OPTION.items()})
    options["trainer_args"] = self.passed_through()
    return options


def _checked_options(self, trainer_args: bool = True) -> DistillConfig:
    """The distillation options validated as the trainer will validate them, now: a teacher or training data the
    trainer will be given as an object stands in as a name here (its own checks run when it is given).
    ``trainer_args=False``: without the passed-through fields (before ``TrainingArguments`` has checked them)."""
    options = {f.name: getattr(self, f.name) for f in _DISTILLATION_FIELDS}
    options.update({option: getattr(self, field) for option, field in TRAINING_ARGUMENT_OF_OPTION.items()})
    if trainer_args:
        options["trainer_args"] = self.passed_through()
    if options["teacher"] is None:
        options["teacher"] = "reference"
    if options["train_data"] is None and not options["general"]:
        options["train_data"] = "<given to the trainer>"
    return DistillConfig(**options)


#: The defaults that differ from transformers': the command's training defaults and the shared choices.
_TRAINING_DEFAULTS = {**{TRAINING_ARGUMENT_OF_OPTION[o]: v for o, v in DistillConfig.TRAINING_DEFAULTS.items()
                         if o in TRAINING_ARGUMENT_OF_OPTION}, **SHARED_CHOICES}

#: The fields whose None means "not set": the run's choices, those it cannot honour, those an option sets.
_UNSET_IS_NONE = (*RUN_CHOSEN, *NOT_HONOURED, *_SET_BY_AN_OPTION)
_TRANSFORMERS_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainingArguments) if f.name in _UNSET_IS_NONE}


def _unset_is_none(name: str) -> tuple[str, Any, dataclasses.Field]:
    """A TrainingArguments field that defaults to None, "not set" (its type widened to allow it, its help kept)."""
    base = next(f for f in dataclasses.fields(TrainingArguments) if f.name == name)
    annotation = typing.get_type_hints(TrainingArguments)[name]
    return name, annotation | None, dataclasses.field(default=None, metadata=base.metadata)


DistillationConfig = dataclasses.make_dataclass(
    "DistillationConfig",
    [_copy(f) for f in _DISTILLATION_FIELDS]
    + [_default(name, value) for name, value in _TRAINING_DEFAULTS.items()]
    + [_unset_is_none(name) for name in _UNSET_IS_NONE],
    bases=(TrainingArguments,),
    namespace={"__post_init__": _post_init, "reference_arguments": _reference_arguments,
               "passed_through": _passed_through, "distill_options": _distill_options,
               "checked_options": _checked_options, "__new__": _new, "__module__": __name__},
)
_INIT_FIELDS = frozenset(f.name for f in dataclasses.fields(DistillationConfig) if f.init)
DistillationConfig.__doc__ = """``TrainingArguments`` with the distillation options, for
:class:`~chronos_distill.distillation.trainer.DistillationTrainer` (as TRL's ``GKDConfig`` is for ``GKDTrainer``).

``DistillationConfig(output_dir="runs/mine", teacher="amazon/chronos-2", prediction_length=24, max_steps=2000,
alpha=0.7, gradient_accumulation_steps=2)``: ``output_dir`` is the run folder; each distillation field is the
``distill`` option of that name (see ``docs/cli.md``); every ``TrainingArguments`` field works as in
``transformers``, with chronos-distill's defaults where they differ (module docstring)."""


def render_stub() -> str:
    """The text of ``distillation_config.pyi``: the class's fields as IDEs and type checkers read them (a class made
    by :func:`dataclasses.make_dataclass` shows them none), written from the same field list by
    ``python scripts/render_sources.py``; a test keeps the file equal to this rendering. Only the distillation fields
    are declared: the ``TrainingArguments`` fields are transformers' own declarations."""
    own = {f.name: f for f in dataclasses.fields(DistillConfig)}
    lines = ['"""Type stub of ``distillation_config``, written by ``python scripts/render_sources.py`` from the class\'s',
             'field list (do not edit): the distillation fields, which IDEs and type checkers cannot read from',
             '``dataclasses.make_dataclass``."""', "", "import dataclasses", "from typing import Any", "",
             "from transformers import TrainingArguments", "", "from chronos_distill.config import DistillConfig", "",
             "TRAINING_ARGUMENT_OF_OPTION: dict[str, str]", "", "", "@dataclasses.dataclass",
             "class DistillationConfig(TrainingArguments):"]
    for f in _DISTILLATION_FIELDS:
        kind = option_kind(own[f.name])
        annotation = {"path": "Any", "dict": "dict[str, Any] | str"}.get(kind, str(own[f.name].type))
        if kind.startswith("list["):
            annotation += " | str"
        lines.append(f"    {f.name}: {annotation} = ...")
    lines += ["    run_chooses: tuple[str, ...] = dataclasses.field(init=False)", "",
              "    def reference_arguments(self) -> TrainingArguments: ...",
              "    def passed_through(self) -> dict[str, Any]: ...",
              "    def distill_options(self) -> dict[str, Any]: ...",
              "    def checked_options(self, trainer_args: bool = True) -> DistillConfig: ...", ""]
    return "\n".join(lines)
