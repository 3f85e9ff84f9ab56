"""Write the generated files: ``docs/cli.md`` from the option definitions, the field names of the installed
``transformers.TrainingArguments`` (``src/chronos_distill/config/training_arguments_fields.py``), and the pages
that quote benchmark figures (``bench/doc_blocks.py``'s ``PAGES``) from their templates in ``docs/templates/``,
their tables and figures rendered from ``bench/results``. Tests keep each equal to what this writes."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from doc_blocks import PAGES, render_page  # noqa: E402

from chronos_distill.cli import options_reference  # noqa: E402
from chronos_distill.config.options import render_training_arguments_fields  # noqa: E402


def installed_training_arguments() -> str:
    """``config/training_arguments_fields.py`` for the installed transformers."""
    import dataclasses
    from importlib.metadata import version

    from transformers import TrainingArguments

    fields = [f.name for f in dataclasses.fields(TrainingArguments) if f.init]
    return render_training_arguments_fields(fields, version("transformers"))


if __name__ == "__main__":
    (ROOT / "docs" / "cli.md").write_text(options_reference())
    (ROOT / "src" / "chronos_distill" / "config" / "training_arguments_fields.py").write_text(
        installed_training_arguments())
    for page in PAGES:
        (ROOT / page).write_text(render_page(page))
    print("wrote docs/cli.md, config/training_arguments_fields.py and", ", ".join(PAGES), "from docs/templates/")
