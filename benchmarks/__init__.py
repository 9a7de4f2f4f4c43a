"""Benchmarks of the pipeline against reference implementations (``python -m benchmarks.run``).

Not part of the test suite. The results page is benchmarks/README.md.
"""
