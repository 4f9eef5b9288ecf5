"""`reap publish` on the demo plan: every page in two languages from the frozen record, open data
that validates, nothing private in any file, and a site swapped in whole or not at all."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from publishing.site import MARKER, FolderNotEmpty, write_site
from storage.engine import Sessions
from tests.publishing.support import (
    HOSTILE_TITLE,
    SECRETS,
    demo_record,
    publish_demo,
    site_files,
)


@pytest.fixture
async def site(sessions: Sessions, tmp_path: Path) -> Path:
    """The demo's dashboard, published."""
    await demo_record(sessions)
    folder = tmp_path / "site"
    published = await publish_demo(sessions, folder)
    assert (published.quarter, published.quarters, published.current) == ("FY2027-Q2", ["FY2027-Q2"], None)
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    """A published CSV's rows (it starts with a byte-order mark for spreadsheets)."""
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


async def test_every_page_and_download_is_written_in_both_languages(site: Path):
    files = set(site_files(site))
    measures = {
        "projects-equity-scored",
        "days-to-equity-review",
        "partnership-hires",
        "pipeline-hires",
        "staff-equity-trained",
        "devices-high-need-tracts",
        "home-internet",
        "wifi-sites-high-need",
    }
    for lang in ("en", "es"):
        assert {f"{lang}/index.html", f"{lang}/methodology.html", f"{lang}/data.html"} <= files
        assert f"{lang}/departments/OIT.html" in files
        assert {f"{lang}/measures/{key}.html" for key in measures} <= files
    tables = ("departments", "strategies", "items", "measures", "readings")
    for folder in ("data/FY2027-Q2", "data/latest"):
        assert {f"{folder}/{t}.{ext}" for t in tables for ext in ("csv", "json")} <= files
        assert f"{folder}/datapackage.json" in files
    assert {"index.html", "datapackage.json", "assets/site.css", MARKER} <= files


async def test_nothing_private_reaches_any_published_file(site: Path):
    for path, content in site_files(site).items():
        text = content.decode("utf-8")
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} published in {path}"


async def test_a_title_holding_html_is_shown_as_text(site: Path):
    page = (site / "en" / "departments" / "OIT.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "<b>device</b>" not in page
    assert (
        "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt; Publish the "
        "&lt;b&gt;device&lt;/b&gt; map &amp; data" in page
    )
    items = read_csv(site / "data" / "latest" / "items.csv")
    assert next(row for row in items if row["ref"] == "OIT-4")["title"] == HOSTILE_TITLE


async def test_public_updates_and_verified_evidence_are_published_with_their_spanish(site: Path):
    english = (site / "en" / "departments" / "OIT.html").read_text(encoding="utf-8")
    spanish = (site / "es" / "departments" / "OIT.html").read_text(encoding="utf-8")
    assert "Six sites are waiting for fiber permits" in english
    assert "Seis sitios esperan permisos de fibra" in spanish
    assert 'href="https://example.org/oit/hbcu-recruitment-agreements"' in english
    assert "Equidad digital" in spanish and "Oficina de Innovación y Tecnología" in spanish
    items = {row["ref"]: row for row in read_csv(site / "data" / "latest" / "items.csv")}
    assert items["OIT-6"]["evidence_url"] == "https://example.org/oit/hbcu-recruitment-agreements"
    assert items["OIT-14"]["public_update_es"].startswith("Seis sitios")
    assert "owner" not in items["OIT-2"] and "note" not in items["OIT-2"]


async def test_spanish_pages_say_so_and_use_spanish_words_dates_and_numbers(site: Path):
    page = (site / "es" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="es">' in page
    assert "Planes de Acción para la Equidad Racial" in page
    assert "Saltar al contenido principal" in page
    assert "15 de enero de 2027" in page  # the day the quarter closed, written the Spanish way
    assert "39\u00a0%" in page  # average completion, with Spanish spacing
    assert '<a href="../en/index.html" hreflang="en" lang="en">English</a>' in page
    english = (site / "en" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in english and "January 15, 2027" in english


async def test_small_groups_are_marked_suppressed_and_carry_no_number(site: Path):
    rows = read_csv(site / "data" / "latest" / "readings.csv")
    q2 = {
        row["group"]: row
        for row in rows
        if row["measure"] == "pipeline-hires" and row["reading_quarter"] == "FY2027-Q2"
    }
    # 2 Asian hires and 1 of another race are under the plan's minimum of 10.
    for group in ("asian", "other"):
        assert q2[group]["suppressed"] == "true"
        assert (q2[group]["value"], q2[group]["gap"], q2[group]["share"]) == ("", "", "")
    assert (q2["black"]["value"], q2["black"]["suppressed"]) == ("18", "false")
    assert q2["_all"]["value"] == "39"
    page = (site / "en" / "measures" / "pipeline-hires.html").read_text(encoding="utf-8")
    assert "Fewer than 10: not shown" in page


async def test_the_data_package_validates_with_frictionless(site: Path):
    frictionless = pytest.importorskip("frictionless", reason="frictionless is a development dependency")
    for descriptor in (site / "datapackage.json", site / "data" / "FY2027-Q2" / "datapackage.json"):
        report = frictionless.validate(str(descriptor))
        assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:10]
    package = json.loads((site / "datapackage.json").read_text(encoding="utf-8"))
    assert package["licenses"][0]["name"] == "CC-BY-4.0"
    items = next(r for r in package["resources"] if r["name"] == "items")
    assert items["path"] == "data/latest/items.csv"
    assert all(field["description"] for field in items["schema"]["fields"])


async def test_publishing_twice_writes_the_same_bytes(sessions: Sessions, site: Path, tmp_path: Path):
    first = site_files(site)
    await publish_demo(sessions, site)
    assert site_files(site) == first
    other = tmp_path / "again"
    await publish_demo(sessions, other)
    assert site_files(other) == first


async def test_a_folder_holding_other_files_is_refused_unless_forced(
    sessions: Sessions, site: Path, tmp_path: Path
):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(FolderNotEmpty, match="--force"):
        await publish_demo(sessions, folder)
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "keep me"
    await publish_demo(sessions, folder, force=True)
    assert not (folder / "notes.txt").exists()
    assert (folder / "en" / "index.html").exists()


async def test_a_failed_publish_leaves_the_last_good_site_in_place(site: Path):
    before = site_files(site)
    with pytest.raises(ValueError, match="outside the site"):
        write_site({"en/index.html": b"half", "../escape.html": b"x"}, site, marker={}, force=False)
    assert site_files(site) == before
    assert not (site.parent / "escape.html").exists()
    assert [p.name for p in site.parent.iterdir() if p.name.startswith(".site.")] == []


async def test_amendments_are_shown_with_their_date_and_reason(sessions: Sessions, site: Path):
    from datetime import UTC, datetime

    from storage.amendments import amend_quarter
    from storage.engine import transaction
    from tests.publishing.support import COORDINATOR

    async with transaction(sessions) as session:
        await amend_quarter(
            session,
            actor=COORDINATOR,
            quarter="FY2027-Q2",
            subject="measure staff-equity-trained",
            old="62",
            new="64",
            reason="Two December sessions were recorded late by the learning system",
            now=datetime(2027, 2, 3, 15, tzinfo=UTC),
        )
    await publish_demo(sessions, site)
    page = (site / "en" / "index.html").read_text(encoding="utf-8")
    assert "February 3, 2027" in page
    assert "Two December sessions were recorded late by the learning system" in page
    assert re.search(r"<td>62</td><td>64</td>", page)
    assert "U0EQUITYPM" not in page
