"""Frozen values go to JSON data and come back equal, whatever they hold."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import pytest

from domain.frozen import FrozenDataError, from_data, to_data
from domain.status import MeasureStatus


@dataclass(frozen=True)
class Point:
    """A nested value."""

    quarter: str
    value: float | None


@dataclass(frozen=True)
class Sample:
    """Every shape the rollup's value types use."""

    when: date
    status: MeasureStatus
    points: tuple[Point, ...]
    moves: list[tuple[str, date | None, date | None]]
    counts: dict[str, int]
    rate: float | None = None
    names: dict[str, str] = field(default_factory=dict)


SAMPLE = Sample(
    when=date(2026, 12, 31),
    status=MeasureStatus.ON_TRACK,
    points=(Point("FY2027-Q1", 48.0), Point("FY2027-Q2", None)),
    moves=[("OIT-7", date(2026, 12, 1), None)],
    counts={"done": 3},
    rate=0.5,
    names={"U0A": "Ann"},
)


def test_a_value_survives_a_trip_through_json_unchanged():
    data = json.loads(json.dumps(to_data(SAMPLE)))
    assert from_data(Sample, data) == SAMPLE


def test_whole_numbers_stored_as_integers_come_back_as_floats_where_floats_are_meant():
    data = to_data(SAMPLE) | {"rate": 1}
    assert from_data(Sample, data).rate == 1.0


def test_data_that_does_not_fit_is_refused_naming_where():
    data = to_data(SAMPLE) | {"when": 20261231}
    with pytest.raises(FrozenDataError, match=r"Sample\.when: expected a date"):
        from_data(Sample, data)
