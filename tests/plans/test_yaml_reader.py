"""Plan files are read from the YAML parser's events, and the result is always exactly what the
plan loader (PyYAML's safe loader with the plan's rules) gives: the same values of the same types,
and for anything the event reader leaves to the loader, the same value or the same error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from plans.planfile import PlanFileError, _from_events, _PlanLoader, _Unusual, parse_plan_file, read_yaml

DEMO = Path(__file__).resolve().parents[2] / "examples" / "oit-reap.yaml"


def typed(value: Any) -> Any:
    """The value with every scalar's type made visible (1, 1.0 and True compare equal in Python)."""
    if isinstance(value, dict):
        return {"dict": [(typed(k), typed(v)) for k, v in value.items()]}
    if isinstance(value, list):
        return {"list": [typed(v) for v in value]}
    return (type(value).__name__, repr(value))


def loaded(text: str) -> Any:
    """What the plan loader itself makes of text: its value, or its error's type and message."""
    try:
        return typed(yaml.load(text, Loader=_PlanLoader))
    except yaml.YAMLError as exc:
        return ("error", type(exc).__name__, str(exc))


def read(text: str) -> Any:
    try:
        return typed(read_yaml(text))
    except yaml.YAMLError as exc:
        return ("error", type(exc).__name__, str(exc))


SNIPPETS = [
    "",
    "# only a comment\n",
    "---\n",
    "version: 1\n",
    "a: 1\nb: 1.5\nc: -2\nd: +3\ne: 0x1F\nf: 0o17\ng: 1_000\nh: 1:30\ni: .5\nj: 1e3\nk: 6.8523e+5\n",
    "a: .inf\nb: -.Inf\nc: .nan\nd: .NaN\n",
    "a: ~\nb: null\nc: Null\nd:\ne: ''\nf: \"\"\n",
    "a: true\nb: False\nc: yes\nd: no\ne: on\nf: off\ng: y\nh: TRUE\n",
    "due: 2027-02-26\nat: 2026-11-30 09:00:00\nquoted: '2027-02-26'\n",
    "a: '1'\nb: \"true\"\nc: 'null'\n",
    "text: |\n  line one\n  line two\nfolded: >\n  one\n  two\n",
    "items:\n  - {key: a, progress: 50}\n  - [1, two, 3.0]\n  - - nested\n    - list\n",
    "a: x\na: y\n",
    "outer:\n  a: 1\n  b: 2\n  a: 3\n",
    "1: one\n1.0: again\n",
    "true: t\n1: one\n",
    "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n",
    "a: &anchor 5\nb: *anchor\n",
    "a: !!str 123\nb: !!int '7'\nc: !!float 1\n",
    "a: !!binary aGVsbG8=\n",
    "a: !!set {x, y}\n",
    "a: !custom thing\n",
    "? [complex, key]\n: value\n",
    "? {complex: key}\n: value\n",
    "value: =\n",
    "merge: <<\n",
    "--- 1\n--- 2\n",
    "a: [1, 2\n",
    "a: b: c\n",
    "\t- tab\n",
    "a: 'unterminated\n",
    "- 1\n- 2\n",
    "just text\n",
    "42\n",
    "a:\n  - b: 1\n    c:\n      d: [x, {e: f}]\n",
    'note: "caf\\u00e9 \\t tab"\nemoji: 🟢\n',
]


@pytest.mark.parametrize("text", SNIPPETS)
def test_every_snippet_reads_as_the_plan_loader_reads_it(text: str):
    assert read(text) == loaded(text)


def test_the_demo_plan_reads_as_the_plan_loader_reads_it_without_falling_back():
    text = DEMO.read_text(encoding="utf-8")
    assert read(text) == loaded(text)
    # The fast path is what reads a real plan, not the fallback behind it.
    assert typed(_from_events(text)) == loaded(text)


@pytest.mark.parametrize("text", ["a: &x 1\nb: *x\n", "a: !!str 1\n", "a: 1\na: 2\n", "<<: {a: 1}\n"])
def test_what_the_event_reader_does_not_handle_it_hands_over(text: str):
    with pytest.raises(_Unusual):
        _from_events(text)


def test_a_duplicate_key_is_still_refused_with_both_lines():
    text = "version: 1\npeople: []\ndepartments: []\npeople: []\n"
    with pytest.raises(PlanFileError) as refused:
        parse_plan_file(text, filename="twice.yaml")
    assert str(refused.value) == "twice.yaml: line 4: invalid YAML: duplicate key 'people' (first at line 2)"


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(
        ["yes", "no", "on", "off", "~", "null", "0x10", "1_000", "2027-01-15", "1:30", "<<", "="]
    ),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(-5, 5)), children, max_size=4),
    ),
    max_leaves=20,
)


@given(document=documents, flow=st.booleans())
def test_any_dumped_document_reads_as_the_plan_loader_reads_it(document: Any, flow: bool):
    text = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True)
    assert read(text) == loaded(text)
