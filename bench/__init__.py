"""Benchmarks; each script records its method and figures in docs/benchmarks.md."""
