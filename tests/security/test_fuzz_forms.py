"""Every modal, submitted with hostile values: a form error naming a block, or exactly what was sent.

Each modal is built by its real builder (so the fuzzing follows the form's real input blocks) and
submitted, correctly signed, to one running bot per backend with generated values per input: text
past its limit, control characters, NUL and lone surrogates, bidi marks and emoji, non-finite,
23-digit and 5,000-digit numbers, options the form never offered, missing and extra blocks,
private_metadata that is not ours, and inputs of the wrong JSON type. Whatever arrives, the
answer is a 200 with either `response_action: errors` naming blocks of the form, or a success
that changed the database by exactly what was submitted, each change with its audit event. A
refused submission changes nothing; an input of the wrong type is refused at the front door (400).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any, Literal

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import SQLModel, col, select

from commands import VIEWS
from commands.handlers import DATABASE_DOWN
from domain.commitments import check_evidence
from domain.scoring import Criterion
from domain.status import ItemStatus
from domain.text import DESCRIPTION_MAX, NOTE_MAX, TITLE_MAX
from messages.blocks import (
    ADD_MODAL,
    SNOOZE_MODAL,
    UPDATE_MODAL,
    build_add_modal,
    build_snooze_modal,
    build_update_modal,
)
from messages.checkin import CHECKIN_MODAL, build_checkin_modal
from messages.measures import CRITERION_BLOCK, SCORE_MODAL, ScoreCard, build_score_modal
from messages.requests import DECLINE_MODAL, build_decline_modal
from storage.audit import audit_text
from storage.engine import transaction
from storage.items import create_item
from storage.models import (
    ActionItem,
    ActionItemCreate,
    AuditEvent,
    ChangeRequest,
    CheckInCycle,
    CheckInResponse,
    ItemScore,
    Measure,
    MeasureReading,
    Notification,
    Person,
    Plan,
    ScoringCriterion,
    Strategy,
)
from storage.permissions import Actor
from storage.queries.checkins import CheckInSubject
from tests.factories import COORDINATOR, OTHER, OWNER, TEAM
from tests.harness import Bot
from tests.security import ADMIN, seeded_bot, throwaway_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
USERS = (OWNER, OTHER, COORDINATOR, ADMIN)
TODAY = date(2026, 11, 30)  # the harness clock, in every seeded person's zone
OPEN_QUARTER, CLOSED_QUARTER = "FY2027-Q2", "FY2027-Q1"
MEASURE = "hires"
BOOKKEEPING = frozenset({"processed_event"})

# --- the forms, as their builders make them ------------------------------------------------------
# The builders need rows; these mirror what the `bot` fixture seeds (which checks it did).


def _strategy(id_: int, key: str, name: str) -> Strategy:
    return Strategy(id=id_, team_id=TEAM, plan_id=1, key=key, name=name, position=id_)


def _item(number: int, title: str) -> ActionItem:
    moment = datetime(2026, 11, 2, tzinfo=UTC)
    return ActionItem(
        id=number,
        team_id=TEAM,
        department_id=1,
        strategy_id=1,
        number=number,
        ref=f"OIT-{number}",
        title=title,
        owner_id=OWNER,
        created_by="system",
        created_at=moment,
        updated_at=moment,
    )


STRATEGIES = [
    _strategy(1, "equity-projects", "Equity projects"),
    _strategy(2, "workplace-equity", "Workplace equity"),
    _strategy(3, "digital-equity", "Digital equity"),
]
ITEMS = [_item(1, "Develop an equity scoring matrix with DEI"), _item(2, "Hire an equity data analyst")]


def hires() -> Measure:
    """OWNER's measure, as the fixture seeds it."""
    return Measure(
        team_id=TEAM,
        strategy_id=1,
        key=MEASURE,
        name="Hires from the talent pipeline",
        unit="people",
        baseline=0,
        target=40,
        target_date=date(2027, 6, 30),
        owner_id=OWNER,
    )


# The plan's equity scoring matrix, as the fixture seeds it.
CRITERIA = (
    Criterion("need", "How much need does it meet?", 2.0, ("low", "medium", "high", "highest")),
    Criterion("reach", "How many residents does it reach?", 1.0, ("none", "some", "most")),
)
WEIGHTS = {c.key: c.weight for c in CRITERIA}
ORIGINS: list[dict[str, Any]] = [{}, {"home": True}, {"channel": "D0OWNER", "ts": "1764514800.000100"}]
VIEWS_BUILT = {
    ADD_MODAL: build_add_modal(STRATEGIES, owner=OWNER),
    UPDATE_MODAL: build_update_modal(ITEMS[0], metadata={}),
    SNOOZE_MODAL: build_snooze_modal(ITEMS[0], metadata={}),
    CHECKIN_MODAL: build_checkin_modal(OPEN_QUARTER, CheckInSubject(items=ITEMS, measures=[hires()])),
    DECLINE_MODAL: build_decline_modal(1),
    SCORE_MODAL: build_score_modal(
        ScoreCard(ref="OIT-1", title=ITEMS[0].title, criteria=CRITERIA, scores=(), total=0, top=8),
        metadata={},
    ),
}
# Pending requests the fixture files (OWNER asking to move OIT-3 to OIT-8 later), for the decline form.
REQUESTS = range(1, 7)
# Text rules per block (the part before ':'): the limit and whether a line break is allowed.
TEXT_RULES = {
    "title": (TITLE_MAX, False),
    "description": (DESCRIPTION_MAX, True),
    "note": (NOTE_MAX, True),
    "reason": (NOTE_MAX, True),
}


@dataclass(frozen=True)
class Input:
    """One input block of a real modal, as its builder made it."""

    block_id: str
    kind: str
    optional: bool
    element: dict[str, Any]

    @property
    def rule(self) -> tuple[int, bool]:
        """The text rule for this block: (limit, multiline)."""
        return TEXT_RULES[self.block_id.partition(":")[0]]


def inputs_of(view: dict[str, Any]) -> list[Input]:
    """The input blocks of a built view."""
    return [
        Input(b["block_id"], b["element"]["type"], bool(b.get("optional")), b["element"])
        for b in view["blocks"]
        if b["type"] == "input"
    ]


# --- values, good and hostile --------------------------------------------------------------------

Verdict = Literal["ok", "bad", "either"]
Value = tuple[dict[str, Any] | None, Verdict]  # an input's element in state.values (None: left out)

SAFE = st.characters(exclude_categories=("Cs", "Cc"))
FRIENDLY = [
    "Publish the language access plan",
    "مرحبا بالعالم",
    "\u202eevil\u202c and \u200f",
    "\u200b",
    "👩🏽‍💻 data 🚀",
    "<!channel> <!here> <@U0OTHER> <#C0DEI|dei>",
    "{{ 7*7 }} {% raw %} %s%n %(x)s",
    "&amp; &lt; <b>&",
    "'; DROP TABLE action_item; --",
    '=HYPERLINK("http://x")',
    "Z̴̡a̷l̸g̶o",
]
# Refused everywhere: NUL, C0 and C1 controls, DEL and lone surrogates. Several are whitespace to
# str.strip() (\x0b \x0c \r \x1c-\x1f \x85), so a form that strips before checking would drop them.
CONTROLS = [
    "\x00",
    "\x01",
    "\x08",
    "\x0b",
    "\x0c",
    "\r",
    "\x1b",
    "\x1c",
    "\x1f",
    "\x7f",
    "\x80",
    "\x85",
    "\x9f",
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
]
BLANK = ["", "   ", "\u3000", "\n"]


def text_element(value: Any) -> dict[str, Any]:
    """A plain_text_input's state."""
    return {"type": "plain_text_input", "value": value}


def select_element(value: Any) -> dict[str, Any]:
    """A static_select's state with one option chosen."""
    return {
        "type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": value},
    }


def number_element(value: Any) -> dict[str, Any]:
    """A number_input's state."""
    return {"type": "number_input", "value": value}


def date_element(value: Any) -> dict[str, Any]:
    """A datepicker's state."""
    return {"type": "datepicker", "selected_date": value}


def user_element(value: Any) -> dict[str, Any]:
    """A users_select's state."""
    return {"type": "users_select", "selected_user": value}


def insert(text: str, piece: str, where: str) -> str:
    """`text` with `piece` at its start, middle or end."""
    at = {"start": 0, "middle": len(text) // 2, "end": len(text)}[where]
    return text[:at] + piece + text[at:]


def good_text(spec: Input) -> st.SearchStrategy[str]:
    """Text the form must take: visible, within the element's max_length, no controls."""
    limit, multiline = spec.rule
    size = min(limit, int(spec.element.get("max_length") or limit))
    choices = st.one_of(
        st.text(SAFE, min_size=1, max_size=40).filter(lambda s: s.strip() != ""),
        st.sampled_from(FRIENDLY),
        st.sampled_from(["x" * size, "🚀" * size]),
    )
    if multiline:
        choices |= st.sampled_from(["line one\nline two", "a\tb", "para\n\npara"])
    return choices


def text_values(spec: Input) -> dict[Verdict, st.SearchStrategy[Value]]:
    """A plain_text_input: good text, and text the rules refuse (or may take)."""
    limit, multiline = spec.rule
    good = good_text(spec)
    breaks = st.sampled_from(["\n", "\t", "\r\n"])
    bad = st.one_of(
        st.builds(insert, good, st.sampled_from(CONTROLS), st.sampled_from(["start", "middle", "end"])),
        st.sampled_from(["y" * (limit + 1), "🚀" * (limit + 1), "z" * 100_000]),
        *([] if multiline else [st.builds(insert, good, breaks, st.just("middle"))]),
    )
    empty = st.sampled_from(BLANK).map(text_element) | st.sampled_from([None, {"type": "plain_text_input"}])
    return {
        "ok": good.map(lambda v: (text_element(v), "ok")),
        "bad": bad.map(lambda v: (text_element(v), "bad")),
        # A line break in a one-line box the rule allows: Slack's client would not send it.
        "either": breaks.map(lambda b: (text_element(f"one{b}two"), "either" if multiline else "bad")),
        "empty": empty.map(lambda e: (e, "ok" if spec.optional else "bad")),
    }


def select_values(spec: Input) -> dict[Verdict, st.SearchStrategy[Value]]:
    """A static_select: an offered option, or a value the form never offered."""
    offered = [o["value"] for o in spec.element["options"]]
    not_offered = st.one_of(
        st.sampled_from(
            ["", "9" * 23, "9" * 5_000, "\u00b2", "-1", "0", "1.0", " 1", "DONE", "done ", "\x00"]
        ),
        st.text(max_size=30),
        st.integers(),
        st.floats(),
        st.none(),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    ).filter(lambda v: str(v) not in offered)
    empty = st.sampled_from(
        [None, {"type": "static_select", "selected_option": None}, {"type": "static_select"}]
    )
    return {
        "ok": st.sampled_from(offered).map(lambda v: (select_element(v), "ok")),
        "bad": not_offered.map(lambda v: (select_element(v), "bad")),
        "either": st.sampled_from(offered).map(lambda v: (select_element(v), "ok")),
        "empty": empty.map(lambda e: (e, "ok" if spec.optional else "bad")),
    }


def user_values(spec: Input) -> dict[Verdict, st.SearchStrategy[Value]]:
    """A users_select: a user id (known or new), or something no Slack client sends."""
    known = st.sampled_from(USERS) | st.from_regex(r"U0NEW[A-Z0-9]{1,8}", fullmatch=True)
    malformed = [
        "",
        "u0owner",
        "U0 OWNER",
        "<@U0OWNER>",
        "U" + "0" * 40,
        "U0OWNER\x00",
        "X0OWNER",
        "U0\ud800",
    ]
    return {
        "ok": known.map(lambda v: (user_element(v), "ok")),
        "bad": st.sampled_from(malformed).map(lambda v: (user_element(v), "bad")),
        "either": known.map(lambda v: (user_element(v), "ok")),
        "empty": st.sampled_from([None, user_element(None)]).map(
            lambda e: (e, "ok" if spec.optional else "bad")
        ),
    }


def date_values(spec: Input, *, after: date | None) -> dict[Verdict, st.SearchStrategy[Value]]:
    """A datepicker: an ISO date (after `after`, if the form needs that), or not a date at all."""
    low = after.fromordinal(after.toordinal() + 1) if after else date(2000, 1, 1)
    good = st.dates(low, date(2040, 12, 31)).map(date.isoformat)
    malformed = [
        "2027-02-30",
        "2027-13-01",
        "tomorrow",
        "2027/01/15",
        "27-01-15",
        "2027-01-15T00:00",
        " 2027-01-15",
        "\x00",
        "9" * 30,
        "2027-01-1\ud800",
    ]
    bad = st.sampled_from(malformed)
    if after:
        bad |= st.dates(date(1, 1, 1), after).map(date.isoformat)
    # Other ISO spellings and the ends of the calendar: taken or refused, never a 500.
    odd = st.sampled_from(["20270115", "2027-W03-1", "9999-12-31", "0001-01-01", "2026-11-30"])
    return {
        "ok": good.map(lambda v: (date_element(v), "ok")),
        "bad": bad.map(lambda v: (date_element(v), "bad")),
        "either": odd.map(lambda v: (date_element(v), "either")),
        "empty": st.sampled_from([None, date_element(None)]).map(
            lambda e: (e, "ok" if spec.optional else "bad")
        ),
    }


def number_values(spec: Input) -> dict[Verdict, st.SearchStrategy[Value]]:
    """A number_input: whole 0-100 for progress, any finite number for a measure."""
    if spec.element.get("is_decimal_allowed"):
        good = st.one_of(
            st.floats(allow_nan=False, allow_infinity=False).map(repr),
            st.integers(-(10**22), 10**22).map(str),
            st.sampled_from(["-0", "0.0", "1,200", "1e308", "-1.7976931348623157e308", "5e-324", "2" * 23]),
        )
        bad = st.sampled_from(
            [
                "inf",
                "-inf",
                "nan",
                "NaN",
                "Infinity",
                "1e309",
                "-1e309",
                "abc",
                "1.2.3",
                "\x00",
                "1e",
                "0x10",
                "½",
            ]
        )
        odd = st.sampled_from(["\u0661\u0662", "1_000", " 12 ", "\uff11\uff12", "1" * 5_000])
    else:
        low, high = int(spec.element["min_value"]), int(spec.element["max_value"])
        good = st.integers(low, high).map(str)
        bad = st.one_of(
            st.sampled_from(
                ["\u00b2", "1" * 5_000, "9" * 23, "12.5", "abc", "inf", "nan", "1e2", "0x10", "-0", "+5"]
            ),
            st.integers(high + 1, 10**30).map(str),
            st.integers(max_value=low - 1).map(str),
        )
        odd = st.sampled_from(["007", "0" * 50, " 50", "50%", "\u0661\u0662", "\uff15"])
    empty = st.sampled_from(BLANK).map(number_element) | st.sampled_from([None, number_element(None)])
    return {
        "ok": good.map(lambda v: (number_element(v), "ok")),
        "bad": bad.map(lambda v: (number_element(v), "bad")),
        "either": odd.map(lambda v: (number_element(v), "either")),
        "empty": empty.map(lambda e: (e, "ok" if spec.optional else "bad")),
    }


def evidence_values(spec: Input) -> dict[Verdict, st.SearchStrategy[Value]]:
    """The evidence box: a link, or text that is not one."""
    links = st.sampled_from(
        [
            "https://example.org/report.pdf",
            "<https://phila.slack.com/archives/C0OIT/p1764514800000100|the message>",
            "http://intranet.example/doc?id=7&v=2",
            "  https://example.org/padded  ",
        ]
    )
    not_links = st.sampled_from(
        [
            "see drive",
            "javascript:alert(1)",
            "https://",
            "ftp://example.org/x",
            "https://x.org/\x00",
            "\ud800",
        ]
    ) | st.sampled_from(["https://example.org/" + "a" * 600, "https://example.org/a b"])
    empty = st.sampled_from(BLANK).map(text_element) | st.sampled_from([None, text_element(None)])
    return {
        "ok": links.map(lambda v: (text_element(v), "ok")),
        "bad": not_links.map(lambda v: (text_element(v), "bad")),
        "either": st.builds(insert, links, st.sampled_from(CONTROLS), st.just("end")).map(
            lambda v: (text_element(v), "either")
        ),
        "empty": empty.map(lambda e: (e, "ok")),
    }


def checkbox_values(spec: Input) -> dict[Verdict, st.SearchStrategy[Value]]:
    """Checkboxes: some of the offered boxes ticked, or options no client would send."""
    offered = [{"text": o["text"], "value": o["value"]} for o in spec.element["options"]]
    ticked = st.lists(st.sampled_from(offered), max_size=len(offered), unique_by=lambda o: o["value"])
    odd = st.sampled_from([[{"value": "other"}], ["x"], [{"value": 5}], [None], "ticked", [[]]])
    empty = st.sampled_from([None, {"type": "checkboxes"}, {"type": "checkboxes", "selected_options": None}])
    return {
        "ok": ticked.map(lambda v: ({"type": "checkboxes", "selected_options": v}, "ok")),
        "bad": odd.map(lambda v: ({"type": "checkboxes", "selected_options": v}, "either")),
        "either": odd.map(lambda v: ({"type": "checkboxes", "selected_options": v}, "either")),
        "empty": empty.map(lambda e: (e, "ok")),
    }


def values_for(form: str, spec: Input) -> dict[Verdict, st.SearchStrategy[Value]]:
    """The value strategies of one input, by its element type."""
    if spec.kind == "checkboxes":
        return checkbox_values(spec)
    if spec.block_id == "evidence":
        return evidence_values(spec)
    if spec.kind == "plain_text_input":
        return text_values(spec)
    if spec.kind == "static_select":
        return select_values(spec)
    if spec.kind == "users_select":
        return user_values(spec)
    if spec.kind == "datepicker":
        return date_values(spec, after=TODAY if form == SNOOZE_MODAL else None)
    if spec.kind == "number_input":
        return number_values(spec)
    raise AssertionError(f"{form}: no fuzzing for a {spec.kind} input ({spec.block_id}); add it here")


# Inputs of a type Slack never sends: the front door refuses them before any handler runs.
WRONG_TYPES: list[Callable[[str], Any]] = [
    lambda kind: {"type": kind, "value": 60},
    lambda kind: {"type": kind, "value": ["on_track"]},
    lambda kind: {"type": kind, "selected_option": "on_track"},
    lambda kind: {"type": kind, "selected_date": 20270115},
    lambda kind: {"type": kind, "selected_user": {"id": OWNER}},
    lambda kind: "a string where an element belongs",
]


@dataclass
class Submission:
    """One modal submitted: who, the metadata, state.values as sent, and what each spoiled part is."""

    form: str
    user: str
    values: dict[str, Any]
    metadata: str
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    wrong_type: bool = False

    @property
    def refused(self) -> bool:
        """Whether some part of it must be refused."""
        return "bad" in self.verdicts.values()


def metadata_for(form: str, ref: str = "OIT-1", origin: dict[str, Any] | None = None) -> str:
    """The private_metadata the form's builder writes."""
    if form == CHECKIN_MODAL:
        return OPEN_QUARTER
    if form == ADD_MODAL:
        return json.dumps(origin or {})
    if form == DECLINE_MODAL:
        return json.dumps({"request": 1})
    return json.dumps({**(origin or {}), "ref": ref})


def hostile_metadata(form: str) -> st.SearchStrategy[tuple[str, Verdict]]:
    """private_metadata as a client could return it: another item, or nothing like what we wrote."""
    if form == ADD_MODAL:  # the Add form only carries a link back, which decides nothing
        return st.sampled_from(["", "{", "[1]", "null", json.dumps({"source": "javascript:alert(1)"})]).map(
            lambda m: (m, "ok")
        )
    if form == DECLINE_MODAL:
        others = st.sampled_from(REQUESTS).map(lambda n: (json.dumps({"request": n}), "ok"))
        wrong: list[Any] = [True, False, 0, -1, 99, 2**31, 2**63, 10**30, 1.0, "1", None, [1], {"id": 1}]
        return others | st.sampled_from(wrong).map(lambda n: (json.dumps({"request": n}), "bad"))
    if form == CHECKIN_MODAL:
        quarters = [
            CLOSED_QUARTER,
            "FY2031-Q1",
            "",
            "fy2027-q2",
            "\x00",
            "\ud800",
            "FY2027-Q2\x00",
            "Q" * 10_000,
        ]
        return st.sampled_from(quarters).map(lambda q: (q, "bad"))
    refs: list[Any] = [
        "",
        "OIT-999",
        "XYZ-1",
        "OIT-1\x00",
        "OIT-\ud800",
        "A" * 10_000,
        " OIT-1",
        1,
        None,
        ["OIT-1"],
    ]
    hostile = st.sampled_from(refs).map(lambda r: (json.dumps({"ref": r}), "bad"))
    broken = st.sampled_from(["", "{not json", "[1]", "null", '"OIT-1"', "{}"]).map(lambda m: (m, "bad"))
    other = st.sampled_from(["OIT-2", "oit-1"]).map(lambda r: (metadata_for(form, r), "ok"))
    forged = st.just(
        (json.dumps({"ref": "OIT-1", "response_url": "https://evil.example/x", "channel": "C0X"}), "ok")
    )
    return hostile | broken | other | forged


EXTRA_CHECKIN_BLOCKS: list[tuple[str, dict[str, Any]]] = [
    ("status:OIT-999", select_element("on_track")),
    ("status:XYZ-1", select_element("done")),
    ("status:oit-2", select_element("at_risk")),
    ("status:\x00", select_element("on_track")),
    ("status:\ud800", select_element("on_track")),
    ("status:" + "A" * 5_000 + "-1", select_element("on_track")),
    ("measure:nope", number_element("5")),
    ("measure:\x00", number_element("5")),
    ("measure:\ud800", number_element("5")),
    ("measure:" + "m" * 5_000, number_element("5")),
    ("progress:OIT-999", number_element("5")),
    (f"group:{MEASURE}:black", number_element("5")),
    ("group:\x00:black", number_element("5")),
    ("group:\ud800:black", number_element("5")),
    (f"group:{MEASURE}:\ud800", number_element("nan")),
    ("note:OIT-999", text_element("a note for nothing")),
]


@st.composite
def submissions(draw: st.DrawFn, form: str) -> Submission:
    """A form filled in well, then up to two inputs spoiled, maybe the metadata, extra blocks,
    or one input of the wrong type."""
    specs = inputs_of(VIEWS_BUILT[form])
    strategies = {spec.block_id: values_for(form, spec) for spec in specs}
    values: dict[str, Any] = {}
    verdicts: dict[str, Verdict] = {}
    spoiled = draw(st.lists(st.sampled_from([s.block_id for s in specs]), max_size=2, unique=True))
    for spec in specs:
        way = draw(st.sampled_from(["bad", "either", "empty"])) if spec.block_id in spoiled else "ok"
        element, verdict = draw(strategies[spec.block_id][way])
        if element is not None:
            values[spec.block_id] = {"value": element}
        if verdict != "ok":
            verdicts[spec.block_id] = verdict
    metadata = metadata_for(form, origin=draw(st.sampled_from(ORIGINS)))
    if form == DECLINE_MODAL:
        metadata = json.dumps({"request": draw(st.sampled_from(REQUESTS))})
    if draw(st.integers(0, 4)) == 0:
        metadata, verdict = draw(hostile_metadata(form))
        if verdict != "ok":
            verdicts["private_metadata"] = verdict
    if form == CHECKIN_MODAL:
        for block_id, element in draw(st.lists(st.sampled_from(EXTRA_CHECKIN_BLOCKS), max_size=2)):
            values[block_id] = {"value": element}
            verdicts[block_id] = "either"
    else:
        known = {spec.block_id for spec in specs}
        extra = draw(
            st.dictionaries(st.text(max_size=12), st.text(max_size=12).map(text_element), max_size=2)
        )
        values |= {k: {"value": e} for k, e in extra.items() if k not in known}
    wrong_type = bool(specs) and draw(st.integers(0, 7)) == 0
    if wrong_type:
        target = draw(st.sampled_from(specs))
        values[target.block_id] = {"value": draw(st.sampled_from(WRONG_TYPES))(target.kind)}
    return Submission(form, draw(st.sampled_from(USERS)), values, metadata, verdicts, wrong_type)


def submitted(
    form: str,
    user: str,
    changes: dict[str, Value] | None = None,
    *,
    metadata: str | None = None,
    bad_metadata: bool = False,
) -> Submission:
    """An example: the form filled in well, with the blocks in `changes` replaced (None: left out)."""
    values: dict[str, Any] = {block: {"value": element} for block, element in GOOD[form].items()}
    verdicts: dict[str, Verdict] = {"private_metadata": "bad"} if bad_metadata else {}
    for block, (element, verdict) in (changes or {}).items():
        if element is None:
            values.pop(block, None)
        else:
            values[block] = {"value": element}
        if verdict != "ok":
            verdicts[block] = verdict
    return Submission(form, user, values, metadata if metadata is not None else metadata_for(form), verdicts)


GOOD: dict[str, dict[str, dict[str, Any]]] = {
    ADD_MODAL: {
        "title": text_element("Map the Wi-Fi gaps"),
        "strategy": select_element("3"),
        "owner": user_element(OWNER),
        "due": date_element("2027-03-31"),
        "description": text_element("With the libraries"),
    },
    UPDATE_MODAL: {
        "status": select_element("on_track"),
        "progress": number_element("60"),
        "due": date_element("2027-01-15"),
        "note": text_element("Vendor chosen"),
    },
    SNOOZE_MODAL: {"until": date_element("2027-01-04")},
    SCORE_MODAL: {
        f"{CRITERION_BLOCK}need": select_element("3"),
        f"{CRITERION_BLOCK}reach": select_element("1"),
        "note": text_element("Serves four high-need tracts"),
    },
    DECLINE_MODAL: {"reason": text_element("The vendor can still deliver by the original date")},
    CHECKIN_MODAL: {
        "status:OIT-1": select_element("on_track"),
        "progress:OIT-1": number_element("50"),
        "note:OIT-1": text_element("Draft matrix shared"),
        "status:OIT-2": select_element("at_risk"),
        "progress:OIT-2": number_element("20"),
        f"measure:{MEASURE}": number_element("12"),
    },
}


# --- the running bot and the state a submission may change ----------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bot]:
    """One bot per backend: the OIT plan, the measure `hires` of OWNER, FY2027-Q2 open, Q1 closed,
    and OWNER's pending requests to move OIT-3 to OIT-8 later."""
    async with (
        throwaway_database(request.param, tmp_path_factory.mktemp("forms")) as url,
        seeded_bot(url) as bot,
    ):
        await bot.app.learn_identity()
        moment = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
        async with transaction(bot.sessions) as session:
            session.add(hires())
            session.add(
                CheckInCycle(
                    team_id=TEAM,
                    quarter=OPEN_QUARTER,
                    meeting_date=date(2027, 1, 21),
                    opens_on=date(2026, 11, 2),
                    due_on=date(2027, 1, 14),
                    opened_at=moment,
                    opened_by=ADMIN,
                )
            )
            session.add(
                CheckInCycle(
                    team_id=TEAM,
                    quarter=CLOSED_QUARTER,
                    meeting_date=date(2026, 10, 15),
                    opened_at=moment,
                    closed_at=moment,
                    opened_by=ADMIN,
                )
            )
        async with transaction(bot.sessions) as session:
            plan = (await session.exec(select(Plan))).one()
            for position, criterion in enumerate(CRITERIA):
                session.add(
                    ScoringCriterion(
                        team_id=TEAM,
                        plan_id=plan.id or 0,
                        key=criterion.key,
                        question=criterion.question,
                        weight=criterion.weight,
                        levels=list(criterion.levels),
                        position=position,
                    )
                )
        async with bot.sessions() as session:
            strategies = {s.id: s.key for s in await session.exec(select(Strategy))}
            items = {i.ref: (i.id, i.owner_id) for i in await session.exec(select(ActionItem))}
        # The forms above were built from these rows' twins.
        assert strategies == {s.id: s.key for s in STRATEGIES}
        assert items == {i.ref: (i.id, i.owner_id) for i in ITEMS}
        async with transaction(bot.sessions) as session:
            for number in REQUESTS:
                item = await create_item(
                    session,
                    data=ActionItemCreate(
                        title=f"Commitment {number}", owner_id=OWNER, due=date(2026, 12, 15), strategy_id=2
                    ),
                    actor=Actor.system(TEAM),
                    now=moment,
                )
                session.add(
                    ChangeRequest(
                        team_id=TEAM,
                        item_id=item.id or 0,
                        department_id=item.department_id,
                        open_item_id=item.id,
                        kind="redate",
                        old_value="2026-12-15",
                        new_value="2027-03-01",
                        reason="The vendor slipped",
                        requested_by=OWNER,
                        requested_at=moment,
                    )
                )
        async with bot.sessions() as session:
            assert [r.id for r in await session.exec(select(ChangeRequest))] == list(REQUESTS)
        yield QuietBot(**{f.name: getattr(bot, f.name) for f in fields(bot)})


@dataclass(repr=False)
class QuietBot(Bot):
    """The running bot, named in one line when Hypothesis prints a failing example."""

    def __repr__(self) -> str:
        return f"Bot({self.url})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@dataclass
class State:
    """Everything a modal could change, read from the database."""

    counts: dict[str, int]
    items: dict[str, dict[str, Any]]
    people: set[str]
    readings: dict[tuple[str, str], tuple[float, str | None]]
    responses: dict[tuple[str, str], tuple[str, int, str | None, str]]
    requests: dict[int, tuple[str, str | None, str | None, int | None, str]]
    notices: dict[str, str]
    scores: dict[tuple[str, str], tuple[int, float, str | None, str]]
    last_audit: int


async def capture(bot: Bot) -> State:
    """The database now."""
    async with bot.sessions() as session:
        counts = {
            table.name: int((await session.exec(select(func.count()).select_from(table))).one())
            for table in SQLModel.metadata.sorted_tables
            if table.name not in BOOKKEEPING
        }
        items = {i.ref: i.model_dump() for i in await session.exec(select(ActionItem))}
        refs = {row["id"]: ref for ref, row in items.items()}
        people = {p.user_id for p in await session.exec(select(Person))}
        measures = {m.id: m.key for m in await session.exec(select(Measure))}
        readings = {
            (measures[r.measure_id], r.quarter): (r.value, r.note)
            for r in await session.exec(select(MeasureReading))
        }
        quarters = {c.id: c.quarter for c in await session.exec(select(CheckInCycle))}
        responses = {
            (quarters[r.cycle_id], refs[r.item_id]): (r.status, r.progress, r.note, r.responder)
            for r in await session.exec(select(CheckInResponse))
        }
        requests = {
            r.id or 0: (r.state, r.decision_note, r.decided_by, r.open_item_id, refs[r.item_id])
            for r in await session.exec(select(ChangeRequest))
        }
        notices = {n.key: n.recipient for n in await session.exec(select(Notification))}
        scores = {
            (refs[s.item_id], s.criterion_key): (s.level, s.weight, s.note, s.scored_by)
            for s in await session.exec(select(ItemScore))
        }
        last = (await session.exec(select(func.max(AuditEvent.id)))).one() or 0
    return State(counts, items, people, readings, responses, requests, notices, scores, int(last))


async def audits_since(bot: Bot, last: int) -> list[AuditEvent]:
    """Audit events written after id `last`, oldest first."""
    async with bot.sessions() as session:
        query = select(AuditEvent).where(col(AuditEvent.id) > last).order_by(col(AuditEvent.id))
        return list(await session.exec(query))


# --- what a success must have written --------------------------------------------------------------

# Set on the side of a change, never audited on their own: when, and a snooze a new date ends.
# The evidence link is stored with a status change but has no audit event of its own (so the
# Update oracle checks it is the link submitted).
SIDE_FIELDS = {
    "updated_at",
    "completed_at",
    "snoozed_until",
    "last_note",
    "verified_at",
    "verified_by",
    "evidence_url",
}
# What no form changes: who an item is, and where it sits.
IDENTITY = {
    "id",
    "team_id",
    "department_id",
    "strategy_id",
    "number",
    "ref",
    "import_key",
    "created_at",
    "created_by",
}


def element(sub: Submission, block: str) -> dict[str, Any]:
    """The submitted element of `block` ({} if left out)."""
    return dict((sub.values.get(block) or {}).get("value") or {})


def chosen(sub: Submission, block: str) -> str | None:
    """The option value chosen in a select."""
    value = (element(sub, block).get("selected_option") or {}).get("value")
    return None if value is None else str(value)


def typed(sub: Submission, block: str, key: str = "value") -> str:
    """The string typed or picked in an input ('' if none)."""
    return str(element(sub, block).get(key) or "")


def picked_date(sub: Submission, block: str) -> date | None:
    """The date picked, or None."""
    raw = typed(sub, block, "selected_date")
    return date.fromisoformat(raw) if raw else None


def counts_changed(before: State, after: State, **delta: int) -> None:
    """Row counts moved by exactly `delta` (audit_event is checked event by event)."""
    expected = {t: n + delta.get(t, 0) for t, n in before.counts.items()}
    expected["audit_event"] = after.counts["audit_event"]
    assert after.counts == expected


def items_unchanged_but(before: State, after: State, refs: set[str]) -> None:
    """Every item not in `refs` is exactly as it was."""
    for ref, row in before.items.items():
        if ref not in refs:
            assert after.items[ref] == row, f"{ref} changed though the form was not about it"


def audited(before: State, after: State, events: list[AuditEvent], user: str) -> None:
    """Each item field that changed has its audit event (old -> new), and every event says what
    the row now holds; all by the submitter, in the workspace."""
    assert all(e.actor == user and e.team_id == TEAM for e in events), [(e.actor, e.action) for e in events]
    ids = {row["id"]: ref for ref, row in after.items.items()}
    trail: dict[tuple[str, str], list[AuditEvent]] = {}
    notes: dict[str, set[str | None]] = {}
    for event in events:
        if event.entity != "item":
            continue
        ref = ids[event.entity_id]
        notes.setdefault(ref, set()).add(event.note)
        if event.field:
            trail.setdefault((ref, event.field), []).append(event)
    for ref, now in after.items.items():
        then = before.items.get(ref)
        if then is None:
            continue
        for name, value in now.items():
            changed = then[name] != value
            if name in SIDE_FIELDS and not (name == "snoozed_until" and changed and value is not None):
                continue
            history = trail.get((ref, name), [])
            if changed:
                assert history, f"{ref}.{name} changed {then[name]!r} -> {value!r} without an audit event"
            if history:
                assert history[0].old == audit_text(then[name]) and history[-1].new == audit_text(value), (
                    ref,
                    name,
                )
        if now["last_note"] != then["last_note"]:
            assert now["last_note"] in notes.get(ref, set()), f"{ref}'s note changed without an audit event"


def status_after(then: dict[str, Any], status: str, progress: int) -> tuple[str, int]:
    """(status, progress) once a form set them: done means 100%, and a done item keeps its progress."""
    if status == ItemStatus.DONE.value:
        return status, 100 if then["status"] != status else then["progress"]
    return status, progress


def add_wrote(sub: Submission, before: State, after: State, events: list[AuditEvent]) -> None:
    """One new item, exactly as typed (trimmed), its creation audited; a new owner becomes a Person."""
    new = set(after.items) - set(before.items)
    assert len(new) == 1, new
    row = after.items[new.pop()]
    owner = typed(sub, "owner", "selected_user")
    assert (row["title"], row["description"]) == (
        typed(sub, "title").strip(),
        typed(sub, "description").strip(),
    )
    assert (row["owner_id"], row["strategy_id"], row["due"]) == (
        owner,
        int(chosen(sub, "strategy") or 0),
        picked_date(sub, "due"),
    )
    assert (row["status"], row["progress"], row["last_note"], row["created_by"]) == (
        "not_started",
        0,
        None,
        sub.user,
    )
    items_unchanged_but(before, after, set())
    assert after.people == before.people | {owner}
    # An owner given an item hears of it in their next digest: a notice owed to them, none to others.
    notices = {key: to for key, to in after.notices.items() if key not in before.notices}
    assert set(notices.values()) <= {owner}, notices
    counts_changed(
        before, after, action_item=1, person=len(after.people - before.people), notification=len(notices)
    )
    assert [(e.action, e.entity_id, e.new, e.actor) for e in events] == [
        ("create", row["id"], row["title"], sub.user)
    ]


def update_wrote(sub: Submission, before: State, after: State, events: list[AuditEvent]) -> None:
    """Only the item the modal was opened for changed, each field to what the form says or not at
    all (a later due date or a drop may wait for a coordinator as a request); the note is kept."""
    ref = str(json.loads(sub.metadata)["ref"]).upper()
    then, now = before.items[ref], after.items[ref]
    status, progress = str(chosen(sub, "status")), int(typed(sub, "progress").strip().rstrip("%"))
    note, evidence = typed(sub, "note").strip() or None, typed(sub, "evidence").strip()
    may_become = {
        "status": {status},
        "progress": {progress, 100 if status == ItemStatus.DONE.value else progress},
        "due": {picked_date(sub, "due")},
        "last_note": {note},
        "evidence_url": {check_evidence(evidence) if evidence else None},
    }
    for name, values in may_become.items():
        assert now[name] in values | {then[name]}, f"{ref}.{name} became {now[name]!r}, not {values}"
    if note:
        assert now["last_note"] == note
    kept = IDENTITY | {"title", "description", "owner_id"}
    assert {k: now[k] for k in kept} == {k: then[k] for k in kept}
    items_unchanged_but(before, after, {ref})
    filed = {n: r for n, r in after.requests.items() if n not in before.requests}
    assert all(r[0] == "pending" and r[4] == ref for r in filed.values()), filed
    assert {n: after.requests[n] for n in before.requests} == before.requests
    counts_changed(before, after, change_request=len(filed))
    audited(before, after, events, sub.user)


def decline_wrote(sub: Submission, before: State, after: State, events: list[AuditEvent]) -> None:
    """The one request is declined with the reason as typed (trimmed); the item keeps its values."""
    number = json.loads(sub.metadata)["request"]
    state, _, _, _, ref = before.requests[number]
    assert state == "pending"
    assert after.requests[number] == ("declined", typed(sub, "reason").strip(), sub.user, None, ref)
    assert {n: r for n, r in after.requests.items() if n != number} == {
        n: r for n, r in before.requests.items() if n != number
    }
    items_unchanged_but(before, after, set())
    counts_changed(before, after)
    assert [(e.action, e.actor, e.entity_id) for e in events] == [
        ("decline", sub.user, before.items[ref]["id"])
    ]


def snooze_wrote(sub: Submission, before: State, after: State, events: list[AuditEvent]) -> None:
    """The item is snoozed until the date picked, and nothing else about it changed."""
    ref = str(json.loads(sub.metadata)["ref"]).upper()
    then, now = before.items[ref], after.items[ref]
    assert now["snoozed_until"] == picked_date(sub, "until")
    assert {k: v for k, v in now.items() if k not in SIDE_FIELDS} == {
        k: v for k, v in then.items() if k not in SIDE_FIELDS
    }
    items_unchanged_but(before, after, {ref})
    counts_changed(before, after)
    audited(before, after, events, sub.user)


def checkin_wrote(sub: Submission, before: State, after: State, events: list[AuditEvent]) -> None:
    """Every item answered holds its answer and has a response for the quarter; every reading is
    recorded as typed; nothing else changed."""
    quarter = sub.metadata
    answered: dict[str, tuple[str, int, str | None]] = {}
    readings: dict[str, float] = {}
    for block in sub.values:
        kind, _, key = block.partition(":")
        if kind == "status":
            note = typed(sub, f"note:{key}").strip() or None
            answered[key.upper()] = (str(chosen(sub, block)), int(typed(sub, f"progress:{key}")), note)
        elif kind == "measure" and typed(sub, block):
            readings[key] = float(typed(sub, block).replace(",", ""))
    for ref, (status, progress, note) in answered.items():
        then, now = before.items[ref], after.items[ref]
        assert (now["status"], now["progress"]) == status_after(then, status, progress), ref
        assert now["last_note"] == (note or then["last_note"]), ref
        response = after.responses[(quarter, ref)]
        assert response == (status, 100 if status == "done" else progress, note, sub.user), (ref, response)
    for key, value in readings.items():
        assert after.readings[(key, quarter)][0] == value, (key, after.readings[(key, quarter)], value)
    items_unchanged_but(before, after, set(answered))
    assert {k: v for k, v in after.responses.items() if k[1] not in answered} == {
        k: v for k, v in before.responses.items() if k[1] not in answered
    }
    assert {k: v for k, v in after.readings.items() if k[0] not in readings} == {
        k: v for k, v in before.readings.items() if k[0] not in readings
    }
    new_responses = len(set(after.responses) - set(before.responses))
    new_readings = len(set(after.readings) - set(before.readings))
    counts_changed(before, after, checkin_response=new_responses, measure_reading=new_readings)
    audited(before, after, events, sub.user)


def score_wrote(sub: Submission, before: State, after: State, events: list[AuditEvent]) -> None:
    """Each criterion given a level holds it, at the criterion's weight, with the note and the
    scorer, each audited; every other score and every item is as it was."""
    ref = str(json.loads(sub.metadata)["ref"]).upper()
    note = typed(sub, "note").strip() or None
    given = {
        block.removeprefix(CRITERION_BLOCK): int(level)
        for block in sub.values
        if block.startswith(CRITERION_BLOCK) and (level := chosen(sub, block)) is not None
    }
    assert given, "a form with no level chosen is refused"
    for key, level in given.items():
        assert after.scores[(ref, key)] == (level, WEIGHTS[key], note, sub.user), key
    untouched = {k for k in before.scores | after.scores if k[0] != ref or k[1] not in given}
    assert {k: after.scores.get(k) for k in untouched} == {k: before.scores.get(k) for k in untouched}
    items_unchanged_but(before, after, set())
    counts_changed(before, after, item_score=len(set(after.scores) - set(before.scores)))
    assert sorted((e.action, e.field, e.actor) for e in events) == sorted(
        ("score", key, sub.user) for key in given
    )


WROTE = {
    ADD_MODAL: add_wrote,
    UPDATE_MODAL: update_wrote,
    SNOOZE_MODAL: snooze_wrote,
    CHECKIN_MODAL: checkin_wrote,
    DECLINE_MODAL: decline_wrote,
    SCORE_MODAL: score_wrote,
}


# --- the property ----------------------------------------------------------------------------------


def form_errors(response: httpx.Response) -> dict[str, str] | None:
    """The inline errors of a refusal, or None for a success (an empty 200)."""
    assert response.status_code == 200, (response.status_code, response.text[:500])
    if not response.text:
        return None
    body = response.json()
    assert body.get("response_action") == "errors", body
    errors = body["errors"]
    assert isinstance(errors, dict) and errors, body
    return {str(k): str(v) for k, v in errors.items()}


PER_ITEM = ("status", "progress", "note")


def named_blocks(sub: Submission) -> set[str]:
    """Blocks an error may name: the form's inputs, those submitted, and the status, progress and
    note of every item a check-in names (an error goes under them even if they were left out)."""
    inputs = {b["block_id"] for b in VIEWS_BUILT[sub.form]["blocks"] if b["type"] == "input"}
    refs = [block.partition(":")[2] for block in sub.values if block.partition(":")[0] in PER_ITEM]
    return inputs | set(sub.values) | {f"{kind}:{ref}" for ref in refs for kind in PER_ITEM}


async def check(bot: Bot, sub: Submission) -> None:
    """Submit and judge: the answer, and the database against it."""
    view = {**VIEWS_BUILT[sub.form], "private_metadata": sub.metadata}
    before = await capture(bot)

    response = await bot.interact(bot.view_submission(sub.user, view, sub.values))

    after, events = await capture(bot), await audits_since(bot, before.last_audit)
    assert "Traceback" not in response.text and 'File "' not in response.text, response.text[:500]
    if sub.wrong_type:
        assert response.status_code == 400, (response.status_code, response.text[:500])
        assert (after, events) == (before, []), "an input of the wrong type changed the database"
        return
    errors = form_errors(response)
    if errors is not None:
        blocks = named_blocks(sub)
        assert set(errors) <= blocks, f"errors name blocks the form does not have: {set(errors) - blocks}"
        assert all(0 < len(message) <= 300 for message in errors.values()), errors
        assert DATABASE_DOWN not in errors.values(), f"the database is up, yet the person was told {errors}"
        assert (after, events) == (before, []), f"refused ({errors}) yet the database changed"
        return
    assert not sub.refused, f"{sub.verdicts} should have been refused, but the form was taken"
    WROTE[sub.form](sub, before, after, events)


# Every registered modal is fuzzed here; a new one must join.
assert set(VIEWS) == set(VIEWS_BUILT), set(VIEWS) ^ set(VIEWS_BUILT)


@FUZZ
@given(sub=submissions(ADD_MODAL))
@example(sub=submitted(ADD_MODAL, OWNER))
@example(sub=submitted(ADD_MODAL, ADMIN, {"owner": (user_element("U0NEWPERSON"), "ok")}))
@example(sub=submitted(ADD_MODAL, OWNER, {"title": (text_element("\x00"), "bad")}))
@example(sub=submitted(ADD_MODAL, OWNER, {"strategy": (select_element("9" * 23), "bad")}))
@example(sub=submitted(ADD_MODAL, OWNER, {"description": (text_element("x" * (DESCRIPTION_MAX + 1)), "bad")}))
# Found by this test: the title was trimmed before its check, so \x1f and \x85 at either end
# (whitespace to str.strip) were dropped without a word.
@example(sub=submitted(ADD_MODAL, OWNER, {"title": (text_element("Map the gaps\x1f"), "bad")}))
@example(sub=submitted(ADD_MODAL, OWNER, {"description": (text_element("\x85With the libraries"), "bad")}))
async def test_the_add_form_takes_what_was_typed_or_names_what_it_refuses(bot: Bot, sub: Submission):
    await check(bot, sub)


@FUZZ
@given(sub=submissions(UPDATE_MODAL))
@example(sub=submitted(UPDATE_MODAL, OWNER))
@example(sub=submitted(UPDATE_MODAL, COORDINATOR, {"status": (select_element("done"), "ok")}))
@example(sub=submitted(UPDATE_MODAL, OTHER))
# Found by this test: "²" passes str.isdigit() and then int() raised, as did 5,000 digits: a 500.
@example(sub=submitted(UPDATE_MODAL, OWNER, {"progress": (number_element("\u00b2"), "bad")}))
@example(sub=submitted(UPDATE_MODAL, OWNER, {"progress": (number_element("1" * 5_000), "bad")}))
# Found by this test: a leading vertical tab was trimmed off the note and the rest saved.
@example(sub=submitted(UPDATE_MODAL, OWNER, {"note": (text_element("\x0bVendor chosen"), "bad")}))
# Found by this test: a lone surrogate in the metadata's ref failed the query (a 500); NUL does on
# PostgreSQL, and was answered as if the database were down.
@example(sub=submitted(UPDATE_MODAL, OWNER, metadata=json.dumps({"ref": "OIT-\ud800"}), bad_metadata=True))
@example(sub=submitted(UPDATE_MODAL, OWNER, metadata=json.dumps({"ref": "OIT-1\x00"}), bad_metadata=True))
async def test_the_update_form_takes_what_was_typed_or_names_what_it_refuses(bot: Bot, sub: Submission):
    await check(bot, sub)


@FUZZ
@given(sub=submissions(SNOOZE_MODAL))
@example(sub=submitted(SNOOZE_MODAL, OWNER))
@example(sub=submitted(SNOOZE_MODAL, OWNER, {"until": (date_element("2026-11-30"), "bad")}))
@example(sub=submitted(SNOOZE_MODAL, OWNER, {"until": (date_element("9999-12-31"), "either")}))
@example(sub=submitted(SNOOZE_MODAL, OWNER, metadata=json.dumps({"ref": "\udfff"}), bad_metadata=True))
async def test_the_snooze_form_takes_the_date_picked_or_names_what_it_refuses(bot: Bot, sub: Submission):
    await check(bot, sub)


@FUZZ
@given(sub=submissions(CHECKIN_MODAL))
@example(sub=submitted(CHECKIN_MODAL, OWNER))
@example(sub=submitted(CHECKIN_MODAL, OWNER, {f"measure:{MEASURE}": (number_element("nan"), "bad")}))
@example(sub=submitted(CHECKIN_MODAL, OWNER, {f"measure:{MEASURE}": (number_element("1e309"), "bad")}))
@example(sub=submitted(CHECKIN_MODAL, OWNER, metadata=CLOSED_QUARTER, bad_metadata=True))
# Found by this test: "²" and 5,000 digits as progress were a 500, as in the Update form.
@example(sub=submitted(CHECKIN_MODAL, OWNER, {"progress:OIT-2": (number_element("\u00b2"), "bad")}))
@example(sub=submitted(CHECKIN_MODAL, OWNER, {"progress:OIT-1": (number_element("9" * 5_000), "bad")}))
@example(sub=submitted(CHECKIN_MODAL, OWNER, {"note:OIT-1": (text_element("Shared\x1c"), "bad")}))
# Found by this test: an item's progress and note without its status were dropped without a word.
@example(sub=submitted(CHECKIN_MODAL, OWNER, {"status:OIT-1": (None, "bad")}))
# Found by this test: a block id or quarter the database cannot take in a query (a lone
# surrogate; NUL on PostgreSQL) was a 500, or answered as if the database were down.
@example(sub=submitted(CHECKIN_MODAL, OWNER, {"status:OIT-\ud800": (select_element("on_track"), "either")}))
@example(sub=submitted(CHECKIN_MODAL, OWNER, {"measure:\x00": (number_element("5"), "either")}))
@example(sub=submitted(CHECKIN_MODAL, OWNER, metadata="FY2027-Q2\x00", bad_metadata=True))
@example(sub=submitted(CHECKIN_MODAL, OWNER, metadata="\ud800", bad_metadata=True))
@example(sub=submitted(CHECKIN_MODAL, OWNER, {"group:\ud800:black": (number_element("5"), "either")}))
@example(sub=submitted(CHECKIN_MODAL, OWNER, {"group:\x00:black": (number_element("5"), "either")}))
async def test_the_checkin_form_takes_every_answer_or_names_what_it_refuses(bot: Bot, sub: Submission):
    await check(bot, sub)


@FUZZ
@given(sub=submissions(DECLINE_MODAL))
@example(sub=submitted(DECLINE_MODAL, COORDINATOR, metadata=json.dumps({"request": 6})))
@example(sub=submitted(DECLINE_MODAL, OWNER, metadata=json.dumps({"request": 5})))
@example(sub=submitted(DECLINE_MODAL, ADMIN, {"reason": (text_element("   "), "bad")}))
# Found by this test: `true` passed isinstance(int) and declined request 1; 2**31 and 10**30 failed
# the query (answered as if the database were down); a leading \x85 was trimmed off the reason.
@example(sub=submitted(DECLINE_MODAL, COORDINATOR, metadata=json.dumps({"request": True}), bad_metadata=True))
@example(
    sub=submitted(DECLINE_MODAL, COORDINATOR, metadata=json.dumps({"request": 10**30}), bad_metadata=True)
)
@example(
    sub=submitted(DECLINE_MODAL, COORDINATOR, metadata=json.dumps({"request": 2**31}), bad_metadata=True)
)
@example(sub=submitted(DECLINE_MODAL, COORDINATOR, {"reason": (text_element("\x85Not now"), "bad")}))
async def test_the_decline_form_records_the_reason_or_names_what_it_refuses(bot: Bot, sub: Submission):
    await check(bot, sub)


@FUZZ
@given(sub=submissions(SCORE_MODAL))
@example(sub=submitted(SCORE_MODAL, OWNER))
@example(sub=submitted(SCORE_MODAL, COORDINATOR, {f"{CRITERION_BLOCK}reach": (None, "ok")}))
@example(sub=submitted(SCORE_MODAL, OTHER))
@example(sub=submitted(SCORE_MODAL, OWNER, {f"{CRITERION_BLOCK}need": (select_element(" 1"), "bad")}))
@example(sub=submitted(SCORE_MODAL, OWNER, {f"{CRITERION_BLOCK}need": (select_element("9"), "bad")}))
@example(sub=submitted(SCORE_MODAL, OWNER, {"note": (text_element("\x85Serves four tracts"), "bad")}))
@example(sub=submitted(SCORE_MODAL, OWNER, metadata=json.dumps({"ref": "OIT-1\x00"}), bad_metadata=True))
async def test_the_score_form_takes_the_levels_chosen_or_names_what_it_refuses(bot: Bot, sub: Submission):
    await check(bot, sub)
