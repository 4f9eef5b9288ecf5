"""What each `/reap` command text becomes, and what a person is told when it is wrong."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from functools import partial

import pytest

from commands.grammar import (
    USAGE,
    Add,
    Amend,
    Assign,
    CheckIn,
    Command,
    Decide,
    Done,
    Due,
    Help,
    History,
    ListItems,
    ListMeasures,
    Note,
    Pause,
    Progress,
    PublicUpdate,
    ReapInputError,
    RecordDecision,
    RecordMeasure,
    Reopen,
    Requests,
    Role,
    Rollup,
    ScoreForm,
    ScoreItem,
    SetStatus,
    Show,
    ShowAgenda,
    Snooze,
    UsageError,
    Verify,
    Who,
    help_text,
    parse_command,
)
from domain.fiscal import FiscalQuarter

TODAY = date(2027, 3, 10)  # a Wednesday; FY2027-Q3 with a July fiscal year
THIS = FiscalQuarter(2027, 3)
LAST = FiscalQuarter(2027, 2)
MARIA = "<@U123ABC|maria>"
TITLE_300 = "t" * 300


@pytest.fixture
def parse() -> Callable[[str], Command]:
    """parse_command as a person on Wednesday 2027-03-10 sees it (July fiscal year)."""
    return partial(parse_command, today=TODAY)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # help
        pytest.param("", Help(None), id="empty-is-help"),
        pytest.param("   ", Help(None), id="blank-is-help"),
        pytest.param("help", Help(None), id="help"),
        pytest.param("HELP", Help(None), id="help-upper"),
        pytest.param("?", Help(None), id="question-mark"),
        pytest.param("help add", Help("add"), id="help-topic"),
        pytest.param("help Status", Help("status"), id="help-topic-case"),
        pytest.param("help lsit", Help("list"), id="help-topic-typo"),
        pytest.param("help checkin schedule", Help("checkin"), id="help-first-word-only"),
        pytest.param("help check-in", Help("checkin"), id="help-alias"),
        pytest.param("help bananas", Help("bananas"), id="help-unknown-topic-kept"),
        # add
        pytest.param("add", Add(None, None, None, None), id="add-alone-opens-modal"),
        pytest.param("add   ", Add(None, None, None, None), id="add-spaces-opens-modal"),
        pytest.param('add "Hire analyst"', Add("Hire analyst", None, None, None), id="add-quoted"),
        pytest.param(
            f'add "Hire analyst" owner {MARIA} due 3/31 strategy "Digital equity"',
            Add("Hire analyst", "U123ABC", date(2027, 3, 31), "Digital equity"),
            id="add-everything",
        ),
        pytest.param(
            f"add “Hire analyst” owner {MARIA} due 3/31",
            Add("Hire analyst", "U123ABC", date(2027, 3, 31), None),
            id="add-curly-quotes",
        ),
        pytest.param(
            f"add Hire analyst owner {MARIA} due 3/31",
            Add("Hire analyst", "U123ABC", date(2027, 3, 31), None),
            id="add-unquoted-title-up-to-keyword",
        ),
        pytest.param("add Hire analyst", Add("Hire analyst", None, None, None), id="add-unquoted"),
        pytest.param(
            'add "Hire" due 3/31 owner <@W999>',
            Add("Hire", "W999", date(2027, 3, 31), None),
            id="add-options-any-order-w-id",
        ),
        pytest.param(
            'ADD "Hire" OWNER <@U1> DUE Mar 31',
            Add("Hire", "U1", date(2027, 3, 31), None),
            id="add-keywords-any-case",
        ),
        pytest.param(
            'add "Review due process" due next friday',
            Add("Review due process", None, date(2027, 3, 19), None),
            id="add-keyword-inside-quoted-title",
        ),
        pytest.param(
            'add "Translate guide" strategy DE-2',
            Add("Translate guide", None, None, "DE-2"),
            id="add-strategy-key",
        ),
        pytest.param(
            "add Translate guide strategy Workplace equity",
            Add("Translate guide", None, None, "Workplace equity"),
            id="add-strategy-unquoted-words",
        ),
        pytest.param(
            'add "R&amp;D budget &lt;draft&gt;"',
            Add("R&D budget <draft>", None, None, None),
            id="add-unescapes-entities",
        ),
        pytest.param(
            'add "Fix the payload parser"',
            Add("Fix the payload parser", None, None, None),
            id="add-payload-in-title",
        ),
        pytest.param(
            "add payload=1 review due 4/1",
            Add("payload=1 review", None, date(2027, 4, 1), None),
            id="add-payload-unquoted",
        ),
        pytest.param(
            'add "خطة المساواة العرقية" due 3/31',
            Add("خطة المساواة العرقية", None, date(2027, 3, 31), None),
            id="add-rtl-title",
        ),
        pytest.param(
            'add "🚀 Launch equity dashboard 🎉"',
            Add("🚀 Launch equity dashboard 🎉", None, None, None),
            id="add-emoji-title",
        ),
        pytest.param(
            "add Meet <@U1|bob> about budget owner <@U2>",
            Add("Meet @bob about budget", "U2", None, None),
            id="add-mention-in-title-is-literal",
        ),
        pytest.param(
            "add Tell <!channel> about it",
            Add("Tell @channel about it", None, None, None),
            id="add-broadcast-in-title-cannot-ping",
        ),
        pytest.param(
            "add {{ 7*7 }} ${HOME} `rm -rf`",
            Add("{{ 7*7 }} ${HOME} `rm -rf`", None, None, None),
            id="add-template-text-kept-literally",
        ),
        pytest.param('add "  spaced  "', Add("spaced", None, None, None), id="add-title-trimmed"),
        pytest.param(f'add "{TITLE_300}"', Add(TITLE_300, None, None, None), id="add-300-chars"),
        pytest.param("check-in start", CheckIn("start", THIS), id="subcommand-alias-check-in"),
        # list
        pytest.param("list", ListItems("mine"), id="list-defaults-to-mine"),
        pytest.param("list mine", ListItems("mine"), id="list-mine"),
        pytest.param("LIST MINE", ListItems("mine"), id="list-upper"),
        pytest.param(f"list {MARIA}", ListItems("user", user="U123ABC"), id="list-user"),
        pytest.param("list overdue", ListItems("overdue"), id="list-overdue"),
        pytest.param("list due-soon", ListItems("due-soon"), id="list-due-soon"),
        pytest.param("list due soon", ListItems("due-soon"), id="list-due-soon-two-words"),
        pytest.param("list due_soon", ListItems("due-soon"), id="list-due-soon-underscore"),
        pytest.param("list blocked", ListItems("blocked"), id="list-blocked"),
        pytest.param("list all page 3", ListItems("all", page=3), id="list-all-page"),
        pytest.param("list page 2", ListItems("mine", page=2), id="list-page-only"),
        pytest.param(
            "list strategy Digital equity",
            ListItems("strategy", strategy="Digital equity"),
            id="list-strategy-words",
        ),
        pytest.param(
            'list strategy "Workplace equity" page 2',
            ListItems("strategy", strategy="Workplace equity", page=2),
            id="list-strategy-quoted-page",
        ),
        pytest.param("list status at-risk", ListItems("status", status="at_risk"), id="list-status"),
        pytest.param("list status on track", ListItems("status", status="on_track"), id="list-status-2w"),
        # show / history
        pytest.param("show OIT-7", Show("OIT-7"), id="show"),
        pytest.param("show oit-7", Show("OIT-7"), id="show-ref-lower-case"),
        pytest.param("show Oit-007", Show("OIT-007"), id="show-ref-mixed-case"),
        pytest.param("show OIT-7.", Show("OIT-7"), id="show-ref-trailing-period"),
        pytest.param("history dei2-15", History("DEI2-15"), id="history"),
        pytest.param("show ABCDEFGHIJKLMNOP-123456789", Show("ABCDEFGHIJKLMNOP-123456789"), id="ref-max"),
        # status
        pytest.param("status OIT-7 on-track", SetStatus("OIT-7", "on_track", None), id="st-dash"),
        pytest.param("status OIT-7 on_track", SetStatus("OIT-7", "on_track", None), id="st-under"),
        pytest.param("status OIT-7 on track", SetStatus("OIT-7", "on_track", None), id="st-space"),
        pytest.param("status OIT-7 ontrack", SetStatus("OIT-7", "on_track", None), id="st-joined"),
        pytest.param("status oit-7 At-Risk", SetStatus("OIT-7", "at_risk", None), id="st-case"),
        pytest.param(
            "status OIT-7 not started", SetStatus("OIT-7", "not_started", None), id="st-not-started"
        ),
        pytest.param("status OIT-7 off-track", SetStatus("OIT-7", "off_track", None), id="st-off"),
        pytest.param("status OIT-7 done", SetStatus("OIT-7", "done", None), id="st-done"),
        pytest.param(
            'status OIT-7 at-risk "vendor delay"',
            SetStatus("OIT-7", "at_risk", "vendor delay"),
            id="st-quoted-note",
        ),
        pytest.param(
            "status OIT-7 blocked waiting on legal",
            SetStatus("OIT-7", "blocked", "waiting on legal"),
            id="st-unquoted-note",
        ),
        pytest.param(
            "status OIT-7 dropped “no budget”",
            SetStatus("OIT-7", "dropped", "no budget"),
            id="st-curly-note",
        ),
        # done
        pytest.param("done OIT-7", Done("OIT-7", None), id="done"),
        pytest.param('done OIT-7 "launched"', Done("OIT-7", "launched"), id="done-quoted-note"),
        pytest.param(
            "done oit-7 launched at the May meeting",
            Done("OIT-7", "launched at the May meeting"),
            id="done-unquoted-note",
        ),
        # progress
        pytest.param("progress OIT-7 40%", Progress("OIT-7", 40), id="progress-percent"),
        pytest.param("progress OIT-7 40", Progress("OIT-7", 40), id="progress-bare-number"),
        pytest.param("progress OIT-7 0%", Progress("OIT-7", 0), id="progress-zero"),
        pytest.param("progress OIT-7 100 %", Progress("OIT-7", 100), id="progress-spaced-sign"),
        pytest.param("progress oit-7 100", Progress("OIT-7", 100), id="progress-hundred"),
        # note
        pytest.param("note OIT-7 vendor replied", Note("OIT-7", "vendor replied"), id="note-unquoted"),
        pytest.param('note OIT-7 "vendor replied"', Note("OIT-7", "vendor replied"), id="note-q"),
        pytest.param("note OIT-7 “vendor replied”", Note("OIT-7", "vendor replied"), id="note-cq"),
        pytest.param("note OIT-7 R&amp;D &lt;3 replied", Note("OIT-7", "R&D <3 replied"), id="note-entities"),
        pytest.param(
            "note OIT-7 typed &amp;lt; literally",
            Note("OIT-7", "typed &lt; literally"),
            id="note-double-escaped-entity",
        ),
        pytest.param(
            'note OIT-7 she said "next week"',
            Note("OIT-7", 'she said "next week"'),
            id="note-inner-quotes-kept",
        ),
        pytest.param("note OIT-7 two  spaces", Note("OIT-7", "two  spaces"), id="note-spacing-kept"),
        pytest.param(
            "note OIT-7 cc <!here> and <!subteam^S1|@leads>",
            Note("OIT-7", "cc @here and @leads"),
            id="note-broadcasts-become-text",
        ),
        pytest.param(
            "note OIT-7 see <https://example.org/a?b=1&amp;c=2> and <http://x.org|x.org>",
            Note("OIT-7", "see https://example.org/a?b=1&c=2 and x.org"),
            id="note-links-become-text",
        ),
        pytest.param(
            "note OIT-7 posted in <#C42|dei-updates>",
            Note("OIT-7", "posted in #dei-updates"),
            id="note-channel-becomes-text",
        ),
        pytest.param(
            "note OIT-7 odd <|label> and <@> markup",
            Note("OIT-7", "odd label and @ markup"),
            id="note-malformed-markup-becomes-text",
        ),
        pytest.param("note OIT-7 payload=1&amp;x=2", Note("OIT-7", "payload=1&x=2"), id="note-payload"),
        pytest.param("note OIT-7 done due owner", Note("OIT-7", "done due owner"), id="note-keywords-kept"),
        # due
        pytest.param("due OIT-7 3/31", Due("OIT-7", date(2027, 3, 31)), id="due"),
        pytest.param("due OIT-7 end of quarter", Due("OIT-7", date(2027, 3, 31)), id="due-eoq"),
        pytest.param("due OIT-7 next friday", Due("OIT-7", date(2027, 3, 19)), id="due-next-fri"),
        pytest.param("due OIT-7 2026-12-01", Due("OIT-7", date(2026, 12, 1)), id="due-past-ok"),
        pytest.param('due OIT-7 "Mar 31"', Due("OIT-7", date(2027, 3, 31)), id="due-quoted"),
        # assign
        pytest.param(f"assign OIT-7 {MARIA}", Assign("OIT-7", "U123ABC"), id="assign"),
        pytest.param("assign oit-7 <@W123>", Assign("OIT-7", "W123"), id="assign-bare-w-mention"),
        # snooze
        pytest.param("snooze OIT-7 1w", Snooze("OIT-7", date(2027, 3, 17)), id="snooze-1w"),
        pytest.param("snooze OIT-7 3 days", Snooze("OIT-7", date(2027, 3, 13)), id="snooze-days"),
        pytest.param("snooze OIT-7 until friday", Snooze("OIT-7", date(2027, 3, 12)), id="snooze-until"),
        pytest.param("snooze OIT-7 for 2 weeks", Snooze("OIT-7", date(2027, 3, 24)), id="snooze-for"),
        pytest.param("snooze OIT-7 4/15", Snooze("OIT-7", date(2027, 4, 15)), id="snooze-date"),
        # pause
        pytest.param("pause 8/15", Pause(date(2027, 8, 15)), id="pause-date"),
        pytest.param("pause until Aug 15", Pause(date(2027, 8, 15)), id="pause-until"),
        pytest.param("pause 2w", Pause(date(2027, 3, 24)), id="pause-duration"),
        pytest.param("pause off", Pause(None), id="pause-off"),
        pytest.param("pause OFF", Pause(None), id="pause-off-upper"),
        # role
        pytest.param(f"role {MARIA} coordinator", Role("U123ABC", "coordinator", None), id="role"),
        pytest.param("role <@U1> member oit", Role("U1", "member", "OIT"), id="role-dept"),
        pytest.param("role <@U1> Coordinator DEI", Role("U1", "coordinator", "DEI"), id="role-case"),
        # checkin
        pytest.param("checkin", CheckIn("status", THIS), id="checkin-alone-is-status"),
        pytest.param("checkin start", CheckIn("start", THIS), id="checkin-start"),
        pytest.param("checkin start Q4", CheckIn("start", FiscalQuarter(2027, 4)), id="checkin-start-q"),
        pytest.param("checkin status last", CheckIn("status", LAST), id="checkin-status-last"),
        pytest.param("checkin close FY2027-Q2", CheckIn("close", LAST), id="checkin-close-label"),
        pytest.param("checkin close FY2027 Q2", CheckIn("close", LAST), id="checkin-label-spaced"),
        pytest.param("CHECKIN START this", CheckIn("start", THIS), id="checkin-case"),
        pytest.param(
            "checkin schedule Q4 4/15",
            CheckIn("schedule", FiscalQuarter(2027, 4), date(2027, 4, 15)),
            id="checkin-schedule",
        ),
        pytest.param(
            "checkin schedule FY2027-Q4 Apr 15",
            CheckIn("schedule", FiscalQuarter(2027, 4), date(2027, 4, 15)),
            id="checkin-schedule-words",
        ),
        pytest.param("checkin schedule this today", CheckIn("schedule", THIS, TODAY), id="checkin-today"),
        # measure
        pytest.param("measure hires 12", RecordMeasure("hires", 12.0, THIS, None), id="m-int"),
        pytest.param("measure hires 12.5", RecordMeasure("hires", 12.5, THIS, None), id="m-float"),
        pytest.param("measure hires 1,200", RecordMeasure("hires", 1200.0, THIS, None), id="m-thousands"),
        pytest.param("measure hires 45%", RecordMeasure("hires", 45.0, THIS, None), id="m-percent"),
        pytest.param("measure delta -3", RecordMeasure("delta", -3.0, THIS, None), id="m-negative"),
        pytest.param("measure hires .5", RecordMeasure("hires", 0.5, THIS, None), id="m-leading-dot"),
        pytest.param("measure hires 12 last", RecordMeasure("hires", 12.0, LAST, None), id="m-last"),
        pytest.param(
            'measure hires 12 FY2027-Q1 "two offers"',
            RecordMeasure("hires", 12.0, FiscalQuarter(2027, 1), "two offers"),
            id="m-quarter-and-note",
        ),
        pytest.param(
            'measure hires 12 "two offers pending"',
            RecordMeasure("hires", 12.0, THIS, "two offers pending"),
            id="m-note-only",
        ),
        pytest.param(
            "measure wait_days 3 slow quarter",
            RecordMeasure("wait_days", 3.0, THIS, "slow quarter"),
            id="m-unquoted-note",
        ),
        # rollup
        pytest.param("rollup", Rollup(THIS, None, None), id="rollup-defaults"),
        pytest.param("rollup FY2027-Q2", Rollup(LAST, None, None), id="rollup-label"),
        pytest.param("rollup last", Rollup(LAST, None, None), id="rollup-last"),
        pytest.param("rollup Q1 oit", Rollup(FiscalQuarter(2027, 1), "OIT", None), id="rollup-dept"),
        pytest.param("rollup <#C123|dei>", Rollup(THIS, None, "C123"), id="rollup-channel"),
        pytest.param("rollup last OIT <#C123|dei>", Rollup(LAST, "OIT", "C123"), id="rollup-everything"),
        pytest.param("rollup OIT", Rollup(THIS, "OIT", None), id="rollup-dept-only"),
        pytest.param("rollup <#G99> Q2", Rollup(LAST, None, "G99"), id="rollup-any-order"),
    ],
)
def test_command_text_becomes_the_typed_command(
    parse: Callable[[str], Command], text: str, expected: Command
) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("checkin start", CheckIn("start", FiscalQuarter(2027, 1, 1)), id="checkin"),
        pytest.param("rollup Q4", Rollup(FiscalQuarter(2027, 4, 1), None, None), id="rollup-q4"),
        pytest.param("due OIT-7 end of year", Due("OIT-7", date(2027, 12, 31)), id="due-eoy"),
        pytest.param("due OIT-7 Q3", Due("OIT-7", date(2027, 9, 30)), id="due-quarter"),
        pytest.param(
            "measure hires 3 last",
            RecordMeasure("hires", 3.0, FiscalQuarter(2026, 4, 1), None),
            id="measure-last-crosses-year",
        ),
    ],
)
def test_quarters_follow_a_january_fiscal_year_when_configured(text: str, expected: Command) -> None:
    assert parse_command(text, today=TODAY, fiscal_start_month=1) == expected


@pytest.mark.parametrize(
    ("text", "subcommand", "fragment"),
    [
        # unknown subcommands
        pytest.param("lsit", "list", 'I don\'t know the command "lsit"; did you mean list?', id="typo"),
        pytest.param("stauts OIT-7 done", "status", "did you mean status?", id="typo-status"),
        pytest.param("frobnicate", None, 'I don\'t know the command "frobnicate"', id="unknown"),
        pytest.param('"add" x', None, "I don't know the command", id="quoted-subcommand"),
        pytest.param("OIT-7 done", "show", "type /reap show OIT-7", id="ref-as-subcommand"),
        # add
        pytest.param("add owner <@U1>", "add", "The title is missing", id="add-no-title"),
        pytest.param('add ""', "add", "The title is empty", id="add-empty-title"),
        pytest.param('add "Hire analyst', "add", "This quote is never closed", id="add-unclosed"),
        pytest.param("add “Hire analyst", "add", "never closed", id="add-unclosed-curly"),
        pytest.param(
            "add Hire analyst owner @maria",
            "add",
            "mention the person with @ so Slack turns it into a link",
            id="add-bare-at-name",
        ),
        pytest.param("add Hire owner maria", "add", "I expected a person", id="add-plain-owner"),
        pytest.param('add "Hire" analyst due 3/31', "add", "After the quoted title", id="add-after-quote"),
        pytest.param('add "Hire" due Feb 30', "add", 'I couldn\'t read "Feb 30" as a date', id="add-feb-30"),
        pytest.param('add "Hire" due 3/31 due 4/1', "add", "appears twice", id="add-dup-option"),
        pytest.param('add "Hire" owner <@U1> <@U2>', "add", "Give one owner", id="add-two-owners"),
        pytest.param('add "Hire" strategy', "add", "The strategy is missing", id="add-no-strategy"),
        pytest.param('add "Hire" due', "add", "The date is missing", id="add-no-date"),
        pytest.param("add Review due process", "add", 'put the title in "quotes"', id="add-keyword-in-title"),
        pytest.param('add "' + "x" * 301 + '"', "add", "too long", id="add-title-301"),
        # list
        pytest.param("list @maria", "list", "mention the person with @", id="list-bare-at"),
        pytest.param("list overdeu", "list", "did you mean overdue?", id="list-typo"),
        pytest.param("list mine overdue", "list", "one thing at a time", id="list-two-scopes"),
        pytest.param(f"list {MARIA} overdue", "list", "one thing at a time", id="list-user-and"),
        pytest.param("list page 0", "list", "The page should be a number", id="list-page-0"),
        pytest.param("list page two", "list", "The page should be a number", id="list-page-word"),
        pytest.param("list page", "list", "The page should be a number", id="list-page-missing"),
        pytest.param("list status happy", "list", '"happy" is not a status', id="list-bad-status"),
        pytest.param("list status", "list", "Which status?", id="list-status-missing"),
        pytest.param("list strategy", "list", "Which strategy?", id="list-strategy-missing"),
        # refs
        pytest.param("show", "show", "Which item?", id="show-no-ref"),
        pytest.param("show 7", "show", '"7" is not an item reference', id="show-number"),
        pytest.param("show OIT7", "show", "not an item reference", id="show-no-dash"),
        pytest.param("show 7-OIT", "show", "not an item reference", id="show-reversed"),
        pytest.param("show ABCDEFGHIJKLMNOPQ-1", "show", "not an item reference", id="prefix-17"),
        pytest.param("show OIT-1234567890", "show", "not an item reference", id="number-10"),
        pytest.param("show OIT-7 OIT-8", "show", 'I didn\'t expect "OIT-8"', id="show-two"),
        pytest.param("history", "history", "Which item?", id="history-no-ref"),
        # status / done / progress / note
        pytest.param("status OIT-7", "status", "Which status?", id="status-missing"),
        pytest.param("status OIT-7 ontrak", "status", "did you mean on-track?", id="status-typo"),
        pytest.param("status OIT-7 finished", "status", "is not a status", id="status-unknown"),
        pytest.param('status OIT-7 "done"', "status", "is not a status", id="status-quoted"),
        pytest.param("status on-track OIT-7", "status", "not an item reference", id="status-order"),
        pytest.param("done", "done", "Which item?", id="done-no-ref"),
        pytest.param("progress OIT-7", "progress", "How far along", id="progress-missing"),
        pytest.param("progress OIT-7 140%", "progress", "from 0 to 100", id="progress-over"),
        pytest.param("progress OIT-7 -5%", "progress", "from 0 to 100", id="progress-negative"),
        pytest.param("progress OIT-7 40.5%", "progress", "whole number", id="progress-fraction"),
        pytest.param("progress OIT-7 lots", "progress", "is not a percentage", id="progress-word"),
        pytest.param("note OIT-7", "note", "The note is empty", id="note-missing"),
        pytest.param('note OIT-7 ""', "note", "The note is empty", id="note-empty-quotes"),
        pytest.param('note OIT-7 "vendor', "note", "never closed", id="note-unclosed"),
        # dates
        pytest.param("due OIT-7", "due", "The date is missing", id="due-missing"),
        pytest.param("due OIT-7 Feb 30", "due", 'I couldn\'t read "Feb 30" as a date', id="due-feb-30"),
        pytest.param("due OIT-7 13/45", "due", "13 is not a month", id="due-13-45"),
        pytest.param("due OIT-7 in -3 days", "due", "cannot be negative", id="due-negative"),
        pytest.param("due OIT-7 soonish", "due", "Dates can be", id="due-lists-forms"),
        pytest.param("snooze OIT-7", "snooze", "Until when?", id="snooze-missing"),
        pytest.param("snooze OIT-7 today", "snooze", "pick a day after today", id="snooze-today"),
        pytest.param("snooze OIT-7 2027-01-01", "snooze", "after today", id="snooze-past"),
        pytest.param("pause", "pause", "Until when?", id="pause-missing"),
        pytest.param("pause yesterday", "pause", "as a date", id="pause-yesterday"),
        # people
        pytest.param("assign OIT-7", "assign", "The new owner is missing", id="assign-missing"),
        pytest.param("assign OIT-7 @maria", "assign", "mention the person with @", id="assign-bare-at"),
        pytest.param("assign OIT-7 <#C1|general>", "assign", "I expected a person", id="assign-ch"),
        pytest.param(
            'assign OIT-7 "<@U1>"', "assign", "mention the person with @", id="assign-quoted-mention"
        ),
        pytest.param(
            "assign OIT-7 <@U" + "1" * 40 + ">",
            "assign",
            "mention the person with @",
            id="assign-id-too-long",
        ),
        pytest.param("role @maria coordinator", "role", "mention the person with @", id="role-at"),
        pytest.param("role <@U1> boss", "role", '"boss" is not a role', id="role-unknown"),
        pytest.param("role <@U1> cordinator", "role", "did you mean coordinator?", id="role-typo"),
        pytest.param("role <@U1>", "role", "Which role?", id="role-missing"),
        pytest.param("role", "role", "The person is missing", id="role-nobody"),
        pytest.param("role <@U1> member Office-of-IT", "role", "not a department key", id="role-bad-dept"),
        pytest.param("role <@U1> member OIT extra", "role", "I didn't expect", id="role-extra"),
        # checkin
        pytest.param("checkin begin", "checkin", "not a check-in action", id="checkin-unknown"),
        pytest.param("checkin strat", "checkin", "did you mean start?", id="checkin-typo"),
        pytest.param("checkin start Q5", "checkin", "'Q5' is not a quarter", id="checkin-q5"),
        pytest.param("checkin schedule 4/15", "checkin", "'4/15' is not a quarter", id="schedule-no-quarter"),
        pytest.param("checkin schedule", "checkin", "Which quarter?", id="schedule-nothing"),
        pytest.param("checkin schedule Q4", "checkin", "The date is missing", id="schedule-no-date"),
        pytest.param("checkin schedule Q4 3/1/2027", "checkin", "has passed", id="schedule-past"),
        pytest.param("checkin close Q3 now", "checkin", 'I didn\'t expect "now"', id="close-extra"),
        pytest.param("checkin start FY0999-Q1", "checkin", "not a fiscal year I can track", id="fy-0999"),
        # measure
        pytest.param("measure", "measure", "Which measure?", id="measure-missing"),
        pytest.param("measure hires", "measure", "What is the value", id="measure-no-value"),
        pytest.param("measure hires twelve", "measure", "is not a number", id="measure-word"),
        pytest.param("measure hires 1,20", "measure", "is not a number", id="measure-bad-commas"),
        pytest.param("measure hires nan", "measure", "is not a number", id="measure-nan"),
        pytest.param("measure hires inf", "measure", "is not a number", id="measure-inf"),
        pytest.param('measure "hires" 12', "measure", "is not a measure key", id="measure-quoted"),
        # rollup
        pytest.param("rollup #dei", "rollup", "pick it with # so Slack", id="rollup-bare-channel"),
        pytest.param("rollup Q1 Q2", "rollup", "Give one quarter", id="rollup-two-quarters"),
        pytest.param("rollup OIT DEI", "rollup", "Give one department", id="rollup-two-depts"),
        pytest.param("rollup <#C1> <#C2>", "rollup", "Give one channel", id="rollup-two-channels"),
        pytest.param("rollup Office-of-IT", "rollup", "I didn't expect", id="rollup-junk"),
        # whole text
        pytest.param("x" * 4001, None, "too long", id="text-4001-chars"),
        pytest.param("add " + "x" * 4000, "add", "too long", id="add-over-4000-chars"),
        pytest.param("note OIT-7 a\x00b", "note", "control character (U+0000)", id="nul"),
        pytest.param("note OIT-7 a\x1bb", "note", "control character (U+001B)", id="escape-char"),
    ],
)
def test_mistakes_raise_a_usage_error_naming_the_problem_and_the_subcommand(
    parse: Callable[[str], Command], text: str, subcommand: str | None, fragment: str
) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    error = caught.value
    assert fragment in error.problem
    assert error.subcommand == subcommand


def test_usage_error_message_is_the_problem_then_the_usage_line(
    parse: Callable[[str], Command],
) -> None:
    with pytest.raises(UsageError) as caught:
        parse("progress OIT-7 lots")
    assert str(caught.value) == f'"lots" is not a percentage; write it like 40%\n{USAGE["progress"]}'
    assert isinstance(caught.value, ReapInputError)


def test_usage_error_without_a_subcommand_points_to_help(parse: Callable[[str], Command]) -> None:
    with pytest.raises(UsageError) as caught:
        parse("frobnicate")
    assert str(caught.value).endswith("\nType /reap help to see every command.")


def test_long_text_is_quoted_back_shortened(parse: Callable[[str], Command]) -> None:
    with pytest.raises(UsageError) as caught:
        parse("show " + "x" * 3000)
    assert len(caught.value.problem) < 200


def test_title_and_whole_text_limits_count_characters_not_bytes(
    parse: Callable[[str], Command],
) -> None:
    title = "🚀" * 300
    assert parse(f'add "{title}"') == Add(title, None, None, None)
    with pytest.raises(UsageError, match="too long"):
        parse(f'add "{title}🚀"')


def test_usage_lists_every_subcommand_exactly_as_the_contract_writes_it() -> None:
    assert set(USAGE) == {
        "help", "add", "list", "show", "status", "done", "progress", "note", "due", "assign",
        "snooze", "history", "pause", "role", "who", "checkin", "measure", "measures", "score", "rollup",
        "approve", "decline", "verify", "reopen", "requests", "decision", "agenda", "public", "amend",
    }  # fmt: skip
    assert USAGE["add"] == ('/reap add "<title>" [owner @user] [due <date>] [strategy <name or key>]')
    assert USAGE["progress"] == "/reap progress <ref> <0-100>%"
    assert USAGE["checkin"].splitlines() == [
        "/reap checkin start|status|close [quarter]",
        "/reap checkin schedule <quarter> <date>",
    ]


def test_full_help_lists_every_usage_line() -> None:
    text = help_text(None)
    for line in USAGE.values():
        assert line in text


@pytest.mark.parametrize("topic", ["bananas", "", "   "])
def test_help_for_an_unknown_topic_is_the_full_list(topic: str) -> None:
    assert help_text(topic) == help_text(None)


@pytest.mark.parametrize("topic", sorted(USAGE))
def test_help_for_one_command_shows_its_usage_and_examples(topic: str) -> None:
    text = help_text(topic.upper())
    assert text.startswith(USAGE[topic])
    assert "Examples:" in text
    assert text != help_text(None)


def _as_slack_sends_it(example: str) -> str:
    """Escape an example the way Slack does with should_escape: true."""
    text = re.sub(r"(?<![\w<])@([a-z]+)", lambda m: f"<@U0{m[1].upper()}|{m[1]}>", example)
    return re.sub(r"(?<![\w<])#([a-z-]+)", r"<#C0DEI|\1>", text)


COMMAND_TYPES: dict[str, type | tuple[type, ...]] = {
    "help": Help,
    "add": Add,
    "list": ListItems,
    "show": Show,
    "status": SetStatus,
    "done": Done,
    "progress": Progress,
    "note": Note,
    "due": Due,
    "assign": Assign,
    "snooze": Snooze,
    "history": History,
    "pause": Pause,
    "role": Role,
    "checkin": CheckIn,
    "measure": RecordMeasure,
    "measures": ListMeasures,
    "who": Who,
    "approve": Decide,
    "decline": Decide,
    "verify": Verify,
    "reopen": Reopen,
    "requests": Requests,
    "decision": RecordDecision,
    "agenda": ShowAgenda,
    "public": PublicUpdate,
    "amend": Amend,
    "score": (ScoreItem, ScoreForm),
    "rollup": Rollup,
}


@pytest.mark.parametrize("topic", sorted(USAGE))
def test_every_help_example_parses_as_its_own_subcommand(topic: str) -> None:
    examples = [line.strip() for line in help_text(topic).splitlines() if line.startswith("  /reap ")]
    assert examples
    for example in examples:
        command = parse_command(_as_slack_sends_it(example.removeprefix("/reap ")), today=TODAY)
        assert isinstance(command, COMMAND_TYPES[topic])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "measure internet-at-home 81% high-need=68% low-need=90",
            RecordMeasure("internet-at-home", 81.0, THIS, None, (("high-need", 68.0), ("low-need", 90.0))),
        ),
        # A representation breakdown may leave the total to the groups.
        (
            'measure new-hires black=30 white=1,050 last "from HR"',
            RecordMeasure("new-hires", None, LAST, "from HR", (("black", 30.0), ("white", 1050.0))),
        ),
    ],
)
def test_a_reading_takes_group_values_as_group_equals_value(
    parse: Callable[[str], Command], text: str, expected: RecordMeasure
) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("measure hires high=lots", "is not a number"),
        ("measure hires 3 high=1 high=2", "given twice"),
    ],
)
def test_bad_group_values_are_refused_saying_what_to_write(
    parse: Callable[[str], Command], text: str, problem: str
) -> None:
    with pytest.raises(UsageError, match=problem):
        parse(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("measures", ListMeasures()),
        ("measures mine", ListMeasures("mine")),
        ("measures strategy digital equity", ListMeasures("strategy", "digital equity")),
        ("list ranked", ListItems("ranked")),
        ("list ranked equity projects", ListItems("ranked", strategy="equity projects")),
    ],
)
def test_measures_and_the_ranking_can_be_listed(
    parse: Callable[[str], Command], text: str, expected: Command
) -> None:
    assert parse(text) == expected


def test_a_score_takes_criterion_equals_level_pairs_and_a_note(parse: Callable[[str], Command]) -> None:
    assert parse('score oit-12 need=3 reach=most "four tracts"') == ScoreItem(
        "OIT-12", (("need", "3"), ("reach", "most")), "four tracts"
    )


def test_a_score_of_the_item_alone_asks_for_the_form(parse: Callable[[str], Command]) -> None:
    assert parse("score oit-12") == ScoreForm("OIT-12")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('score OIT-12 "a note but no levels"', "Score OIT-12 on a criterion.*in a form: /reap score OIT-12"),
        ("score OIT-12 need=1 need=2", "each criterion once"),
    ],
)
def test_a_score_with_a_note_but_no_levels_or_with_one_twice_is_refused(
    parse: Callable[[str], Command], text: str, problem: str
) -> None:
    with pytest.raises(UsageError, match=problem):
        parse(text)


def test_a_public_update_takes_its_language_and_text(parse: Callable[[str], Command]) -> None:
    assert parse('public oit-13 "Six sites are live"') == PublicUpdate("OIT-13", "Six sites are live")
    assert parse('public OIT-13 es "Seis sitios"') == PublicUpdate("OIT-13", "Seis sitios", "es")
    with pytest.raises(UsageError, match="What should the public read"):
        parse("public OIT-13")
