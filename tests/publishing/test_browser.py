"""The demo dashboard in a real browser: Debian's Chromium driven by Playwright, checked by axe-core
against WCAG 2.1 A and AA, walked by keyboard, and read at 320 CSS pixels without sideways scrolling.

axe-core's script comes from the axe-playwright-python package (nothing is downloaded here). The
tests skip, saying why, where /usr/bin/chromium or Playwright is missing; `.ci/run` installs both.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from storage.engine import Sessions
from tests.publishing.support import demo_record, publish_demo

CHROMIUM = Path("/usr/bin/chromium")
EXECUTABLE = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

async_api = pytest.importorskip("playwright.async_api", reason="Playwright for Python is not installed")
axe = pytest.importorskip(
    "axe_playwright_python.base", reason="axe-playwright-python (axe-core) is not installed"
)
pytestmark = pytest.mark.skipif(
    EXECUTABLE is None,
    reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium (root in CI needs --no-sandbox)."""
    async with async_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=EXECUTABLE,
            args=["--no-sandbox", "--disable-gpu"],
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def site(sessions: Sessions, tmp_path: Path, database_url: str) -> Path:
    """The demo's dashboard, published (SQLite only: the pages are the same on PostgreSQL)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the published pages do not depend on the database backend")
    await demo_record(sessions)
    folder = tmp_path / "site"
    await publish_demo(sessions, folder)
    return folder


async def violations(page: Any) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page, one line each."""
    await page.evaluate(axe.AXE_SCRIPT)
    result = await page.evaluate("rules => axe.run({runOnly: {type: 'tag', values: rules}})", WCAG_AA)
    return [
        f"{v['id']} ({v['impact']}): {node['target']} {node['html'][:80]}"
        for v in result["violations"]
        for node in v["nodes"]
    ]


async def test_every_page_has_no_axe_violations_in_either_language(browser: Any, site: Path):
    pages = sorted(await asyncio.to_thread(lambda: list(site.rglob("*.html"))))
    assert (
        len(pages) == 25
    )  # the landing page, and in each language 12: overview, department, 8 measures, 2 more
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    found: dict[str, list[str]] = {}
    for path in pages:
        await page.goto(path.as_uri())
        if problems := await violations(page):
            found[path.relative_to(site).as_posix()] = problems
    await context.close()
    assert found == {}


async def test_the_overview_works_by_keyboard_alone_starting_with_the_skip_link(browser: Any, site: Path):
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto((site / "en" / "index.html").as_uri())
    await page.keyboard.press("Tab")
    first = await page.evaluate(
        "() => [document.activeElement.textContent, document.activeElement.getAttribute('href')]"
    )
    assert first == ["Skip to main content", "#main"]
    # The skip link is visible while it has focus (it sits off-screen otherwise).
    box = await page.evaluate("() => document.activeElement.getBoundingClientRect().top")
    assert box >= 0
    await page.keyboard.press("Enter")
    assert await page.evaluate("() => document.activeElement.id") == "main"
    reached: list[str] = []
    for _ in range(40):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " return [e.tagName, e.getAttribute('href') || e.getAttribute('aria-labelledby') || '',"
            " s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2]; }"
        )
        tag, target, outlined = focused
        if tag == "BODY":
            break
        assert outlined, f"{tag} {target} has no visible focus outline"
        reached.append(target)
    assert "departments/OIT.html" in " ".join(reached)
    assert "departments-caption" in reached  # the scrollable table region takes focus too
    await page.keyboard.press("Shift+Tab")
    await context.close()


async def test_pages_reflow_at_320_css_pixels_without_scrolling_sideways(browser: Any, site: Path):
    context = await browser.new_context(viewport={"width": 320, "height": 640})
    page = await context.new_page()
    for name in (
        "en/index.html",
        "es/departments/OIT.html",
        "en/measures/home-internet.html",
        "es/methodology.html",
    ):
        await page.goto((site / name).as_uri())
        width = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{name} is {width[0]} px wide at 320"
    await context.close()


async def test_charts_carry_a_title_and_description_and_a_table_beside_them(browser: Any, site: Path):
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto((site / "es" / "measures" / "home-internet.html").as_uri())
    chart = page.locator("svg.chart")
    assert await chart.get_attribute("role") == "img"
    labelled = await chart.get_attribute("aria-labelledby") or ""
    title, desc = [await page.locator(f"[id='{ident}']").text_content() for ident in labelled.split()]
    assert title == "Tendencia de Hogares con banda ancha en casa, por nivel de necesidad del vecindario"
    assert desc and "pasó de 83% en FY2026-Q4 a 86% en FY2027-Q2" in desc
    assert await page.locator("figure + .table-wrap table caption").count() == 1
    await context.close()
