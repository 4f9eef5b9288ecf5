"""Slack's refusals in plain words (the chart's alt text is tested with the rollup, in test_rollup.py)."""

from __future__ import annotations

import pytest

from messages.failures import REASONS, build_rollup_failed, slack_reason


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("channel_not_found", "the channel was not found"),
        ("not_in_channel", "/invite @REAP Tracker"),
        ("method_not_supported_for_channel_type", "/invite @REAP Tracker"),
        ("is_archived", "The channel is archived"),
        ("invalid_auth", "revoked or has expired"),
        ("token_revoked", "revoked or has expired"),
        ("missing_scope", "lacks a Slack permission"),
        ("msg_too_long", "too long for Slack"),
        ("restricted_action", "do not let apps post there"),
    ],
)
def test_known_codes_become_sentences_without_the_code(code: str, words: str):
    reason = slack_reason(code)
    assert words in reason and code not in reason
    assert reason[0].isupper() and reason.endswith(".")


def test_every_known_reason_is_a_sentence_a_person_can_act_on():
    for code, reason in REASONS.items():
        assert reason[0].isupper() and reason.endswith("."), code
        assert "_" not in reason.replace("/reap rollup", ""), f"{code} leaks a code: {reason}"


def test_an_unknown_code_is_named_as_it_is_and_escaped():
    assert "`fancy_new_error`" in slack_reason("fancy_new_error")
    assert "&lt;b&gt;" in slack_reason("<b>")
    assert "`unknown`" in slack_reason("")


def test_giving_up_after_retries_says_how_many_tries_and_the_last_problem():
    reason = slack_reason("gave up after 6 attempts: HTTP 503 service_unavailable")
    assert "6 tries" in reason and "HTTP 503 service_unavailable" in reason


def test_the_failure_dm_names_the_channel_quarter_and_what_to_do():
    text, blocks = build_rollup_failed(quarter="FY2027-Q2", channel="C0MISSING", code="channel_not_found")
    assert text.startswith(":warning: The FY2027-Q2 rollup was not posted to <#C0MISSING> (`C0MISSING`).")
    assert "the channel was not found" in text
    body = str(blocks)
    assert "You asked for it. Nothing was posted there." in body
    assert "run `/reap rollup FY2027-Q2` again" in body


def test_a_failed_chart_says_the_summary_is_there_and_a_scheduled_rollup_says_so():
    text, blocks = build_rollup_failed(
        quarter="FY2027-Q2",
        channel="C0OIT",
        code="file_uploads_disabled",
        part="chart",
        department="OIT",
        requested=False,
    )
    assert "FY2027-Q2 OIT rollup summary is in <#C0OIT>" in text and "chart could not be added" in text
    assert "scheduled rollup at the close of the FY2027-Q2 check-in" in str(blocks)
    assert "`/reap rollup FY2027-Q2 OIT`" in str(blocks)
