"""The dashboard's languages: gettext catalogs (Babel) and numbers and dates written per locale.

The Spanish catalog's source is `locale/es/LC_MESSAGES/messages.po`, shipped with the package;
it is compiled to a `.mo` in memory with Babel the first time a page needs it, so no build step
can ship a stale or missing `.mo`. `make messages` extracts the English strings from the
templates and this package and merges them into the catalog.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable

from babel.core import Locale
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import NumberPattern, format_decimal, parse_pattern
from babel.support import NullTranslations, Translations

from domain.public import LANGUAGES

DOMAIN = "messages"
# Each language's own name, written in that language (the language switch shows these).
NATIVE_NAMES = {"en": "English", "es": "Español"}


def catalog_path(lang: str) -> Traversable:
    """Where a language's .po file lives inside the package."""
    return resources.files("reports.site").joinpath("locale", lang, "LC_MESSAGES", f"{DOMAIN}.po")


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalog for `lang` (English is the source language: no catalog)."""
    if lang not in LANGUAGES:
        raise ValueError(f"no catalog for language '{lang}'")
    if lang == "en":
        return NullTranslations()
    with catalog_path(lang).open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@cache
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


@cache
def _pattern(pattern: str) -> NumberPattern:
    return parse_pattern(pattern)


# A large site writes a hundred thousand numbers and twenty thousand dates, most of them again
# and again (counts, percentages, due dates): Babel parses the locale and the pattern on every
# call unless handed parsed ones, and each result is kept for the next page that needs it.
@lru_cache(maxsize=8192, typed=True)
def _format_decimal(value: float, pattern: str, lang: str, negative_zero: bool) -> str:
    return format_decimal(value, format=_pattern(pattern), locale=_locale(lang))


def _decimal(value: float, pattern: str, lang: str) -> str:
    # -0.0 and 0.0 are one cache key, but Babel writes -0.0 with its sign: keep them apart.
    return _format_decimal(value, pattern, lang, value == 0 and math.copysign(1.0, value) < 0)


@lru_cache(maxsize=4096, typed=True)
def _format_date(value: date, lang: str) -> str:
    return format_date(value, format="long", locale=_locale(lang))


@dataclass(frozen=True)
class Words:
    """The fixed words and number formats of one language, handed to the templates."""

    lang: str

    def gettext(self, message: str, **values: object) -> str:
        """The message in this language, with `%(name)s` placeholders filled from `values`."""
        text = translations(self.lang).gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        """The singular or plural message for `n`, with `%(num)s` set to n as written here."""
        text = translations(self.lang).ngettext(singular, plural, n)
        return text % {"num": self.integer(n), **values}

    def number(self, value: float | None) -> str:
        """A measure value: grouped, at most two decimals, a dash when there is none."""
        if value is None:
            return "—"
        return _decimal(round(value, 2) + 0.0, "#,##0.##", self.lang)

    def integer(self, value: int) -> str:
        """A whole number, grouped."""
        return _decimal(value, "#,##0", self.lang)

    def percent(self, value: float | None) -> str:
        """A 0..100 percentage, whole."""
        if value is None:
            return "—"
        return self.gettext("%(value)s%%", value=_decimal(round(value), "0", self.lang))

    def rate(self, value: float | None) -> str:
        """A 0..1 rate as a whole percentage."""
        return "—" if value is None else self.percent(value * 100)

    def change(self, value: float | None) -> str:
        """A signed change: +2.5, −3, ±0."""
        if value is None:
            return "—"
        value = round(value, 2)
        if value == 0:
            return "±0"
        return ("+" if value > 0 else "−") + self.number(abs(value))

    def gap(self, value: float | None, *, points: bool) -> str:
        """A gap to parity: signed, in percentage points for representation."""
        if value is None:
            return "—"
        shown = self.change(round(value, 1))
        return self.gettext("%(gap)s pts", gap=shown) if points else shown

    def ratio(self, value: float | None) -> str:
        """A disparity ratio or representation index, two decimals."""
        return "—" if value is None else _decimal(value, "0.00", self.lang)

    def date(self, value: date | None) -> str:
        """A date written out, e.g. January 6, 2027 or 6 de enero de 2027."""
        return "—" if value is None else _format_date(value, self.lang)

    def with_unit(self, value: float | None, unit: str) -> str:
        """A measure value with its unit: 27%, 78 days."""
        if value is None or not unit:
            return self.number(value)
        return f"{self.number(value)}{'' if unit == '%' else ' '}{unit}"
