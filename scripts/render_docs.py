"""Write the generated documentation: ``docs/cli.md`` from the option definitions, and every figure block of the
pages (README, bench/README.md, docs/operations.md) (``<!-- block:NAME -->``) from ``bench/results`` (``bench/doc_blocks.py``). Tests keep both equal."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from doc_blocks import PAGES, render_blocks  # noqa: E402

from chronos_distill.cli import options_reference  # noqa: E402

if __name__ == "__main__":
    (ROOT / "docs" / "cli.md").write_text(options_reference())
    for page in PAGES:
        path = ROOT / page
        path.write_text(render_blocks(path.read_text()))
    print("wrote docs/cli.md and the blocks of", ", ".join(PAGES))
