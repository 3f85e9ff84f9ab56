"""What a distillation run and a pretraining run share: the output folder and its resume rules (``run_folder``),
the ``TrainingArguments`` built in one place (``arguments``), readable progress lines (``progress``), stopping on
SIGTERM / SIGINT with a checkpoint (``preemption``), one line for a full disk (``disk``), and the
train-then-export steps both commands run (``session``).

May import: ``errors``, ``config``, ``files``. ``run_folder`` and ``disk`` import no torch, so the checks before a
run stay fast; ``arguments`` imports it when called; ``progress``, ``preemption`` and ``session`` are
``TrainerCallback`` code and import transformers (and so torch) at import time.
"""
