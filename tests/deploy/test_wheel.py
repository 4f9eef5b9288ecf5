"""The built wheel, installed into a fresh virtual environment, gives a working `reap`.

Everything here works offline: the wheel is built without build isolation (with the setuptools
this venv has from the dev extra), installed with `--no-deps --no-index` into a new venv that has
no pip of its own, and the new venv reaches the dependencies through a `.pth` line naming this
venv's site-packages. A plain path line in a `.pth` adds the directory without running the `.pth`
files inside it, so this checkout's editable install stays out: `bot` is imported from the wheel,
which the first test proves before the others lean on it. Every command runs from a directory
outside the repository with no PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.version import Version

from tests.harness import ROOT

pytestmark = pytest.mark.slow
TIMEOUT = 180
# What the wheel is built from: pyproject.toml's readme and licence files, and its packages.
NOT_BUILT_FROM = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "tests",
    "bench",
    "*.db",
    "*.db-*",
)
DEMO_SCRIPT = "/reap help\n/reap show OIT-1\n"


def project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])


def clean_env(**values: str) -> dict[str, str]:
    """This environment minus the bot's settings, PYTHONPATH and the active venv, plus `values`."""
    dropped = ("REAP_", "SLACK_", "DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(dropped)}, **values}


def run(argv: list[str], *, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def build_skip_reason() -> str | None:
    """Why the wheel cannot be built offline here, or None."""
    try:
        setuptools, pip = Version(version("setuptools")), Version(version("pip"))
    except PackageNotFoundError as exc:
        return f"{exc.name} is not installed in this venv (run make to install the dev extra)"
    if setuptools < Version("77"):
        return f"setuptools {setuptools} cannot build the project (77 or later needed: run make)"
    if pip < Version("22.3"):
        return f"pip {pip} cannot install into another environment (--python needs 22.3)"
    return None


@dataclass(frozen=True)
class Installed:
    """A fresh venv with the wheel installed: its interpreter and `reap`, and a directory outside the repo."""

    python: Path
    reap: Path
    site_packages: Path
    workdir: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    reason = build_skip_reason()
    if reason is not None:
        pytest.skip(f"cannot build the wheel offline: {reason}")
    base = tmp_path_factory.mktemp("wheel")
    # Built from a copy, so setuptools' build/ and egg-info never land in the shared checkout.
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=NOT_BUILT_FROM)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(base / "dist"),
            str(source),
        ],
        cwd=base,
    )
    wheels = sorted((base / "dist").glob("reap_tracker-*.whl"))
    if built.returncode != 0 or not wheels:
        pytest.fail(f"building the wheel failed:\n{built.stdout}\n{built.stderr}")

    venv = base / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=base)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    added = run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheels[0])], cwd=base
    )
    assert added.returncode == 0, f"{added.stdout}\n{added.stderr}"

    site_packages = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=base
        ).stdout.strip()
    )
    # Added after the install, so pip never sees this checkout's editable reap-tracker there.
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site_packages / "_reap_test_dependencies.pth").write_text(
        "\n".join(sorted(ours)) + "\n", encoding="utf-8"
    )

    workdir = base / "elsewhere"
    workdir.mkdir()
    yield Installed(python=python, reap=venv / "bin" / "reap", site_packages=site_packages, workdir=workdir)


def test_the_installed_wheel_not_the_checkout_is_what_runs(installed: Installed):
    probe = "import bot; from importlib.metadata import version; print(bot.__file__, version('reap-tracker'))"
    result = run([str(installed.python), "-c", probe], cwd=installed.workdir)
    assert result.returncode == 0, result.stderr
    module, found_version = result.stdout.split()
    assert Path(module).is_relative_to(installed.site_packages), f"bot came from {module}"
    assert not Path(module).is_relative_to(ROOT)
    assert found_version == project_version()


def test_reap_version_names_the_package_version(installed: Installed):
    result = run([str(installed.reap), "--version"], cwd=installed.workdir)
    assert (result.returncode, result.stdout) == (0, f"reap {project_version()}\n"), result.stderr


def test_the_demo_shell_runs_a_script_from_the_installed_package(installed: Installed):
    script = installed.workdir / "demo.txt"
    script.write_text(DEMO_SCRIPT, encoding="utf-8")
    result = run([str(installed.reap), "shell", "--demo", "--script", str(script)], cwd=installed.workdir)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert result.stdout.startswith("REAP shell: demo workspace"), result.stdout[:500]
    assert "/reap status <ref>" in result.stdout, "the help reply is shown"
    assert "OIT-1" in result.stdout.split("> /reap show OIT-1", 1)[1], "the demo plan was loaded"
    assert "Traceback" not in result.stdout + result.stderr


def test_the_migrations_ship_in_the_wheel(installed: Installed):
    database = installed.workdir / "reap.db"
    url = f"sqlite+aiosqlite:///{database}"
    upgraded = run([str(installed.reap), "db", "upgrade"], cwd=installed.workdir, DATABASE_URL=url)
    assert upgraded.returncode == 0, upgraded.stderr
    checked = run([str(installed.reap), "db", "check"], cwd=installed.workdir, DATABASE_URL=url)
    assert checked.returncode == 0, f"{checked.stdout}\n{checked.stderr}"
    with closing(sqlite3.connect(database)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"action_item", "audit_event", "alembic_version"} <= tables
