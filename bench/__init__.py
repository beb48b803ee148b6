"""Ferry's benchmarks (`make bench`): control plane at scale, dispatch latency, real lab migrations.

bench/run.py runs each benchmark module in its own process and writes docs/benchmarks.md.
"""
