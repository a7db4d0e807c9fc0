"""Helpers the test modules share: no tests and no fixtures live here.

A test module (``test_*.py``) is never imported by another; what two of them need is
written once in this package (or beside them, as ``tests/web/pages.py``), and the
fixtures that build on it stay in the ``conftest.py`` files.
"""
