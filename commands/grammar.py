"""The `/reap` slash-command grammar: text in, a typed command or a UsageError out.

Pure: nothing here reads the clock, the database or Slack; `today` is the caller's local date.

The text is what Slack sends with `should_escape: true`: people are `<@U123|name>`, channels
`<#C123|name>`, links `<https://x|x>`, broadcasts `<!channel>`, and a typed `&`, `<`, `>` arrive
as `&amp;`, `&lt;`, `&gt;`. Free text (titles, notes, strategy names) is stored as the literal
text the person saw: entities are unescaped and Slack markup becomes its visible form
(`<@U1|maria>` -> `@maria`, `<!channel>` -> `@channel`, `<https://x|x>` -> `x`). So stored text
never pings anyone and builders must escape it like any other user text before rendering.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal, TypeAlias

from commands.dates import DateError, parse_date, parse_duration_or_date, snippet
from domain.errors import TextRefused
from domain.fiscal import FiscalQuarter, QuarterError
from domain.text import NOTE_MAX, TITLE_MAX, check_text

# The whole command; each field inside it has its own, smaller limit from domain.text.
MAX_TEXT_LENGTH = 4000
MAX_TITLE_LENGTH = TITLE_MAX

USAGE: dict[str, str] = {
    "help": "/reap help [subcommand]",
    "add": '/reap add "<title>" [owner @user] [due <date>] [strategy <name or key>]',
    "list": (
        "/reap list [mine | @user | overdue | due-soon | blocked | strategy <s> | status <s> | all] [page N]"
    ),
    "show": "/reap show <ref>",
    "status": ('/reap status <ref> <not-started|on-track|at-risk|off-track|blocked|done|dropped> ["note"]'),
    "done": '/reap done <ref> <evidence link> ["note"]',
    "progress": "/reap progress <ref> <0-100>%",
    "note": '/reap note <ref> "<text>"',
    "due": '/reap due <ref> <date> ["reason"]',
    "assign": '/reap assign <ref> @user ["reason"]',
    "approve": '/reap approve <request> ["note"]',
    "decline": '/reap decline <request> "<reason>"',
    "verify": "/reap verify <ref>",
    "reopen": '/reap reopen <ref> <status> <0-100>% "<reason>"',
    "requests": "/reap requests [department]",
    "decision": '/reap decision "<text>" [item <ref>] [owner @user] [due <date>]',
    "agenda": "/reap agenda [quarter]",
    "public": '/reap public <ref> [es] "<text>"',
    "amend": '/reap amend <quarter> <ref or measure key> "<correction>" "<reason>"',
    "snooze": "/reap snooze <ref> <date or duration>",
    "history": "/reap history <ref>",
    "pause": "/reap pause <date>",
    "role": "/reap role @user <member|coordinator|dei|admin> [department]",
    "who": "/reap who [department]",
    "checkin": "/reap checkin start|status|close [quarter]\n/reap checkin schedule <quarter> <date>",
    "measure": '/reap measure <key> <value> [quarter] [group=value ...] ["note"]',
    "measures": "/reap measures [mine | strategy <name>]",
    "score": '/reap score <ref> [<criterion>=<level> ... ["note"]]',
    "rollup": "/reap rollup [quarter] [department] [#channel]",
}

_DETAILS: dict[str, tuple[str, tuple[str, ...]]] = {
    "help": ("Show every command, or one command with examples.", ("/reap help status",)),
    "add": (
        "Add an action item. With no arguments it opens the Add form. Quote the title if it"
        " contains the words owner, due or strategy.",
        ('/reap add "Translate the permit guide" owner @maria due 3/31', "/reap add"),
    ),
    "list": (
        "List action items; with nothing after it, your own. Add page N for more.",
        ("/reap list overdue", "/reap list @maria page 2"),
    ),
    "show": ("Show one action item.", ("/reap show OIT-7",)),
    "status": (
        "Set an item's status, with an optional note.",
        ('/reap status OIT-7 at-risk "vendor delay"', "/reap status OIT-7 on track"),
    ),
    "done": (
        "Mark an item done, with a link to what was delivered (where the plan asks for evidence).",
        ('/reap done OIT-7 https://www.phila.gov/oit/equity "launched at the May meeting"',),
    ),
    "progress": ("Record how far along an item is.", ("/reap progress OIT-7 40%",)),
    "note": ("Add a note to an item.", ("/reap note OIT-7 vendor replied, demo next week",)),
    "due": (
        "Change an item's due date. Later than the plan allows, it is a request for a coordinator's"
        " approval and needs a reason.",
        ("/reap due OIT-7 6/30", '/reap due OIT-7 end of quarter "vendor slipped to May"'),
    ),
    "assign": (
        "Give an item to someone else (taking it from its owner is a request, with a reason).",
        ('/reap assign OIT-7 @maria "Maria leads the vendor work now"',),
    ),
    "approve": (
        "Approve a change request (coordinators).",
        ("/reap approve #12", '/reap approve 12 "agreed at the meeting"'),
    ),
    "decline": (
        "Decline a change request, saying why (coordinators).",
        ('/reap decline #12 "keep the June date"',),
    ),
    "verify": ("Confirm a done item's evidence (coordinators).", ("/reap verify OIT-7",)),
    "reopen": (
        "Reopen a done item at a real status and progress, saying why.",
        ('/reap reopen OIT-7 at-risk 80% "the site is not live yet"',),
    ),
    "decision": (
        "Record a decision of the quarterly DEI meeting; with an owner and a due date it becomes a"
        " follow-up item that the next agenda reports on (coordinators).",
        ('/reap decision "Extend device lending to Kensington" owner @maria due 3/31',),
    ),
    "agenda": ("Show the DEI meeting agenda for a quarter.", ("/reap agenda", "/reap agenda FY2027-Q2")),
    "amend": (
        "Correct a closed quarter's record (coordinators): the correction is shown beside the frozen"
        " value with its reason, never over it.",
        ('/reap amend FY2027-Q1 OIT-7 "done on Sep 28, reported late" "the owner was on leave"',),
    ),
    "public": (
        "Write the update the public dashboard shows for an item, in English or Spanish (coordinators)."
        " Quotes with nothing inside clear it.",
        (
            '/reap public OIT-13 "Six of the twenty sites are live"',
            '/reap public OIT-13 es "Seis sitios funcionan"',
        ),
    ),
    "requests": (
        "List change requests and completions waiting for a coordinator.",
        ("/reap requests", "/reap requests OIT"),
    ),
    "snooze": ("Quiet an item's reminders for a while.", ("/reap snooze OIT-7 1w",)),
    "history": ("Show who changed an item, and when.", ("/reap history OIT-7",)),
    "pause": (
        "Pause all your reminders until a date, e.g. while on leave; `pause off` resumes them.",
        ("/reap pause 8/15", "/reap pause off"),
    ),
    "role": (
        "Give someone a role: a department's coordinator or member, the citywide DEI coordinator, or a"
        " REAP admin. Admins give any role; DEI coordinators appoint department coordinators.",
        ("/reap role @maria coordinator OIT", "/reap role @dana dei"),
    ),
    "who": ("List who holds which role, for every department or one.", ("/reap who", "/reap who OIT")),
    "checkin": (
        "Run the quarterly check-in: start it, see who has answered, close it, or schedule the meeting.",
        ("/reap checkin start Q3", "/reap checkin schedule FY2027-Q3 4/15"),
    ),
    "measure": (
        "Record a performance measure's value for a quarter (this quarter unless you say).",
        (
            '/reap measure partnership-hires 12 last "two offers pending"',
            "/reap measure internet-at-home 81% high-need=68% low-need=90%",
        ),
    ),
    "measures": (
        "List the performance measures with their keys, owners, latest value and status.",
        ("/reap measures", "/reap measures mine", "/reap measures strategy digital equity"),
    ),
    "score": (
        "Score a candidate project on the plan's equity scoring matrix, by level number or label;"
        " with only the item, in a form that lists every criterion and its levels.",
        ("/reap score OIT-12", '/reap score OIT-12 need=3 reach=most "serves 4 high-need tracts"'),
    ),
    "rollup": (
        "Summarise the plan for a quarter, optionally for one department or into a channel.",
        ("/reap rollup FY2027-Q2", "/reap rollup last OIT #dei-updates"),
    ),
}

_HELP_HINT = "Type /reap help to see every command."

_STATUSES = {
    "notstarted": "not_started",
    "ontrack": "on_track",
    "atrisk": "at_risk",
    "offtrack": "off_track",
    "blocked": "blocked",
    "done": "done",
    "dropped": "dropped",
}
_STATUS_WORDS = "not-started, on-track, at-risk, off-track, blocked, done or dropped"

_A = re.ASCII
_MARKUP_AT = re.compile(r"<[^<>\s][^<>]{0,500}>")
_MARKUP = re.compile(r"<([^<>]+)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
# Bounded so an id that cannot be stored (people.user_id is 32 characters) is never taken for one.
USER_ID = re.compile(r"[UW][A-Z0-9]{1,31}", _A)
_USER = re.compile(rf"<@({USER_ID.pattern})(?:\|[^<>]*)?>", _A)
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]{1,31})(?:\|[^<>]*)?>", _A)
# A button value or modal metadata naming an item or measure is checked against these as well.
REF = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}-[0-9]{1,9}", _A)
_DEPARTMENT = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}", _A)
MEASURE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", _A)
_PERCENT = re.compile(r"([+-]?[0-9]{1,12}(?:\.[0-9]{1,12})?) ?(?:%|percent)?", _A)
_NUMBER = re.compile(
    r"([+-]?)\$?((?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,15})(?:\.[0-9]{0,12})?|\.[0-9]{1,12})%?", _A
)
_PAGE = re.compile(r"[0-9]{1,6}", _A)
# Opening quote -> the characters that may close it (phones often type “...”).
_QUOTES = {'"': '"', "“": '”"', "”": '”"', "„": '“”"'}
_SUBCOMMAND_ALIASES = {"check-in": "checkin", "check_in": "checkin", "?": "help"}


class ReapInputError(Exception):
    """Something a person typed or chose that we cannot act on; the message says how to fix it."""


class UsageError(ReapInputError):
    """A slash command we cannot read: what was wrong, then the usage line of the subcommand."""

    def __init__(self, problem: str, subcommand: str | None = None) -> None:
        self.problem = problem
        self.subcommand = subcommand
        self.usage = USAGE.get(subcommand) if subcommand else None
        super().__init__(f"{problem}\n{self.usage or _HELP_HINT}")


@dataclass(frozen=True)
class Help:
    """`/reap help [topic]`; topic None means the full list."""

    topic: str | None


@dataclass(frozen=True)
class Add:
    """`/reap add ...`; a None title means: open the Add modal."""

    title: str | None
    owner: str | None
    due: date | None
    strategy: str | None


RoleName: TypeAlias = Literal["member", "coordinator", "dei", "admin"]
ListScope: TypeAlias = Literal[
    "mine", "user", "overdue", "due-soon", "blocked", "strategy", "status", "all", "ranked"
]


@dataclass(frozen=True)
class ListItems:
    """`/reap list [scope] [page N]`; with no scope it lists the caller's own items (mine)."""

    scope: ListScope
    user: str | None = None
    strategy: str | None = None
    status: str | None = None
    page: int = 1


@dataclass(frozen=True)
class Show:
    """`/reap show <ref>`."""

    ref: str


@dataclass(frozen=True)
class History:
    """`/reap history <ref>`."""

    ref: str


@dataclass(frozen=True)
class SetStatus:
    """`/reap status <ref> <status> [note]`; status is the storage value, e.g. on_track."""

    ref: str
    status: str
    note: str | None


@dataclass(frozen=True)
class Done:
    """`/reap done <ref> [link] [note]`; the link is the evidence of completion."""

    ref: str
    note: str | None
    evidence: str | None = None


@dataclass(frozen=True)
class Decide:
    """`/reap approve <request> [note]` or `/reap decline <request> <reason>`."""

    request: int
    approve: bool
    note: str | None


@dataclass(frozen=True)
class Verify:
    """`/reap verify <ref>`: a coordinator confirms a done item's evidence."""

    ref: str


@dataclass(frozen=True)
class Reopen:
    """`/reap reopen <ref> <status> <percent>% <reason>`."""

    ref: str
    status: str
    percent: int
    reason: str


@dataclass(frozen=True)
class Requests:
    """`/reap requests [department]`: pending change requests and completions awaiting verification."""

    department: str | None


@dataclass(frozen=True)
class Progress:
    """`/reap progress <ref> <0-100>%`."""

    ref: str
    percent: int


@dataclass(frozen=True)
class Note:
    """`/reap note <ref> <text>`."""

    ref: str
    text: str


@dataclass(frozen=True)
class Due:
    """`/reap due <ref> <date> ["reason"]`; past the plan's allowance the reason goes to the coordinators."""

    ref: str
    due: date
    reason: str | None = None


@dataclass(frozen=True)
class Assign:
    """`/reap assign <ref> @user ["reason"]`; owner is the Slack user id."""

    ref: str
    owner: str
    reason: str | None = None


@dataclass(frozen=True)
class Snooze:
    """`/reap snooze <ref> <date or duration>`; until is always after today."""

    ref: str
    until: date


@dataclass(frozen=True)
class Pause:
    """`/reap pause <date>`; None means `pause off` (resume reminders)."""

    until: date | None


@dataclass(frozen=True)
class Role:
    """`/reap role @user <member|coordinator|dei|admin> [department]`; department is an upper-case key."""

    user: str
    role: RoleName
    department: str | None


@dataclass(frozen=True)
class Who:
    """`/reap who [department]`: who holds which role."""

    department: str | None


CheckInAction: TypeAlias = Literal["start", "status", "close", "schedule"]


@dataclass(frozen=True)
class CheckIn:
    """`/reap checkin start|status|close [quarter]` or `schedule <quarter> <date>`; bare = status."""

    action: CheckInAction
    quarter: FiscalQuarter
    meeting: date | None = None


@dataclass(frozen=True)
class RecordMeasure:
    """`/reap measure <key> <value> [quarter] [note]`; `45%` is 45.0, key kept as typed.

    A word right after the value that reads as a quarter (`this`, `last`, `next`, `Q2`) is the
    quarter, so an unquoted note starting with such a word needs quotes.
    """

    key: str
    value: float | None
    quarter: FiscalQuarter
    note: str | None
    groups: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class ListMeasures:
    """`/reap measures [mine | strategy <name>]`."""

    scope: Literal["all", "mine", "strategy"] = "all"
    strategy: str | None = None


@dataclass(frozen=True)
class ScoreItem:
    """`/reap score <ref> <criterion>=<level> ... [note]`; levels kept as typed for the criterion to read."""

    ref: str
    levels: tuple[tuple[str, str], ...]
    note: str | None


@dataclass(frozen=True)
class ScoreForm:
    """`/reap score <ref>`: the Score form, with every criterion of the item's plan and its levels."""

    ref: str


@dataclass(frozen=True)
class RecordDecision:
    """`/reap decision "<text>" [item <ref>] [owner @user] [due <date>]`."""

    text: str
    ref: str | None
    owner: str | None
    due: date | None


@dataclass(frozen=True)
class PublicUpdate:
    """`/reap public <ref> [es] "<text>"`: the update the public dashboard shows (empty text clears it)."""

    ref: str
    text: str
    lang: Literal["en", "es"] = "en"


@dataclass(frozen=True)
class Amend:
    """`/reap amend <quarter> <ref or measure key> "<correction>" "<reason>"` (closed quarters)."""

    quarter: FiscalQuarter
    subject: str
    correction: str
    reason: str


@dataclass(frozen=True)
class ShowAgenda:
    """`/reap agenda [quarter]`: the DEI meeting agenda for a quarter."""

    quarter: FiscalQuarter


@dataclass(frozen=True)
class Rollup:
    """`/reap rollup [quarter] [department] [#channel]`; channel is a Slack channel id."""

    quarter: FiscalQuarter
    department: str | None
    channel: str | None


Command: TypeAlias = (
    Help
    | Add
    | ListItems
    | Show
    | History
    | SetStatus
    | Done
    | Progress
    | Note
    | Due
    | Assign
    | Snooze
    | Pause
    | Role
    | Who
    | Decide
    | Verify
    | Reopen
    | Requests
    | RecordDecision
    | ShowAgenda
    | Amend
    | PublicUpdate
    | CheckIn
    | RecordMeasure
    | ListMeasures
    | ScoreItem
    | ScoreForm
    | Rollup
)


def parse_command(text: str, *, today: date, fiscal_start_month: int = 7) -> Command:
    """Read the text after `/reap` into a typed command, or raise UsageError saying what to fix."""
    guess = _guess_subcommand(text)
    if len(text) > MAX_TEXT_LENGTH:
        raise UsageError(
            f"That command is {len(text)} characters, which is too long (the limit is {MAX_TEXT_LENGTH})",
            guess,
        )
    try:
        check_text(text, field="text", limit=MAX_TEXT_LENGTH, multiline=True)
    except TextRefused as err:
        raise UsageError(str(err), guess) from None
    tokens = _tokenize(text, guess)
    if not tokens:
        return Help(None)
    first = tokens[0]
    word = first.raw.lower()
    sub = _SUBCOMMAND_ALIASES.get(word, word)
    if first.quoted or sub not in _PARSERS:
        raise _unknown_subcommand(first)
    args = _Args(sub, text, tokens[1:], today, fiscal_start_month)
    return _PARSERS[sub](args)


def help_text(topic: str | None) -> str:
    """Plain-text help: every command, or one command with examples (unknown topic: all)."""
    key = (topic or "").strip().lower()
    key = _SUBCOMMAND_ALIASES.get(key, key)
    if key in USAGE:
        summary, examples = _DETAILS[key]
        return "\n".join([USAGE[key], summary, "Examples:", *(f"  {e}" for e in examples)])
    return "\n".join(
        [
            "REAP Tracker commands:",
            *USAGE.values(),
            "",
            "Items are named like OIT-7. Dates can be 3/31, Mar 31, friday, in 2 weeks or"
            " end of quarter. Quarters can be FY2027-Q2, Q2, this or last.",
            "Type /reap help <command> for examples, e.g. /reap help status.",
        ]
    )


# --- tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    raw: str  # exactly as sent, quotes and Slack markup included
    text: str  # what the person saw: quotes removed, markup and entities resolved
    start: int
    end: int
    quoted: bool = False

    @property
    def word(self) -> str | None:
        """The lower-cased raw text of an unquoted token, for matching keywords."""
        return None if self.quoted else self.raw.lower()


def _tokenize(text: str, subcommand: str | None) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        closers = _QUOTES.get(text[i])
        if closers is not None:
            end = next((j for j in range(i + 1, n) if text[j] in closers), -1)
            if end < 0:
                raise UsageError(
                    f'This quote is never closed: {snippet(text[i:])} (add the closing ")',
                    subcommand,
                )
            inner = _humanise(text[i + 1 : end]).strip()
            tokens.append(_Token(text[i : end + 1], inner, i, end + 1, quoted=True))
            i = end + 1
            continue
        j = i
        while j < n and not text[j].isspace():
            # Slack markup can hold spaces (`<!subteam^S1|@team leads>`); keep it whole.
            markup = _MARKUP_AT.match(text, j) if text[j] == "<" else None
            j = markup.end() if markup else j + 1
        tokens.append(_Token(text[i:j], _humanise(text[i:j]), i, j))
        i = j
    return tokens


def _humanise(raw: str) -> str:
    """Slack's escaped text -> the literal text the person saw."""
    return _ENTITY.sub(lambda m: _ENTITIES[m[1]], _MARKUP.sub(_visible_markup, raw))


def _visible_markup(match: re.Match[str]) -> str:
    target, _, label = match[1].partition("|")
    sigil = target[:1]
    if sigil in ("@", "#"):
        return sigil + (label or target[1:])
    if sigil == "!":
        name = target[1:].split("^")[0]
        if name in ("channel", "here", "everyone"):
            return f"@{name}"
        return label or f"@{name}"
    return label or target


def _guess_subcommand(text: str) -> str | None:
    words = text[:40].split(maxsplit=1)
    if not words:
        return None
    word = _SUBCOMMAND_ALIASES.get(words[0].lower(), words[0].lower())
    return word if word in USAGE else _closest(word, USAGE)


def _closest(word: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word[:30], list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _unknown_subcommand(token: _Token) -> UsageError:
    if not token.quoted and REF.fullmatch(token.raw):
        ref = token.raw.upper()
        return UsageError(
            f'I don\'t know the command "{ref}"; to see that item, type /reap show {ref}',
            "show",
        )
    close = None if token.quoted else _closest(token.raw.lower(), USAGE)
    problem = f'I don\'t know the command "{snippet(token.text)}"'
    if close:
        problem += f"; did you mean {close}?"
    return UsageError(problem, close)


# --- shared argument readers ----------------------------------------------------------------


@dataclass(frozen=True)
class _Args:
    sub: str
    text: str
    tokens: list[_Token]
    today: date
    fiscal_start_month: int

    def fail(self, problem: str) -> UsageError:
        """A UsageError for this subcommand."""
        return UsageError(problem, self.sub)

    def free_text(self, tokens: list[_Token]) -> str:
        """A title or note: one quoted token's content, or the literal run of the words."""
        if not tokens:
            return ""
        if len(tokens) == 1 and tokens[0].quoted:
            return tokens[0].text
        return _humanise(self.text[tokens[0].start : tokens[-1].end]).strip()

    def field(self, text: str, what: str, *, limit: int, multiline: bool = False) -> str:
        """`text` unchanged if it meets domain.text's rules for the field; else a UsageError saying why."""
        try:
            return check_text(text, field=what, limit=limit, multiline=multiline)
        except TextRefused as err:
            raise self.fail(str(err)) from None

    def note(self, tokens: list[_Token]) -> str | None:
        """An optional note after the other arguments, within the note limit."""
        return self.field(self.free_text(tokens), "note", limit=NOTE_MAX, multiline=True) or None

    def ref(self, tokens: list[_Token]) -> str:
        """The item reference in the first token, normalised to upper case."""
        if not tokens:
            raise self.fail("Which item? Give its reference, like OIT-7")
        candidate = tokens[0].text.rstrip(".,:;")
        if REF.fullmatch(candidate):
            return candidate.upper()
        raise self.fail(f'"{snippet(tokens[0].text)}" is not an item reference; they look like OIT-7')

    def person(self, tokens: list[_Token], what: str) -> str:
        """The Slack user id of the single mention in `tokens`."""
        if not tokens:
            raise self.fail(f"The {what} is missing; mention them with @, like @maria")
        if len(tokens) > 1:
            raise self.fail(f"Give one {what}, not {len(tokens)}")
        token = tokens[0]
        if not token.quoted and (match := _USER.fullmatch(token.raw)):
            return match[1]
        raise self.not_a_person(token, what)

    def not_a_person(self, token: _Token, what: str) -> UsageError:
        """The UsageError for a token that should have been an @mention."""
        if token.text.startswith("@"):
            return self.fail(
                f'I can\'t tell who "{snippet(token.text)}" is: mention the person with @ so'
                " Slack turns it into a link (pick them from the list that pops up)"
            )
        return self.fail(f'I expected a person for the {what}, like @maria, not "{snippet(token.text)}"')

    def day(self, tokens: list[_Token], *, after_today: bool = False) -> date:
        """A date written over one or more tokens."""
        if not tokens:
            raise self.fail("The date is missing; e.g. 3/31, friday or in 2 weeks")
        written = " ".join(t.text for t in tokens)
        reader = parse_duration_or_date if after_today else parse_date
        try:
            return reader(written, today=self.today, fiscal_start_month=self.fiscal_start_month)
        except DateError as err:
            raise self.fail(err.problem) from None

    def status(self, tokens: list[_Token]) -> tuple[str, int]:
        """A status in one or two words (`on-track`, `on track`) and how many tokens it took."""
        if not tokens:
            raise self.fail(f"Which status? Use {_STATUS_WORDS}")
        for width in (1, 2):
            words = tokens[:width]
            if len(words) == width and not any(t.quoted for t in words):
                key = re.sub(r"[-_\s]+", "", " ".join(t.raw for t in words).lower())
                if key in _STATUSES:
                    return _STATUSES[key], width
        problem = f'"{snippet(tokens[0].text)}" is not a status; use {_STATUS_WORDS}'
        close = _closest(re.sub(r"[-_\s]+", "", tokens[0].text.lower()), _STATUSES)
        if close:
            problem += f" (did you mean {_STATUSES[close].replace('_', '-')}?)"
        raise self.fail(problem)

    def quarter(self, index: int) -> tuple[FiscalQuarter, int] | None:
        """A quarter word at tokens[index] (`FY2027-Q2`, `FY2027 Q2`, `Q2`, `this`, `last`)."""
        for width in (2, 1):
            words = self.tokens[index : index + width]
            if len(words) < width or any(t.quoted for t in words):
                continue
            try:
                quarter = FiscalQuarter.parse(
                    " ".join(t.raw for t in words),
                    today=self.today,
                    start_month=self.fiscal_start_month,
                )
            except QuarterError:
                continue
            if not 1901 <= quarter.fiscal_year <= 2999:
                raise self.fail(f"FY{quarter.fiscal_year} is not a fiscal year I can track")
            return quarter, width
        return None

    def required_quarter(self, index: int) -> tuple[FiscalQuarter, int]:
        """Like quarter(), but a missing or unreadable quarter is a UsageError."""
        found = self.quarter(index)
        if found is None:
            if index >= len(self.tokens):
                raise self.fail("Which quarter? Write it like FY2027-Q2, Q2, this or last")
            raise self.fail(str(QuarterError(snippet(self.tokens[index].text))))
        return found

    def unexpected(self, token: _Token) -> UsageError:
        """A UsageError for a word that does not belong where it is."""
        return self.fail(f'I didn\'t expect "{snippet(token.text)}" there')


# --- one reader per subcommand ------------------------------------------------------------


def _help(a: _Args) -> Command:
    if not a.tokens:
        return Help(None)
    word = a.tokens[0].text.strip().lower()
    word = _SUBCOMMAND_ALIASES.get(word, word)
    if word in USAGE:
        return Help(word)
    return Help(_closest(word, USAGE) or word)


_ADD_KEYWORDS = ("owner", "due", "strategy")


def _add(a: _Args) -> Command:
    tokens = a.tokens
    if not tokens:
        return Add(None, None, None, None)
    starts = [i for i, t in enumerate(tokens) if t.word in _ADD_KEYWORDS]
    title_tokens = tokens[: starts[0]] if starts else tokens
    if not title_tokens:
        raise a.fail('The title is missing; put it first, like /reap add "Hire analyst" due 3/31')
    if title_tokens[0].quoted and len(title_tokens) > 1:
        raise a.fail(
            f'After the quoted title I expected owner, due or strategy, not "{snippet(title_tokens[1].text)}"'
        )
    title = a.free_text(title_tokens)
    if not title:
        raise a.fail("The title is empty")
    if len(title) > MAX_TITLE_LENGTH:
        raise a.fail(
            f"The title is {len(title):,} characters, which is too long"
            f" (the limit is {MAX_TITLE_LENGTH}); put the details in a note"
        )
    a.field(title, "title", limit=MAX_TITLE_LENGTH)
    options: dict[str, list[_Token]] = {}
    for n, start in enumerate(starts):
        keyword = tokens[start].raw.lower()
        if keyword in options:
            raise a.fail(f'"{keyword}" appears twice; give it once')
        end = starts[n + 1] if n + 1 < len(starts) else len(tokens)
        options[keyword] = tokens[start + 1 : end]
    try:
        owner = a.person(options["owner"], "owner") if "owner" in options else None
        due = a.day(options["due"]) if "due" in options else None
        strategy = None
        if "strategy" in options:
            strategy = a.free_text(options["strategy"])
            if not strategy:
                raise a.fail("The strategy is missing; give its name or key")
    except UsageError as err:
        if title_tokens[0].quoted:
            raise
        raise a.fail(
            f"{err.problem.rstrip('.')}. If owner, due or strategy is part of the title,"
            ' put the title in "quotes"'
        ) from None
    return Add(title, owner, due, strategy)


_DECISION_KEYWORDS = ("item", "owner", "due")


def _decision(a: _Args) -> Command:
    tokens = a.tokens
    starts = [i for i, t in enumerate(tokens) if t.word in _DECISION_KEYWORDS]
    text_tokens = tokens[: starts[0]] if starts else tokens
    if not text_tokens:
        raise a.fail(
            'What was decided? Put it first, in quotes: /reap decision "Extend the pilot to Kensington"'
        )
    if text_tokens[0].quoted and len(text_tokens) > 1:
        raise a.fail(
            f'After the quoted decision I expected item, owner or due, not "{snippet(text_tokens[1].text)}"'
        )
    text = a.field(a.free_text(text_tokens), "decision", limit=NOTE_MAX, multiline=True)
    options: dict[str, list[_Token]] = {}
    for n, start in enumerate(starts):
        keyword = tokens[start].raw.lower()
        if keyword in options:
            raise a.fail(f'"{keyword}" appears twice; give it once')
        end = starts[n + 1] if n + 1 < len(starts) else len(tokens)
        options[keyword] = tokens[start + 1 : end]
    ref = a.ref(options["item"]) if "item" in options else None
    if "item" in options and len(options["item"]) > 1:
        raise a.unexpected(options["item"][1])
    owner = a.person(options["owner"], "owner") if "owner" in options else None
    due = a.day(options["due"]) if "due" in options else None
    if (owner is None) != (due is None):
        raise a.fail("A follow-up needs both an owner and a due date (or neither, for a decision alone)")
    return RecordDecision(text, ref, owner, due)


def _public(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    rest = a.tokens[1:]
    lang: Literal["en", "es"] = "en"
    if rest and not rest[0].quoted and rest[0].word in ("es", "en"):
        lang = "es" if rest[0].word == "es" else "en"
        rest = rest[1:]
    if not rest:
        raise a.fail(f'What should the public read about {ref}? /reap public {ref} "Six sites are live"')
    text = a.field(a.free_text(rest), "public update", limit=NOTE_MAX, multiline=True)
    return PublicUpdate(ref, text, lang)


def _amend(a: _Args) -> Command:
    found = a.quarter(0)
    if found is None:
        raise a.fail('Which closed quarter? e.g. /reap amend FY2027-Q1 OIT-7 "done on Sep 28" "late report"')
    quarter, used = found
    rest = a.tokens[used:]
    if not rest or rest[0].quoted:
        raise a.fail("What does the correction concern? Give an item ref (OIT-7) or a measure key")
    subject = rest[0].raw
    if not (REF.fullmatch(subject) or MEASURE_KEY.fullmatch(subject)):
        raise a.fail(f'"{snippet(rest[0].text)}" is not an item ref or a measure key')
    quoted = [t for t in rest[1:] if t.quoted]
    if len(quoted) != 2 or len(rest) != 3:
        raise a.fail('Give the correction and the reason, each in quotes: "done on Sep 28" "late report"')
    correction = a.field(quoted[0].text, "correction", limit=300)
    reason = a.field(quoted[1].text, "reason", limit=NOTE_MAX, multiline=True)
    return Amend(quarter, subject.upper() if REF.fullmatch(subject) else subject, correction, reason)


def _agenda(a: _Args) -> Command:
    found = a.quarter(0)
    quarter, used = found if found else (_this_quarter(a), 0)
    if len(a.tokens) > used:
        raise a.unexpected(a.tokens[used])
    return ShowAgenda(quarter)


_LIST_WORDS: dict[str, ListScope] = {
    "mine": "mine",
    "me": "mine",
    "my": "mine",
    "overdue": "overdue",
    "late": "overdue",
    "due-soon": "due-soon",
    "due_soon": "due-soon",
    "duesoon": "due-soon",
    "soon": "due-soon",
    "blocked": "blocked",
    "all": "all",
    "everything": "all",
}


def _list(a: _Args) -> Command:
    tokens = list(a.tokens)
    page = 1
    page_at = next((i for i, t in enumerate(tokens) if t.word == "page"), None)
    if page_at is not None:
        number = tokens[page_at + 1].raw if page_at + 1 < len(tokens) else ""
        if not _PAGE.fullmatch(number) or int(number) < 1:
            raise a.fail(f'The page should be a number from 1, like "page 2", not "{number}"')
        page = int(number)
        del tokens[page_at : page_at + 2]
    if not tokens:
        return ListItems("mine", page=page)
    first, rest = tokens[0], tokens[1:]
    if first.word == "strategy":
        name = a.free_text(rest)
        if not name:
            raise a.fail("Which strategy? Give its name or key")
        return ListItems("strategy", strategy=name, page=page)
    if first.word == "ranked":
        # Candidates by their equity score; optionally one strategy's.
        return ListItems("ranked", strategy=a.free_text(rest) or None, page=page)
    if first.word == "status":
        status, used = a.status(rest)
        if rest[used:]:
            raise a.unexpected(rest[used])
        return ListItems("status", status=status, page=page)
    if first.word == "due" and rest and rest[0].word == "soon":
        scope: ListScope | None = "due-soon"
        rest = rest[1:]
    elif not first.quoted and (match := _USER.fullmatch(first.raw)):
        if rest:
            raise a.fail("I can list one thing at a time; pick one person or one filter")
        return ListItems("user", user=match[1], page=page)
    elif first.text.startswith("@"):
        raise a.not_a_person(first, "list")
    else:
        scope = _LIST_WORDS.get(first.word or "")
    if scope is None:
        problem = f'I can\'t list "{snippet(first.text)}"'
        close = _closest((first.word or "")[:30], _LIST_WORDS)
        if close:
            problem += f"; did you mean {_LIST_WORDS[close]}?"
        raise a.fail(problem)
    if rest:
        raise a.fail("I can list one thing at a time; pick one person or one filter")
    return ListItems(scope, page=page)


def _show(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    if len(a.tokens) > 1:
        raise a.unexpected(a.tokens[1])
    return Show(ref)


def _history(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    if len(a.tokens) > 1:
        raise a.unexpected(a.tokens[1])
    return History(ref)


def _status(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    rest = a.tokens[1:]
    status, used = a.status(rest)
    return SetStatus(ref, status, a.note(rest[used:]))


_LINK = re.compile(r"<?(https?://[^\s<>|]{1,490})(?:\|[^<>]*)?>?", _A)


def _done(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    rest = a.tokens[1:]
    evidence = None
    if rest and not rest[0].quoted and (match := _LINK.fullmatch(rest[0].raw)):
        evidence, rest = match[1], rest[1:]
    return Done(ref, a.note(rest), evidence)


def _request_number(a: _Args) -> int:
    if not a.tokens:
        raise a.fail("Which request? Give its number, like #12 (/reap requests lists them)")
    written = a.tokens[0].raw.lstrip("#")
    if not _PAGE.fullmatch(written):
        raise a.fail(f'"{snippet(a.tokens[0].text)}" is not a request number; they look like #12')
    return int(written)


def _approve(a: _Args) -> Command:
    return Decide(_request_number(a), True, a.note(a.tokens[1:]))


def _decline(a: _Args) -> Command:
    number = _request_number(a)
    reason = a.note(a.tokens[1:])
    if not reason:
        raise a.fail(f'Say why, for the person who asked: /reap decline #{number} "the reason"')
    return Decide(number, False, reason)


def _verify(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    if len(a.tokens) > 1:
        raise a.unexpected(a.tokens[1])
    return Verify(ref)


def _reopen(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    rest = a.tokens[1:]
    status, used = a.status(rest)
    rest = rest[used:]
    if not rest or not (match := _PERCENT.fullmatch(rest[0].raw)) or "." in match[1]:
        raise a.fail(f"How far along is {ref} really? Give a whole percentage, like 60%")
    reason = a.note(rest[1:])
    if not reason:
        raise a.fail(
            f'Say why it is reopened: /reap reopen {ref} {status.replace("_", "-")} {match[1]}% "reason"'
        )
    return Reopen(ref, status, int(match[1]), reason)


def _requests(a: _Args) -> Command:
    if not a.tokens:
        return Requests(None)
    department = _department(a.tokens[0])
    if department is None:
        raise a.fail(f'"{snippet(a.tokens[0].text)}" is not a department key; they look like OIT')
    if len(a.tokens) > 1:
        raise a.unexpected(a.tokens[1])
    return Requests(department)


def _progress(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    rest = a.tokens[1:]
    if not rest:
        raise a.fail("How far along is it? Give a percentage from 0 to 100, like 40%")
    written = " ".join(t.raw for t in rest)
    match = _PERCENT.fullmatch(written)
    if match is None:
        raise a.fail(f'"{snippet(written)}" is not a percentage; write it like 40%')
    number = float(match[1])
    if not number.is_integer() or not 0 <= number <= 100:
        raise a.fail(f'Progress is a whole number from 0 to 100, not "{snippet(written)}"')
    return Progress(ref, int(number))


def _note(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    text = a.note(a.tokens[1:])
    if not text:
        raise a.fail('The note is empty; write it after the reference, like "vendor replied"')
    return Note(ref, text)


def _due(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    rest = a.tokens[1:]
    reason = None
    if len(rest) > 1 and rest[-1].quoted:
        # The reason is quoted: a date may run over several words ("end of quarter").
        reason, rest = a.note(rest[-1:]), rest[:-1]
    return Due(ref, a.day(rest), reason)


def _assign(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    return Assign(ref, a.person(a.tokens[1:2], "new owner"), a.note(a.tokens[2:]))


_UNTIL_WORDS = ("until", "till", "til", "for")


def _snooze(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    rest = a.tokens[1:]
    if rest and rest[0].word in _UNTIL_WORDS:
        rest = rest[1:]
    if not rest:
        raise a.fail("Until when? e.g. 1w, 3 days, friday or 4/15")
    return Snooze(ref, a.day(rest, after_today=True))


def _pause(a: _Args) -> Command:
    rest = a.tokens
    if len(rest) == 1 and rest[0].word in ("off", "resume", "stop", "end"):
        return Pause(None)
    if rest and rest[0].word in _UNTIL_WORDS:
        rest = rest[1:]
    if not rest:
        raise a.fail("Until when? e.g. /reap pause 8/15, or /reap pause off to resume")
    return Pause(a.day(rest, after_today=True))


_ROLE_WORDS: dict[str, RoleName] = {
    "member": "member",
    "coordinator": "coordinator",
    "dei": "dei",
    "dei-coordinator": "dei",
    "admin": "admin",
}


def _role(a: _Args) -> Command:
    tokens = a.tokens
    user = a.person(tokens[:1], "person")
    if len(tokens) < 2:
        raise a.fail("Which role? member, coordinator, dei or admin")
    word = tokens[1].text.lower()
    role = _ROLE_WORDS.get(word)
    if role is None:
        close = _closest(word, tuple(_ROLE_WORDS))
        hint = f" (did you mean {close}?)" if close else ""
        raise a.fail(
            f'"{snippet(tokens[1].text)}" is not a role; use member, coordinator, dei or admin{hint}'
        )
    department = None
    if len(tokens) > 2:
        department = _department(tokens[2])
        if department is None:
            raise a.fail(f'"{snippet(tokens[2].text)}" is not a department key; they look like OIT')
    if len(tokens) > 3:
        raise a.unexpected(tokens[3])
    return Role(user, role, department)


def _who(a: _Args) -> Command:
    if not a.tokens:
        return Who(None)
    department = _department(a.tokens[0])
    if department is None:
        raise a.fail(f'"{snippet(a.tokens[0].text)}" is not a department key; they look like OIT')
    if len(a.tokens) > 1:
        raise a.unexpected(a.tokens[1])
    return Who(department)


def _department(token: _Token) -> str | None:
    if token.quoted or not _DEPARTMENT.fullmatch(token.raw):
        return None
    return token.raw.upper()


_CHECKIN_ACTIONS: dict[str, CheckInAction] = {
    "start": "start",
    "open": "start",
    "status": "status",
    "close": "close",
    "schedule": "schedule",
}


def _checkin(a: _Args) -> Command:
    tokens = a.tokens
    if not tokens:
        return CheckIn("status", _this_quarter(a))
    word = tokens[0].word or ""
    action = _CHECKIN_ACTIONS.get(word)
    if action is None:
        close = _closest(word, _CHECKIN_ACTIONS)
        hint = f"; did you mean {_CHECKIN_ACTIONS[close]}?" if close else ""
        raise a.fail(
            f'"{snippet(tokens[0].text)}" is not a check-in action; use start, status, close'
            f" or schedule{hint}"
        )
    if action == "schedule":
        quarter, used = a.required_quarter(1)
        meeting = a.day(tokens[1 + used :])
        if meeting < a.today:
            raise a.fail(f"{meeting.isoformat()} has passed; pick today or a later day")
        return CheckIn("schedule", quarter, meeting)
    found = a.quarter(1)
    if found is None:
        if len(tokens) > 1:
            raise a.fail(str(QuarterError(snippet(tokens[1].text))))
        return CheckIn(action, _this_quarter(a))
    quarter, used = found
    if len(tokens) > 1 + used:
        raise a.unexpected(tokens[1 + used])
    return CheckIn(action, quarter)


def _this_quarter(a: _Args) -> FiscalQuarter:
    return FiscalQuarter.containing(a.today, a.fiscal_start_month)


_PAIR = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.\-]{0,63})=(\S{1,64})", _A)


def _pairs(tokens: list[_Token]) -> tuple[list[tuple[str, str]], list[_Token]]:
    """`key=value` tokens (unquoted) pulled out of `tokens`, and what is left in order."""
    pairs: list[tuple[str, str]] = []
    rest: list[_Token] = []
    for token in tokens:
        match = None if token.quoted else _PAIR.fullmatch(token.raw)
        if match:
            pairs.append((match[1], match[2]))
        else:
            rest.append(token)
    return pairs, rest


def _number(text: str) -> float | None:
    match = _NUMBER.fullmatch(text)
    return float(match[1] + match[2].replace(",", "")) if match else None


def _measure(a: _Args) -> Command:
    tokens = a.tokens
    if not tokens:
        raise a.fail("Which measure? Give its key and the value, like /reap measure partnership-hires 12")
    key_token = tokens[0]
    if key_token.quoted or not MEASURE_KEY.fullmatch(key_token.raw):
        raise a.fail(f'"{snippet(key_token.text)}" is not a measure key; /reap measures lists them')
    pairs, rest = _pairs(list(tokens[1:]))
    groups: list[tuple[str, float]] = []
    for group, written in pairs:
        number = _number(written)
        if number is None:
            raise a.fail(f'"{snippet(written)}" for {group} is not a number; e.g. {group}=12 or {group}=45%')
        if any(group == seen for seen, _ in groups):
            raise a.fail(f"{group} is given twice; give each group once")
        groups.append((group, number))
    value: float | None = None
    if rest and not rest[0].quoted and (number := _number(rest[0].raw)) is not None:
        value, rest = number, rest[1:]
    elif not groups:
        if rest:
            raise a.fail(f'"{snippet(rest[0].text)}" is not a number; e.g. 12, 12.5, 1,200 or 45%')
        raise a.fail(f"What is the value of {key_token.raw}? e.g. 12, 12.5, 1,200 or 45%")
    sub = dataclasses.replace(a, tokens=rest)
    found = sub.quarter(0)
    quarter, used = found if found else (_this_quarter(a), 0)
    note = a.note(rest[used:])
    return RecordMeasure(key_token.raw, value, quarter, note, tuple(groups))


def _measures(a: _Args) -> Command:
    if not a.tokens:
        return ListMeasures()
    first, rest = a.tokens[0], a.tokens[1:]
    if first.word == "mine" and not rest:
        return ListMeasures("mine")
    if first.word == "strategy":
        name = a.free_text(rest)
        if not name:
            raise a.fail("Which strategy? Give its name or key")
        return ListMeasures("strategy", strategy=name)
    raise a.fail(f'I can list all measures, yours ("mine") or a strategy\'s, not "{snippet(first.text)}"')


def _score(a: _Args) -> Command:
    ref = a.ref(a.tokens)
    if len(a.tokens) == 1:
        return ScoreForm(ref)
    pairs, rest = _pairs(list(a.tokens[1:]))
    if not pairs:
        raise a.fail(
            f"Score {ref} on a criterion, like /reap score {ref} need=3 reach=most, or in a form:"
            f" /reap score {ref}"
        )
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise a.fail("Give each criterion once")
    return ScoreItem(ref, tuple(pairs), a.note(rest))


def _rollup(a: _Args) -> Command:
    quarter: FiscalQuarter | None = None
    department: str | None = None
    channel: str | None = None
    index = 0
    while index < len(a.tokens):
        token = a.tokens[index]
        found = a.quarter(index)
        if found is not None:
            if quarter is not None:
                raise a.fail("Give one quarter")
            quarter, used = found
            index += used
            continue
        if not token.quoted and (match := _CHANNEL.fullmatch(token.raw)):
            if channel is not None:
                raise a.fail("Give one channel")
            channel = match[1]
        elif token.text.startswith("#"):
            raise a.fail(
                f'I can\'t tell which channel "{snippet(token.text)}" is: pick it with # so'
                " Slack turns it into a link"
            )
        elif (key := _department(token)) is not None:
            if department is not None:
                raise a.fail("Give one department")
            department = key
        else:
            raise a.unexpected(token)
        index += 1
    return Rollup(quarter or _this_quarter(a), department, channel)


_PARSERS = {
    "help": _help,
    "add": _add,
    "list": _list,
    "show": _show,
    "status": _status,
    "done": _done,
    "progress": _progress,
    "note": _note,
    "due": _due,
    "assign": _assign,
    "snooze": _snooze,
    "history": _history,
    "pause": _pause,
    "approve": _approve,
    "decline": _decline,
    "verify": _verify,
    "reopen": _reopen,
    "requests": _requests,
    "decision": _decision,
    "agenda": _agenda,
    "public": _public,
    "amend": _amend,
    "role": _role,
    "who": _who,
    "checkin": _checkin,
    "measure": _measure,
    "measures": _measures,
    "score": _score,
    "rollup": _rollup,
}
