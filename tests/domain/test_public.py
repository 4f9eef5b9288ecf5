"""Only what is declared public reaches the dashboard; opt-ins add fields one by one; Slack ids never."""

from __future__ import annotations

from datetime import date

from domain.public import Disclosure, PublicSettings, public_item

AS_OF = date(2027, 1, 20)
FROZEN = {
    "ref": "OIT-6",
    "title": "Sign recruitment partnership agreements",
    "status": "done",
    "progress": 100,
    "due": "2026-09-30",
    "owner": "U0TALENTLD",
    "evidence": "https://example.org/oit/agreements",
    "verified": True,
    "note": "Signed; the career fair went well.",
    "strategy": "workplace-equity",
    "title_es": "Firmar acuerdos",
    "public_update": "Agreements signed.",
    "public_update_es": None,
}
NAMES = {"U0TALENTLD": "Talent Acquisition Lead"}


def test_by_default_an_item_shows_its_public_fields_only():
    item = public_item(FROZEN, as_of=AS_OF, show=Disclosure(), names=NAMES)
    assert (item.ref, item.title.en, item.title.get("es"), item.status, item.due) == (
        "OIT-6",
        "Sign recruitment partnership agreements",
        "Firmar acuerdos",
        "done",
        date(2026, 9, 30),
    )
    assert item.evidence_url == "https://example.org/oit/agreements"
    assert item.update is not None and item.update.get("es") == "Agreements signed."
    assert item.update.lang("es") == "en"  # no Spanish: English, marked as English
    assert (item.owner, item.note) == (None, None)


def test_opt_ins_add_the_owners_name_and_the_note_but_never_a_slack_id():
    item = public_item(FROZEN, as_of=AS_OF, show=Disclosure.of(["owners", "notes"]), names=NAMES)
    assert (item.owner, item.note) == ("Talent Acquisition Lead", "Signed; the career fair went well.")
    nameless = public_item(FROZEN, as_of=AS_OF, show=Disclosure.of(["owners"]), names={})
    assert nameless.owner is None


def test_evidence_is_published_only_once_the_completion_is_verified():
    unverified = public_item({**FROZEN, "verified": False}, as_of=AS_OF, show=Disclosure(), names=NAMES)
    assert unverified.evidence_url is None
    unsafe = public_item(
        {**FROZEN, "evidence": "javascript:alert(1)"}, as_of=AS_OF, show=Disclosure(), names={}
    )
    assert unsafe.evidence_url is None


def test_an_open_item_past_its_date_shows_overdue_whatever_was_typed():
    late = public_item({**FROZEN, "status": "on_track"}, as_of=AS_OF, show=Disclosure(), names={})
    assert (late.days_overdue, late.shown_status) == (112, "overdue")


def test_settings_fall_back_to_private_and_cc_by_for_anything_unreadable():
    assert PublicSettings.from_mapping(None) == PublicSettings()
    odd = PublicSettings.from_mapping({"licence": "GPL", "show": "everything", "as_of": "yes", "es": []})
    assert (odd.licence, odd.show, odd.as_of, odd.es("department")) == (
        "CC-BY-4.0",
        Disclosure(),
        False,
        None,
    )
    chosen = PublicSettings.from_mapping({"show": ["history", "secrets"], "es": {"strategies": {"a": "Uno"}}})
    assert chosen.show.names() == ["history"]
    assert (chosen.es("strategies", "a"), chosen.es("strategies", "b")) == ("Uno", None)
