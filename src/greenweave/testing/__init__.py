"""Testing aids for greenweave.

:mod:`greenweave.testing.stdlib` runs CPython's own test modules unpatched,
under gevent's monkey-patching and under greenweave's, and compares the counts.
"""
