"""Scoring models: metrics (WQL, MASE, seasonal naive: ``metrics``), benchmarks and student-teacher agreement
(``scoring``), report files (``report``) and the synthetic seasonality suite (``seasonality_suite``).

May import every layer below it, ``deploy`` included (to score an ONNX file), but not the ``predict`` command.
"""
