"""Benchmarks: `python -m bench.pipeline` and `python -m bench.load` (results in bench/results/)."""
