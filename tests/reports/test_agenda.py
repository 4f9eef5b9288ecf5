"""The DEI meeting agenda as a document for the meeting packet."""

from __future__ import annotations

from datetime import date

from domain.agenda import Agenda, AgendaItem, AgendaMeasure, FollowUp, Headline
from reports.agenda import render_agenda_html, render_agenda_markdown

AGENDA = Agenda(
    quarter="FY2027-Q2",
    meeting_date=date(2027, 1, 21),
    as_of=date(2027, 1, 15),
    headline=Headline(items=17, percent_complete=41.2, on_time_rate=0.5, overdue=3, response_rate=0.8),
    decisions_needed=[
        AgendaItem(
            ref="OIT-13",
            title="Deploy public Wi-Fi <script>",
            department="OIT",
            owner_id="U0WIFILEAD",
            status="blocked",
            due=date(2027, 4, 30),
            reasons=("blocked",),
        )
    ],
    measures=[
        AgendaMeasure(
            key="home-internet",
            name="Households with home broadband",
            department="OIT",
            status="off_track",
            reasons=("off track", "the gap for High-need tracts did not narrow since last quarter"),
        )
    ],
    followups=[
        FollowUp(
            text="Ask Streets for a permit fast lane",
            quarter="FY2027-Q1",
            ref="OIT-18",
            owner_id="U0WIFILEAD",
            due=date(2027, 1, 8),
            outcome="done",
        )
    ],
)
NAMES = {"U0WIFILEAD": "Wireless Infrastructure Lead"}


def test_the_markdown_agenda_has_each_section_with_people_by_name():
    text = render_agenda_markdown(AGENDA, names=NAMES)
    assert text.startswith("# DEI meeting agenda: FY2027-Q2\n\nMeeting on 2027-01-21 · prepared 2027-01-15\n")
    assert "- 17 items · 41% complete · on-time completion 50%" in text
    assert (
        "- **OIT-13** Deploy public Wi-Fi &lt;script&gt;"
        " (OIT, Wireless Infrastructure Lead, due 2027-04-30): blocked" in text
    )
    assert "the gap for High-need tracts did not narrow since last quarter" in text
    assert (
        "- Ask Streets for a permit fast lane"
        " (FY2027-Q1, OIT-18, Wireless Infrastructure Lead, due 2027-01-08): **done**" in text
    )


def test_the_html_agenda_escapes_user_text():
    page = render_agenda_html(AGENDA, names=NAMES)
    assert "<h2>Items needing a decision (1)</h2>" in page
    assert "Deploy public Wi-Fi &lt;script&gt;" in page and "<script>" not in page
