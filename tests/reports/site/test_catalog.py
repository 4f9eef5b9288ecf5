"""Every fixed text of the site is in the Spanish catalog, translated, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from reports.site.i18n import catalog_path, translations

ROOT = Path(__file__).resolve().parents[3]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extracted() -> set[str]:
    """The English strings in the templates and the site's code, as `make messages` finds them."""
    method_map = [("reports/site/**.py", "python"), ("reports/templates/site/**.j2", "jinja2")]
    options = {"reports/templates/site/**.j2": {"autoescape": "true"}}
    found: set[str] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT,
        method_map=method_map,
        options_map=options,
        keywords={"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)},
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_the_catalog_has_every_string_the_site_uses_and_nothing_stale():
    with catalog_path("es").open("rb") as po:
        catalog = read_po(po)
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    used = extracted()
    assert len(used) > 100
    assert used - ids == set(), "run `make messages` and translate the new strings"
    assert ids - used == set(), "run `make messages` to drop strings the site no longer uses"


def test_every_string_is_translated_with_its_placeholders_and_none_is_fuzzy():
    with catalog_path("es").open("rb") as po:
        catalog = read_po(po)
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        source = message.id[-1] if isinstance(message.id, tuple) else message.id
        for text in strings:
            assert text, f"untranslated: {message.id!r}"
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(source)), message.id


def test_the_catalog_compiles_with_babel_and_answers_in_spanish():
    spanish = translations("es")
    assert spanish.gettext("Skip to main content") == "Saltar al contenido principal"
    assert spanish.ngettext("%(num)s day late", "%(num)s days late", 3) == "%(num)s días de retraso"
    assert translations("en").gettext("Skip to main content") == "Skip to main content"
