"""Write the generated pages: ``docs/cli.md`` from the option definitions, and the pages that quote benchmark figures (``bench/doc_blocks.py``'s ``PAGES``) from their templates in ``docs/templates/``,
their tables and figures rendered from ``bench/results``. Tests keep each equal to what this writes."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from doc_blocks import PAGES, render_page  # noqa: E402

from chronos_distill.cli import options_reference  # noqa: E402

if __name__ == "__main__":
    (ROOT / "docs" / "cli.md").write_text(options_reference())
    for page in PAGES:
        (ROOT / page).write_text(render_page(page))
    print("wrote docs/cli.md and", ", ".join(PAGES), "from docs/templates/")
