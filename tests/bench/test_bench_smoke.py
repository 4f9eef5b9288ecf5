"""The benchmark package's pure helpers and seeding, without any timing (`make bench` does that)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import bench.__main__ as runner
from bench.common import (
    FORM,
    SECRET,
    Answer,
    BenchError,
    LoadResult,
    Throughput,
    closed_loop,
    cpu_model,
    fmt_ms,
    fmt_ratio,
    format_table,
    lua_string,
    median,
    memory_total_gib,
    parse_wrk,
    percentile,
    sign,
    signature_matches,
    signed,
    slash_command,
    verdict,
    wrk_script,
)
from bench.latency import (
    ListRequests,
    RoundResult,
    StatusRequests,
    Workload,
    bolt_floor,
    starlette_floor,
)
from bench.rollup import measure, rollup_plan
from bench.seed import SeedError, SeedPlan, department_key, item_rows, seed, table_counts
from bot.server import parse_slack_body, signature_valid
from storage.engine import create_engine

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


# --- statistics and tables -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([5.0], 99, 5.0),
        ([3.0, 1.0, 2.0], 0, 1.0),
        ([3.0, 1.0, 2.0], 100, 3.0),
        ([float(n) for n in range(1, 101)], 99, 99.01),
        ([10.0, 20.0], 25, 12.5),
    ],
)
def test_percentile_interpolates_between_closest_ranks(values: list[float], q: float, expected: float):
    assert percentile(values, q) == pytest.approx(expected)


def test_median_is_the_fiftieth_percentile():
    assert median([9.0, 1.0, 5.0]) == 5.0


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_refuses_no_samples_or_a_level_outside_0_to_100(values: list[float], q: float):
    with pytest.raises(BenchError):
        percentile(values, q)


def test_table_right_aligns_numbers_and_left_aligns_words():
    table = format_table(["server", "p50 ms"], [["floor", "2.5"], ["reap serve", "11.0"]])
    lines = table.splitlines()
    assert lines[0] == "server      p50 ms"
    assert lines[2] == "floor          2.5"
    assert lines[3] == "reap serve    11.0"


def test_table_refuses_a_row_of_the_wrong_width():
    with pytest.raises(BenchError, match="2 cells for 3 columns"):
        format_table(["a", "b", "c"], [["1", "2"]])


def test_machine_facts_are_read_from_proc_text():
    assert cpu_model("processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\n") == "Intel(R) Xeon(R)"
    assert cpu_model("") == "unknown"
    assert memory_total_gib("MemTotal:       24683520 kB\n") == pytest.approx(23.54, abs=0.01)


# --- signed requests -----------------------------------------------------------------------------


def test_signed_command_passes_the_servers_own_signature_check():
    body = slash_command(user_id="U0B000001", text="status D01-4 at-risk")
    request = signed(body, timestamp=1_800_000_000)
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert signature_valid([SECRET], headers, body, now=1_800_000_100)
    assert not signature_valid([SECRET], headers, body + b"x", now=1_800_000_100)
    assert signature_matches(body, request.headers)


def test_signature_is_refused_for_another_secret():
    body = b"command=%2Freap"
    assert not signature_matches(body, sign(body, timestamp=1_800_000_000, secret="other"))


def test_slash_command_body_parses_as_the_command_slack_sends():
    body = slash_command(user_id="U0B000007", text="list mine")
    parsed = parse_slack_body(body.decode(), FORM)
    assert parsed is not None
    assert (parsed["command"], parsed["text"], parsed["user_id"]) == ("/reap", "list mine", "U0B000007")


def test_wire_format_carries_the_exact_body_and_its_length():
    request = signed(b"a=1&b=2", timestamp=1_800_000_000)
    wire = request.wire("127.0.0.1", 8080)
    head, _, body = wire.partition(b"\r\n\r\n")
    assert body == b"a=1&b=2"
    assert head.startswith(b"POST /slack/events HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 7" in head and b"\r\nHost: 127.0.0.1:8080" in head


# --- wrk -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("line\nbreak", '"line\\010break"'),
        ("é", '"\\195\\169"'),
    ],
)
def test_lua_string_escapes_what_lua_would_misread(text: str, literal: str):
    assert lua_string(text) == literal


def test_wrk_script_gives_each_thread_its_own_requests():
    first = signed(b"text=one", timestamp=1)
    second = signed(b"text=two", timestamp=2)
    script = wrk_script([[first], [second]], expect=b"is now")
    assert script.index('"text=one"') < script.index('"text=two"')
    assert 'EXPECT = "is now"' in script
    assert script.count('["X-Slack-Signature"]') == 2


def test_parse_wrk_reads_the_line_our_script_prints():
    output = "Running 3s test\nBENCH requests=900 duration_us=3000000 bad=4 socket_errors=1\n"
    assert parse_wrk(output) == (900, 3.0, 4, 1)


def test_parse_wrk_without_our_line_is_an_error():
    with pytest.raises(BenchError, match="no BENCH line"):
        parse_wrk("Requests/sec: 100\n")


# --- workloads -----------------------------------------------------------------------------------


def test_status_replay_sets_fresh_items_at_risk_then_back_on_track():
    source = StatusRequests([("D01-1", "U0B000001"), ("D01-2", "U0B000002"), ("D01-3", "U0B000003")])
    texts = [parse_slack_body(r.body.decode(), FORM) for r in source.replay(4, timestamp=1)]
    assert [t["text"] if t else "" for t in texts] == [
        "status D01-1 at-risk",
        "status D01-2 at-risk",
        "status D01-1 on-track",
        "status D01-2 on-track",
    ]
    fresh = parse_slack_body(source.fresh(1, timestamp=1)[0].body.decode(), FORM)
    assert fresh is not None and fresh["text"] == "status D01-3 at-risk" and fresh["user_id"] == "U0B000003"


def test_status_requests_refuse_to_reuse_items_when_the_pool_runs_out():
    source = StatusRequests([("D01-1", "U0B000001")])
    source.fresh(1, timestamp=1)
    with pytest.raises(BenchError, match="untouched on-track items"):
        source.fresh(1, timestamp=1)


def test_list_requests_take_turns_among_owners():
    source = ListRequests(["U0B000001", "U0B000002"])
    users = [parse_slack_body(r.body.decode(), FORM) for r in source.fresh(3, timestamp=1)]
    assert [u["user_id"] if u else "" for u in users] == ["U0B000001", "U0B000002", "U0B000001"]


@pytest.fixture
async def floors() -> AsyncIterator[tuple[int, int]]:
    """The Starlette and Bolt floors served by uvicorn on loopback; yields their ports."""
    servers = [
        uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="none"))
        for app in (starlette_floor(), bolt_floor())
    ]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    for _ in range(500):  # uvicorn offers no "started" event; poll briefly
        if all(s.started for s in servers):
            break
        await asyncio.sleep(0.01)
    ports = tuple(s.servers[0].sockets[0].getsockname()[1] for s in servers)
    try:
        yield ports[0], ports[1]
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)


@pytest.mark.parametrize("client", ["httpx", "raw"])
async def test_both_clients_get_every_answer_from_the_floors(floors: tuple[int, int], client: str):
    starlette_port, bolt_port = floors
    requests = ListRequests(["U0B000001"]).fresh(12, timestamp=int(datetime.now(UTC).timestamp()))

    def says_ok(answer: Answer) -> bool:
        return answer.status == 200 and answer.body == b"ok"

    plain = await closed_loop(starlette_port, requests, concurrency=3, check=says_ok, client=client)
    bolt = await closed_loop(
        bolt_port, requests, concurrency=3, check=lambda a: a.status == 200, client=client
    )
    assert (len(plain.latencies), plain.failures) == (12, 0)
    assert (len(bolt.latencies), bolt.failures) == (12, 0)


async def test_the_bolt_floor_refuses_a_stale_signature(floors: tuple[int, int]):
    _, bolt_port = floors
    stale = ListRequests(["U0B000001"]).fresh(2, timestamp=1_000_000_000)
    result = await closed_loop(bolt_port, stale, concurrency=1, check=lambda a: a.status == 200)
    assert result.failures == 2 and result.first_failure.startswith("401")


# --- seeding -------------------------------------------------------------------------------------


def test_items_are_numbered_from_one_in_each_department():
    plan = SeedPlan(items=10, departments=3, now=NOW)
    rows = list(item_rows(plan, [11, 12, 13], {11: [1], 12: [2], 13: [3]}))
    numbers: Counter[str] = Counter(row["ref"].split("-")[0] for row in rows)
    assert numbers == {department_key(0): 4, department_key(1): 3, department_key(2): 3}
    assert [r["ref"] for r in rows if r["department_id"] == 12] == ["D02-1", "D02-2", "D02-3"]
    assert all(r["strategy_id"] == r["department_id"] - 10 for r in rows)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"items": -1, "now": NOW}, "negative"),
        ({"items": 5, "now": NOW.replace(tzinfo=None)}, "time-zone aware"),
        ({"items": 5, "now": NOW, "history_share": 0.5}, "history window"),
        ({"items": 5, "now": NOW, "checkin_share": 2.0}, "between 0 and 1"),
    ],
)
def test_a_seed_plan_that_cannot_be_consistent_is_refused(kwargs: dict[str, object], problem: str):
    with pytest.raises(SeedError, match=problem):
        SeedPlan(**kwargs)  # type: ignore[arg-type]


async def test_seeding_200_items_writes_every_row_the_app_relies_on(engine: AsyncEngine):
    report = await seed(engine, SeedPlan(items=200, departments=4, now=NOW))
    counts = await table_counts(engine, ["action_item", "audit_event", "department", "person"])
    assert counts == {"action_item": 200, "audit_event": 200, "department": 4, "person": 12}
    assert report.items == 200 and len(report.owners) == 8
    async with engine.connect() as conn:
        counters = (await conn.execute(text("SELECT sum(next_number) FROM department"))).scalar_one()
        refs = (await conn.execute(text("SELECT count(DISTINCT ref) FROM action_item"))).scalar_one()
        sample, owner = report.on_track[0]
        row = (
            await conn.execute(
                text("SELECT status, owner_id FROM action_item WHERE ref = :ref"), {"ref": sample}
            )
        ).one()
    assert counters == 200 and refs == 200
    assert tuple(row) == ("on_track", owner)


async def test_seeding_twice_into_the_same_workspace_is_refused(engine: AsyncEngine):
    await seed(engine, SeedPlan(items=10, departments=2, now=NOW))
    with pytest.raises(SeedError, match="already has departments"):
        await seed(engine, SeedPlan(items=10, departments=2, now=NOW))


async def test_the_rollup_plan_seeds_what_the_real_rollup_reads(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'rollup.db'}"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    plan = rollup_plan(items=200, departments=4)
    report = await seed(engine, plan)
    await engine.dispose()
    assert report.rows["measure_reading"] == 4 * 3 * 2 * 8
    assert report.rows["checkin_response"] > 0 and report.rows["audit_event"] > 200
    measured = await measure(url, 1, plan.team_id)
    assert measured["items_read"] == 200
    assert measured["messages"] > 4 and measured["html_bytes"] > 0


def test_the_runner_finds_the_benchmarks_in_the_issues_order():
    found = runner.benchmarks()
    assert list(found)[:1] == ["latency"]
    assert [m.ORDER for m in found.values()] == sorted(m.ORDER for m in found.values())
    assert {"latency", "rollup", "footprint"} <= set(found)


def test_the_runner_names_the_choices_for_an_unknown_benchmark(capsys: pytest.CaptureFixture[str]):
    assert runner.main(["nonsense"]) == 2
    assert "choose from latency" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("seconds", "cell"), [(0.0025, "2.5"), (0.1, "100.0"), (12.0, "12,000"), (None, "—"), (float("nan"), "—")]
)
def test_milliseconds_cells_read_as_people_expect(seconds: float | None, cell: str):
    assert fmt_ms(seconds) == cell


def test_verdicts_shout_only_when_a_target_is_missed():
    assert verdict(True, "1.2× ≤ 2.5×") == "met (1.2× ≤ 2.5×)"
    assert verdict(False, "3.0× ≤ 2.5×") == "MISSED (3.0× ≤ 2.5×)"
    assert fmt_ratio(float("nan")) == "—" and fmt_ratio(0.456) == "0.46×"


def test_a_phase_without_a_single_correct_answer_shows_a_gap():
    empty = LoadResult(failures=3)
    full = LoadResult(latencies=[0.01, 0.02])
    throughput = Throughput(per_second=1.0, answered=1, failures=0, seconds=1.0, tool="wrk")
    workload = Workload(
        "reap serve", "SQLite", "/reap list mine", 1, 1, ListRequests(["U0B000001"]), lambda a: True, b""
    )
    workload.rounds = [RoundResult(c1=full, c8=empty, lean_c1=full, throughput=throughput)]
    assert workload.p("c1", 50) == pytest.approx(0.015)
    assert fmt_ms(workload.p("c8", 50)) == "—"
    assert workload.failures == 3


# --- item 2 (tick) and item 3 (delivery) helpers ---------------------------------------------------

from bench.delivery import SlackRecord, duplicated, minimum_seconds  # noqa: E402
from bench.tick import (  # noqa: E402
    SEED_AS_OF,
    TICK,
    growth_ratio,
    owed_sample,
    projected_seconds,
)
from bench.tick import _candidates as tick_candidates  # noqa: E402
from bench.tick import _config as tick_config  # noqa: E402
from bench.tick import _redate as tick_redate  # noqa: E402
from reminders.planner import plan_tick  # noqa: E402
from storage.engine import session_factory  # noqa: E402


def test_the_owed_sample_is_the_same_every_run_and_drawn_from_the_candidates():
    candidates = list(range(100, 400))
    first = owed_sample(candidates, 50)
    assert first == owed_sample(list(reversed(candidates)), 50)
    assert len(set(first)) == 50 and set(first) <= set(candidates)
    assert owed_sample(candidates, 50, seed=7) != first


def test_an_owed_sample_larger_than_the_candidates_is_refused():
    with pytest.raises(BenchError, match="3 owed items wanted, only 2 candidates"):
        owed_sample([1, 2], 3)


@pytest.mark.parametrize(
    ("small", "large", "expected"), [(0.05, 0.06, 1.2), (0.1, 1.0, 10.0), (2.0, 1.0, 0.5)]
)
def test_the_growth_ratio_is_large_plan_time_over_small_plan_time(
    small: float, large: float, expected: float
):
    assert growth_ratio(small, large) == pytest.approx(expected)


def test_a_growth_ratio_over_a_zero_time_is_not_a_number():
    assert fmt_ratio(growth_ratio(0.0, 1.0)) == "—"


def test_seeding_time_is_projected_linearly_and_needs_a_measurement():
    assert projected_seconds(10.0, 100_000, 1_000_000) == pytest.approx(100.0)
    with pytest.raises(BenchError, match="at least one item"):
        projected_seconds(1.0, 0, 10)


async def test_redated_items_are_exactly_what_a_tick_finds_owed(engine: AsyncEngine):
    """Seeded 400 days after the tick nothing is owed; the re-dated sample is, and only it."""
    plan = SeedPlan(items=300, now=SEED_AS_OF)
    await seed(engine, plan)
    sessions = session_factory(engine)
    before = await plan_tick(sessions, team_id=plan.team_id, now=TICK, config=tick_config())
    assert before.candidates == 0
    await tick_redate(engine, owed_sample(await tick_candidates(engine, plan.team_id), 20))
    after = await plan_tick(sessions, team_id=plan.team_id, now=TICK, config=tick_config())
    assert after.candidates == 20
    assert 0 < after.planned <= 20 and after.inserted == after.planned


@pytest.mark.parametrize(("messages", "rate", "seconds"), [(2_000, 50.0, 40.0), (30, 1.0, 30.0)])
def test_the_minimum_time_is_messages_over_the_budget(messages: int, rate: float, seconds: float):
    assert minimum_seconds(messages, rate) == pytest.approx(seconds)


def test_a_budget_of_zero_messages_a_second_is_refused():
    with pytest.raises(BenchError, match="rate must be positive"):
        minimum_seconds(10, 0.0)


@pytest.mark.parametrize(
    ("per_recipient", "expected"),
    [({}, 0), ({"D1": 1, "D2": 1}, 0), ({"D1": 3, "D2": 1, "D3": 2}, 3)],
)
def test_duplicates_count_every_message_beyond_the_first_per_recipient(
    per_recipient: dict[str, int], expected: int
):
    assert duplicated(per_recipient) == expected


def test_the_slack_record_reads_the_line_the_localslack_child_prints():
    record = SlackRecord.parse('{"per_channel": {"D0B1": 2}, "rate_limited": 31, "post_calls": 2031}')
    assert record == SlackRecord(per_channel={"D0B1": 2}, rate_limited=31, post_calls=2031)


def test_a_localslack_child_that_printed_no_record_is_an_error():
    with pytest.raises(BenchError, match="printed no record"):
        SlackRecord.parse("Traceback (most recent call last):")


def test_the_runner_puts_tick_and_delivery_second_and_third():
    found = runner.benchmarks()
    assert [name for name in found if name in ("latency", "tick", "delivery")] == [
        "latency",
        "tick",
        "delivery",
    ]


# --- CPU per request, several workers and the in-process request path ------------------------------

from bench.common import cpu_seconds, process_tree, stat_fields  # noqa: E402
from bench.latency import _targets  # noqa: E402
from bench.requestpath import asgi_post, by_package  # noqa: E402


def test_stat_fields_survive_a_command_name_with_spaces_and_parentheses():
    line = "4242 (uvicorn (worker) 2) S 4200 4242 4242 0 -1 4194560 1 0 0 0 250 31 0 0 20 0 1"
    fields = stat_fields(line)
    assert (fields[0], fields[1], fields[11], fields[12]) == ("S", "4200", "250", "31")


def test_a_process_tree_holds_the_process_and_its_children_and_cpu_counts_them():
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        import os

        assert {os.getpid(), child.pid} <= set(process_tree(os.getpid()))
        assert cpu_seconds(os.getpid()) > 0
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()


def _workload(server: str, command: str, per_second: float, p50: float, p99: float) -> Workload:
    workload = Workload(server, "PostgreSQL", command, 1, 1, ListRequests(["U0B000001"]), lambda a: True, b"")
    c1 = LoadResult(latencies=[p50] * 3)
    c8 = LoadResult(latencies=[p99] * 3)
    throughput = Throughput(per_second=per_second, answered=1, failures=0, seconds=1.0, tool="wrk")
    workload.rounds = [RoundResult(c1=c1, c8=c8, lean_c1=c1, throughput=throughput)]
    return workload


def test_targets_compare_one_process_with_the_bolt_floor_and_workers_with_one_process():
    floors = [
        _workload("Starlette floor", "any", 5000, 0.001, 0.005),
        _workload("Bolt floor", "/reap", 2000, 0.012, 0.030),
    ]
    one = _workload("reap serve", "/reap list mine", 600, 0.004, 0.020)
    two = _workload("reap serve --workers 2", "/reap list mine", 900, 0.004, 0.060)
    rows = _targets([*floors, one, two])
    assert rows[0][3:] == ["met (4.0 < 12.0 ms)", "met (20.0 < 50.0 ms)", "met (0.30× ≥ 0.25×)"]
    assert rows[1][3:] == [
        "met (4.0 < 12.0 ms)",
        "MISSED (60.0 < 50.0 ms)",
        "MISSED (1.50× one worker ≥ 1.7×)",
    ]


async def test_the_in_process_client_reaches_an_asgi_app_without_a_socket():
    status, body = await asgi_post(starlette_floor(), b"token=x", {"Content-Type": FORM})
    assert (status, body) == (200, b"ok")


def test_profile_time_is_summed_by_package_with_waiting_apart():
    import pstats

    class Fake(pstats.Stats):
        def __init__(self) -> None:
            self.stats = {
                ("/x/site-packages/sqlalchemy/orm/loading.py", 1, "load"): (1, 1, 0.3, 0.3, {}),
                ("/x/site-packages/sqlalchemy/sql/base.py", 2, "build"): (1, 1, 0.2, 0.2, {}),
                ("~", 0, "<method 'poll' of 'select.epoll' objects>"): (1, 1, 0.4, 0.4, {}),
                ("/work/main/commands/service.py", 3, "run"): (1, 1, 0.1, 0.1, {}),
            }

    totals = dict(by_package(Fake()))
    assert totals == pytest.approx({"SQLAlchemy": 0.5, "idle (waiting in epoll)": 0.4, "reap: commands": 0.1})


def test_the_machines_busy_cpu_is_read_from_proc_stat():
    from bench.common import machine_cpu

    busy, total = machine_cpu()
    assert 0 < busy <= total
