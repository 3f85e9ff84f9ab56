"""What a distillation run and a pretraining run share: the output folder and its resume rules (``run_folder``),
the ``TrainingArguments`` built in one place (``arguments``), readable progress lines (``progress``), and the
train-then-export steps both commands run (``session``).

May import: ``errors``, ``config``. Nothing here imports torch at import time.
"""
