"""The container and service files, checked without a container daemon.

deploy/entrypoint.sh is run for real (against the venv's `reap` and against a stand-in that only
records its arguments); compose.yaml, the Dockerfile, the systemd unit and the example env file
are read and held to the settings the bot actually reads, and to the `reap` command line.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import urllib.parse
from contextlib import closing
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from bot.cli import build_parser
from bot.settings import Settings
from tests.harness import ROOT, cli_env

DEPLOY = ROOT / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"
UNIT = DEPLOY / "reap.service"
ENV_EXAMPLE = DEPLOY / "reap.env.example"
REAP = Path(sys.executable).parent / "reap"
TIMEOUT = 60

# Read by deploy/entrypoint.sh itself, never by the bot.
ENTRYPOINT_VARIABLES = frozenset({"REAP_BIN", "REAP_MIGRATE_ON_START"})
REAP_SERVICES = ("migrate", "bot", "socket")


def settings_variables() -> frozenset[str]:
    """Every environment variable Settings reads: its aliases, else env_prefix + field name."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        else:
            names.add(prefix + (field.alias or name))
    if not Settings.model_config.get("case_sensitive", False):
        names = {name.upper() for name in names}
    return frozenset(names)


def test_settings_variables_are_found() -> None:
    """The helper every check below leans on sees the variables the README documents."""
    found = settings_variables()
    assert {"DATABASE_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "REAP_LOG_FORMAT"} <= found
    assert not found & ENTRYPOINT_VARIABLES


# --- deploy/entrypoint.sh ---------------------------------------------------------------------


def run_entrypoint(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`sh deploy/entrypoint.sh ARGS` with none of the developer's REAP_/SLACK_ settings."""
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=cli_env(**env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def alembic_revision(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert len(rows) == 1, rows
    return str(rows[0][0])


def test_entrypoint_is_a_posix_script() -> None:
    text = ENTRYPOINT.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh\n")
    assert re.search(r"^set -eu$", text, re.MULTILINE)
    checked = subprocess.run(
        ["sh", "-n", str(ENTRYPOINT)], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_db_upgrade_through_the_entrypoint_migrates_the_database(tmp_path: Path) -> None:
    database = tmp_path / "reap.db"
    result = run_entrypoint(
        "db", "upgrade", cwd=tmp_path, REAP_BIN=str(REAP), DATABASE_URL=sqlite_url(database)
    )
    assert result.returncode == 0, result.stderr
    assert "alembic_version" in tables(database)
    assert f"database at revision {alembic_revision(database)}" in result.stdout
    # `db upgrade` is not a server: it runs once, as asked, with no second migration before it.
    assert result.stderr.splitlines()[0] == "reap-entrypoint: running reap db upgrade"


def test_serve_with_migration_off_execs_reap_without_touching_the_database(tmp_path: Path) -> None:
    database = tmp_path / "reap.db"
    result = run_entrypoint(
        "serve",
        "--help",
        cwd=tmp_path,
        REAP_BIN=str(REAP),
        REAP_MIGRATE_ON_START="false",
        DATABASE_URL=sqlite_url(database),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: reap serve")
    assert "--host" in result.stdout
    assert not database.exists()
    assert result.stderr.splitlines() == [
        "reap-entrypoint: running reap serve --help without migrations (REAP_MIGRATE_ON_START=false)"
    ]


def test_serve_migrates_first_by_default(tmp_path: Path) -> None:
    database = tmp_path / "reap.db"
    result = run_entrypoint(
        "serve", "--help", cwd=tmp_path, REAP_BIN=str(REAP), DATABASE_URL=sqlite_url(database)
    )
    assert result.returncode == 0, result.stderr
    assert "alembic_version" in tables(database)
    migrated = result.stdout.index(f"database at revision {alembic_revision(database)}")
    assert result.stdout.index("usage: reap serve") > migrated
    assert result.stderr.splitlines()[0] == (
        "reap-entrypoint: running database migrations (reap db upgrade), then reap serve --help"
    )


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in `reap` that appends its arguments, bracketed, as one line to a log file.

    It fails `db upgrade` with status 3 when FAKE_REAP_FAIL_MIGRATION is set.
    """
    log = tmp_path / "calls.log"
    fake = tmp_path / "bin" / "reap"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do printf "[%s]" "$arg"; done >> "$FAKE_REAP_LOG"\n'
        'echo >> "$FAKE_REAP_LOG"\n'
        'if [ "$*" = "db upgrade" ] && [ -n "${FAKE_REAP_FAIL_MIGRATION:-}" ]; then exit 3; fi\n',
        encoding="utf-8",
    )
    fake.chmod(0o755)
    return fake, log


def calls(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def test_no_arguments_means_serve_after_migrating(tmp_path: Path, recorder: tuple[Path, Path]) -> None:
    fake, log = recorder
    result = run_entrypoint(cwd=tmp_path, REAP_BIN=str(fake), FAKE_REAP_LOG=str(log))
    assert result.returncode == 0, result.stderr
    assert calls(log) == ["[db][upgrade]", "[serve]"]


@pytest.mark.parametrize("off", ["false", "False", "0", "no", "OFF"])
def test_migration_can_be_switched_off(tmp_path: Path, recorder: tuple[Path, Path], off: str) -> None:
    fake, log = recorder
    result = run_entrypoint(
        "socket", cwd=tmp_path, REAP_BIN=str(fake), FAKE_REAP_LOG=str(log), REAP_MIGRATE_ON_START=off
    )
    assert result.returncode == 0, result.stderr
    assert calls(log) == ["[socket]"]


@pytest.mark.parametrize("on", ["", "true", "yes", "1"])
def test_socket_migrates_unless_switched_off(tmp_path: Path, recorder: tuple[Path, Path], on: str) -> None:
    fake, log = recorder
    result = run_entrypoint(
        "socket",
        "--health-port",
        "3000",
        cwd=tmp_path,
        REAP_BIN=str(fake),
        FAKE_REAP_LOG=str(log),
        REAP_MIGRATE_ON_START=on,
    )
    assert result.returncode == 0, result.stderr
    assert calls(log) == ["[db][upgrade]", "[socket][--health-port][3000]"]


def test_a_failed_migration_stops_the_start(tmp_path: Path, recorder: tuple[Path, Path]) -> None:
    fake, log = recorder
    result = run_entrypoint(
        "serve", cwd=tmp_path, REAP_BIN=str(fake), FAKE_REAP_LOG=str(log), FAKE_REAP_FAIL_MIGRATION="1"
    )
    assert result.returncode == 3
    assert calls(log) == ["[db][upgrade]"]


def test_other_commands_run_as_given(tmp_path: Path, recorder: tuple[Path, Path]) -> None:
    """One-off commands never migrate first, and arguments reach reap intact (spaces and all)."""
    fake, log = recorder
    result = run_entrypoint(
        "import", "my plan.yaml", "--dry-run", cwd=tmp_path, REAP_BIN=str(fake), FAKE_REAP_LOG=str(log)
    )
    assert result.returncode == 0, result.stderr
    assert calls(log) == ["[import][my plan.yaml][--dry-run]"]
    assert result.stderr.splitlines() == ["reap-entrypoint: running reap import my plan.yaml --dry-run"]


def test_reap_is_found_on_the_path_without_reap_bin(tmp_path: Path, recorder: tuple[Path, Path]) -> None:
    fake, log = recorder
    env = cli_env(FAKE_REAP_LOG=str(log))
    env["PATH"] = f"{fake.parent}:{env.get('PATH', '/usr/bin:/bin')}"
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "report", "Q2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert calls(log) == ["[report][Q2]"]


# --- compose.yaml -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment:`, in either of compose's two spellings."""
    value = service.get("environment") or {}
    if isinstance(value, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in value)
    return {str(key): str(item) for key, item in value.items()}


def test_compose_migrates_once_before_the_bot_starts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate, bot = services["migrate"], services["bot"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("bot", "socket"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["db"]["condition"] == "service_healthy"
        assert environment(services[name])["REAP_MIGRATE_ON_START"] == "false"
    assert bot["command"][0] == "serve"
    assert "profiles" not in bot
    assert services["socket"]["profiles"] == ["socket"]
    assert services["socket"]["command"][0] == "socket"


def test_compose_commands_are_real_reap_commands(compose: dict[str, Any]) -> None:
    parser = build_parser()
    for name in REAP_SERVICES:
        parser.parse_args(compose["services"][name]["command"])
    bot = parser.parse_args(compose["services"]["bot"]["command"])
    assert bot.host == "0.0.0.0"  # reachable through the published port, not only on loopback
    assert f"{bot.port}:{bot.port}" in compose["services"]["bot"]["ports"]
    socket = parser.parse_args(compose["services"]["socket"]["command"])
    assert socket.health_port == bot.port == dockerfile_port()


def test_compose_uses_only_variables_the_bot_reads(compose: dict[str, Any]) -> None:
    known = settings_variables() | ENTRYPOINT_VARIABLES
    for name in REAP_SERVICES:
        service = compose["services"][name]
        assert set(environment(service)) <= known, name
        interpolated = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", json.dumps(service))
        assert set(interpolated) <= known, name
        assert service["env_file"] == ["deploy/reap.env"]
    # Operators make deploy/reap.env from the example, which lists every setting.
    assert ENV_EXAMPLE.exists()


def test_compose_database_url_matches_the_postgres_service(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    url = urllib.parse.urlsplit(environment(compose["services"]["bot"])["DATABASE_URL"])
    assert url.scheme == "postgresql+asyncpg"
    assert (url.username, url.password, url.hostname, url.port) == (
        environment(db)["POSTGRES_USER"],
        environment(db)["POSTGRES_PASSWORD"],
        "db",
        5432,
    )
    assert url.path == "/" + environment(db)["POSTGRES_DB"]
    Settings(database_url=url.geturl())  # the bot accepts it
    for name in REAP_SERVICES:
        assert environment(compose["services"][name])["DATABASE_URL"] == url.geturl()


# --- Dockerfile and .dockerignore -------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (continuations joined, comments dropped), per FROM stage."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends in a line continuation"
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        assert stages, f"instruction before FROM: {line}"
        stages[-1].append((keyword.upper(), rest.strip()))
    return stages


def instructions(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [rest for key, rest in stage if key == keyword]


def dockerfile_port() -> int:
    (exposed,) = instructions(dockerfile_stages()[-1], "EXPOSE")
    return int(exposed.split("/")[0])


def test_dockerfile_builds_wheels_then_installs_only_them() -> None:
    builder, *_, final = dockerfile_stages()
    assert instructions(builder, "FROM") == ["python:3.11-slim AS builder"]
    assert instructions(final, "FROM") == ["python:3.11-slim"]
    (wheel,) = [run for run in instructions(builder, "RUN") if "pip wheel" in run]
    assert "/wheels" in wheel
    # The image takes the versions CI tested, not whatever is newest on the day it is built.
    assert "-c constraints.txt" in wheel
    installs = [run for run in instructions(final, "RUN") if "pip install" in run]
    assert len(installs) == 1
    assert "--no-index" in installs[0]
    assert "from=builder" in installs[0]
    # Nothing of the source tree reaches the final image but the start-up script.
    for copy in instructions(final, "COPY"):
        sources = [part for part in copy.split() if not part.startswith("--")][:-1]
        assert sources == ["deploy/entrypoint.sh"], copy
    text = " ".join(rest for _, rest in final)
    for tool in ("gcc", "build-essential", "apt-get install"):
        assert tool not in text


def test_dockerfile_runs_unprivileged_with_state_in_var_lib_reap() -> None:
    final = dockerfile_stages()[-1]
    users = instructions(final, "USER")
    assert users, "the final stage must switch to an unprivileged USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    setup = " ".join(instructions(final, "RUN"))
    assert "--uid 10001" in setup
    assert user in ("reap", "10001")
    assert instructions(final, "WORKDIR") == ["/var/lib/reap"]
    assert re.search(r"install -d -o reap -g reap [^&]*/var/lib/reap", setup)
    env = " ".join(instructions(final, "ENV"))
    url = re.search(r"\b([A-Z_]+)=(sqlite\+aiosqlite:///\S+)", env)
    assert url is not None
    assert url.group(1) in settings_variables()
    assert url.group(2) == "sqlite+aiosqlite:////var/lib/reap/reap.db"
    for name in re.findall(r"\b([A-Z][A-Z0-9_]*)=", env):
        if not name.startswith(("PYTHON", "PIP_")):
            assert name in settings_variables() | ENTRYPOINT_VARIABLES, name


def test_dockerfile_starts_through_the_entrypoint_and_checks_livez() -> None:
    final = dockerfile_stages()[-1]
    (entrypoint,) = instructions(final, "ENTRYPOINT")
    assert json.loads(entrypoint) == ["/usr/local/bin/reap-entrypoint"]
    assert any(
        copy.endswith("deploy/entrypoint.sh /usr/local/bin/reap-entrypoint")
        for copy in instructions(final, "COPY")
    )
    (cmd,) = instructions(final, "CMD")
    command = json.loads(cmd)
    serve = build_parser().parse_args(command)
    assert command[0] == "serve"
    assert serve.host == "0.0.0.0"
    assert serve.port == dockerfile_port()
    (health,) = instructions(final, "HEALTHCHECK")
    assert f"http://127.0.0.1:{dockerfile_port()}/livez" in health
    assert "urllib.request" in health
    assert "curl" not in health and "wget" not in health


def test_dockerignore_keeps_history_state_and_secrets_out() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for required in (".git", ".venv", "*.db", "*.db-*", "tests", "__pycache__", "*.egg-info"):
        assert required in patterns, required

    def ignored(path: str) -> bool:
        return any(fnmatch(path, pattern) or path.startswith(pattern + "/") for pattern in patterns)

    for needed in ("pyproject.toml", "constraints.txt", "README.md", "deploy/entrypoint.sh", "bot/cli.py"):
        assert not ignored(needed), needed
    for secret in ("deploy/reap.env", "reap.db", "reap.db-wal", "storage/x.db"):
        assert ignored(secret), secret


# --- deploy/reap.service ----------------------------------------------------------------------


def unit_directives() -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def test_unit_runs_reap_unprivileged_and_hardened() -> None:
    unit = unit_directives()
    expected = {
        "User": "reap",
        "StateDirectory": "reap",
        "WorkingDirectory": "/var/lib/reap",
        "EnvironmentFile": "/etc/reap/reap.env",
        "Restart": "on-failure",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/reap",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
    }
    for key, value in expected.items():
        assert unit.get(key) == [value], key
    (pre,) = unit["ExecStartPre"]
    (start,) = unit["ExecStart"]
    assert shlex.split(pre) == ["/opt/reap/bin/reap", "db", "upgrade"]
    program, *args = shlex.split(start)
    assert program == "/opt/reap/bin/reap"
    assert args[0] == "serve"
    build_parser().parse_args(args)
    (environment_line,) = unit["Environment"]
    name, _, url = environment_line.partition("=")
    assert name in settings_variables()
    assert url == "sqlite+aiosqlite:////var/lib/reap/reap.db"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify insists that every Exec* program exists; the venv's reap stands in for /opt/reap's.
    copy = tmp_path / "reap.service"
    copy.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/reap/bin/reap", str(REAP)))
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Unknown keys and unparsable values are only logged ("reap.service:12: Unknown key ..."), so
    # any line about the unit itself counts as a failure.
    assert "reap.service" not in output, output


# --- deploy/reap.env.example ------------------------------------------------------------------

ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def env_example() -> list[tuple[bool, str, str]]:
    """(active, name, value) for each `NAME=value` or commented-out `# NAME=value` line."""
    entries = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = ASSIGNMENT.match(line)
        if match:
            entries.append((match.group(1) is None, match.group(2), match.group(3)))
    return entries


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    names = [name for _, name, _ in env_example()]
    assert len(names) == len(set(names)), "a variable is listed twice"
    assert set(names) == settings_variables()


def test_env_example_explains_each_variable() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if ASSIGNMENT.match(line):
            previous = lines[index - 1]
            assert previous.startswith("# ") and not ASSIGNMENT.match(previous), line


def test_env_example_values_are_valid_and_secrets_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in settings_variables():
        monkeypatch.delenv(name, raising=False)
    entries = env_example()
    active = {name: value for is_active, name, value in entries if is_active}
    # An empty value counts as unset, but a variable without a value is still commented out
    # rather than left blank, so the file reads the same way to a person as to the bot.
    assert all(active.values()), [name for name, value in active.items() if not value]
    Settings(**active)  # type: ignore[arg-type]
    secrets = {name for name, field in Settings.model_fields.items() if "Secret" in str(field.annotation)}
    secret_variables = {str(Settings.model_fields[name].validation_alias) for name in secrets}
    assert secret_variables
    for is_active, name, value in entries:
        if name in secret_variables:
            assert not is_active and value == "", name
