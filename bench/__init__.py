"""Benchmarks of the ledger and the locker service: `python -m bench` (docs/benchmarks.md)."""
