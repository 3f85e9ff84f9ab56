"""Series and the windows a run trains on: where a table comes from (``sources``: files, shards, the sequence
layout, saved datasets), long tables and their checks (``tables``), corpora streamed shard by shard
(``shards``), prepared series
(``series``), the ``Chronos2Dataset`` windows (``windows``), teacher-labelled transfer rows (``transfer``), the
teacher cache (``teacher_cache``), synthetic generators (``synthetic``) and the M1/M3 competition data
(``competition``).

May import: ``errors``, ``config``, ``training``, ``chronos2``.
"""
