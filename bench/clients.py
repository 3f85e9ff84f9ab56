"""Compatibility benchmark: a distilled student in clients that nobody here wrote.

1. **chronos-forecasting's own test suite.** The sdist of the installed chronos-forecasting version is
   fetched with ``pip download --no-binary``; its ``test/test_chronos2.py`` runs twice in a virtual
   environment with ``chronos-forecasting[test]`` of that version: once as shipped (the baseline) and once
   with the student's ``config.json`` and ``model.safetensors`` in place of the dummy model. Tests that need
   the network are deselected (listed in the results). Every failure is listed with its reason; the tests that
   hard-code the dummy model's shape (d_model 6) or its LoRA adapter are expected to fail and are named.
2. **AutoGluon.** In a second virtual environment with ``autogluon.timeseries``, ``bench/clients_autogluon.py``
   runs a ``TimeSeriesPredictor`` with the student: zero-shot, full fine-tune and LoRA with a known covariate,
   predict, leaderboard, save and load, and ``export_model`` reloaded through ``BaseChronosPipeline``.

    python bench/clients.py [--student FOLDER] [--work /work/runs/clients] [--out bench/results]

Without ``--student``, a student is distilled from the bundled reference teacher for a few steps (what is
checked is the format, not the accuracy). The virtual environments are created in ``--work`` when missing
(torch pinned to the installed CPU version, so nothing pulls a CUDA build). Writes ``clients.md`` and
``clients.json`` into ``--out``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from common import HERE, arguments, command_line, provenance, write_results

#: Upstream tests that need the network (S3, the Hugging Face Hub, fev's hub datasets).
NETWORK_TESTS = ("loads_from_s3", "loads_from_hf", "dummy_fev_task")
#: Upstream tests that hard-code the dummy model: its d_model of 6 or its LoRA adapter (made for d_model 6).
SHAPE_TESTS = {
    "test_when_input_is_valid_then_pipeline_can_embed": "expects embeddings of the dummy model's d_model (6)",
    "test_chronos2_lora_pipeline_loads_from_disk": "loads dummy-chronos2-lora, a LoRA adapter made for d_model 6",
}


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("$", shlex.join(map(str, cmd)), flush=True)
    return subprocess.run(list(map(str, cmd)), text=True, capture_output=True, **kwargs)


def ensure_venv(folder: Path, packages: list[str]) -> Path:
    python = folder / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", folder], check=True)
    import torch

    done = run([python, "-m", "pip", "install", "-q", f"torch=={torch.__version__.split('+')[0]}", *packages])
    if done.returncode:
        raise SystemExit(f"installing {packages} into {folder} failed:\n{done.stderr[-3000:]}")
    return python


def make_student(work: Path) -> Path:
    """A student of the reference teacher, 20 steps on M3's training portions (the format is checked, not skill)."""
    from chronos_distill.data.competition import training_table

    out, data = work / "student", work / "m3-train.parquet"
    training_table(("M3",)).to_parquet(data)
    done = run([sys.executable, "-m", "chronos_distill", "distill", "--teacher", "reference", "--train-data",
                data, "--prediction-length", "18", "--output", out, "--max-steps", "20",
                "--batch-size", "32", "--save-steps", "20", "--overwrite"])
    if done.returncode:
        raise SystemExit(f"distilling the test student failed:\n{done.stderr[-3000:]}")
    return out / "model"


def junit_results(path: Path) -> dict[str, dict]:
    results = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name")
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if problem is not None:
            message = (problem.get("message") or problem.text or "").strip().splitlines()
            results[name] = {"status": "failed", "reason": (message[0] if message else "")[:300]}
        elif skipped is not None:
            results[name] = {"status": "skipped", "reason": (skipped.get("message") or "")[:300]}
        else:
            results[name] = {"status": "passed"}
    return results


def upstream_suite(student: Path, work: Path) -> dict:
    import chronos

    version = chronos.__version__
    python = ensure_venv(work / "upstream-venv", [f"chronos-forecasting[test]=={version}", "pytest"])
    sdist_dir = work / "sdist"
    if not any(sdist_dir.glob("chronos_forecasting-*.tar.gz")):
        done = run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    f"chronos-forecasting=={version}", "-d", sdist_dir])
        if done.returncode:
            raise SystemExit(f"pip download of the chronos-forecasting {version} sdist failed:\n{done.stderr[-2000:]}")
    archive = next(sdist_dir.glob(f"chronos_forecasting-{version}.tar.gz"))
    deselect = " and ".join(f"not {name}" for name in NETWORK_TESTS)
    results = {}
    for variant in ("dummy model (as shipped)", "distilled student"):
        tree = work / ("upstream-dummy" if variant.startswith("dummy") else "upstream-student")
        shutil.rmtree(tree, ignore_errors=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
        root = next(tree.iterdir())
        if variant == "distilled student":
            dummy = root / "test" / "dummy-chronos2-model"
            for old in dummy.iterdir():
                old.unlink()
            for name in ("config.json", "model.safetensors"):
                shutil.copy(student / name, dummy / name)
        report = tree / "junit.xml"
        start = time.perf_counter()
        done = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test/test_chronos2.py", "-k", deselect,
                    f"--junitxml={report}"], cwd=root, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
        cases = junit_results(report)
        results[variant] = {
            "seconds": round(time.perf_counter() - start, 1),
            "summary": done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:],
            "passed": sum(c["status"] == "passed" for c in cases.values()),
            "failed": {name: c["reason"] for name, c in cases.items() if c["status"] == "failed"},
            "skipped": sum(c["status"] == "skipped" for c in cases.values()),
        }
    return {"version": version, "deselected (network)": list(NETWORK_TESTS), "runs": results}


def autogluon_steps(student: Path, work: Path) -> dict:
    python = ensure_venv(work / "autogluon-venv", ["autogluon.timeseries"])
    version = run([python, "-c", "import autogluon.timeseries as m; print(m.__version__)"]).stdout.strip()
    ag_work = work / "autogluon-run"
    shutil.rmtree(ag_work, ignore_errors=True)
    done = run([python, HERE / "clients_autogluon.py", student, ag_work], env={"HF_HUB_OFFLINE": "1",
                                                                             "PATH": "/usr/bin:/bin"})
    if done.returncode:
        raise SystemExit(f"the AutoGluon driver crashed:\n{done.stderr[-3000:]}")
    return {"version": version, "steps": json.loads(done.stdout.strip().splitlines()[-1])}


def base_name(test_id: str) -> str:
    return test_id.split("[", 1)[0]


def markdown(result: dict, command: str) -> str:
    upstream, ag = result["upstream"], result["autogluon"]
    lines = ["# Compatibility: a distilled student in upstream clients", "", f"`{command}`", "",
             f"Student: {result['student']['description']}", "",
             f"## chronos-forecasting {upstream['version']} `test/test_chronos2.py`", "",
             f"Deselected (need the network): {', '.join(upstream['deselected (network)'])}.", "",
             "| model in test/dummy-chronos2-model | passed | failed | skipped | time |", "|---|---|---|---|---|"]
    for variant, r in upstream["runs"].items():
        lines.append(f"| {variant} | {r['passed']} | {len(r['failed'])} | {r['skipped']} | {r['seconds']:.0f} s |")
    student_failures = upstream["runs"]["distilled student"]["failed"]
    baseline_failures = upstream["runs"]["dummy model (as shipped)"]["failed"]
    unexpected = [t for t in student_failures if base_name(t) not in SHAPE_TESTS and t not in baseline_failures]
    lines += ["", "Failures with the student:", ""]
    for test, reason in student_failures.items():
        why = SHAPE_TESTS.get(base_name(test))
        label = f"expected, hard-codes the dummy model: {why}" if why else (
            "also fails with the shipped dummy model" if test in baseline_failures else "**unexpected**")
        lines.append(f"- `{test}`: {label}. Reason: `{reason}`")
    if not student_failures:
        lines.append("- none")
    lines += ["", f"Unexpected failures: {len(unexpected)}.", "",
              f"## AutoGluon {ag['version']} `TimeSeriesPredictor`", "", "| step | status | time | detail |",
              "|---|---|---|---|"]
    for name, step in ag["steps"].items():
        detail = step.get("error") or json.dumps(step.get("detail"))
        lines.append(f"| {name} | {step['status']} | {step['seconds']:.0f} s | {detail} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__)
    parser.add_argument("--student", type=Path, help="exported student folder (default: distil one, 20 steps)")
    parser.add_argument("--work", type=Path, default=Path("/work/runs/clients"), help="virtual envs and scratch")
    parser.add_argument("--skip-autogluon", action="store_true")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    command = command_line("clients.py", argv)

    student = args.student or make_student(args.work)
    config = json.loads((student / "config.json").read_text())
    description = (f"{'given folder ' + student.name if args.student else 'distilled from the reference teacher, 20 steps'}"
                   f"; d_model {config['d_model']}, {config['num_layers']} layers")
    result = {"command": command,
              "provenance": provenance("reference", argv, "clients.py", models={"student": str(student)}),
              "student": {"description": description, "d_model": config["d_model"]},
              "upstream": upstream_suite(student, args.work),
              "autogluon": {"version": "skipped", "steps": {}} if args.skip_autogluon
              else autogluon_steps(student, args.work)}
    write_results(args.out, "clients", markdown(result, command), result)


if __name__ == "__main__":
    main(sys.argv[1:])
