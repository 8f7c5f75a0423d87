"""The demo database: the upstream tables and generated data, for the embedded
default, the tests and the benchmarks. Never run against a user's database."""

import math
import time

import psycopg
from psycopg import sql

from . import versions
from .defaults import DEMO_SCALE as DEFAULT_SCALE
from .errors import ToolError
from .paths import DEMO_DIR

MAX_SCALE = 100  # 300M claims; anything larger is a typo


def check_scale(scale: float | str) -> float:
    """The --scale of db.reset, db.seed and bench (a number, or the flag's text), or one error line."""
    try:
        number = float(scale)
    except ValueError:
        number = math.nan
    if not 0 < number <= MAX_SCALE:
        raise ToolError(f"--scale must be a number above 0 and at most {MAX_SCALE} (1.0 = 3M claims), "
                        f"not {str(scale)!r}")
    return number


def schema_sql() -> str:
    return (DEMO_DIR / "schema.sql").read_text()


def partitioned_sql() -> str:
    return (DEMO_DIR / "partitioned.sql").read_text()


def seed_sql() -> str:
    return (DEMO_DIR / "seed.sql").read_text()


def indexes_sql() -> str:
    return (DEMO_DIR / "indexes.sql").read_text()


def load(conn: psycopg.Connection, scale: float = DEFAULT_SCALE, announce=lambda line: None,
         partitioned: bool = False) -> None:
    """Create the tables, fill them, then add their foreign keys and indexes, in one transaction;
    then VACUUM ANALYZE. `announce` gets a line as each step starts (seed.sql's notices).
    `partitioned`: claims range-partitioned by month of decided_date (partitioned.sql).

    All or nothing: an interrupted load leaves no half-filled tables behind.
    """
    started = time.monotonic()

    def step(name: str) -> None:
        announce(f"  {name} ({time.monotonic() - started:.1f}s)")

    # VACUUM marks a page all-visible only after setting hint bits, which wait for
    # the WAL flush of every asynchronous commit sharing the inserter's clog LSN
    # group (VACUUM ANALYZE's own commits among them): with synchronous_commit off
    # (e.g. the test server) the visibility map stayed empty.
    conn.execute("SET synchronous_commit = on")
    def notice(diagnostic) -> None:
        step(diagnostic.message_primary)

    conn.add_notice_handler(notice)
    try:
        with conn.transaction():
            conn.execute(schema_sql())
            if partitioned:
                step("demo data: claims partitioned by month of decided_date")
                conn.execute(partitioned_sql())
            conn.execute("SELECT set_config('demo.scale', %s, true)", [str(scale)])
            conn.execute(seed_sql())
            step("demo data: foreign keys and the app's 39 indexes")
            conn.execute(indexes_sql())
    finally:
        conn.remove_notice_handler(notice)
    # The visibility map and statistics the planner needs for index-only scans.
    step("demo data: VACUUM ANALYZE")
    conn.execute("VACUUM ANALYZE")
    step("demo data: loaded")


def is_loaded(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass('upstream_claimrecord') IS NOT NULL").fetchone()[0]


def create_database(admin: psycopg.Connection, name: str, template: str | None = None) -> None:
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    admin.execute(query)


def drop_database(admin: psycopg.Connection, name: str) -> None:
    """Drop it even while sessions are connected to it (theirs end)."""
    if admin.info.server_version >= versions.DROP_DATABASE_FORCE:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        return
    # 12 has no FORCE: end the sessions ourselves; DROP DATABASE waits up to 5 s for them to go.
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                  "AND pid <> pg_backend_pid()", [name])
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def database_exists(admin: psycopg.Connection, name: str) -> bool:
    return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def database_conninfo(conninfo: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return psycopg.conninfo.make_conninfo(conninfo, dbname=dbname)
