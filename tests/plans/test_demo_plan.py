"""The demo plan ships inside the package (for `reap shell --demo` from a wheel) and is the same file
as the documented examples/oit-reap.yaml."""

from __future__ import annotations

from pathlib import Path

from bot.console import DEMO_PLAN

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "oit-reap.yaml"


def test_the_packaged_demo_plan_is_byte_identical_to_the_documented_example():
    assert DEMO_PLAN.read_bytes() == EXAMPLE.read_bytes(), "copy examples/oit-reap.yaml to plans/demo/"
