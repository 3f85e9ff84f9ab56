"""Every results file names what produced it (issue 33): the commit and the teacher's weights digest, in the file
itself or in the ``provenance.json`` of its folder; ``write_results`` refuses a results file without them."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402

#: "Commit 3edebd55de", "at commit 54f447efeb", "committed in 72512fb395"
COMMIT = re.compile(r"[Cc]ommit(?:ted in)? [0-9a-f]{7,}")
DIGEST = re.compile(r"sha256 [0-9a-f]{12}")
HEX = re.compile(r"[0-9a-f]{40}")
SHA256 = re.compile(r"[0-9a-f]{64}")


def missing_provenance(results: Path) -> list[str]:
    """The markdown and JSON files under ``results`` that name no commit or no teacher digest."""
    missing = []
    for path in sorted(results.rglob("*")):
        if path.suffix not in (".md", ".json") or path.name == "provenance.json":
            continue
        if (path.parent / "provenance.json").is_file():  # a folder written by one command, described once
            continue
        if path.suffix == ".json":
            prov = json.loads(path.read_text()).get("provenance")
            commit = isinstance(prov, dict) and HEX.fullmatch(str(prov.get("commit") or prov.get("committed_in")))
            teachers = [prov.get("teacher"), *(prov.get("models") or {}).values()] if commit else []
            ok = bool(commit) and any(t and SHA256.fullmatch(str(t.get("weights_sha256"))) for t in teachers)
        else:
            text = path.read_text()
            ok = bool(COMMIT.search(text) and DIGEST.search(text))
        if not ok:
            missing.append(str(path.relative_to(results)))
    return missing


def test_every_committed_results_file_names_its_commit_and_teacher_digest():
    assert RESULTS.is_dir()
    assert missing_provenance(RESULTS) == []


def test_a_results_file_without_them_is_caught(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\n`python bench/a.py`\n\n| x |\n")
    (tmp_path / "a.json").write_text(json.dumps({"command": "python bench/a.py"}))
    (tmp_path / "b.json").write_text(json.dumps({"provenance": {"commit": "0" * 40, "teacher": None}}))
    folder = tmp_path / "described"
    folder.mkdir()
    (folder / "provenance.json").write_text("{}")
    (folder / "c.md").write_text("# written by the command its provenance.json names\n")
    assert missing_provenance(tmp_path) == ["a.json", "a.md", "b.json"]


def _prov(**teacher) -> dict:
    return {"commit": "ab" * 20, "tree_changed": False, "command": "python bench/x.py --out o",
            "teacher": {"name": "teacher T", "alias": "t", "weights_sha256": "cd" * 32, **teacher},
            "threads": 1, "omp_num_threads": "1", "machine": "x86_64"}


def test_write_results_refuses_a_results_file_without_provenance(tmp_path):
    with pytest.raises(ValueError, match="provenance"):
        common.write_results(tmp_path, "x", "# X\n", {"command": "python bench/x.py"})
    assert not (tmp_path / "x.md").exists() and not (tmp_path / "x.json").exists()


def test_write_results_puts_the_provenance_line_after_the_command(tmp_path):
    prov = _prov()
    common.write_results(tmp_path, "x", "# X\n\n`python bench/x.py --out o`\n\n| a |\n", {"provenance": prov})
    lines = (tmp_path / "x.md").read_text().split("\n")
    at = lines.index("`python bench/x.py --out o`")
    assert lines[at + 2] == common.provenance_line(prov)
    assert "Commit abababab" in lines[at + 2] and "sha256 cdcdcdcdcdcd" in lines[at + 2]
    assert lines[at + 4] == "| a |"
    assert missing_provenance(tmp_path) == []
    # a markdown that already holds the line gets it once
    common.write_results(tmp_path, "y", (tmp_path / "x.md").read_text(), {"provenance": prov})
    assert (tmp_path / "y.md").read_text().count("Commit abababab") == 1


def test_the_provenance_line_names_every_model_scored():
    prov = {**_prov(), "teacher": None,
            "models": {"v0": {"name": "T0", "alias": "r0", "weights_sha256": "01" * 32},
                       "student": {"name": "S", "alias": "runs/s", "weights_sha256": None}}}
    line = common.provenance_line(prov)
    assert "no teacher (nothing is distilled)" in line
    assert "v0 = T0 (`r0`, weights sha256 010101010101)" in line
    assert "student = S (`runs/s`, weights sha256 not on disk)" in line


def test_provenance_records_the_models_digests(teacher_dir):
    prov = common.provenance(teacher_dir, ["--out", "o"], "x.py", models={"again": teacher_dir})
    digest = __import__("hashlib").sha256((Path(teacher_dir) / "model.safetensors").read_bytes()).hexdigest()
    assert prov["teacher"]["weights_sha256"] == digest
    assert prov["models"]["again"]["weights_sha256"] == digest
    assert HEX.fullmatch(prov["commit"]) and prov["command"] == "python bench/x.py --out o"


def test_a_recorded_command_names_no_path_of_the_machine_that_ran_it(tmp_path):
    """Absolute paths, in the clone or beside it (a scratch --runs folder), are written relative to the clone's
    root, so the published command runs from any reader's clone."""
    root = Path(common.__file__).resolve().parents[1]
    command = common.command_line("x.py", ["--runs", str(root.parent / "runs" / "two-stage"), "--out",
                                           str(root / "bench" / "results"), "--seeds", "0"])
    assert command == "python bench/x.py --runs ../runs/two-stage --out bench/results --seeds 0"
    assert str(root) not in common.command_line("x.py", ["--scratch", str(tmp_path)])
