"""Prometheus metrics of one process, on a registry of its own (tests build many apps side by side).

Counters are fed where the facts are: Bolt's dispatch (requests), a never-retrying observer at the
head of each Slack client's retry handlers (every HTTP attempt, 429s included, even those
slack_sdk retries by itself), and the ticker's job (tick duration). The outbox, the tick's age
and the current check-in's response rate are read when /metrics is scraped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

import commands
from commands.grammar import USAGE
from storage import outbox
from storage.engine import Sessions
from storage.queries.checkins import DepartmentResponses, current_responses

log = logging.getLogger(__name__)

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TICK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# A scrape must answer even when the database does not; what it cannot read is then left out.
SCRAPE_DB_SECONDS = 2.0
# Label values come from Slack payloads; anything not ours is "other" so no one can grow the series.
OTHER = "other"


def _known(name: Any, names: Iterable[str]) -> str:
    return name if isinstance(name, str) and name in names else OTHER


def request_labels(body: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, name) of a Slack payload, with names limited to the ones this app handles."""
    if "command" in body:
        words = str(body.get("text") or "").split(maxsplit=1)
        sub = words[0].lower() if words else "help"
        return "command", f"{_known(body.get('command'), commands.COMMANDS)} {_known(sub, USAGE)}"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        first = actions[0] if isinstance(actions[0], dict) else {}
        return "action", _known(first.get("action_id"), commands.ACTIONS)
    if kind in ("view_submission", "view_closed"):
        return "view", _known((body.get("view") or {}).get("callback_id"), commands.VIEWS)
    if kind in ("message_action", "shortcut"):
        return "shortcut", _known(body.get("callback_id"), commands.SHORTCUTS)
    if kind == "event_callback":
        return "event", _known((body.get("event") or {}).get("type"), commands.EVENTS)
    return OTHER, OTHER


class SlackCallObserver(AsyncRetryHandler):
    """Counts every Slack Web API attempt by method and error, and each 429 with its Retry-After.

    It sits first among a client's retry handlers, so slack_sdk shows it every answer and every
    connection error, and it never asks for a retry itself.
    """

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_retry_count=0)
        self.metrics = metrics

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        """Record the attempt; never retry."""
        method = request.url.rstrip("/").rsplit("/", 1)[-1]
        if response is None:
            self.metrics.slack_calls.labels(method, type(error).__name__ if error else "no_answer").inc()
            return False
        body = response.body if isinstance(response.body, dict) else {}
        if response.status_code == 429:
            self.metrics.slack_rate_limited.labels(method).inc()
            self.metrics.slack_retry_after.labels(method).inc(_retry_after(response.headers))
        error_code = (
            "ok"
            if response.status_code == 200 and body.get("ok", True)
            else str(body.get("error") or f"http_{response.status_code}")
        )
        self.metrics.slack_calls.labels(method, error_code[:64]).inc()
        return False


def _retry_after(headers: Mapping[str, Any]) -> float:
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        return max(0.0, float(raw)) if raw is not None else 1.0
    except ValueError:
        return 1.0


class _AtScrape(Collector):
    """What is read when /metrics is scraped: the outbox by state and kind, the tick's age, and
    each workspace's current check-in by department."""

    def __init__(self) -> None:
        self.outbox: dict[tuple[str, str], int] | None = None
        self.tick_age: float | None = None
        self.checkins: list[DepartmentResponses] | None = None

    def collect(self) -> Iterator[Metric]:
        """The families whose values are known (none before the first scrape or tick)."""
        if self.outbox is not None:
            rows = GaugeMetricFamily(
                "reap_outbox_rows", "Outbox rows by state and kind, at scrape", labels=["state", "kind"]
            )
            for (state, kind), count in sorted(self.outbox.items()):
                rows.add_metric([state, kind], count)
            yield rows
        if self.tick_age is not None:
            yield GaugeMetricFamily(
                "reap_tick_age_seconds",
                "Seconds since this process's ticker last finished a tick",
                value=self.tick_age,
            )
        if self.checkins is not None:
            yield from _checkin_families(self.checkins)


def _checkin_families(found: list[DepartmentResponses]) -> Iterator[Metric]:
    """The current check-in cycle of each workspace (the open one, else the last opened)."""
    labels = ["team", "quarter", "department"]
    rate = GaugeMetricFamily(
        "reap_checkin_response_rate",
        "Share of owners of open items who have answered the current (or last) check-in, by department",
        labels=labels,
    )
    owners = GaugeMetricFamily(
        "reap_checkin_owners",
        "Owners of open items asked in the current (or last) check-in, by department and state",
        labels=[*labels, "state"],
    )
    is_open = GaugeMetricFamily(
        "reap_checkin_open",
        "1 while the workspace's current check-in is open, 0 once it is closed",
        labels=labels[:2],
    )
    cycles: dict[tuple[str, str], bool] = {}
    for entry in found:
        names = [entry.team_id, entry.quarter, entry.department]
        if entry.rate is not None:
            rate.add_metric(names, entry.rate)
        owners.add_metric([*names, "responded"], entry.responded)
        owners.add_metric([*names, "waiting"], entry.waiting)
        cycles[(entry.team_id, entry.quarter)] = entry.is_open
    for (team_id, quarter), open_now in sorted(cycles.items()):
        is_open.add_metric([team_id, quarter], 1 if open_now else 0)
    yield from (rate, owners, is_open)


class Metrics:
    """The metrics of one app and the registry they are exported from."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "reap_requests",
            "Slack requests answered, by kind (command, action, view, shortcut, event), name and outcome",
            ["kind", "name", "outcome"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "reap_request_duration_seconds",
            "Time from receiving a Slack request to its answer (the ack), by kind and name",
            ["kind", "name"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.slack_calls = Counter(
            "reap_slack_api_calls",
            "Slack Web API attempts by method and Slack's error ('ok' when it succeeded)",
            ["method", "error"],
            registry=registry,
        )
        self.slack_rate_limited = Counter(
            "reap_slack_rate_limited", "HTTP 429 answers from Slack, by method", ["method"], registry=registry
        )
        self.slack_retry_after = Counter(
            "reap_slack_retry_after_seconds",
            "Retry-After seconds Slack asked for with its 429s, summed, by method",
            ["method"],
            registry=registry,
        )
        self.tick_seconds = Histogram(
            "reap_tick_duration_seconds",
            "How long one reminder tick of this process's ticker took (plan, then deliver)",
            buckets=TICK_BUCKETS,
            registry=registry,
        )
        self.last_tick_at: datetime | None = None
        self._at_scrape = _AtScrape()
        registry.register(self._at_scrape)

    def watch(self, client: AsyncWebClient) -> SlackCallObserver:
        """Count `client`'s Slack calls here (once per client): the observer goes first."""
        observer = next((h for h in client.retry_handlers if isinstance(h, SlackCallObserver)), None)
        if observer is None:
            observer = SlackCallObserver(self)
            client.retry_handlers.insert(0, observer)
        return observer

    def observe_request(self, kind: str, name: str, outcome: str, seconds: float) -> None:
        """One Slack request answered."""
        self.requests.labels(kind, name, outcome).inc()
        self.request_seconds.labels(kind, name).observe(seconds)

    def observe_tick(self, seconds: float, finished_at: datetime) -> None:
        """One tick of the ticker finished."""
        self.tick_seconds.observe(seconds)
        self.last_tick_at = finished_at

    async def scrape(self, sessions: Sessions, now: datetime) -> bytes:
        """The Prometheus text exposition, after reading the outbox and the check-ins (each bounded)
        and the tick's age."""
        try:
            async with asyncio.timeout(SCRAPE_DB_SECONDS), sessions() as session:
                self._at_scrape.outbox = await outbox.counts(session)
        except Exception as exc:
            log.warning("metrics: could not count the outbox (%s)", type(exc).__name__)
            self._at_scrape.outbox = None
        try:
            async with asyncio.timeout(SCRAPE_DB_SECONDS), sessions() as session:
                self._at_scrape.checkins = await current_responses(session)
        except Exception as exc:
            log.warning("metrics: could not read the check-ins (%s)", type(exc).__name__)
            self._at_scrape.checkins = None
        last = self.last_tick_at
        self._at_scrape.tick_age = None if last is None else max(0.0, (now - last).total_seconds())
        return generate_latest(self.registry)
