"""What a distillation run and a pretraining run share: the output folder and its resume rules (``run_folder``),
the ``TrainingArguments`` built in one place (``arguments``), readable progress lines (``progress``).

May import: ``errors``, ``config``. Nothing here imports torch at import time.
"""
