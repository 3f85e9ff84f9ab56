"""Pretraining a Chronos-2 model from scratch (the reference teachers' recipe): the seeded stream of synthetic
and real tasks (``stream``) and the run (``run``).

May import: ``errors``, ``config``, ``training``, ``chronos2``, ``data``.
"""
