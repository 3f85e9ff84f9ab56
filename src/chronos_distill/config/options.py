"""The option machinery shared by every command's configuration: one dataclass field per option, its type written
once as the annotation (:func:`option_kind`) and its help and allowed values in :func:`_opt`, one validator that
reads them (:func:`check_options`), YAML reading and the option syntax that needs no model (layer maps, the
``TrainingArguments`` passthrough). No torch is imported.

The field names of ``transformers.TrainingArguments`` (:func:`training_arguments_fields`) come from a list written
from the class (``config/training_arguments_fields.py``, by ``scripts/render_sources.py``; a test keeps it equal to the
installed class), because importing the class loads torch (2.5 s here) and a misspelt ``--trainer-args`` key must be
refused in a fraction of a second, with the other option errors. With another transformers than the list's, the
keys are checked when ``TrainingArguments`` is built instead (one line too, after torch has loaded).

Why not ``transformers.HfArgumentParser`` (or TRL's ``TrlParser``, built on it), which also turns dataclass fields
into flags and reads YAML: we weighed it (issue 33) and kept this layer, because taking it would change what users
type and see, not only the code. HfArgumentParser reads lists as space-separated ``nargs="+"`` values where our
flags, YAML and Python all take the comma-separated ``--target a,b`` the README documents; it checks types but not
bounds, choices across options or paths, so :func:`check_options` (the one-line errors naming the flag) would stay
whole; and importing it loads ``transformers`` (0.6 s here) before ``--help`` or a refused option could answer.
What it would replace is the flag generator in ``cli.py`` (about 60 lines); the validation, YAML key check and
layer-map syntax here are what the library does not do. Where it fits, it works: the trainer's
``DistillationConfig`` (a ``TrainingArguments`` subclass whose distillation fields are copied from
``DistillConfig``) parses with ``HfArgumentParser``, as TRL's scripts parse theirs.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml

from chronos_distill.errors import ConfigError

# The choices of the loss options. They live here, not in the torch modules that implement them, so that
# reading and checking options (and ``--help``) imports no torch.
FEATURE_LOSSES = ("mse", "cosine")
FEATURE_PROJECTIONS = ("linear", "linear_norm")
ATTENTION_LOSSES = ("kl", "relation")
ATTENTION_KINDS = ("time", "group")
ATTENTION_KIND_OPTIONS = (*ATTENTION_KINDS, "both")
HORIZON_WEIGHTINGS = ("none", "exp")

OUTPUT_LOSSES = ("quantile", "median_mse")
STUDENT_INITS = ("random", "pruned")



LAYER_MAP_NAMES = ("uniform", "last")
_PAIRS = re.compile(r"^\s*\d+\s*:\s*\d+\s*(,\s*\d+\s*:\s*\d+\s*)*$")


def check_layer_map_syntax(layer_map: str) -> None:
    """Refuse a ``layer_map`` that is neither a known name nor a list of ``i:j`` pairs (no depths needed)."""
    if not isinstance(layer_map, str) or not (layer_map in LAYER_MAP_NAMES or _PAIRS.match(layer_map)):
        raise ConfigError(
            f"option `layer_map` (--layer-map) must be 'uniform', 'last' or pairs like '0:2,1:5' "
            f"(student block:teacher block), got {layer_map!r}"
        )


#: The one mapping of the training options (distill and pretrain share them) to ``transformers.TrainingArguments``:
#: each option and the fields it sets. The first is the option's own field (a ``DistillationConfig`` field where
#: transformers has it), the others follow it (``warmup_steps`` is ``ceil(warmup_ratio x max_steps)``, the eval
#: steps are the save steps). ``training.arguments.training_argument_values`` sets them from the options; set
#: through ``trainer_args`` or on a ``DistillationConfig`` under a name that is not the option's own, they are
#: refused naming the option (the start line, the card and the record show the values used).
TRAINING_ARGUMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "max_steps": ("max_steps",),
    "batch_size": ("per_device_train_batch_size", "per_device_eval_batch_size"),
    "learning_rate": ("learning_rate",),
    "warmup_ratio": ("warmup_ratio", "warmup_steps"),
    "weight_decay": ("weight_decay",),
    "save_steps": ("save_steps", "eval_steps"),
    "logging_steps": ("logging_steps",),
    "seed": ("seed",),
    "num_workers": ("dataloader_num_workers",),
}
#: Fields the run owns: where checkpoints go is part of the output-folder layout.
_NOT_PASSED_THROUGH = ("output_dir",)
#: ``TrainingArguments`` field -> the option that sets it (from :data:`TRAINING_ARGUMENT_FIELDS`).
OWN_OPTIONS = {field: option for option, fields in TRAINING_ARGUMENT_FIELDS.items() for field in fields}


def training_arguments_fields() -> frozenset[str] | None:
    """The field names of ``transformers.TrainingArguments`` as listed in
    :mod:`~chronos_distill.config.training_arguments_fields` (written from the class by ``scripts/render_sources.py``),
    when the installed transformers is the version they were listed from; else None (the fields are then checked
    when ``TrainingArguments`` is built). Importing the class would import torch, and an option check should cost
    a fraction of a second."""
    from importlib.metadata import version

    from chronos_distill.config.training_arguments_fields import FIELDS, TRANSFORMERS_VERSION

    return FIELDS if version("transformers") == TRANSFORMERS_VERSION else None


#: ``TrainingArguments`` fields a chronos-distill run cannot honour, with what to do instead: refused wherever they
#: are set (``trainer_args``, a ``DistillationConfig``), never accepted and ignored.
NOT_HONOURED = {
    "num_train_epochs": "training windows are drawn without end (an endless sampler), so an epoch is not defined; "
                        "set max_steps",
    "push_to_hub": "the Trainer would upload its checkpoint folder (the training module, projections and all); "
                   "publish the student folder with `huggingface-cli upload ORG/NAME OUTPUT/model`",
    **{name: "the run publishes nothing to the Hub itself; upload OUTPUT/model with `huggingface-cli upload`"
       for name in ("hub_model_id", "hub_strategy", "hub_token", "hub_private_repo", "hub_always_push",
                    "hub_revision")},
    "parallelism_config": "a run is parallel through torchrun / accelerate launch (DDP); no other layout is "
                          "supported",
}
#: Strategies that count epochs, which an endless sampler does not have: a run set to one would never log or save.
EPOCH_STRATEGY_FIELDS = ("logging_strategy", "save_strategy", "eval_strategy")


def not_honoured(name: str, value: Any) -> str | None:
    """Why a run cannot honour ``TrainingArguments`` field ``name`` set to ``value`` (None when it can)."""
    if name in NOT_HONOURED:
        return NOT_HONOURED[name]
    if name in EPOCH_STRATEGY_FIELDS and str(getattr(value, "value", value)) == "epoch":
        return "training windows are drawn without end, so there is no epoch to count; use 'steps'"
    if name == "accelerator_config" and _non_blocking(value):
        return ("non_blocking would do nothing: the Trainer moves chronos' batches itself (Chronos2Trainer's "
                "DataLoader is not accelerate's), with a blocking copy")
    return None


def _non_blocking(accelerator_config: Any) -> bool:
    """Whether an ``accelerator_config`` (a mapping, its JSON text or accelerate's object) asks for non-blocking
    copies."""
    if isinstance(accelerator_config, str):
        import json

        try:
            accelerator_config = json.loads(accelerator_config)
        except json.JSONDecodeError:
            return False  # a path to a JSON file: transformers reads it
    if isinstance(accelerator_config, Mapping):
        return bool(accelerator_config.get("non_blocking"))
    return bool(getattr(accelerator_config, "non_blocking", False))


def did_you_mean(name: str, known: Any) -> str:
    """`` (did you mean `max_steps`?)`` for the known name closest to a misspelt one, else ``""``."""
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def check_trainer_args(trainer_args: Mapping[str, Any]) -> None:
    """Refuse keys that are not ``TrainingArguments`` fields, that the run owns, that it cannot honour, or that
    have an option."""
    fields = training_arguments_fields()
    unknown = sorted(set(trainer_args) - fields) if fields is not None else []
    if unknown:
        hints = "".join(did_you_mean(name, fields) for name in unknown)
        raise ConfigError(f"option `trainer_args`: {unknown} are not transformers.TrainingArguments fields{hints}")
    refused = {name: why for name, value in trainer_args.items() if (why := not_honoured(name, value))}
    if refused:
        raise ConfigError(f"option `trainer_args`: {sorted(refused)} cannot be honoured: "
                          + "; ".join(f"{name}: {why}" for name, why in refused.items()))
    owned = sorted(set(trainer_args) & set(_NOT_PASSED_THROUGH))
    if owned:
        raise ConfigError(f"option `trainer_args`: {owned} is set by chronos-distill (the output folder's layout)")
    flagged = sorted(set(trainer_args) & set(OWN_OPTIONS))
    if flagged:
        flags = ", ".join(f"{name} -> --{OWN_OPTIONS[name].replace('_', '-')}" for name in flagged)
        raise ConfigError(f"option `trainer_args`: {flagged} have their own options ({flags}); set them there, so "
                          "that the start line, the model card and the run record show the values used")


#: The annotation of an option that names data: a file path (or folder, or glob) on the command line and in YAML,
#: in Python also the in-memory data the API accepts (its kind is ``path``).
DataPath = Any

#: an option's annotation (without ``| None``) -> its kind, what the validator and the command line read
#: ``bool | str``: a flag that also takes one of its ``choices`` as a word (``--resume`` / ``--resume auto``)
_KIND_OF_ANNOTATION = {"bool": "flag", "bool | str": "flag_or_word", "int": "int", "float": "float", "str": "str",
                       "DataPath": "path", "dict": "dict", "list[str]": "list[str]", "list[float]": "list[float]", "list[int]": "list[int]"}


def option_kind(f: dataclasses.Field) -> str:
    """An option's kind (``int``, ``float``, ``str``, ``path``, ``flag``, ``dict``, ``list[str]``, ...), read from
    its annotation: the type is written once, on the field."""
    annotation = str(f.type).replace(" | None", "").replace("None | ", "")
    if annotation not in _KIND_OF_ANNOTATION:
        raise TypeError(f"option {f.name}: annotation {f.type!r} is none of {sorted(_KIND_OF_ANNOTATION)}")
    return _KIND_OF_ANNOTATION[annotation]


def _opt(default: Any, help: str, *, cli: bool = True, required: bool = False, low: float | None = None,
         high: float | None = None, open_low: bool = False, open_high: bool = False, choices: tuple | None = None,
         nonempty: bool = False, pattern: tuple[str, str] | None = None) -> Any:
    """A dataclass field carrying everything about the option besides its type (the field's annotation, see
    :func:`option_kind`): its CLI help text, whether it is required, and its allowed values: ``low``/``high``
    bounds (``open_low``/``open_high`` make them strict), for a list its elements'; ``choices``; ``nonempty`` for
    a list that must name something; ``pattern`` (a regular expression the text must match, and how to say what
    it looks like). :func:`check_options` reads them, so each check is written once, here."""
    factory = None
    if isinstance(default, (list, dict)):
        factory, default = (lambda d=default: type(d)(d)), dataclasses.MISSING
    return field(
        default=default,
        default_factory=factory if factory else dataclasses.MISSING,
        metadata={"help": help, "cli": cli, "required": required, "low": low, "high": high,
                  "open_low": open_low, "open_high": open_high, "choices": choices, "nonempty": nonempty,
                  "pattern": pattern},
    )


#: What a ``path`` option may hold besides a file path: the in-memory data the Python API accepts.
_IN_MEMORY_DATA = "a pandas DataFrame or Chronos2Pipeline.fit-style inputs"


def check_options(options: Any) -> None:
    """Check every field of an option dataclass against its metadata: required, type, range, choices.

    Comma-separated text is split into lists for ``list[...]`` fields first (as YAML and Python users may
    write it); a single value of the element's type becomes a one-element list. A value of the wrong type (a
    YAML ``target: 5``) is refused with the option's name. An optional field left at None is not checked further.
    """
    for f in dataclasses.fields(options):
        meta, value = f.metadata, getattr(options, f.name)
        kind = option_kind(f)
        if value is None:
            if meta.get("required"):
                raise ConfigError(f"option {_flag(f.name)} is required")
            continue
        if kind.startswith("list["):
            value = _as_list(f.name, value, kind)
            setattr(options, f.name, value)
            if meta.get("nonempty") and not value:
                raise ConfigError(f"option {_flag(f.name)} names nothing")
            for item in value:
                _check_scalar(f.name, item, kind[5:-1], meta, element=True)
        elif kind == "dict":
            if isinstance(value, str):  # JSON text from the command line
                import json

                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"option {_flag(f.name)} is not valid JSON: {exc}") from exc
                setattr(options, f.name, value)
            if not isinstance(value, dict):
                raise ConfigError(f"option {_flag(f.name)} must be a mapping of names to values, got {value!r}")
        elif kind == "path":
            if isinstance(value, (int, float, bool)):
                raise ConfigError(f"option {_flag(f.name)} must be a file path or {_IN_MEMORY_DATA}, got {value!r}")
        else:
            _check_scalar(f.name, value, kind, meta)


def _as_list(name: str, value: Any, kind: str) -> list:
    """``value`` as a list of ``kind``'s elements: text is split on commas, numbers are converted."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and kind != "list[str]":
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"option {_flag(name)} must be a list (or comma-separated text), got {value!r}")
    if kind in ("list[float]", "list[int]"):
        whole = kind == "list[int]"
        try:
            numbers = [float(item) for item in value if not isinstance(item, bool)]
            if len(numbers) != len(value) or (whole and any(not n.is_integer() for n in numbers)):
                raise ValueError
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"option {_flag(name)} must be {'whole ' if whole else ''}numbers, got {value!r}") from exc
        return [int(n) for n in numbers] if whole else numbers
    return list(value)


def _check_scalar(name: str, value: Any, kind: str, meta: Any, element: bool = False) -> None:
    what = f"option {_flag(name)}" + (" element" if element else "")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{what} must be an integer, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{what} must be a number, got {value!r}")
    elif kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{what} must be text, got {value!r}")
    elif kind == "flag":
        if not isinstance(value, bool):
            raise ConfigError(f"{what} must be true or false, got {value!r}")
    elif kind == "flag_or_word":
        if not isinstance(value, bool) and value not in meta["choices"]:
            words = " or ".join(repr(c) for c in meta["choices"])
            raise ConfigError(f"{what} must be true, false or {words}, got {value!r}")
        return  # a flag's True is not one of its words
    if kind in ("int", "float"):
        low = meta["low"] if meta["low"] is not None else -math.inf
        high = meta["high"] if meta["high"] is not None else math.inf
        below = value < low or (meta["open_low"] and value == low)
        above = value > high or (meta.get("open_high") and value == high)
        if kind == "int" and (below or above):
            raise ConfigError(f"{what} must be at least {low:g}, got {value}" if below
                              else f"{what} must be at most {high:g}, got {value}")
        if below or above:
            bracket = "(" if meta["open_low"] else "["
            upper = "inf)" if high == math.inf else f"{high:g}{')' if meta.get('open_high') else ']'}"
            raise ConfigError(f"{what} must be within {bracket}{low:g}, {upper}, got {value}")
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ConfigError(f"{what} must be one of {list(meta['choices'])}, got {value!r}")
    if meta.get("pattern") is not None and not re.fullmatch(meta["pattern"][0], value):
        raise ConfigError(f"{what} must be {meta['pattern'][1]}, got {value!r}")


class YamlOptions:
    """``from_yaml`` and ``to_dict`` for the option dataclasses below, and what every config knows of its making:
    a misspelt keyword is refused in one line that names the nearest option (not dataclasses' ``TypeError``), and
    :attr:`given` holds the options the caller set (by keyword or position), whatever their value."""

    def __new__(cls, *args: Any, **kwargs: Any):
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        unknown = [name for name in kwargs if name not in names]
        if unknown:
            name = unknown[0]
            if name in OWN_OPTIONS and OWN_OPTIONS[name] in names:  # TrainingArguments' vocabulary
                raise ConfigError(f"{cls.__name__}: `{name}` is `{OWN_OPTIONS[name]}` here (a DistillationConfig "
                                  "takes the TrainingArguments names)")
            if name == "output_dir" and "output" in names:
                raise ConfigError(f"{cls.__name__}: `output_dir` is `output` here (a DistillationConfig takes the "
                                  "TrainingArguments names)")
            raise ConfigError(f"{cls.__name__}: unknown option `{name}`{did_you_mean(name, names)}; the "
                              "options are listed in docs/cli.md (dashes there are underscores here)")
        instance = super().__new__(cls)
        instance.given = frozenset([*names[:len(args)], *kwargs])
        return instance

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any):
        """Read options from a YAML file; keyword arguments (e.g. CLI flags) override the file."""
        values = read_yaml_options(path, cls)
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view: in-memory data sets are described, not dumped."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if option_kind(f) == "path" and value is not None and not isinstance(value, (str, Path)):
                value = f"<in-memory {type(value).__name__}>"
            elif isinstance(value, Path):
                value = str(value)
            out[f.name] = value
        return out


def _flag(name: str) -> str:
    return f"`{name}` (--{name.replace('_', '-')})"


def read_yaml_options(path: str | Path, config_class: type) -> dict[str, Any]:
    """Read a YAML mapping of options and refuse keys that ``config_class`` does not have."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        hints = "".join(did_you_mean(name, known) for name in unknown)
        raise ConfigError(f"config file {path} has unknown option(s) {unknown}{hints}; known options: {sorted(known)}")
    return values


# -- option groups that several commands share, composed into their configs (defined once, here) ----------------
@dataclasses.dataclass
class SeriesColumns:
    """Where a long table keeps its series ids and timestamps (``Chronos2Pipeline.predict_df`` conventions)."""

    id_column: str | None = _opt(None, "Series id column (default: item_id, or id when there is no item_id).")
    timestamp_column: str = _opt("timestamp", "Timestamp column.")
    timestamp_format: str | None = _opt(
        None, "strftime format of the timestamps (e.g. '%d/%m/%Y %H:%M' for day-first dates); default: let pandas "
        "infer it. Time-zone-aware timestamps are converted to UTC.")


@dataclasses.dataclass
class InferenceDevice:
    """Where a command that forecasts with a model runs it."""

    device: str | None = _opt(
        None, "Where the model runs: cpu, cuda or cuda:N (default: cuda when a GPU is visible, else cpu). An ONNX "
        "file runs on onnxruntime's CPU provider.", pattern=(r"cpu|cuda(:\d+)?", "cpu, cuda or cuda:N"))


@dataclasses.dataclass
class ModelledColumns:
    """Which columns of a long table are forecast and which are left out (which covariates are known into the
    future is each command's own option: distill names them, predict reads them from its future table)."""

    target: list[str] = _opt(["target"], "Target column(s), comma-separated for several targets.", nonempty=True)
    ignore_columns: list[str] = _opt([], "Columns to leave out of the covariates (comma-separated), e.g. a saved "
                                     "index such as 'Unnamed: 0'.")


def render_training_arguments_fields(fields: list[str], transformers_version: str) -> str:
    """The text of ``config/training_arguments_fields.py`` for the given field names (``scripts/render_sources.py``
    passes the installed ``TrainingArguments``' own; a test checks the file equals this rendering)."""
    import textwrap

    listed = textwrap.fill(", ".join(repr(name) for name in sorted(fields)), width=116, initial_indent="    ",
                           subsequent_indent="    ")
    return (f'"""The field names of ``transformers.TrainingArguments`` {transformers_version}, written from the class by '
            "``scripts/render_sources.py`` (do not edit):\nthe option check reads them without importing transformers "
            '(which imports torch)."""\n\n'
            f"TRANSFORMERS_VERSION = {transformers_version!r}\n\nFIELDS = frozenset({{\n{listed},\n}})\n")
