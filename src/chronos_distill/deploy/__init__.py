"""Serving a student: ONNX export with its export-time patches (``onnx_export``), the file's layout and metadata
keys (``onnx_format``), the ONNX forecaster and the loader of any forecaster (``onnx_forecaster``), and the
``predict`` command (``predict``).

May import: ``errors``, ``config``, ``training``, ``chronos2``, ``data``, ``distillation`` (a student's record).
"""
