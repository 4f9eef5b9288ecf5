"""The open data of one published quarter: a CSV and a JSON file per table, and their Data Package.

Tables (stable file names): departments, strategies, items, measures, readings. Each is described
in `datapackage.json` by a Frictionless Table Schema (field names, types, descriptions, primary
key), with the licence the plan declares. Only what domain.public lets through is here: a
suppressed group is a row that says so, with no number in it. Pure: bytes out, no I/O.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.public import LICENCES, Edition, PublicDepartment
from domain.status import ITEM_STATUSES

# The readings table's group for a measure's overall value (a plan's group keys start with a
# letter or digit, so it is never one of theirs).
OVERALL = "_all"
# (name, type, description) of each field, per table; types are Table Schema's.
Field = tuple[str, str, str]


@dataclass(frozen=True)
class Table:
    """One table of the open data: its fields, primary key and rows."""

    name: str
    title: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...]
    rows: list[dict[str, Any]]


_COUNTS: tuple[Field, ...] = tuple(
    (f"items_{s}", "integer", f"Items whose typed status is {s.replace('_', ' ')}") for s in ITEM_STATUSES
)


def _department_rows(edition: Edition, d: PublicDepartment) -> dict[str, Any]:
    return {
        "quarter": edition.quarter,
        "department": d.key,
        "name": d.name.en,
        "name_es": d.name.es,
        "plan": d.plan_title.en,
        "items": d.total,
        **{f"items_{s}": d.counts.get(s, 0) for s in ITEM_STATUSES},
        "items_overdue": d.overdue,
        "items_verified": d.verified,
        "percent_complete": round(d.percent_complete, 2),
        "on_time_rate": None if d.on_time_rate is None else round(d.on_time_rate, 4),
    }


def tables(edition: Edition) -> list[Table]:
    """The quarter's tables, in a fixed order with rows in a fixed order (same input, same bytes)."""
    owners = any(d.show.owners for d in edition.departments)
    notes = any(d.show.notes for d in edition.departments)
    departments = Table(
        "departments",
        "Departments",
        (
            ("quarter", "string", "The fiscal quarter published, e.g. FY2027-Q2"),
            ("department", "string", "The department's short key"),
            ("name", "string", "The department's name"),
            ("name_es", "string", "The department's name in Spanish, where the plan gives one"),
            ("plan", "string", "The title of the department's Racial Equity Action Plan"),
            ("items", "integer", "Action items in the plan"),
            *_COUNTS,
            ("items_overdue", "integer", "Open items past their due date"),
            ("items_verified", "integer", "Done items whose completion a coordinator verified"),
            ("percent_complete", "number", "Average progress of the items, 0 to 100"),
            ("on_time_rate", "number", "Share of items with a due date completed by it, 0 to 1"),
        ),
        ("quarter", "department"),
        [_department_rows(edition, d) for d in edition.departments],
    )
    strategies = Table(
        "strategies",
        "Strategies",
        (
            ("quarter", "string", "The fiscal quarter published"),
            ("department", "string", "The department's short key"),
            ("strategy", "string", "The strategy's key within its plan"),
            ("name", "string", "The strategy's name"),
            ("name_es", "string", "The strategy's name in Spanish, where the plan gives one"),
            ("items", "integer", "Action items under the strategy"),
            ("items_done", "integer", "Items done"),
            ("percent_complete", "number", "Average progress of the items, 0 to 100"),
        ),
        ("quarter", "department", "strategy"),
        [
            {
                "quarter": edition.quarter,
                "department": d.key,
                "strategy": s.key,
                "name": s.name.en,
                "name_es": s.name.es,
                "items": s.total,
                "items_done": s.counts.get("done", 0),
                "percent_complete": round(s.percent_complete, 2),
            }
            for d in edition.departments
            for s in d.strategies
        ],
    )
    item_fields: list[Field] = [
        ("quarter", "string", "The fiscal quarter published"),
        ("department", "string", "The department's short key"),
        ("strategy", "string", "The strategy's key within its plan"),
        ("ref", "string", "The item's reference, e.g. OIT-7"),
        ("title", "string", "What the department committed to do"),
        ("title_es", "string", "The title in Spanish, where the plan gives one"),
        ("status", "string", "The status as typed: " + ", ".join(ITEM_STATUSES)),
        ("overdue", "boolean", "Open and past its due date (whatever the typed status)"),
        ("due", "date", "When the item is due"),
        ("progress", "integer", "Progress, 0 to 100"),
        ("evidence_url", "string", "A link to what was delivered, once the completion is verified"),
        ("public_update", "string", "The department's public update on the item"),
        ("public_update_es", "string", "The public update in Spanish, where given"),
    ]
    if owners:
        item_fields.append(("owner", "string", "The owner's name (published by the plan's choice)"))
    if notes:
        item_fields.append(("note", "string", "The item's latest note (published by the plan's choice)"))
    items = Table(
        "items",
        "Action items",
        tuple(item_fields),
        ("quarter", "ref"),
        [
            {
                "quarter": edition.quarter,
                "department": d.key,
                "strategy": s.key,
                "ref": i.ref,
                "title": i.title.en,
                "title_es": i.title.es,
                "status": i.status,
                "overdue": i.days_overdue > 0,
                "due": i.due.isoformat() if i.due else None,
                "progress": i.progress,
                "evidence_url": i.evidence_url,
                "public_update": i.update.en if i.update else None,
                "public_update_es": i.update.es if i.update else None,
                **({"owner": i.owner} if owners else {}),
                **({"note": i.note} if notes else {}),
            }
            for d in edition.departments
            for s in d.strategies
            for i in s.items
        ],
    )
    measures = Table(
        "measures",
        "Performance measures",
        (
            ("quarter", "string", "The fiscal quarter published"),
            ("department", "string", "The department's short key"),
            ("strategy", "string", "The strategy's key within its plan"),
            ("measure", "string", "The measure's key"),
            ("name", "string", "What is measured"),
            ("name_es", "string", "The measure's name in Spanish, where the plan gives one"),
            ("unit", "string", "The unit of its values"),
            ("kind", "string", "level (each reading stands alone) or cumulative (a running total)"),
            ("direction", "string", "Which way is better: increase, decrease or maintain"),
            ("baseline", "number", "The starting value"),
            ("baseline_quarter", "string", "When the baseline was measured"),
            ("target", "number", "The value aimed for"),
            ("target_quarter", "string", "When the target is due"),
            ("latest", "number", "The latest reading up to the quarter"),
            ("latest_quarter", "string", "The quarter of the latest reading"),
            ("status", "string", "on_track, at_risk, off_track, met, no_data or needs_attention"),
            ("progress", "number", "Share of the way from baseline to target reached, 0 to 1"),
            ("expected", "number", "Share of the way expected by the end of the quarter, 0 to 1"),
            ("source", "string", "Where the data comes from"),
            ("breakdown", "string", "The dimension the measure is broken down by, if any"),
            ("breakdown_kind", "string", "rate or representation, for a broken-down measure"),
        ),
        ("quarter", "measure"),
        [
            {
                "quarter": edition.quarter,
                "department": d.key,
                "strategy": s.key,
                "measure": m.key,
                "name": m.name,
                "name_es": edition.measure_es.get(m.key),
                "unit": m.unit,
                "kind": m.kind,
                "direction": m.direction,
                "baseline": m.baseline,
                "baseline_quarter": m.baseline_quarter,
                "target": m.target,
                "target_quarter": m.target_quarter,
                "latest": m.latest,
                "latest_quarter": m.latest_quarter,
                "status": m.status.value,
                "progress": m.progress,
                "expected": m.expected,
                "source": m.source,
                "breakdown": m.breakdown.dimension if m.breakdown else None,
                "breakdown_kind": m.breakdown.kind if m.breakdown else None,
            }
            for d in edition.departments
            for s in d.strategies
            for m in s.measures
        ],
    )
    reading_fields: list[Field] = [
        ("quarter", "string", "The fiscal quarter published"),
        ("department", "string", "The department's short key"),
        ("measure", "string", "The measure's key"),
        ("reading_quarter", "string", "The quarter the reading is for"),
        ("group", "string", "The group's key; _all for the overall value"),
        ("group_name", "string", "The group's name"),
        ("value", "number", "The reading (overall, or the group's rate or count); empty when suppressed"),
        (
            "gap",
            "number",
            "Gap to parity: rate minus the reference, or share minus population share in points",
        ),
        ("ratio", "number", "Disparity ratio: the group's rate over the reference (rate breakdowns)"),
        ("index", "number", "Representation index: share over population share (representation breakdowns)"),
        ("share", "number", "The group's share of the total, 0 to 1 (representation breakdowns)"),
        ("suppressed", "boolean", "A group too small to publish: its numbers are withheld"),
    ]
    if notes:
        reading_fields.append(
            ("note", "string", "The note given with the reading (published by the plan's choice)")
        )
    readings = Table(
        "readings",
        "Measure readings, overall and by group",
        tuple(reading_fields),
        ("quarter", "measure", "reading_quarter", "group"),
        [
            {
                "quarter": edition.quarter,
                "department": r.department,
                "measure": r.measure,
                "reading_quarter": r.quarter,
                "group": r.group or OVERALL,
                "group_name": r.group_name,
                "value": r.value,
                "gap": r.gap,
                "ratio": r.ratio,
                "index": r.index,
                "share": r.share,
                "suppressed": r.suppressed,
                **({"note": r.note} if notes else {}),
            }
            for r in edition.readings
        ],
    )
    return [departments, strategies, items, measures, readings]


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("number", "integer"):
        number = round(float(value), 6)
        return str(int(number)) if number.is_integer() else repr(number)
    text = " ".join(str(value).splitlines()) if kind == "string" else str(value)
    # A spreadsheet runs a cell starting with = + - @ as a formula: a quote keeps it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def table_csv(table: Table) -> bytes:
    """The table as UTF-8 CSV, header first (a byte-order mark so spreadsheets read it as UTF-8)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _, _ in table.fields])
    for row in table.rows:
        writer.writerow([_cell(row.get(name), kind) for name, kind, _ in table.fields])
    return out.getvalue().encode("utf-8-sig")


def _json_value(value: Any, kind: str) -> Any:
    if value is None or kind not in ("number", "integer"):
        return value
    number = round(float(value), 6)
    return int(number) if number.is_integer() else number


def table_json(table: Table) -> bytes:
    """The table as a UTF-8 JSON array of objects, one per row, with the CSV's fields."""
    rows = [{name: _json_value(row.get(name), kind) for name, kind, _ in table.fields} for row in table.rows]
    return (json.dumps(rows, ensure_ascii=False, indent=1, allow_nan=False) + "\n").encode("utf-8")


def descriptor(
    edition: Edition, tables: Sequence[Table], *, path: Callable[[str], str], title: str
) -> dict[str, Any]:
    """The Data Package describing the tables; `path` gives each file's path from the descriptor."""
    licence_title, licence_url = LICENCES[edition.licence]
    resources: list[dict[str, Any]] = []
    for table in tables:
        schema = {
            "fields": [
                {"name": name, "type": kind, "description": description}
                for name, kind, description in table.fields
            ],
            "primaryKey": list(table.primary_key),
            "missingValues": [""],
        }
        resources.append(
            {
                "name": table.name,
                "title": table.title,
                "path": path(f"{table.name}.csv"),
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8-sig",
                "schema": schema,
            }
        )
        resources.append(
            {
                "name": f"{table.name}-json",
                "title": f"{table.title} (JSON)",
                "path": path(f"{table.name}.json"),
                "profile": "tabular-data-resource",
                "format": "json",
                "mediatype": "application/json",
                "encoding": "utf-8",
                "schema": {**schema, "missingValues": []},
            }
        )
    label = edition.quarter + (f" as of {edition.as_of.isoformat()}" if edition.provisional else "")
    return {
        "profile": "tabular-data-package",
        "name": "racial-equity-action-plans-" + edition.quarter.lower(),
        "title": f"{title}: {label}",
        "description": (
            f"Racial Equity Action Plans: departments, strategies, action items, performance measures "
            f"and their readings by group for {label}. Groups too small to publish are marked "
            f"suppressed and carry no numbers."
        ),
        "version": edition.as_of.isoformat(),
        "created": (edition.frozen_on or edition.as_of).isoformat() + "T00:00:00Z",
        "licenses": [{"name": edition.licence, "title": licence_title, "path": licence_url}],
        "resources": resources,
    }


def package_files(edition: Edition, *, folder: str, title: str) -> dict[str, bytes]:
    """Every open-data file of the quarter under `folder` (e.g. data/FY2027-Q2), descriptor included."""
    found = tables(edition)
    files: dict[str, bytes] = {}
    for table in found:
        files[f"{folder}/{table.name}.csv"] = table_csv(table)
        files[f"{folder}/{table.name}.json"] = table_json(table)
    package = descriptor(edition, found, path=lambda name: name, title=title)
    files[f"{folder}/datapackage.json"] = _json_bytes(package)
    return files


def root_descriptor(edition: Edition, *, folder: str, title: str) -> bytes:
    """The site's top-level datapackage.json: the same package, its paths into `folder`."""
    return _json_bytes(
        descriptor(edition, tables(edition), path=lambda name: f"{folder}/{name}", title=title)
    )


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False) + "\n").encode("utf-8")
