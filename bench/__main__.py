"""`python -m bench [NAME ...]`: run every benchmark in the issue's order, or only the named ones."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Sequence
from types import ModuleType

import bench
from bench.common import bench_command


def benchmarks() -> dict[str, ModuleType]:
    """Every benchmark module in the package (one defining ORDER, NAME and main), by NAME in ORDER."""
    found = []
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if all(hasattr(module, attr) for attr in ("ORDER", "NAME", "main")):
            found.append(module)
    return {m.NAME: m for m in sorted(found, key=lambda m: m.ORDER)}


def main(argv: Sequence[str]) -> int:
    """Run the chosen benchmarks; 1 if any of them failed to run (a missed target is not a failure)."""
    available = benchmarks()
    if any(a in ("-h", "--help") for a in argv):
        print(f"usage: python -m bench [{' '.join(available)}]")
        return 0
    unknown = [a for a in argv if a not in available]
    if unknown:
        print(f"bench: no benchmark named {', '.join(unknown)}; choose from {', '.join(available)}")
        return 2
    command = bench_command(argv)
    failed = []
    started = time.perf_counter()
    for name in argv or list(available):
        began = time.perf_counter()
        try:
            code = available[name].main(command)
        except Exception:
            traceback.print_exc()
            code = 1
        print(f"[{name}: {time.perf_counter() - began:.0f} s]", flush=True)
        if code:
            failed.append(name)
    print(f"[all: {time.perf_counter() - started:.0f} s]")
    if failed:
        print(f"bench: {', '.join(failed)} did not finish", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
