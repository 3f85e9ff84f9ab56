"""Rewrite the generated parts of the pages, in place: ``docs/cli.md`` whole, from the option definitions, and in
the pages that quote benchmark results (:data:`PAGES`) what sits between markers, from the ``"page"`` of the
results file the marker names (each benchmark computes its figures and tables when it writes its results, see
``bench/common.py::write_page``); this script only copies them. Everything outside the markers is the page's own
text, edited by hand.

- a figure in the prose: ``<!-- fig FILE:NAME -->1.036x<!-- /fig -->``;
- a block (a table, a command), on lines of their own, indented as the opening marker is:
  ``<!-- block FILE:NAME -->`` ... ``<!-- /block -->``;

``FILE`` is the results file under ``bench/results`` without ``.json`` (``two_stage``, ``demo/demo``). Tests keep
each page equal to its rendering (``tests/test_pages.py``).

    python scripts/render_docs.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: the pages that quote benchmark results
PAGES = ("README.md", "bench/README.md", "docs/methods.md", "docs/operations.md")
FIGURE = re.compile(r"<!-- fig (?P<file>[\w/.-]+):(?P<name>[\w-]+) -->(?P<text>.*?)<!-- /fig -->")
BLOCK = re.compile(r"^(?P<indent>[ \t]*)<!-- block (?P<file>[\w/.-]+):(?P<name>[\w-]+) -->\n(?P<body>.*?)"
                   r"^(?P=indent)<!-- /block -->$", re.MULTILINE | re.DOTALL)


def _page_parts(results: Path, file: str) -> dict[str, dict[str, str]]:
    path = results / f"{file}.json"
    if not path.is_file():
        raise SystemExit(f"a marker names {file}, but {path} does not exist")
    return json.loads(path.read_text()).get("page", {})


def render(text: str, results: Path = RESULTS) -> str:
    """``text`` with every marked figure and block rewritten from the results under ``results`` (each file read
    once per call)."""
    read: dict[str, dict[str, dict[str, str]]] = {}

    def part(kind: str, match: re.Match) -> str:
        file, name = match["file"], match["name"]
        if file not in read:
            read[file] = _page_parts(results, file)
        parts = read[file].get(kind, {})
        if name not in parts:
            raise SystemExit(f"{file}.json has no {kind[:-1]} {name!r} in its \"page\" (the benchmark's page() writes it)")
        return parts[name]

    def block(match: re.Match) -> str:
        indent = match["indent"]
        body = "".join(f"{indent}{line}\n" if line else "\n" for line in part("blocks", match).split("\n"))
        return f"{indent}<!-- block {match['file']}:{match['name']} -->\n{body}{indent}<!-- /block -->"

    def figure(match: re.Match) -> str:
        return f"<!-- fig {match['file']}:{match['name']} -->{part('figures', match)}<!-- /fig -->"

    return FIGURE.sub(figure, BLOCK.sub(block, text))


if __name__ == "__main__":
    from chronos_distill.cli import options_reference

    (ROOT / "docs" / "cli.md").write_text(options_reference())
    for page in PAGES:
        (ROOT / page).write_text(render((ROOT / page).read_text()))
    print("wrote docs/cli.md and the marked parts of", ", ".join(PAGES))
