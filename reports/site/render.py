"""Every file of the public site, rendered from the published editions (pure: bytes by path)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from domain.equity import BreakdownKind, gap_changes
from domain.measures import AT_RISK_RATIO, ON_TRACK_RATIO
from domain.public import LANGUAGES, LICENCES, Edition, PublicDepartment, ReadingRow, Text
from domain.rollup import MeasureLine
from domain.status import ITEM_STATUSES, MeasureStatus
from reports.rollup import template_env
from reports.site.chart import chart_description, trend_svg
from reports.site.data import OVERALL, package_files, root_descriptor
from reports.site.i18n import NATIVE_NAMES, Words


def N_(message: str) -> str:
    """Mark a message for the catalog; it is translated where it is shown."""
    return message


SITE_TITLE = N_("Racial Equity Action Plans")
# What each status is called and the shape shown beside its word (never colour alone).
STATUS_WORDS = {
    "not_started": N_("not started"),
    "on_track": N_("on track"),
    "at_risk": N_("at risk"),
    "off_track": N_("off track"),
    "blocked": N_("blocked"),
    "done": N_("done"),
    "dropped": N_("dropped"),
    "overdue": N_("overdue"),
    "met": N_("met"),
    "no_data": N_("no data"),
    "needs_attention": N_("needs attention"),
}
SHAPES = {
    "not_started": "○",
    "on_track": "●",
    "at_risk": "▲",
    "off_track": "◆",
    "blocked": "■",
    "done": "✓",
    "dropped": "✕",
    "overdue": "!",
    "met": "★",
    "no_data": "–",
    "needs_attention": "?",
}
KIND_WORDS = {"level": N_("level"), "cumulative": N_("cumulative")}
DIRECTION_WORDS = {"increase": N_("increase"), "decrease": N_("decrease"), "maintain": N_("maintain")}
REQUEST_WORDS = {"drop": N_("drop the item"), "redate": N_("move the due date"), "reassign": N_("reassign")}
# Only these can name a file: a key that is not one (it never is after import) is refused.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
STYLESHEET = "site.css"


class UnsafeName(ValueError):
    """A key that cannot be a file name on the site (a path, or odd characters)."""


def safe_name(key: str) -> str:
    """`key` if it is a plain file name (letters, digits, '.', '_', '-', not '..'), else UnsafeName."""
    if not _SAFE_NAME.fullmatch(key) or ".." in key:
        raise UnsafeName(f"'{key}' cannot name a page of the site")
    return key


@dataclass(frozen=True)
class Place:
    """Where a page sits: its language, the edition's folder (''/'current/') and path inside it."""

    lang: str
    folder: str
    path: str
    top: bool = False  # the site's own index.html, above the language folders

    @property
    def file(self) -> str:
        """The page's path from the site root."""
        return self.path if self.top else f"{self.lang}/{self.folder}{self.path}"

    @property
    def root(self) -> str:
        """The relative way back to the site root."""
        return "../" * self.file.count("/")

    def to(self, path: str, *, folder: str | None = None, lang: str | None = None) -> str:
        """A relative link from this page to `path` in an edition's folder (this one by default)."""
        chosen = self.folder if folder is None else folder
        return f"{self.root}{lang or self.lang}/{chosen}{path}"


def _breakdown_rows(line: MeasureLine) -> list[dict[str, Any]]:
    b = line.breakdown
    if b is None:
        return []
    since_last = gap_changes(b.current, b.last)
    return [
        {"group": g, "name": b.name(g.key), "since_last": since_last.get(g.key)} for g in b.current.groups
    ]


def _largest_gaps(edition: Edition, limit: int = 10) -> list[tuple[PublicDepartment, MeasureLine]]:
    found = [
        (d, m)
        for d, m in edition.measure_lines()
        if m.breakdown is not None and m.breakdown.current.largest_gap is not None
    ]

    def size(entry: tuple[PublicDepartment, MeasureLine]) -> float:
        breakdown = entry[1].breakdown
        widest = breakdown.current.largest_gap if breakdown else None
        gap = abs(widest.gap or 0.0) if widest else 0.0
        # A rate gap is in the measure's unit; a share gap in points: both read as "points" of 100.
        return gap

    return sorted(found, key=size, reverse=True)[:limit]


class _Renderer:
    """One language's pages of one edition."""

    def __init__(self, editions: Sequence[Edition], main: Edition, current: Edition | None) -> None:
        self.editions = editions
        self.main = main
        self.current = current
        self.env = template_env()

    def page(self, template: str, place: Place, words: Words, edition: Edition, **values: Any) -> bytes:
        other = [lang for lang in LANGUAGES if lang != place.lang]
        context = {
            "_": words.gettext,
            "ngettext": words.ngettext,
            "w": words,
            "lang": place.lang,
            "others": [(lang, NATIVE_NAMES[lang], place.to(place.path, lang=lang)) for lang in other],
            "place": place,
            "ed": edition,
            "main": self.main,
            "current": self.current,
            "site_title": words.gettext(SITE_TITLE),
            "status_word": lambda s: words.gettext(STATUS_WORDS.get(str(s), str(s))),
            "shape": lambda s: SHAPES.get(str(s), "•"),
            "kind_word": lambda k: words.gettext(KIND_WORDS.get(str(k), str(k))),
            "direction_word": lambda d: words.gettext(DIRECTION_WORDS.get(str(d), str(d))),
            "request_word": lambda k: words.gettext(REQUEST_WORDS.get(str(k), str(k))),
            "text": lambda t: t.get(place.lang) if isinstance(t, Text) else str(t),
            "text_lang": lambda t: t.lang(place.lang) if isinstance(t, Text) else "en",
            "measure_name": edition.measure_name,
            "chart": lambda m, ident: trend_svg(
                m, words, ident=ident, name=edition.measure_name(m).get(place.lang)
            ),
            "chart_text": lambda m: chart_description(m, words, edition.measure_name(m).get(place.lang)),
            "breakdown_rows": _breakdown_rows,
            "safe": safe_name,
            "ITEM_STATUSES": ITEM_STATUSES,
            "REPRESENTATION": BreakdownKind.REPRESENTATION.value,
            "OVERALL": OVERALL,
            **values,
        }
        html = self.env.get_template(f"site/{template}").render(**context)
        return html.encode("utf-8")

    def edition_pages(self, edition: Edition, folder: str, lang: str) -> dict[str, bytes]:
        words = Words(lang)
        files: dict[str, bytes] = {}
        place = Place(lang, folder, "index.html")
        files[place.file] = self.page(
            "overview.html.j2",
            place,
            words,
            edition,
            gaps=_largest_gaps(edition),
            on_track=lambda d: sum(
                m.status in (MeasureStatus.ON_TRACK, MeasureStatus.MET) for m in d.measures
            ),
            off_track=lambda d: sum(
                m.status in (MeasureStatus.OFF_TRACK, MeasureStatus.AT_RISK) for m in d.measures
            ),
        )
        readings: dict[str, list[ReadingRow]] = {}
        for row in edition.readings:
            readings.setdefault(row.measure, []).append(row)
        for department in edition.departments:
            place = Place(lang, folder, f"departments/{safe_name(department.key)}.html")
            files[place.file] = self.page("department.html.j2", place, words, edition, d=department)
            for line in department.measures:
                place = Place(lang, folder, f"measures/{safe_name(line.key)}.html")
                files[place.file] = self.page(
                    "measure.html.j2",
                    place,
                    words,
                    edition,
                    d=department,
                    m=line,
                    readings=readings.get(line.key, []),
                )
        return files

    def site_pages(self, lang: str) -> dict[str, bytes]:
        words = Words(lang)
        files: dict[str, bytes] = {}
        place = Place(lang, "", "methodology.html")
        files[place.file] = self.page(
            "methodology.html.j2",
            place,
            words,
            self.main,
            on_track_ratio=round(ON_TRACK_RATIO * 100),
            at_risk_ratio=round(AT_RISK_RATIO * 100),
        )
        place = Place(lang, "", "data.html")
        files[place.file] = self.page(
            "data.html.j2",
            place,
            words,
            self.main,
            editions=list(reversed(self.editions)),
            folder_of=data_folder,
            licences=LICENCES,
        )
        return files


def data_folder(edition: Edition) -> str:
    """Where an edition's open data lives from the site root: data/FY2027-Q2, or data/current."""
    return "data/current" if edition.provisional else f"data/{safe_name(edition.quarter)}"


def render_site(editions: Sequence[Edition]) -> dict[str, bytes]:
    """Every file of the site by its path: closed quarters oldest first, a provisional one last.

    The pages show the newest closed quarter (or, with none closed yet, the provisional one);
    a provisional "as of" quarter also gets its own pages under `<lang>/current/`. Every edition
    has its open data under data/, the newest closed one again under data/latest/, and the
    site's datapackage.json describes that one.
    """
    if not editions:
        raise ValueError("nothing to publish: no quarter has been closed")
    closed = [e for e in editions if not e.provisional]
    provisional = [e for e in editions if e.provisional]
    main = closed[-1] if closed else provisional[-1]
    current = provisional[-1] if provisional and main is not provisional[-1] else None
    renderer = _Renderer(editions, main, current)
    files: dict[str, bytes] = {}
    title = SITE_TITLE
    for lang in LANGUAGES:
        files.update(renderer.edition_pages(main, "", lang))
        if current is not None:
            files.update(renderer.edition_pages(current, "current/", lang))
        files.update(renderer.site_pages(lang))
    for edition in editions:
        folder = data_folder(edition)
        package = package_files(edition, folder=folder, title=title)
        files.update(package)
        if edition is main:
            # latest/ holds the same bytes (the package's paths are relative): copied, not redone.
            files.update({f"data/latest{path.removeprefix(folder)}": data for path, data in package.items()})
    files["datapackage.json"] = root_descriptor(main, folder="data/latest", title=title)
    files["index.html"] = renderer.page(
        "landing.html.j2",
        Place("en", "", "index.html", top=True),
        Words("en"),
        main,
        es_title=Words("es").gettext(SITE_TITLE),
    )
    files[f"assets/{STYLESHEET}"] = resources.files("reports.site").joinpath(STYLESHEET).read_bytes()
    return files
