"""Measurements of asynchpo against raw dask and its peers; run with ``python -m benchmarks``."""
