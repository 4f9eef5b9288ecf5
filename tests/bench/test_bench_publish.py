"""Item 8's seeding and measuring on a tiny plan: the figures come out, whatever they are."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

import bench.__main__ as runner
from bench.publish import freeze, measure_publish, measure_report, publish_plan, site_pages
from bench.rollup import rollup_plan
from bench.seed import RACE_GROUPS, measure_rows, reading_rows, seed, table_counts
from storage.engine import create_engine

GROUPS = {str(g["key"]) for g in RACE_GROUPS}


@pytest.fixture
async def tables(database_url: str) -> AsyncIterator[str]:
    """The database URL, with every table created (the measuring opens its own engines)."""
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    await engine.dispose()
    yield database_url


async def test_the_publish_plan_seeds_a_dimension_per_plan_and_groups_on_every_reading(tables: str):
    plan = publish_plan(items=120, departments=3)
    report = await seed(tables, plan)
    assert report.rows["dimension"] == 3
    engine = create_engine(tables)
    try:
        async with engine.connect() as conn:
            kinds = dict(
                (
                    await conn.execute(
                        text("SELECT breakdown_kind, count(*) FROM measure GROUP BY breakdown_kind")
                    )
                ).all()
            )
            groups = (await conn.execute(text("SELECT groups FROM measure_reading"))).scalars().all()
    finally:
        await engine.dispose()
    assert kinds == {"rate": 9, "representation": 9}
    assert len(groups) == 3 * 3 * 2 * 8
    # Read back through the JSON column, whichever way the backend stored it.
    assert all(set(g if isinstance(g, dict) else json.loads(g)) == GROUPS for g in groups)


def test_breakdowns_leave_the_other_benchmarks_measures_and_readings_as_they_were():
    plain = rollup_plan(items=40, departments=2)
    broken_down = dataclasses.replace(plain, breakdowns=True)
    strategies = [(1, "D01"), (2, "D01"), (3, "D02")]
    before = measure_rows(plain, strategies)
    after = measure_rows(broken_down, strategies)
    assert [{k: m[k] for k in before[0]} for m in after] == before
    assert all("breakdown_dimension" not in m for m in before)
    old = reading_rows(plain, list(enumerate(before)))
    new = reading_rows(broken_down, list(enumerate(after)))
    assert [r["value"] for r in new] == [r["value"] for r in old]
    assert all("groups" not in r for r in old) and all(set(r["groups"]) == GROUPS for r in new)


async def test_publishing_a_tiny_frozen_plan_produces_every_figure(tables: str, tmp_path: Path):
    plan = publish_plan(items=120, departments=3)
    await seed(tables, plan)
    assert await freeze(tables, plan.team_id) >= 0
    counts = await table_counts(tables, ["quarter_snapshot"])
    assert counts == {"quarter_snapshot": 1}

    published = await measure_publish(tables, 1, plan.team_id, tmp_path)
    assert len(published["runs"]) == 2 and all(len(lap) == 2 for lap in published["runs"])
    assert set(published["steps"]) == {"read", "render", "write"}
    pages = site_pages(tmp_path / "site-1")
    assert published["pages"] == len(pages) > 0
    assert published["largest_page"] == max(pages.values()) == pages[published["largest_path"]]
    # Two languages: an overview, 3 departments and 18 measures, each with its own page.
    assert sum(p.startswith("en/measures/") for p in pages) == 18
    assert sum(p.startswith("es/departments/") for p in pages) == 3
    assert published["files"] > published["pages"] and published["peak_rss"] > 0

    report = await measure_report(tables, 1, plan.team_id)
    assert len(report["frozen"]) == len(report["built"]) == 1
    assert report["html_bytes"] > 0 and report["built_bytes"] > 0 and report["peak_rss"] > 0


def test_the_runner_puts_publishing_after_the_rollup():
    found = list(runner.benchmarks())
    assert found.index("rollup") < found.index("publish")
