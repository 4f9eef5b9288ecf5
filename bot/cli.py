"""The `reap` command line: database, plan import/export, and the bot's processes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from bot.logs import configure_logging
from bot.settings import Settings, SettingsError, load_settings
from domain.errors import ReapError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlmodel.ext.asyncio.session import AsyncSession

    from bot.app import ReapApp
    from domain.agenda import Agenda
    from domain.fiscal import FiscalQuarter
    from domain.rollup import Rollup
    from publishing.site import Published
    from storage.engine import Sessions

_T = TypeVar("_T")

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


class CliError(ReapError):
    """A command-line problem worth one clear line; exit 1, something failed."""

    exit_code = 1

    def __init__(self, problem: str) -> None:
        super().__init__(problem)


class BadInput(CliError):
    """What the operator gave (an argument, a file's contents) cannot be used; exit 2."""

    exit_code = 2


# The years the app's dates and fiscal quarters are checked for (as the slash commands' dates).
INSTANT_YEARS = range(1901, 3000)


def utc_now() -> datetime:
    """The current instant; the only clock the CLI reads."""
    return datetime.now(UTC)


def parse_instant(text: str, settings: Settings) -> datetime:
    """An ISO datetime; without an offset it is read in REAP_TIMEZONE."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"'{text}' is not an ISO date-time such as 2027-03-30T09:00") from None
    if value.year not in INSTANT_YEARS:
        # Reminder arithmetic past 9999-12-31 overflows; refuse here with the range instead.
        raise BadInput(
            f"'{text}' is outside the years REAP Tracker works with"
            f" ({INSTANT_YEARS.start}-{INSTANT_YEARS.stop - 1})"
        )
    return value if value.tzinfo else value.replace(tzinfo=settings.zone)


async def _write_output(path: str, output: str) -> None:
    try:
        await asyncio.to_thread(Path(path).write_text, output, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot write it ({exc.strerror or exc})") from None


async def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from storage.migrate import current_revision, upgrade_async

    await upgrade_async(settings.database_url)
    print(f"database at revision {await current_revision(settings.database_url)}")
    return 0


async def _db_current(args: argparse.Namespace, settings: Settings) -> int:
    from storage.migrate import current_revision

    print(await current_revision(settings.database_url) or "none")
    return 0


async def _db_check(args: argparse.Namespace, settings: Settings) -> int:
    from storage.engine import create_engine, session_factory
    from storage.migrate import schema_problem

    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            problem = await schema_problem(session)
    finally:
        await engine.dispose()
    if problem is not None:
        raise CliError(f"migrations are pending: {problem}")
    print("the database is at the newest migration")
    return 0


def version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("reap-tracker")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


async def _open(settings: Settings) -> tuple[AsyncEngine, Sessions]:
    from storage.engine import create_engine, session_factory
    from storage.migrate import current_revision

    if await current_revision(settings.database_url) is None:
        raise CliError("the database has no tables yet; run `reap db upgrade` first")
    engine = create_engine(settings.database_url)
    return engine, session_factory(engine)


async def _import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.progress import ProgressBar
    from plans.planfile import PlanFileError, import_plan, parse_plan_file

    path = Path(args.file)
    # On a terminal, a bar on stderr once the import has taken a second; stdout stays the report.
    with ProgressBar(sys.stderr, label=f"reap import {path.name}") as progress:
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{path}: cannot read it ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise BadInput(
                f"{path}: is not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02X}); "
                "save it as UTF-8"
            ) from None
        progress.update("reading the file", 0, 0)
        try:
            document = parse_plan_file(text, filename=str(path), start_month=settings.fiscal_year_start_month)
        except PlanFileError as exc:
            raise BadInput(str(exc)) from None
        engine, sessions = await _open(settings)
        try:
            team_id = document.workspace or await _workspace(settings, sessions)
            async with sessions() as session, session.begin():
                report = await import_plan(
                    session, document=document, team_id=team_id, now=utc_now(), progress=progress.update
                )
                progress.update("rolling back (dry run)" if args.dry_run else "saving", 0, 0)
                if args.dry_run:
                    await session.rollback()
        finally:
            await engine.dispose()
    for line in report.changes:
        print(("would " if args.dry_run else "") + line)
    verb = "would change" if args.dry_run else "changed"
    print(
        f"{path}: {verb} {sum(report.counts.values())} things in workspace {team_id}"
        if report.changed
        else f"{path}: nothing to change in workspace {team_id}"
    )
    return 0


async def _workspace(settings: Settings, sessions: Sessions) -> str:
    # Imported here: Slack's client is a fifth of `reap import`'s start-up, and a plan file that
    # names its workspace never needs it.
    from bot.slack import make_client, workspace_id

    client = make_client(settings) if settings.slack_bot_token else None
    return await workspace_id(sessions, client, now=utc_now())


async def _export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.slack import workspace_id
    from plans.planfile import export_plan

    engine, sessions = await _open(settings)
    try:
        team_id = await workspace_id(sessions, None, now=utc_now())
        async with sessions() as session:
            output = await export_plan(
                session, team_id=team_id, fmt=args.format, start_month=settings.fiscal_year_start_month
            )
    finally:
        await engine.dispose()
    if args.output:
        await _write_output(args.output, output)
    else:
        sys.stdout.write(output)
    return 0


def _quarter_arg(text: str, settings: Settings) -> tuple[FiscalQuarter, date]:
    """A quarter named on the command line, and the organisation's today it was read against."""
    from domain.fiscal import FiscalQuarter, QuarterError

    today = utc_now().astimezone(settings.zone).date()
    try:
        return FiscalQuarter.parse(text, today=today, start_month=settings.fiscal_year_start_month), today
    except QuarterError as exc:
        raise BadInput(str(exc)) from None


async def _read_quarter(settings: Settings, read: Callable[[AsyncSession, str], Awaitable[_T]]) -> _T:
    """Run `read(session, team_id)` on the installation's workspace; a domain refusal is bad input."""
    from bot.slack import workspace_id

    engine, sessions = await _open(settings)
    try:
        team_id = await workspace_id(sessions, None, now=utc_now())
        async with sessions() as session:
            try:
                return await read(session, team_id)
            except ReapError as exc:
                raise BadInput(str(exc)) from None
    finally:
        await engine.dispose()


async def _emit(args: argparse.Namespace, output: str) -> None:
    """Write a document to --output, or to standard output."""
    if args.output:
        await _write_output(args.output, output)
    else:
        sys.stdout.write(output)


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    from reports.rollup import render_html, render_json, render_markdown
    from storage.snapshots import quarter_rollup

    quarter, today = _quarter_arg(args.quarter, settings)

    async def read(session: AsyncSession, team_id: str) -> Rollup:
        # A closed quarter is shown as it was frozen, so its report never changes after the fact.
        return await quarter_rollup(
            session,
            team_id=team_id,
            quarter=quarter,
            as_of=today,
            department_key=args.department,
            zone=settings.zone,
        )

    rollup = await _read_quarter(settings, read)
    render = {"md": render_markdown, "html": render_html, "json": render_json}[args.format]
    await _emit(args, render(rollup))
    return 0


async def _agenda(args: argparse.Namespace, settings: Settings) -> int:
    from sqlmodel import select

    from reports.agenda import render_agenda_html, render_agenda_markdown
    from storage.models import Person
    from storage.queries.agenda import build_agenda

    quarter, today = _quarter_arg(args.quarter, settings)

    async def read(session: AsyncSession, team_id: str) -> tuple[Agenda, dict[str, str]]:
        agenda = await build_agenda(
            session, team_id=team_id, quarter=quarter, today=today, zone=settings.zone
        )
        people = await session.exec(select(Person).where(Person.team_id == team_id))
        return agenda, {p.user_id: p.name for p in people}

    agenda, names = await _read_quarter(settings, read)
    render = {"md": render_agenda_markdown, "html": render_agenda_html}[args.format]
    await _emit(args, render(agenda, names=names))
    return 0


async def _publish(args: argparse.Namespace, settings: Settings) -> int:
    from publishing.site import publish

    quarter, today = _quarter_arg(args.quarter, settings) if args.quarter else (None, None)
    if today is None:
        today = utc_now().astimezone(settings.zone).date()
    folder = Path(args.out) if args.out else Path(settings.dashboard_dir)

    async def read(session: AsyncSession, team_id: str) -> Published:
        try:
            return await publish(
                session,
                team_id=team_id,
                folder=folder,
                today=today,
                zone=settings.zone,
                start_month=settings.fiscal_year_start_month,
                quarter=quarter,
                force=args.force,
            )
        except OSError as exc:
            raise CliError(f"{folder}: cannot write the site ({exc.strerror or exc})") from None

    published = await _read_quarter(settings, read)
    print(published.summary())
    return 0


async def _remind(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runtime import remind_once

    at = parse_instant(args.at, settings) if args.at else utc_now()
    return await remind_once(settings, at=at, dry_run=args.dry_run, out=sys.stdout)


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of processes from 1 to 64")
    return int(text)


def running_clock(start: datetime) -> Callable[[], datetime]:
    """A clock that reads `start` now and then moves on at real speed."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def _build_app(settings: Settings, clock: Callable[[], datetime] | None = None) -> ReapApp:
    from bot.app import create_app

    settings.require("slack_signing_secret", "slack_bot_token")
    return create_app(settings) if clock is None else create_app(settings, clock=clock)


def _uvicorn_options(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return {
        "host": args.host,
        "port": args.port,
        "log_level": settings.log_level.lower(),
        # Leave uvicorn's loggers to configure_logging: one format, secrets masked, JSON if asked.
        "log_config": None,
        "proxy_headers": True,
        "ws": "none",
        "timeout_graceful_shutdown": 10,
    }


async def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from bot.server import create_asgi

    clock = running_clock(parse_instant(args.clock_start, settings)) if args.clock_start else None
    app = _build_app(settings, clock)
    config = uvicorn.Config(create_asgi(app), **_uvicorn_options(args, settings))
    await uvicorn.Server(config).serve()
    return 0


def serve_worker() -> Any:
    """The ASGI app of one `reap serve --workers N` process: uvicorn calls this in each worker it
    spawns, which reads the same environment as its parent and runs its own ticker."""
    from bot.server import create_asgi

    settings = load_settings()
    configure_logging(settings)
    return create_asgi(_build_app(settings))


def _serve_workers(args: argparse.Namespace, settings: Settings) -> int:
    """`reap serve --workers N`: N processes answering on one port, under uvicorn's supervisor
    (it restarts a worker that dies, and stops them all on SIGTERM or SIGINT)."""
    import uvicorn

    from storage.engine import is_sqlite

    if args.clock_start:
        raise BadInput("--clock-start runs one process; leave out --workers")
    if is_sqlite(settings.database_url):
        raise BadInput(
            "--workers needs PostgreSQL: SQLite serves one process on local disk (see docs/operations.md)"
        )
    from uvicorn.supervisors import Multiprocess

    # Missing settings are refused here, once, rather than by every worker as it starts.
    settings.require("slack_signing_secret", "slack_bot_token")
    config = uvicorn.Config(
        "bot.cli:serve_worker", factory=True, workers=args.workers, **_uvicorn_options(args, settings)
    )
    sock = listening_socket(args.host, args.port)
    logging.getLogger("uvicorn.error").info(
        "reap serve: %d workers on %s:%d", args.workers, args.host, args.port
    )
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
    return 0


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound for several workers to listen on.

    uvicorn's own (Config.bind_socket) leaves the protocol number 0; the sockets accepted from it
    inherit that, and asyncio then never sets TCP_NODELAY on them, so every answer after a
    connection's first waited some 40 ms on the client's delayed ACK (uvicorn issue 3149).
    getaddrinfo names the protocol, as asyncio does for a single process.
    """
    family, kind, protocol, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


async def _socket(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.server import create_health_asgi
    from bot.socketmode import SocketModeDead, SocketWatchdog, serve_socket_mode

    app = _build_app(settings)
    token = settings.secret("slack_app_token")
    handler = AsyncSocketModeHandler(app.bolt, token)
    watchdog = SocketWatchdog(handler.client)
    app.health_checks["socket_mode"] = watchdog.health
    health: uvicorn.Server | None = None
    if args.health_port is not None:
        # Slack reaches this process over the WebSocket; only operators' probes need HTTP.
        config = uvicorn.Config(
            create_health_asgi(app),
            host=args.health_host,
            port=args.health_port,
            log_level="warning",
            log_config=None,
            lifespan="off",
            ws="none",
        )
        health = uvicorn.Server(config)
    await app.start()
    probes = asyncio.create_task(health.serve()) if health is not None else None
    try:
        await serve_socket_mode(handler, watchdog)
    except SocketModeDead as exc:
        # Exit non-zero so systemd or the container runtime starts a fresh process.
        print(f"reap: {exc}", file=sys.stderr)
        return 1
    finally:
        if health is not None and probes is not None:
            health.should_exit = True
            await probes
        await app.close()
    return 0


async def _shell(args: argparse.Namespace, settings: Settings) -> int:
    from bot.console import run_shell

    script: TextIO | None = None
    if args.script:
        script = await asyncio.to_thread(Path(args.script).open, encoding="utf-8")
    elif not sys.stdin.isatty():
        script = sys.stdin
    now = parse_instant(args.at, settings) if args.at else None
    files = Path(args.output_dir) if args.output_dir else None
    try:
        return await run_shell(settings, demo=args.demo, script=script, out=sys.stdout, now=now, files=files)
    finally:
        if script is not None and script is not sys.stdin:
            script.close()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every `reap` subcommand."""
    parser = argparse.ArgumentParser(prog="reap", description="REAP Tracker: Racial Equity Action Plan bot")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations (run once per deploy)").set_defaults(run=_db_upgrade)
    db_sub.add_parser("current", help="print the database's migration (or none)").set_defaults(
        run=_db_current
    )
    db_sub.add_parser(
        "check", help="exit 1 if migrations are pending (for a deploy gate or a probe)"
    ).set_defaults(run=_db_check)

    imp = sub.add_parser("import", help="load or update a plan from a YAML file")
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true", help="print what would change and write nothing")
    imp.set_defaults(run=_import)

    exp = sub.add_parser("export", help="write the plan out")
    exp.add_argument("--format", choices=("yaml", "json", "csv"), default="yaml")
    exp.add_argument("--output", "-o", help="file to write (default: standard output)")
    exp.set_defaults(run=_export)

    report = sub.add_parser("report", help="the quarterly rollup for the DEI meeting packet")
    report.add_argument(
        "quarter", nargs="?", default="this", help="FY2027-Q2, Q2, this or last (default this)"
    )
    report.add_argument("--department", help="one department's key, e.g. OIT")
    report.add_argument("--format", choices=("md", "html", "json"), default="md")
    report.add_argument("--output", "-o", help="file to write (default: standard output)")
    report.set_defaults(run=_report)
    agenda = sub.add_parser("agenda", help="the quarterly DEI meeting agenda for the meeting packet")
    agenda.add_argument("quarter", help="FY2027-Q2, Q2, this or last")
    agenda.add_argument("--format", choices=("md", "html"), default="md")
    agenda.add_argument("--output", "-o", help="file to write (default: standard output)")
    agenda.set_defaults(run=_agenda)

    publish = sub.add_parser(
        "publish",
        help="write the public dashboard (pages in English and Spanish, open data) from the frozen record",
        description="Write the public Racial Equity dashboard: the newest closed quarter (or --quarter), "
        "each department, each measure, the methodology and the open data (CSV, JSON and a Data "
        "Package), in English and Spanish. Only fields the plan declares public are published. The "
        "site is written beside --out and swapped in whole, so a failure leaves the last site in place.",
    )
    publish.add_argument("--out", metavar="DIR", help="the site's folder (default: REAP_DASHBOARD_DIR)")
    publish.add_argument("--quarter", help="a closed quarter to publish: FY2027-Q2, Q2 or last")
    publish.add_argument(
        "--force", action="store_true", help="replace DIR even if it holds files that are not a dashboard"
    )
    publish.set_defaults(run=_publish)

    remind = sub.add_parser("remind", help="run exactly one reminder tick (plan, then deliver) and exit")
    remind.add_argument(
        "--at", help="the instant to act at, ISO (e.g. 2027-03-30T09:00; REAP_TIMEZONE if no offset)"
    )
    remind.add_argument("--dry-run", action="store_true", help="print what would be sent and write nothing")
    remind.set_defaults(run=_remind)

    serve_help = (
        "answer Slack over HTTP: POST /slack/events; GET /livez, /readyz (/healthz its alias), /metrics"
    )
    serve = sub.add_parser(
        "serve",
        help=serve_help,
        description=f"{serve_help[0].upper()}{serve_help[1:]}. /livez answers while the process runs; "
        "/readyz is 503 with the reason unless the database answers at the newest migration, "
        "Slack's auth.test accepted the token and the reminder ticker (when it runs here) ticked "
        "recently.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="answer with N processes on the one port, each with its own ticker (PostgreSQL only)",
    )
    serve.add_argument(
        "--clock-start",
        metavar="ISO",
        help="testing and demos: the app's clock starts at this instant and runs at real speed",
    )
    serve.set_defaults(run=_serve)

    sock = sub.add_parser("socket", help="answer Slack over Socket Mode (needs SLACK_APP_TOKEN)")
    sock.add_argument("--health-port", type=int, help="also serve GET /healthz on this port (for probes)")
    sock.add_argument("--health-host", default="127.0.0.1", help="address for --health-port")
    sock.set_defaults(run=_socket)

    shell = sub.add_parser("shell", help="try the real bot in a terminal against a local Slack emulator")
    shell.add_argument(
        "--demo",
        action="store_true",
        help="start from a fresh database with the demo plan, its clock at 2027-01-06 08:30 New York "
        "time (the morning the plan's FY2027-Q2 check-in opens)",
    )
    shell.add_argument("--script", help="run the commands in this file and exit")
    shell.add_argument(
        "--at", metavar="ISO", help="start the clock at this instant instead (REAP_TIMEZONE if no offset)"
    )
    shell.add_argument(
        "--output-dir",
        metavar="DIR",
        help="where uploaded files (the rollup chart) and the log go (default: a new temporary folder)",
    )
    shell.set_defaults(run=_shell)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `reap` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings)
        if args.command == "serve" and args.workers > 1:
            # uvicorn's supervisor owns the main thread and its signals; there is no loop to run.
            return _serve_workers(args, settings)
        run: Handler = args.run
        return asyncio.run(run(args, settings))
    except SettingsError as exc:
        print(f"reap: setting {exc}", file=sys.stderr)
        return 2
    except ReapError as exc:
        print(f"reap: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except (OSError, SQLAlchemyError) as exc:
        # Never a traceback; the URL (and any password in it) stays out of the message.
        reason = getattr(exc, "orig", None) or exc
        print(f"reap: database: {type(reason).__name__}: {_first_line(reason)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A bug, not the operator's doing: still one line on stderr; the traceback is logged at DEBUG.
        logging.getLogger(__name__).debug("reap %s failed", args.command, exc_info=True)
        where = "REAP_LOG_LEVEL=DEBUG shows where"
        print(f"reap: unexpected error: {type(exc).__name__}: {_first_line(exc)} ({where})", file=sys.stderr)
        return 1


def _first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0][:200] if lines else ""


if __name__ == "__main__":
    raise SystemExit(main())
