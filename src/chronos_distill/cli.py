"""Command line: ``chronos-distill`` (same as ``python -m chronos_distill``).

``chronos-distill``              run the embedded demo (no arguments, no network)
``chronos-distill distill ...``  distill a teacher into a student; flags are generated from DistillConfig
``chronos-distill export-onnx MODEL --output FILE.onnx``  the model as an ONNX graph (fp32 or int8)
``chronos-distill predict --model M --data F --prediction-length H --output OUT``  forecasts into a file

User errors are printed as one line, without a traceback, and exit with status 2. ``--debug`` (before the
command) or ``CHRONOS_DISTILL_DEBUG=1`` prints, before that line, every traceback of the error's chain, also
the one a message hides (``raise ... from None``), so a bug that reached a user-error message can be reported.
Any other exception is a bug and keeps Python's own traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from chronos_distill.config import DistillConfig, EvaluateConfig, OnnxExportConfig, PredictConfig, PretrainConfig
from chronos_distill.config.options import option_kind
from chronos_distill.errors import DistillError, StoppedBySignal

EXIT_USAGE = 2


def _list_of(kind):
    def parse(text: str) -> list:
        try:
            return [kind(item.strip()) for item in text.split(",") if item.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}") from exc

    return parse


_ARG_TYPES = {"int": int, "float": float, "str": str, "path": str, "list[str]": _list_of(str),
              "list[float]": _list_of(float), "list[int]": _list_of(int), "dict": str}  # dict: JSON text, parsed by check_options


#: The ``--help`` section of the options each shared group defines (the others are the command's own).
_SECTIONS = {"TrainingOptions": "training (transformers.TrainingArguments)", "SeriesColumns": "table layout",
             "ModelledColumns": "table layout", "InferenceDevice": "device"}
#: Options that are required for most runs without the required mark (they name what --general replaces).
_REQUIRED_FOR_MOST = ("train_data", "prediction_length")


def _own_section(config_class: type) -> str:
    """The ``--help`` section of a command's own options (``distill options``)."""
    return f"{config_class.__name__.removesuffix('Config').lower()} options"


def _section(config_class: type, f: dataclasses.Field) -> str:
    """Where ``--help`` lists an option: required ones first, then the command's own, then each shared group."""
    if f.metadata.get("required") or f.name in _REQUIRED_FOR_MOST:
        return "required"
    definer = next(base for base in reversed(config_class.__mro__) if f.name in getattr(base, "__dataclass_fields__", {}))
    return _SECTIONS.get(definer.__name__, _own_section(config_class))


def add_config_options(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One ``--flag-name`` per dataclass field, typed and documented from the field's metadata, in ``--help``
    sections: the required options first, then the command's own, then the shared groups (training, table
    layout, device)."""
    fields = [f for f in dataclasses.fields(config_class) if f.metadata.get("cli", True)]
    sections: dict[str, list[dataclasses.Field]] = {"required": [], _own_section(config_class): [],
                                                    **{title: [] for title in dict.fromkeys(_SECTIONS.values())}}
    for f in fields:
        sections.setdefault(_section(config_class, f), []).append(f)
    for title, members in sections.items():
        if members:
            _add_options(parser.add_argument_group(title), config_class, members)


def _usage(config_class: type, positional: str = "") -> str:
    """``%(prog)s --teacher TEACHER --output OUTPUT [options]``: the required options, not all of them."""
    required = [f"--{f.name.replace('_', '-')} {f.name.upper()}" for f in dataclasses.fields(config_class)
                if f.metadata.get("required") and f.metadata.get("cli", True)]
    return " ".join(["%(prog)s", *([positional] if positional else []), *required, "[options]"])


def _add_options(parser: Any, config_class: type, fields: list[dataclasses.Field]) -> None:
    for f in fields:
        meta = f.metadata
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        default = getattr(config_class, "TRAINING_DEFAULTS", {}).get(f.name, default)  # a command's own default
        help_text = ("(required) " if meta.get("required") else "") + meta["help"].replace("%", "%%")  # argparse
        kind = option_kind(f)
        if kind == "flag":
            parser.add_argument(flag, dest=f.name, action="store_true", default=argparse.SUPPRESS, help=help_text)
            continue
        if kind == "flag_or_word":  # `--resume` alone is True, `--resume auto` the word
            parser.add_argument(flag, dest=f.name, nargs="?", const=True, choices=meta["choices"],
                                default=argparse.SUPPRESS, metavar="|".join(meta["choices"]), help=help_text)
            continue
        if default not in (None, [], {}):
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            help_text += f" [default: {shown}]"
        parser.add_argument(flag, dest=f.name, type=_ARG_TYPES[kind], default=argparse.SUPPRESS,
                            metavar=f.name.upper(), help=help_text)


def _config_command(commands, name: str, config_class: type, *, help: str, description: str,
                    positional: str = "") -> argparse.ArgumentParser:
    """A subcommand whose flags are ``config_class``'s fields, plus ``--config FILE.yaml``."""
    parser = commands.add_parser(
        name, help=help, usage=_usage(config_class, positional),
        description=description + " Options can also come from a YAML file (--config) whose keys are the flag "
        "names with underscores; flags override the file.",
    )
    parser.add_argument("--config", metavar="FILE.yaml", help=f"YAML file of options (keys as in {config_class.__name__})")
    add_config_options(parser, config_class)
    return parser


def _config_from(options: dict[str, Any], config_class: type):
    """The command's config object from parsed flags, read over the ``--config`` YAML file when given."""
    options = {k: v for k, v in options.items() if k not in ("command", "debug")}
    config_file = options.pop("config", None)
    return config_class.from_yaml(config_file, **options) if config_file else config_class(**options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chronos-distill",
        description="Distill a Chronos-2 teacher into a smaller Chronos-2 student. "
        "Without a command, runs the embedded demo.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="on an error, print its full traceback chain before the one-line message (also: "
                        "CHRONOS_DISTILL_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    _config_command(
        commands, "distill", DistillConfig,
        help="distill a teacher into a student",
        description="Distill a Chronos-2 teacher into a smaller Chronos-2 student.",
    )
    _config_command(
        commands, "pretrain", PretrainConfig,
        help="train a Chronos-2 model from scratch on synthetic series and M1/M3 training portions",
        description="Pretrain a randomly initialised Chronos-2 model (the recipe of the reference teacher).",
    )
    _config_command(
        commands, "evaluate", EvaluateConfig,
        help="score Chronos-2 checkpoints on M3 (or your file) against seasonal naive",
        description="Score Chronos-2 checkpoints (teacher or student) on M3 yearly/quarterly/monthly with the "
        "official horizons, or on your own long-format file with the last H steps held out: WQL over levels "
        "0.1..0.9, MASE of the median, seasonal naive, geometric-mean relative scores, and plots.",
    )
    export_onnx = _config_command(
        commands, "export-onnx", OnnxExportConfig, positional="MODEL",
        help="export a Chronos-2 checkpoint (teacher or student) to ONNX, optionally with int8 weights",
        description="Export a Chronos-2 checkpoint to an ONNX file that onnxruntime runs (chronos_distill.deploy.onnx_forecaster."
        "OnnxForecaster or `chronos-distill predict` read it). Dynamic: batch rows, context length up to the "
        "model's, number of output patches.",
    )
    export_onnx.add_argument("model", metavar="MODEL", help="Chronos-2 folder, run folder, hub id or 'reference'")
    _config_command(
        commands, "predict", PredictConfig,
        help="forecast a long-format file with a Chronos-2 folder or an exported .onnx file",
        description="Forecast every series of --data for --prediction-length steps and write the forecasts "
        "(mean and quantiles, as Chronos2Pipeline.predict_df returns them) to --output.",
    )

    demo_help = "distill the bundled reference teacher on M1/M3 and score it on M3 monthly (the default)"
    demo = commands.add_parser("demo", help=demo_help, description=demo_help[0].upper() + demo_help[1:] + ".")
    demo.add_argument("--output", default="runs/demo", help="output folder [default: runs/demo]")
    demo.add_argument("--steps", type=int, default=300, help="distillation steps [default: 300]")
    return parser


class _Formatter(logging.Formatter):
    """``12:00:01 message`` for progress, ``12:00:01 warning: message`` for the rest."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"{self.formatTime(record, '%H:%M:%S')} {level}{record.getMessage()}"


def options_reference() -> str:
    """``docs/cli.md``: every command's options as ``--help`` states them, rendered from the same parser (so from
    the option definitions themselves); ``tests/test_first_hour.py`` keeps the file equal to it."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # argparse has no public accessor
    lines = ["# Command-line reference", "",
             "Generated from the option definitions by `python scripts/render_docs.py`; do not edit by hand. Every",
             "option is also a YAML key (`--student-d-model` is `student_d_model`) and a keyword of the Python API.",
             ""]
    for name, sub in commands.choices.items():
        lines += [f"## `chronos-distill {name}`", "", sub.description or "", "",
                  "| option | meaning |", "|---|---|"]
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = ", ".join(action.option_strings) or action.metavar or action.dest
            if action.option_strings and action.nargs != 0:
                flag += f" {action.metavar or action.dest.upper()}"
            text = (action.help or "").replace("%%", "%").replace("|", "\\|")
            lines.append(f"| `{flag}` | {text} |")
        lines.append("")
    return "\n".join(lines)


def configure_logging() -> None:
    """chronos-distill's progress lines at INFO on stderr; other libraries' only from WARNING, once each."""
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter())
    ours = logging.getLogger("chronos_distill")
    ours.handlers[:] = [handler]
    ours.setLevel(logging.INFO)
    ours.propagate = False  # one line per message, whatever the root logger does


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging()
    try:
        if args.command == "distill":
            return _distill(vars(args))
        if args.command == "pretrain":
            return _pretrain(vars(args))
        if args.command == "evaluate":
            return _evaluate(vars(args))
        if args.command == "export-onnx":
            return _export_onnx(vars(args))
        if args.command == "predict":
            return _predict(vars(args))
        return _demo(getattr(args, "output", "runs/demo"), getattr(args, "steps", 300))
    except StoppedBySignal as exc:  # preempted: a checkpoint at that step, not an error of the input
        print(f"chronos-distill: {exc}", file=sys.stderr)
        return exc.exit_code
    except DistillError as exc:
        if args.debug or os.environ.get("CHRONOS_DISTILL_DEBUG", "").strip().lower() in ("1", "true", "yes", "on"):
            print(debug_report(exc), file=sys.stderr, end="")
        print(f"chronos-distill: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("chronos-distill: interrupted; run the same command with --resume to continue", file=sys.stderr)
        return 130


def debug_report(exc: BaseException) -> str:
    """Every traceback of ``exc``'s chain, outermost last, including a cause or context that ``from None`` hid."""
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    parts = ["".join(traceback.format_exception(type(e), e, e.__traceback__, chain=False)) for e in reversed(chain)]
    return "\nThe above exception led to the next:\n\n".join(parts)


def _distill(options: dict[str, Any]) -> int:
    from chronos_distill.config import DISTILL_FIXED_ON_RESUME
    from chronos_distill.distillation.preflight import check_distill_inputs

    cfg = _config_from(options, DistillConfig)
    checked = check_distill_inputs(cfg, DISTILL_FIXED_ON_RESUME)  # names, paths, columns: before torch is imported

    from chronos_distill.distillation.run import distill
    from chronos_distill.training.run_folder import is_main_process

    result = distill(cfg, checked)  # checked once: the run reuses what was resolved
    if not is_main_process():  # under torchrun / accelerate every rank returns; the main process speaks for the run
        return 0
    training = result.record["training"]
    print(f"student exported to {result.model_dir} (publishable model folder; training state in {result.output})")
    exported = training["exported"]
    steps = (f"{training['session_steps']} steps (to step {training['steps']})" if training["session_steps"] !=
             training["steps"] else f"{training['steps']} steps")
    print(f"{steps} in {training['train_runtime_s']:.1f} s; losses of the exported weights "
          f"({exported['description']}): " + ", ".join(f"{k} {v:.4g}" for k, v in exported["losses"].items())
          + (f"; first distill loss {training['first_distill_loss']:.4g}" if training["first_distill_loss"] else ""))
    return 0


def _pretrain(options: dict[str, Any]) -> int:
    from chronos_distill.pretraining.run import pretrain

    print(f"model saved to {pretrain(_config_from(options, PretrainConfig))}")
    return 0


def _evaluate(options: dict[str, Any]) -> int:
    from chronos_distill.deploy.inputs import check_evaluate_inputs

    cfg = _config_from(options, EvaluateConfig)  # before torch: an option error costs no import
    check_evaluate_inputs(cfg)  # and neither does a missing model, file or column
    from chronos_distill.evaluation.report import markdown_table
    from chronos_distill.evaluation.scoring import evaluate

    results = evaluate(cfg)
    if cfg.fev is not None:
        print((Path(cfg.output) / "fev_leaderboard.md").read_text())
        print(f"fev summaries and leaderboard written to {cfg.output}/ (fev_summaries.csv / .parquet, "
              "fev_leaderboard.csv / .md)")
        return 0
    print(markdown_table(results))
    print(f"report written to {cfg.output}/ (scores.md, scores.json, plot_*.png)")
    return 0


def _export_onnx(options: dict[str, Any]) -> int:
    cfg = _config_from(options, OnnxExportConfig)
    from chronos_distill.deploy.onnx_export import export_onnx

    path = export_onnx(cfg.model, cfg.output, quantize=cfg.quantize, opset=cfg.opset)
    print(f"ONNX model written to {path} ({path.stat().st_size / 2**20:.1f} MiB, "
          f"{'int8' if cfg.quantize == 'int8' else 'fp32'} weights, opset {cfg.opset})")
    return 0


def _predict(options: dict[str, Any]) -> int:
    from chronos_distill.deploy.inputs import check_predict_inputs

    cfg = _config_from(options, PredictConfig)
    check_predict_inputs(cfg)  # a missing model, file or column before torch is imported
    from chronos_distill.deploy.predict import predict

    predict(cfg)  # it logs where the forecasts went
    return 0


def _demo(output: str, steps: int) -> int:
    from chronos_distill.demo import run_demo

    report = run_demo(output=output, steps=steps)
    before, after, scores = report["before"], report["after"], report["m3_monthly"]
    print()
    print(f"reference teacher {report['teacher_parameters']:,} parameters -> student "
          f"{report['student_parameters']:,} parameters, exported to {report['output']}")
    print(f"distill loss: first step {report['first_distill_loss']:.4f}, last {report['last_distill_loss']:.4f}")
    print("M3 monthly test portions (1428 series, 18 steps; unseen in training):")
    print(f"  student-teacher distance  before {before['agreement']:.4f}  after {after['agreement']:.4f}")
    print(f"  WQL  seasonal naive {scores['seasonal_naive']['WQL']:.4f}  teacher {scores['teacher']['WQL']:.4f}"
          f"  student {scores['student']['WQL']:.4f}")
    print("Lower is better for both. The distance is the mean gap between the student's and the teacher's "
          "quantile forecasts (in the teacher's normalised space; 0 = the same forecasts); WQL is the weighted "
          "quantile loss against the truth.")
    print(f"These figures and where the {report['seconds']['total']:.0f} s went: {Path(output) / 'summary.json'}")
    return 0
