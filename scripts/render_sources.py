"""Write the generated source files, apart from the pages (``scripts/render_docs.py``), so that a docs edit never
changes a runtime check: the type stub that shows IDEs and type checkers ``DistillationConfig``'s fields
(``distillation/distillation_config.pyi``), and the field names of the installed ``transformers.TrainingArguments``
(``config/training_arguments_fields.py``, which the option check reads without importing torch). Tests keep each
equal to this rendering (``tests/test_every_setting_kept.py``, ``tests/test_distill.py``); run it after changing
``DistillationConfig`` or upgrading transformers.

    python scripts/render_sources.py
"""

import dataclasses
from importlib.metadata import version
from pathlib import Path

import chronos_distill.config.training_arguments_fields as listed
import chronos_distill.distillation.distillation_config as module
from chronos_distill.config.options import render_training_arguments_fields

if __name__ == "__main__":
    from transformers import TrainingArguments

    stub = Path(module.__file__).with_suffix(".pyi")
    stub.write_text(module.render_stub())
    fields = Path(listed.__file__)
    fields.write_text(render_training_arguments_fields(
        [f.name for f in dataclasses.fields(TrainingArguments) if f.init], version("transformers")))
    print(f"wrote {stub} and {fields}")
