"""Scoring models: metrics (WQL, MASE, seasonal naive: ``metrics``), benchmarks and student-teacher agreement
(``scoring``), report files (``report``), the synthetic seasonality suite (``seasonality_suite``), an ensemble of
teachers scored directly (``ensemble_forecaster``), and fev tasks, models and leaderboard for ``evaluate --fev``
(``fev_tasks``, ``fev_models``, ``leaderboard``; these need the ``[fev]`` extra).

May import every layer below it, ``deploy`` included (to score an ONNX file), but not the ``predict`` command.
"""
