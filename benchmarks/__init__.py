"""Benchmarks for agentstaff: `make bench` (python -m benchmarks). See README.md."""
