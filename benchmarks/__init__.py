"""Benchmarks of crypto_assets: run one as `python benchmarks/<name>.py` (see its docstring)."""
