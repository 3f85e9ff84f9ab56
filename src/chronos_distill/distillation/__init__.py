"""Distillation: the plan of matched blocks (``plan``), the objective and its loss terms (``objective``,
``losses/``), the trained module (``model``), the ``Trainer`` subclass (``trainer``) and its ``TrainingArguments`` subclass (``distillation_config``), several teachers' combined
target (``ensemble``, with the statsforecast member in ``statistical_teacher``) and the run's teachers
(``teachers``), the checks before torch (``preflight``), the run from options to exported student (``run``) and its record (``record``).

May import: ``errors``, ``config``, ``training``, ``chronos2``, ``data``.
"""
