"""Load benchmarks (bench/run.py) and their seed data (bench/seed.py); see bench/README.md."""
