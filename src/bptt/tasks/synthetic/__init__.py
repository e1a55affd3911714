"""Synthetic long- and short-dependency tasks.

Importing this package registers them: ``adding``, ``copy``, ``temporal_order``
and ``sentiment``.
"""

from bptt.tasks.synthetic import adding, copy, sentiment, temporal_order  # noqa: F401
