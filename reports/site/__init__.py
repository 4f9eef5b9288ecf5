"""The public Racial Equity dashboard as a static site: pure presentation of domain.public's record.

`render_site` turns the published quarters into every file of the site (pages in English and
Spanish, the stylesheet, the open data and its Data Package) as bytes by path; writing them is
the publisher's job. Templates live in reports/templates/site/ and go through the one jinja2
environment of reports.rollup.
"""

from reports.site.render import SITE_TITLE, render_site

__all__ = ["SITE_TITLE", "render_site"]
