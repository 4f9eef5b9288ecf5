"""The site's pages as HTML: landmarks, one h1, a skip link, captioned tables, the right language,
user text as text; a provisional quarter is marked and gets its own pages."""

from __future__ import annotations

import re
from datetime import date
from html.parser import HTMLParser

import pytest

from domain.public import Disclosure, Edition, PublicDepartment, PublicItem, PublicStrategy, Text
from reports.site import render_site
from reports.site.render import UnsafeName, safe_name

HOSTILE = '<img src=x onerror="alert(1)">'


def edition(
    quarter: str = "FY2027-Q2", *, provisional: bool = False, name: str = "Office of Innovation"
) -> Edition:
    """A one-department quarter with two items and no measures."""
    items = [
        PublicItem(
            ref="OIT-1",
            title=Text("Hire an analyst", "Contratar"),
            status="on_track",
            progress=40,
            due=date(2027, 3, 1),
        ),
        PublicItem(
            ref="OIT-2",
            title=Text(HOSTILE),
            status="blocked",
            progress=0,
            due=date(2026, 12, 1),
            days_overdue=50,
        ),
    ]
    strategy = PublicStrategy(
        key="equity",
        name=Text("Equity projects"),
        description="",
        counts={"on_track": 1, "blocked": 1},
        percent_complete=20.0,
        items=items,
        measures=[],
    )
    department = PublicDepartment(
        key="OIT",
        name=Text(name),
        plan_title=Text("OIT plan"),
        strategies=[strategy],
        counts={"on_track": 1, "blocked": 1},
        percent_complete=20.0,
        on_time_rate=None,
        verified=0,
        overdue=1,
        show=Disclosure(),
    )
    return Edition(
        quarter=quarter,
        as_of=date(2027, 1, 20) if provisional else date(2026, 12, 31),
        provisional=provisional,
        frozen_on=None if provisional else date(2027, 1, 15),
        departments=[department],
        amendments=[],
        dimensions=[],
        readings=[],
        min_group_count=10,
    )


class Outline(HTMLParser):
    """What a page is made of: its lang, headings, landmarks, tables and the first link."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.headings: list[int] = []
        self.tags: list[str] = []
        self.first_link: str | None = None
        self.th_without_scope = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append(tag)
        if tag == "html":
            self.lang = values.get("lang")
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "a" and self.first_link is None:
            self.first_link = values.get("href")
        if tag == "th" and "scope" not in values:
            self.th_without_scope += 1


def outline(html: bytes) -> Outline:
    parser = Outline()
    parser.feed(html.decode("utf-8"))
    return parser


def test_every_page_has_one_h1_headings_in_order_a_skip_link_and_its_language():
    files = render_site([edition()])
    pages = {path: content for path, content in files.items() if path.endswith(".html")}
    assert len(pages) == 9  # landing, and per language: overview, department, methodology, data
    for path, content in pages.items():
        page = outline(content)
        assert page.headings.count(1) == 1, path
        assert all(b - a <= 1 for a, b in zip(page.headings, page.headings[1:], strict=False)), path
        assert page.first_link == "#main", path
        assert {"main", "title"} <= set(page.tags), path
        assert page.lang == ("es" if path.startswith("es/") else "en"), path
        assert page.th_without_scope == 0, path
        if "table" in page.tags:
            assert page.tags.count("caption") == page.tags.count("table"), path


def test_user_text_is_escaped_and_spanish_falls_back_to_marked_english():
    files = render_site([edition(name="R&D <Office>")])
    page = files["es/departments/OIT.html"].decode("utf-8")
    assert HOSTILE not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert '<span lang="en">R&amp;D &lt;Office&gt;</span>' in page
    assert "Contratar" in page and '<span lang="en">Hire an analyst</span>' not in page
    assert "50 días de retraso" in page


def test_status_is_shown_by_a_word_and_a_shape_not_colour_alone():
    page = render_site([edition()])["en/departments/OIT.html"].decode("utf-8")
    assert (
        '<span class="status overdue"><span class="shape" aria-hidden="true">!</span> overdue</span>' in page
    )
    assert (
        '<span class="status on_track"><span class="shape" aria-hidden="true">●</span> on track</span>'
        in page
    )


def test_a_provisional_quarter_is_marked_and_published_beside_the_closed_one():
    files = render_site([edition("FY2027-Q2"), edition("FY2027-Q3", provisional=True)])
    assert "en/current/index.html" in files and "es/current/departments/OIT.html" in files
    current = files["en/current/index.html"].decode("utf-8")
    assert "Provisional: FY2027-Q3 is still open" in current
    assert 'href="../../assets/site.css"' in current
    main = files["en/index.html"].decode("utf-8")
    assert "FY2027-Q2" in main and 'href="../en/current/index.html"' in main
    assert {"data/FY2027-Q2/items.csv", "data/current/items.csv", "data/latest/items.csv"} <= set(files)
    assert files["data/latest/items.csv"] == files["data/FY2027-Q2/items.csv"]


def test_nothing_closed_is_nothing_to_render_and_a_key_is_never_a_path():
    with pytest.raises(ValueError, match="nothing to publish"):
        render_site([])
    for key in ("../etc", "a/b", "..", ".hidden", ""):
        with pytest.raises(UnsafeName):
            safe_name(key)
    assert safe_name("home-internet") == "home-internet"
