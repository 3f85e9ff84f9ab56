"""The package's layout is its architecture: one subpackage per layer, imports only downward, no cycles.

Every import in the package is read with ``ast``, function-level ones included (a cycle hidden behind a
function-level import is still a cycle), and checked against the layer order below, which CONTRIBUTING.md's
layout section states.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import chronos_distill

PACKAGE = Path(chronos_distill.__file__).parent
#: Layers from the bottom up: a module may import its own subpackage and the layers below its own. Peers
#: (distillation and pretraining) may not import each other; the entry points at the top may.
LAYERS = [
    {"_version", "errors", "files"},
    {"config"},
    {"training"},
    {"chronos2"},
    {"data"},
    {"distillation", "pretraining"},
    {"deploy"},
    {"evaluation"},
    {"cli", "demo", "__init__", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file, as package-relative names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package and package != "__init__" else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join([*base, node.module] if node.module else base)
                targets = [f"chronos_distill.{module}" if module else "chronos_distill"]
            else:
                targets = [node.module or ""]
            targets += [f"{targets[0]}.{alias.name}" for alias in node.names]
        for target in targets:
            if target == "chronos_distill" or target.startswith("chronos_distill."):
                relative = target.removeprefix("chronos_distill").lstrip(".")
                while relative and relative not in known:
                    relative = relative.rpartition(".")[0]
                if relative and relative != name:
                    found.add(relative)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def test_every_module_belongs_to_a_layer():
    assert {name.split(".")[0] for name in modules()} <= set(RANK)


def test_no_layer_imports_upward_or_sideways():
    upward = []
    for name, targets in graph().items():
        layer = name.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            top = RANK[layer] == len(LAYERS) - 1  # the entry points may use each other (cli runs the demo)
            if other != layer and (RANK[other] > RANK[layer] or (RANK[other] == RANK[layer] and not top)):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports that go up (or across peers):\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    edges = graph()
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if target == "__init__":
                continue  # the lazy package root re-exports names; importing it does not import its modules
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_function_level_imports(tmp_path):
    """The check would have caught the cycles the old flat layout hid behind function-level imports."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from chronos_distill.data.windows import draw_windows\n    return draw_windows\n")
    assert imports_of("chronos2.fake", module, set(modules())) == {"data.windows"}


def test_only_the_layout_spells_chronos2s_module_names():
    """``chronos2/hooks.py`` (``Chronos2Layout``) is the one place that knows where Chronos-2's parts are: no other
    module spells a module path or state-dict key of the model."""
    spelled = []
    for name, path in modules().items():
        if name == "chronos2.hooks":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            texts = [node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else []
            if isinstance(node, ast.JoinedStr):
                texts = ["".join(v.value for v in node.values if isinstance(v, ast.Constant))]
            for text in texts:
                if text.startswith(("encoder.", "input_patch_embedding", "output_patch_embedding", "shared.")):
                    spelled.append(f"{name}: {text!r}")
    assert not spelled, "\n".join(spelled)


def test_the_checks_before_a_run_import_no_torch():
    """What training/__init__ says: the output folder's rules, the checkpoint checks and the disk messages load no
    torch (nor transformers), so the checks before a run stay fast."""
    import subprocess
    import sys

    code = ("import sys; import chronos_distill.training.run_folder, chronos_distill.training.disk, "
            "chronos_distill.files; print('torch' in sys.modules, 'transformers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_the_readme_layout_table_lists_every_module_of_each_subpackage():
    """CONTRIBUTING.md's Layout table names, for each subpackage, exactly its modules (a new module is added there)."""
    readme = (Path(__file__).resolve().parents[1] / "CONTRIBUTING.md").read_text()
    table = readme[readme.index("## Layout"):]
    package = Path(__file__).resolve().parents[1] / "src" / "chronos_distill"
    for row in (line for line in table.splitlines() if re.match(r"\| `\w+/` \|", line)):
        folder = re.match(r"\| `(\w+)/` \|", row).group(1)
        listed = set(re.findall(r"`(\w+\.py)`", row.split("|")[2]))
        present = {p.name for p in (package / folder).glob("*.py") if p.name != "__init__.py"}
        assert listed == present, (folder, sorted(present - listed), sorted(listed - present))


def test_the_modules_the_readme_says_load_no_torch_load_none():
    """CONTRIBUTING.md lists the modules behind ``--help`` and the checks before a run as importing nothing of the
    training stack; each listed module, imported alone in a fresh interpreter, loads neither torch nor transformers."""
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[1] / "CONTRIBUTING.md").read_text()
    sentence = readme[readme.index("`config/`, `errors.py`, `training/run_folder.py`"):]
    sentence = sentence[:sentence.index("import nothing of the training stack")]
    listed = re.findall(r"`([\w/]+(?:\.py|/))`", sentence)
    assert "data/sources.py" in listed and "distillation/preflight.py" in listed
    for path in listed:
        module = "chronos_distill." + path.removesuffix(".py").removesuffix("/").replace("/", ".")
        code = f"import sys; import {module}; print('torch' in sys.modules, 'transformers' in sys.modules)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.stdout.split() == ["False", "False"], (module, done.stdout, done.stderr[-2000:])
