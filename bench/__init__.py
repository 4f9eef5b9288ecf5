"""Benchmarks for issue 6, run with `make bench` (`python -m bench`); not part of `make test`.

Every module here that defines ORDER (the issue's item number), NAME and `main(command)` is a
benchmark: `python -m bench` runs them all in ORDER, `python -m bench latency rollup` the named
ones. Each prints the machine, the command and a table, comparing against a reference measured
in the same run. Shared helpers live in `bench.common`, bulk seeding in `bench.seed`.
"""
