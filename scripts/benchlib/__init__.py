"""Helpers of ``scripts/bench.py``: cluster control, pre-signing, load, probes, reports.

Not part of the installed distribution; ``scripts/bench.py`` puts ``scripts/``
on ``sys.path`` so these modules import as ``benchlib.*``.
"""
