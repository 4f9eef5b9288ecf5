"""Delivery: claim due outbox rows, render them at send time, post them to Slack once, mark them.

Per message: reconcile a possible earlier post (a row carrying a send intent), open the DM,
wait for the send limiter, then in one short transaction renew the lease, re-render from fresh
item states and record the send intent; post with message metadata naming the row's key; and
in a second transaction mark the outcome under the lease. No transaction is open during a Slack
call. The client must have no automatic retry handlers: this module owns retries.

Outcomes: a 429 waits out Retry-After; 5xx, timeouts before the request left and refused
connections back off exponentially with jitter up to `max_attempts`; a dropped connection or
timeout after the request may have reached Slack keeps the send intent, and the next attempt
looks for the message by its metadata (conversations.history) before sending again, so a post
is never silently doubled; if that check is impossible the row is marked ambiguous and left
alone. Permanent errors fail the row with Slack's reason; a recipient who has left Slack is
marked inactive and their open items are reported to the department coordinators. Riders (kinds
that only go out inside a digest) are never claimed here; a digest that is skipped unread (its day
passed, its reader is paused) or fails for good hands what it carried back to the planner. A kind may
check before the post that it can succeed whole (a rollup joins its channel first), and may owe
a notice when its rows fail for good (a rollup's requester hears why, in plain words).
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from reminders.digest import NotificationKind, RenderContext, Skip, default_kinds, riders
from reminders.ratelimit import SendLimiter
from storage import outbox
from storage.audit import record
from storage.engine import Sessions, transaction
from storage.models import Notification
from storage.people import ensure_person
from storage.permissions import SYSTEM_ACTOR

log = logging.getLogger(__name__)

# The workspace whose rows are being sent: with many installations (REAP_INSTALL=oauth) bot/'s
# client reads it to call Slack with that workspace's own token. Each envelope runs in its own
# task, so the value never leaks from one workspace's send into another's.
sending_for: ContextVar[str | None] = ContextVar("reap_sending_for", default=None)

EVENT_TYPE = "reap_notification"
GONE_ERRORS = frozenset({"user_not_found", "user_disabled", "account_inactive"})
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited", "rate_limited"}
)
MAX_RETRY_AFTER = 3600.0

Category = Literal["rate_limited", "transient", "maybe_sent", "permanent", "gone"]


@dataclass(frozen=True)
class DeliveryConfig:
    """Leases, batch sizes, concurrency and retry limits for delivery."""

    lease: timedelta = timedelta(minutes=5)
    batch: int = 50
    concurrency: int = 8
    max_attempts: int = 6
    base_backoff: timedelta = timedelta(seconds=30)
    max_backoff: timedelta = timedelta(minutes=30)
    max_rows: int = 5000
    history_pages: int = 3


@dataclass
class DeliveryReport:
    """What one delivery run did with the rows it claimed."""

    claimed: int = 0
    sent: int = 0
    reconciled: int = 0
    failed: int = 0
    retried: int = 0
    ambiguous: int = 0
    skipped: int = 0
    lost: int = 0
    released: int = 0
    orphans_queued: int = 0
    notices_queued: int = 0
    batches: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"claimed {self.claimed}: sent {self.sent} (reconciled {self.reconciled}), failed {self.failed},"
            f" retrying {self.retried}, ambiguous {self.ambiguous}, skipped {self.skipped}"
        )


@dataclass(frozen=True)
class Failure:
    """How a failed Slack call is treated, with the reason kept on the row."""

    category: Category
    reason: str
    retry_after: float | None = None


def _status(response: Any) -> int:
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return int(status) if isinstance(status, int) else 0


def _error_code(response: Any) -> str:
    data = getattr(response, "data", None)
    if isinstance(data, Mapping):
        return str(data.get("error") or "")
    return ""


def _retry_after(response: Any) -> float:
    headers = getattr(response, "headers", None) or {}
    raw = headers.get("Retry-After") or headers.get("retry-after")
    try:
        seconds = float(raw) if raw is not None else 1.0
    except (TypeError, ValueError):
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def classify(exc: BaseException, *, may_have_posted: bool) -> Failure | None:
    """How to treat an exception from a Slack call; None if it is not a Slack or network error."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status, error = _status(response), _error_code(response)
        if status == 429 or error in ("ratelimited", "rate_limited"):
            after = _retry_after(response)
            return Failure("rate_limited", f"rate limited (Retry-After {after:g}s)", retry_after=after)
        if status >= 500:
            return Failure("transient", f"HTTP {status} {error}".strip())
        if not error:
            # A proxy or an incident page rather than Slack's JSON: worth another try.
            return Failure("transient", f"unexpected answer (HTTP {status}, no error code)")
        if error in GONE_ERRORS:
            return Failure("gone", error)
        if error in TRANSIENT_ERRORS:
            return Failure("transient", error)
        return Failure("permanent", error)
    if isinstance(exc, aiohttp.ClientConnectorError):
        # The connection was never made, so the request cannot have reached Slack.
        return Failure("transient", f"could not connect to Slack ({type(exc).__name__})")
    if isinstance(exc, TimeoutError | aiohttp.ClientError):
        reason = "timed out" if isinstance(exc, TimeoutError) else f"connection lost ({type(exc).__name__})"
        return Failure("maybe_sent" if may_have_posted else "transient", reason)
    return None


def backoff(attempt: int, *, base: timedelta, cap: timedelta, rng: random.Random) -> timedelta:
    """Exponential backoff with equal jitter: half the step fixed, half random."""
    step = min(cap.total_seconds(), base.total_seconds() * 2 ** max(0, attempt - 1))
    return timedelta(seconds=step * (0.5 + rng.random() / 2))


@dataclass
class _Envelope:
    """Rows that go out as one message (one row, unless the kind groups them)."""

    kind: NotificationKind | None
    rows: list[Notification]
    posting: bool = False

    @property
    def recipient(self) -> str:
        """Who the message goes to (every row of an envelope shares it)."""
        return self.rows[0].recipient


def group_rows(
    rows: Sequence[Notification], kinds: Mapping[str, NotificationKind]
) -> list[tuple[NotificationKind | None, list[Notification]]]:
    """Rows in message order: one per message, except groupable kinds share one per recipient."""
    groups: list[tuple[NotificationKind | None, list[Notification]]] = []
    shared: dict[tuple[str, str, str], list[Notification]] = {}
    for row in rows:
        kind = kinds.get(row.kind)
        if kind is not None and kind.groupable:
            key = (row.team_id, row.kind, row.recipient)
            if key in shared:
                shared[key].append(row)
                continue
            shared[key] = [row]
            groups.append((kind, shared[key]))
        else:
            groups.append((kind, [row]))
    return groups


def _has_intent(row: Notification) -> bool:
    return row.channel is not None and row.ts is None


async def deactivate(session: Any, *, team_id: str, user_id: str, reason: str, now: datetime) -> None:
    """Mark a person inactive (Slack says they have left), with an audit event saying why."""
    person = await ensure_person(session, team_id=team_id, user_id=user_id, now=now)
    if person.active:
        person.active = False
        record(
            session,
            team_id=team_id,
            entity="person",
            entity_id=person.id,
            actor=SYSTEM_ACTOR,
            at=now,
            action="update",
            field="active",
            old=True,
            new=False,
            note=f"Slack said {reason} when REAP tried to message them",
        )


class _Run:
    """One delivery run: claims batches until none is due, sends them, marks them."""

    def __init__(
        self,
        sessions: Sessions,
        client: AsyncWebClient,
        *,
        token: str,
        now: datetime,
        limiter: SendLimiter,
        config: DeliveryConfig,
        kinds: Mapping[str, NotificationKind],
        default_zone: ZoneInfo,
        dm_cache: dict[str, str],
        monotonic: Callable[[], float],
        rng: random.Random,
        stop: asyncio.Event | None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.token = token
        self.now = now
        self.limiter = limiter
        self.config = config
        self.kinds = kinds
        self.default_zone = default_zone
        self.dm_cache = dm_cache
        self.monotonic = monotonic
        self.started = monotonic()
        self.rng = rng
        self.stop = stop
        self.report = DeliveryReport()

    def current(self) -> datetime:
        """The tick's instant moved on by the time this run has taken (leases stay honest)."""
        return self.now + timedelta(seconds=self.monotonic() - self.started)

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    async def run(self) -> DeliveryReport:
        """Claim and send batches until nothing is due, the row budget is spent or stop is set."""
        gate = asyncio.Semaphore(self.config.concurrency)
        while self.report.claimed < self.config.max_rows and not self._stopping():
            limit = min(self.config.batch, self.config.max_rows - self.report.claimed)
            async with transaction(self.sessions) as session:
                rows = await outbox.claim(
                    session,
                    owner=self.token,
                    now=self.current(),
                    lease=self.config.lease,
                    limit=limit,
                    hold=riders(self.kinds),
                )
            if not rows:
                break
            self.report.claimed += len(rows)
            self.report.batches += 1
            await asyncio.gather(*(self._guarded(envelope, gate) for envelope in self._envelopes(rows)))
        return self.report

    def _envelopes(self, rows: Sequence[Notification]) -> list[_Envelope]:
        return [_Envelope(kind, group) for kind, group in group_rows(rows, self.kinds)]

    async def _guarded(self, envelope: _Envelope, gate: asyncio.Semaphore) -> None:
        sending_for.set(envelope.rows[0].team_id)
        async with gate:
            try:
                if self._stopping():
                    await self._release(envelope.rows)
                else:
                    await self._process(envelope)
            except Exception as exc:
                # A bug or a database hiccup: put the rows back so the next tick tries again; if
                # the post may have happened the intent stays and the next attempt reconciles.
                log.exception("delivering %s failed", [row.key for row in envelope.rows])
                failure = Failure(
                    "maybe_sent" if envelope.posting else "transient", f"internal error: {type(exc).__name__}"
                )
                try:
                    await self._settle(envelope.rows, failure, envelope.kind)
                except Exception:
                    log.exception("could not record the failure; the lease will expire and retry it")

    async def _release(self, rows: Sequence[Notification]) -> None:
        async with transaction(self.sessions) as session:
            for row in rows:
                if await outbox.mark_retry(
                    session,
                    id=row.id or 0,
                    owner=self.token,
                    send_after=self.current(),
                    error=row.last_error,
                    keep_intent=_has_intent(row),
                    refund=True,
                ):
                    self.report.released += 1

    async def _process(self, envelope: _Envelope) -> None:
        kind = envelope.kind
        rows = list(envelope.rows)
        if kind is None:
            await self._settle(rows, Failure("permanent", f"no renderer for kind '{rows[0].kind}'"), None)
            return
        if any(_has_intent(row) for row in rows):
            rows = await self._reconcile(rows, kind)
            if not rows:
                return
        try:
            channel = await self._open(envelope.recipient)
            if kind.before_send is not None:
                await kind.before_send(self.client, rows[0], channel)
        except Exception as exc:
            failure = classify(exc, may_have_posted=False)
            if failure is None:
                raise
            await self._settle(rows, failure, kind)
            return
        await self.limiter.acquire(channel)
        now = self.current()
        async with transaction(self.sessions) as session:
            live: list[Notification] = []
            for row in rows:
                if await outbox.renew(
                    session,
                    id=row.id or 0,
                    owner=self.token,
                    now=now,
                    lease=self.config.lease,
                    channel=channel,
                ):
                    live.append(row)
                else:
                    self.report.lost += 1
            if not live:
                return
            rendered = await kind.render(
                session, live, RenderContext(now=now, default_zone=self.default_zone)
            )
            reason = rendered.reason if isinstance(rendered, Skip) else "nothing left to say"
            covered = set() if isinstance(rendered, Skip) else rendered.row_ids
            release = isinstance(rendered, Skip) and rendered.release
            for row in live:
                if (row.id or 0) in covered:
                    continue
                skipped = await outbox.mark_skipped(session, id=row.id or 0, owner=self.token, reason=reason)
                self.report.skipped += 1
                if skipped and release:
                    # It never reached its reader: what rode in it rides their next digest.
                    await outbox.release_riders(session, carrier=row.key)
        if isinstance(rendered, Skip):
            return
        live = [row for row in live if (row.id or 0) in rendered.row_ids]
        payload: dict[str, Any] = {"key": live[0].key}
        if len(live) > 1:
            payload["keys"] = [row.key for row in live]
        envelope.posting = True
        try:
            answer = await self.client.chat_postMessage(
                channel=channel,
                text=rendered.text,
                blocks=rendered.blocks,
                metadata={"event_type": EVENT_TYPE, "event_payload": payload},
            )
        except Exception as exc:
            failure = classify(exc, may_have_posted=True)
            if failure is None:
                raise
            if failure.category == "rate_limited":
                self.limiter.hold(channel, failure.retry_after or 1.0, self.limiter.now())
            await self._settle(live, failure, kind)
            return
        posted_in, ts = str(answer.get("channel") or channel), str(answer["ts"])
        if await self._mark_sent(live, channel=posted_in, ts=ts) and kind.after_send is not None:
            try:
                await kind.after_send(live[0], posted_in, ts)
            except Exception:
                # The message itself is out and marked sent; a failed follow-up must not resend it.
                log.exception("follow-up of %s failed", live[0].key)

    async def _mark_sent(self, rows: Sequence[Notification], *, channel: str, ts: str) -> int:
        marked = 0
        async with transaction(self.sessions) as session:
            for row in rows:
                if await outbox.mark_sent(
                    session, id=row.id or 0, owner=self.token, channel=channel, ts=ts, now=self.current()
                ):
                    marked += 1
                else:
                    # Our lease expired mid-send; whoever reclaimed it finds this post by its
                    # metadata (the intent was recorded first) instead of sending it again.
                    self.report.lost += 1
        self.report.sent += marked
        return marked

    async def _open(self, recipient: str) -> str:
        if not recipient.startswith(("U", "W")):
            return recipient
        channel = self.dm_cache.get(recipient)
        if channel is None:
            answer = await self.client.conversations_open(users=recipient)
            channel = str(answer["channel"]["id"])
            self.dm_cache[recipient] = channel
        return channel

    async def _reconcile(self, rows: list[Notification], kind: NotificationKind) -> list[Notification]:
        """Settle rows that may already be posted; returns the rows still to send."""
        unsure = [row for row in rows if _has_intent(row)]
        channel = str(unsure[0].channel)
        try:
            found = await self._posted(channel, {row.key for row in unsure})
        except Exception as exc:
            failure = classify(exc, may_have_posted=False)
            if failure is None:
                raise
            if failure.category == "permanent":
                failure = Failure(
                    "permanent", f"may have been posted and cannot be checked ({failure.reason})"
                )
                await self._ambiguous(unsure, failure.reason)
            elif failure.category == "gone":
                await self._settle(unsure, failure, kind)
            else:
                await self._settle(unsure, Failure("maybe_sent", failure.reason, failure.retry_after), kind)
            return [row for row in rows if not _has_intent(row)]
        posted = [row for row in unsure if row.key in found]
        for ts in {found[row.key] for row in posted}:
            marked = await self._mark_sent(
                [row for row in posted if found[row.key] == ts], channel=channel, ts=ts
            )
            self.report.reconciled += marked
        return [row for row in rows if row.key not in found]

    async def _posted(self, channel: str, keys: set[str]) -> dict[str, str]:
        """The ts of messages in `channel` whose REAP metadata names one of `keys`."""
        found: dict[str, str] = {}
        cursor: str | None = None
        for _ in range(self.config.history_pages):
            answer = await self.client.conversations_history(
                channel=channel, limit=100, include_all_metadata=True, cursor=cursor
            )
            for message in answer.get("messages") or []:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") != EVENT_TYPE:
                    continue
                payload = metadata.get("event_payload") or {}
                for key in [payload.get("key"), *(payload.get("keys") or [])]:
                    if key in keys:
                        found.setdefault(str(key), str(message["ts"]))
            cursor = ((answer.get("response_metadata") or {}).get("next_cursor")) or None
            if keys <= set(found) or not answer.get("has_more") or not cursor:
                break
        return found

    async def _ambiguous(self, rows: Sequence[Notification], reason: str) -> None:
        async with transaction(self.sessions) as session:
            for row in rows:
                if await outbox.mark_ambiguous(session, id=row.id or 0, owner=self.token, error=reason):
                    self.report.ambiguous += 1
                    self.report.problems.append(f"{row.key}: ambiguous: {reason}")

    async def _confirm_gone(self, recipient: str, failure: Failure) -> Failure:
        """Check with users.info before treating a recipient as gone.

        A dead bot token can also answer account_inactive; marking everyone inactive and
        flooding coordinators with orphan reports would be far worse than one failed row.
        """
        if not recipient.startswith(("U", "W")):
            return Failure("permanent", failure.reason)
        try:
            answer = await self.client.users_info(user=recipient)
        except Exception as exc:
            checked = classify(exc, may_have_posted=False)
            if checked is None:
                raise
            if checked.category == "gone" and checked.reason == "user_not_found":
                return failure
            if checked.category in ("permanent", "gone"):
                return Failure("permanent", f"{failure.reason} (users.info: {checked.reason})")
            return Failure("transient", f"{failure.reason}; could not confirm ({checked.reason})")
        if (answer.get("user") or {}).get("deleted"):
            return failure
        return Failure("permanent", f"{failure.reason}, but users.info says they are still active")

    async def _settle(
        self, rows: Sequence[Notification], failure: Failure, kind: NotificationKind | None
    ) -> None:
        """Record a failed attempt: retry later, or fail (or leave ambiguous) for good."""
        if failure.category == "gone":
            failure = await self._confirm_gone(rows[0].recipient, failure)
        now = self.current()
        async with transaction(self.sessions) as session:
            if failure.category in ("gone", "permanent"):
                reason = failure.reason
                if failure.category == "gone":
                    reason = f"{failure.reason}: the recipient has left Slack"
                    await deactivate(
                        session,
                        team_id=rows[0].team_id,
                        user_id=rows[0].recipient,
                        reason=failure.reason,
                        now=now,
                    )
                failed = [
                    row
                    for row in rows
                    if await outbox.mark_failed(session, id=row.id or 0, owner=self.token, error=reason)
                ]
                self.report.failed += len(failed)
                self.report.problems += [f"{row.key}: {reason}" for row in failed]
                if failure.category == "gone" and failed and kind is not None and kind.on_gone is not None:
                    self.report.orphans_queued += await kind.on_gone(session, failed, failure.reason, now)
                await self._failed_for_good(session, failed, failure.reason, kind, now)
                return
            for row in rows:
                await self._retry_or_give_up(session, row, failure, kind, now)

    async def _failed_for_good(
        self,
        session: Any,
        rows: Sequence[Notification],
        reason: str,
        kind: NotificationKind | None,
        now: datetime,
    ) -> None:
        if rows and kind is not None and kind.on_failed is not None:
            self.report.notices_queued += await kind.on_failed(session, rows, reason, now)

    async def _retry_or_give_up(
        self, session: Any, row: Notification, failure: Failure, kind: NotificationKind | None, now: datetime
    ) -> None:
        maybe_sent = failure.category == "maybe_sent"
        if row.attempts >= self.config.max_attempts:
            reason = f"gave up after {row.attempts} attempts: {failure.reason}"
            if maybe_sent:
                if await outbox.mark_ambiguous(session, id=row.id or 0, owner=self.token, error=reason):
                    self.report.ambiguous += 1
                    self.report.problems.append(f"{row.key}: ambiguous: {reason}")
            elif await outbox.mark_failed(session, id=row.id or 0, owner=self.token, error=reason):
                self.report.failed += 1
                self.report.problems.append(f"{row.key}: {reason}")
                await self._failed_for_good(session, [row], reason, kind, now)
            return
        if failure.category == "rate_limited":
            delay = timedelta(seconds=failure.retry_after or 1.0)
        else:
            delay = backoff(
                row.attempts, base=self.config.base_backoff, cap=self.config.max_backoff, rng=self.rng
            )
        if await outbox.mark_retry(
            session,
            id=row.id or 0,
            owner=self.token,
            send_after=now + delay,
            error=failure.reason,
            keep_intent=maybe_sent,
        ):
            self.report.retried += 1


def lease_token(owner: str) -> str:
    """A fencing token unique to one delivery run of `owner` (fits Notification.lease_owner)."""
    return f"{owner[:52]}#{secrets.token_hex(5)}"


async def deliver(
    sessions: Sessions,
    client: AsyncWebClient,
    *,
    owner: str,
    now: datetime,
    limiter: SendLimiter,
    config: DeliveryConfig | None = None,
    kinds: Mapping[str, NotificationKind] | None = None,
    default_zone: ZoneInfo | None = None,
    dm_cache: dict[str, str] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    stop: asyncio.Event | None = None,
) -> DeliveryReport:
    """Send every outbox row due at `now` (claimed as `owner`), shaped by `limiter`.

    `client` must have no automatic retry handlers. `stop`, once set, makes the run hand back
    rows it has claimed but not started, and claim no more.
    """
    run = _Run(
        sessions,
        client,
        token=lease_token(owner),
        now=now,
        limiter=limiter,
        config=config or DeliveryConfig(),
        kinds=kinds if kinds is not None else default_kinds(),
        default_zone=default_zone or ZoneInfo("UTC"),
        dm_cache=dm_cache if dm_cache is not None else {},
        monotonic=monotonic,
        rng=rng or random.Random(),
        stop=stop,
    )
    return await run.run()
