"""Shared benchmark helpers: the machine, statistics, tables, signed Slack requests, and servers.

Run as `python -m bench.common localslack` it serves localslack in its own process (printing its
base URL, stopping when standard input closes), so no emulator thread competes with a load
generator for the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import http.client
import itertools
import json
import math
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from bot.signing import signed_headers
from domain.errors import ReapError
from localslack import payloads

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret-5f0c2e8a9d41"
TOKEN = "xoxb-bench-token"
TEAM = "T0BENCH"
HOST = "127.0.0.1"
EVENTS_PATH = "/slack/events"
FORM = "application/x-www-form-urlencoded"
MIB = 1024 * 1024


class BenchError(ReapError):
    """A benchmark could not set itself up; the message says which part and why."""

    def __init__(self, part: str, problem: str) -> None:
        self.part = part
        super().__init__(f"{part}: {problem}")


# --- The machine ---------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model(cpuinfo: str) -> str:
    """The CPU model named in /proc/cpuinfo text, or 'unknown'."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("model name", "Model", "Hardware"):
            return value.strip()
    return "unknown"


def memory_total_gib(meminfo: str) -> float:
    """MemTotal from /proc/meminfo text, in GiB (0 if absent)."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / (1024 * 1024)
    return 0.0


def machine_facts() -> dict[str, str]:
    """What the figures came from: cores, CPU, memory, Python, OS."""
    return {
        "cores (nproc)": str(os.cpu_count() or 0),
        "CPU": cpu_model(_read("/proc/cpuinfo")),
        "RAM": f"{memory_total_gib(_read('/proc/meminfo')):.1f} GiB",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": f"{platform.system()} {platform.release()}",
    }


def print_header(title: str, command: str, settings: dict[str, str] | None = None) -> None:
    """The heading every benchmark prints: what it measures, on which machine, with which command."""
    print()
    print(f"== {title} ==")
    facts = {**machine_facts(), "command": command, **(settings or {})}
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        print(f"  {key.ljust(width)}  {value}")
    print(flush=True)


def bench_command(names: Sequence[str]) -> str:
    """The command line that reproduces a run of these benchmarks (from the repository root)."""
    return " ".join([".venv/bin/python", "-m", "bench", *names])


# --- Statistics ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        raise BenchError("statistics", "no samples to take a percentile of")
    if not 0 <= q <= 100:
        raise BenchError("statistics", f"percentile {q} is outside 0-100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    """The median (50th percentile)."""
    return percentile(values, 50)


# --- Tables --------------------------------------------------------------------------------------


def _is_number(text: str) -> bool:
    stripped = text.replace(",", "").replace("×", "").replace("%", "").strip()
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table; numeric cells are right-aligned, the rest left-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        if len(row) != len(headers):
            raise BenchError("table", f"a row has {len(row)} cells for {len(headers)} columns")
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if _is_number(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print `format_table` followed by a blank line."""
    print(format_table(headers, rows))
    print(flush=True)


def fmt_ms(seconds: float | None) -> str:
    """Seconds as milliseconds for a table cell."""
    if seconds is None or math.isnan(seconds):
        return "—"
    return f"{seconds * 1000:.1f}" if seconds < 10 else f"{seconds * 1000:,.0f}"


def fmt_ratio(value: float | None) -> str:
    """A ratio such as 1.8×."""
    return "—" if value is None or math.isnan(value) else f"{value:.2f}×"


def verdict(met: bool, detail: str) -> str:
    """'met (detail)' or 'MISSED (detail)'; misses are upper case so they stand out."""
    return f"{'met' if met else 'MISSED'} ({detail})"


# --- Signed Slack requests -----------------------------------------------------------------------


def sign(body: bytes, *, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    """Slack's v0 signature headers over exactly these bytes."""
    return signed_headers(body, secret=secret, timestamp=timestamp)


def signature_matches(body: bytes, headers: dict[str, str], *, secret: str = SECRET) -> bool:
    """Whether headers carry the right v0 signature for body (what a server would check)."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    if not timestamp.isdigit():
        return False
    expected = sign(body, timestamp=int(timestamp), secret=secret)["X-Slack-Signature"]
    return hmac.compare_digest(expected, headers.get("X-Slack-Signature", ""))


_TRIGGERS = itertools.count(1)


def slash_command(
    *,
    user_id: str,
    text: str,
    team_id: str = TEAM,
    channel_id: str = "C0BENCH",
    response_url: str = "http://127.0.0.1:9/webhook/0",
    trigger_id: str | None = None,
) -> bytes:
    """The form body Slack POSTs for `/reap <text>` typed by `user_id`."""
    fields = payloads.slash_command(
        team_id=team_id,
        team_domain="bench",
        channel_id=channel_id,
        channel_name="bench",
        user_id=user_id,
        text=text,
        response_url=response_url,
        # The bot acts once per trigger_id (replay protection), so every request needs its own.
        trigger_id=trigger_id or f"{next(_TRIGGERS)}.{uuid.uuid4().hex[:12]}.bench",
    )
    return payloads.form_body(fields)


@dataclass(frozen=True)
class SignedRequest:
    """One signed POST to /slack/events: its body and headers (without Host and Content-Length)."""

    body: bytes
    headers: dict[str, str]

    def wire(self, host: str, port: int) -> bytes:
        """The exact HTTP/1.1 bytes to send on a keep-alive connection."""
        lines = [
            f"POST {EVENTS_PATH} HTTP/1.1",
            f"Host: {host}:{port}",
            f"Content-Length: {len(self.body)}",
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def signed(body: bytes, *, timestamp: int, secret: str = SECRET) -> SignedRequest:
    """A form body with its content type and signature headers."""
    return SignedRequest(
        body=body, headers={"Content-Type": FORM, **sign(body, timestamp=timestamp, secret=secret)}
    )


# --- A lean HTTP/1.1 client ----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A response's status and body."""

    status: int
    body: bytes


class Connection:
    """One keep-alive HTTP/1.1 connection sending pre-built requests.

    A load generator written with httpx spends about a millisecond of its own CPU per request,
    which on a two-core machine is taken from the server being measured; this spends a few
    tens of microseconds.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def send(self, wire: bytes) -> Answer:
        """Send one request and read its whole response."""
        reader, writer = await self._open()
        try:
            writer.write(wire)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            headers = {}
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                body = await _read_chunked(reader)
            else:
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
            if headers.get(b"connection", b"").lower() == b"close":
                await self.close()
            return Answer(status, body)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await self.close()
            raise

    async def close(self) -> None:
        """Hang up (the next send reconnects)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


@dataclass
class LoadResult:
    """Latencies of the requests that succeeded, and how many did not."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    elapsed: float = 0.0
    first_failure: str = ""

    @property
    def count(self) -> int:
        """How many requests were sent."""
        return len(self.latencies) + self.failures


Check = Callable[[Answer], bool]


Send = Callable[[SignedRequest], Awaitable[Answer]]
_SEND_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, httpx.HTTPError)


async def _workers(requests: Sequence[SignedRequest], senders: Sequence[Send], check: Check) -> LoadResult:
    result = LoadResult()
    queue = iter(requests)

    async def worker(send: Send) -> None:
        for request in queue:
            started = time.perf_counter()
            try:
                answer = await send(request)
            except _SEND_ERRORS as exc:
                result.failures += 1
                result.first_failure = result.first_failure or f"{type(exc).__name__}: {exc}"
                continue
            elapsed = time.perf_counter() - started
            if check(answer):
                result.latencies.append(elapsed)
            else:
                result.failures += 1
                result.first_failure = result.first_failure or f"{answer.status} {answer.body[:200]!r}"

    started = time.perf_counter()
    await asyncio.gather(*(worker(send) for send in senders))
    result.elapsed = time.perf_counter() - started
    return result


async def closed_loop(
    port: int,
    requests: Sequence[SignedRequest],
    *,
    concurrency: int,
    check: Check,
    client: str = "httpx",
) -> LoadResult:
    """Send every request with `concurrency` workers, each waiting for its answer before the next.

    `client` is "httpx" (an httpx.AsyncClient, as a Python caller of the bot would use) or "raw"
    (the lean client above, whose own overhead is a few tens of microseconds).
    """
    if client == "raw":
        connections = [Connection(HOST, port) for _ in range(concurrency)]

        def raw_sender(connection: Connection) -> Send:
            async def send(request: SignedRequest) -> Answer:
                return await connection.send(request.wire(HOST, port))

            return send

        try:
            return await _workers(requests, [raw_sender(c) for c in connections], check)
        finally:
            for connection in connections:
                await connection.close()
    if client != "httpx":
        raise BenchError("client", f"unknown client {client!r} (httpx or raw)")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}", timeout=30, limits=limits, trust_env=False
    ) as http:

        async def send(request: SignedRequest) -> Answer:
            response = await http.post(EVENTS_PATH, content=request.body, headers=request.headers)
            return Answer(response.status_code, response.content)

        return await _workers(requests, [send] * concurrency, check)


# --- Throughput ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    """Requests answered correctly per second under a fixed number of open connections."""

    per_second: float
    answered: int
    failures: int
    seconds: float
    tool: str


def wrk_path() -> str | None:
    """Debian's wrk, if installed and not declined with BENCH_LOADGEN=python (nothing is installed)."""
    if os.environ.get("BENCH_LOADGEN", "").lower() == "python":
        return None
    return shutil.which("wrk")


def lua_string(text: str) -> str:
    """A Lua string literal holding exactly `text` (bytes above 126 and controls as escapes)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif 32 <= code <= 126:
            out.append(char)
        else:
            out.extend(f"\\{b:03d}" for b in char.encode())
    out.append('"')
    return "".join(out)


_WRK_SCRIPT = """
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  prepared = {}
  for i, r in ipairs(BODIES[tid]) do
    prepared[i] = wrk.format("POST", PATH, r[1], r[2])
  end
  sent = 0
  bad = 0
end

function request()
  sent = sent + 1
  return prepared[((sent - 1) % #prepared) + 1]
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body or "", EXPECT, 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d bad=%d socket_errors=%d\\n",
    summary.requests, summary.duration, b, e.connect + e.read + e.write + e.timeout))
end
"""


def wrk_script(per_thread: Sequence[Sequence[SignedRequest]], *, expect: bytes) -> str:
    """A wrk Lua script replaying each thread's own pre-signed requests in order, round and round."""
    threads = []
    for requests in per_thread:
        entries = []
        for r in requests:
            headers = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in r.headers.items())
            entries.append(f"{{{{{headers}}}, {lua_string(r.body.decode())}}}")
        threads.append("{\n" + ",\n".join(entries) + "\n}")
    return (
        f"PATH = {lua_string(EVENTS_PATH)}\nEXPECT = {lua_string(expect.decode())}\n"
        f"BODIES = {{\n{', '.join(threads)}\n}}\n{_WRK_SCRIPT}"
    )


def parse_wrk(output: str) -> tuple[int, float, int, int]:
    """(requests, seconds, bad answers, socket errors) from the line our wrk script prints."""
    for line in output.splitlines():
        if line.startswith("BENCH "):
            fields = dict(part.split("=", 1) for part in line.split()[1:])
            return (
                int(fields["requests"]),
                int(fields["duration_us"]) / 1e6,
                int(fields["bad"]),
                int(fields["socket_errors"]),
            )
    raise BenchError("wrk", f"printed no BENCH line:\n{output[-2000:]}")


def run_wrk(
    port: int,
    per_thread: Sequence[Sequence[SignedRequest]],
    *,
    expect: bytes,
    connections: int,
    seconds: float,
    workdir: Path,
) -> Throughput:
    """Throughput under wrk with one thread per request list and `connections` connections."""
    wrk = wrk_path()
    if wrk is None:
        raise BenchError("wrk", "is not installed")
    script = workdir / f"replay-{uuid.uuid4().hex[:8]}.lua"
    script.write_text(wrk_script(per_thread, expect=expect), encoding="utf-8")
    argv = [
        wrk,
        f"-t{len(per_thread)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://{HOST}:{port}{EVENTS_PATH}",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 60)
    script.unlink()
    if done.returncode != 0:
        raise BenchError("wrk", f"exited with {done.returncode}: {done.stderr[-2000:]}")
    requests, elapsed, bad, errors = parse_wrk(done.stdout)
    answered = requests - bad
    return Throughput(
        per_second=answered / elapsed if elapsed else 0.0,
        answered=answered,
        failures=bad + errors,
        seconds=elapsed,
        tool=f"wrk, {len(per_thread)} thread(s)",
    )


def _generator_process(
    host: str, port: int, wires: list[bytes], connections: int, seconds: float, expect: bytes
) -> tuple[int, int, float]:
    """One load-generator process: (answered, failures, seconds) over `seconds` of closed loops."""

    async def run() -> tuple[int, int, float]:
        counts = [0, 0]
        cycle = itertools.cycle(wires)
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            connection = Connection(host, port)
            try:
                while time.perf_counter() < deadline:
                    try:
                        answer = await connection.send(next(cycle))
                    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                        counts[1] += 1
                        continue
                    counts[0 if answer.status == 200 and expect in answer.body else 1] += 1
            finally:
                await connection.close()

        await asyncio.gather(*(worker() for _ in range(connections)))
        return counts[0], counts[1], time.perf_counter() - started

    return asyncio.run(run())


def run_python_load(
    port: int,
    per_process: Sequence[Sequence[SignedRequest]],
    *,
    expect: bytes,
    connections: int,
    seconds: float,
) -> Throughput:
    """Throughput under a multi-process Python generator (the fallback when wrk is absent)."""
    processes = len(per_process)
    share = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        results = pool.starmap(
            _generator_process,
            [
                (HOST, port, [r.wire(HOST, port) for r in requests], n, seconds, expect)
                for requests, n in zip(per_process, share, strict=True)
            ],
        )
    answered = sum(r[0] for r in results)
    elapsed = max(r[2] for r in results)
    return Throughput(
        per_second=answered / elapsed if elapsed else 0.0,
        answered=answered,
        failures=sum(r[1] for r in results),
        seconds=elapsed,
        tool=f"Python generator, {processes} processes (wrk not available)",
    )


# --- Processes -----------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody is listening on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


_DROPPED_PREFIXES = ("REAP_", "SLACK_", "DATABASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without Slack/REAP settings or proxies, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_DROPPED_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def get_status(url: str, *, timeout: float = 1.0) -> int | None:
    """The status of GET url, or None when nothing answers."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or HOST, parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/")
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def rss_bytes(pid: int, field_name: str = "VmRSS") -> int:
    """A memory figure of a running process from /proc/<pid>/status (VmRSS, VmHWM), in bytes."""
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    raise BenchError("memory", f"/proc/{pid}/status has no {field_name} (has the process exited?)")


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stat_fields(text: str) -> list[str]:
    """The fields of a /proc/<pid>/stat line after the command name (which may hold spaces):
    index 0 is the state, 1 the parent pid, 11 utime and 12 stime (in clock ticks)."""
    return text[text.rfind(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """`pid` and every live descendant (uvicorn's workers are children of its supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(_read(f"/proc/{entry.name}/stat"))
            if len(fields) > 1:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores (/proc/stat)."""
    fields = [int(v) for v in _read("/proc/stat").splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / _CLOCK_TICKS, sum(fields) / _CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by `pid` and its live descendants."""
    total = 0
    for member in process_tree(pid):
        fields = stat_fields(_read(f"/proc/{member}/stat"))
        if len(fields) > 12:
            total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


class Server:
    """A server in its own process, logging to a file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str], port: int, log: Path) -> None:
        self.name = name
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.log = log
        self._log_file: IO[bytes] = log.open("wb")
        self.spawned_at = time.perf_counter()
        self.process = subprocess.Popen(
            list(argv), env=env, stdout=self._log_file, stderr=subprocess.STDOUT, cwd=ROOT
        )

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def wait_healthy(self, *, path: str = "/healthz", timeout: float = 60.0) -> float:
        """Poll `path` until it answers 200; returns seconds since the process was spawned."""
        deadline = self.spawned_at + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise BenchError(self.name, f"exited with {self.process.returncode}:\n{self.log_tail()}")
            if get_status(self.url + path) == 200:
                return time.perf_counter() - self.spawned_at
            time.sleep(0.01)
        raise BenchError(self.name, f"not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server wrote."""
        self._log_file.flush()
        return "\n".join(_read(str(self.log)).splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def python_module(module: str, *args: str) -> list[str]:
    """argv running `python -m module args` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def uvicorn_factory(factory: str, port: int) -> list[str]:
    """argv serving an app factory under uvicorn with the settings `reap serve` uses."""
    return python_module(
        "uvicorn",
        factory,
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--ws",
        "none",
        "--proxy-headers",
    )


@contextlib.contextmanager
def url_child(argv: Sequence[str], *, config: object = None) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A child process that prints its URL as its first line (after reading `config` as one JSON
    line, if given); yields the process and the URL, and closes its stdin to stop it."""
    process = subprocess.Popen(
        list(argv), env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        if config is not None:
            process.stdin.write(json.dumps(config).encode() + b"\n")
            process.stdin.flush()
        url = process.stdout.readline().decode().strip()
        if not url.startswith("http"):
            raise BenchError("localslack", f"did not start (printed {url!r})")
        yield process, url
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def localslack_process(*, team_id: str = TEAM) -> Iterator[str]:
    """localslack in a child process; yields its Web API base URL."""
    with url_child(python_module("bench.common", "localslack", team_id)) as (_, url):
        yield url


def run_checked(argv: Sequence[str], *, env: dict[str, str], part: str) -> str:
    """Run a command to completion; its output, or BenchError with the output if it fails."""
    done = subprocess.run(list(argv), env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(part, f"{' '.join(argv[1:])} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


# --- PostgreSQL ----------------------------------------------------------------------------------


def postgres_url() -> tuple[str, str] | None:
    """(variable, URL) of the PostgreSQL server to measure on, from BENCH_ or TEST_DATABASE_URL."""
    for name in ("BENCH_DATABASE_URL", "TEST_DATABASE_URL"):
        if value := os.environ.get(name):
            return name, value
    return None


def hide_password(url: str) -> str:
    """The URL as it may be printed."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@contextlib.asynccontextmanager
async def postgres_schema(url: str) -> AsyncIterator[str]:
    """A throwaway schema on the server at `url`; yields a URL whose search_path selects it."""
    from sqlalchemy import text

    from storage.engine import create_engine

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        await admin.dispose()
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}search_path={schema}"
    finally:
        admin = create_engine(url)
        try:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            await admin.dispose()


# --- Child-process entry points ------------------------------------------------------------------


def _serve_localslack(team_id: str) -> int:
    from localslack.server import LocalSlack

    with LocalSlack(team_id=team_id) as slack:
        print(slack.base_url, flush=True)
        sys.stdin.read()  # until the parent closes our standard input
    return 0


def _child_main(argv: Sequence[str]) -> int:
    if len(argv) == 2 and argv[0] == "localslack":
        return _serve_localslack(argv[1])
    print("usage: python -m bench.common localslack TEAM_ID", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
