"""The demo database: the upstream tables and generated data, for the embedded
default, the tests and the benchmarks. Never run against a user's database."""

import psycopg
from psycopg import sql

from . import versions
from .errors import ToolError
from .paths import DEMO_DIR

DEFAULT_SCALE = 0.05  # 150k claims, 50k drift events, 15k uploads: seeds in seconds
MAX_SCALE = 100  # 300M claims; anything larger is a typo


def check_scale(scale: float) -> float:
    """The --scale of db.reset, db.seed and bench, or one error line."""
    if not 0 < scale <= MAX_SCALE:
        raise ToolError(f"--scale must be above 0 and at most {MAX_SCALE} (1.0 = 3M claims), not {scale:g}")
    return scale


def schema_sql() -> str:
    return (DEMO_DIR / "schema.sql").read_text()


def seed_sql() -> str:
    return (DEMO_DIR / "seed.sql").read_text()


def load(conn: psycopg.Connection, scale: float = DEFAULT_SCALE) -> None:
    """Create the tables and fill them in one transaction, then VACUUM ANALYZE.

    All or nothing: an interrupted load leaves no half-filled tables behind.
    """
    # VACUUM marks a page all-visible only after setting hint bits, which wait for
    # the WAL flush of every asynchronous commit sharing the inserter's clog LSN
    # group (VACUUM ANALYZE's own commits among them): with synchronous_commit off
    # (e.g. the test server) the visibility map stayed empty.
    conn.execute("SET synchronous_commit = on")
    with conn.transaction():
        conn.execute(schema_sql())
        conn.execute("SELECT set_config('demo.scale', %s, true)", [str(scale)])
        conn.execute(seed_sql())
    # The visibility map and statistics the planner needs for index-only scans.
    conn.execute("VACUUM ANALYZE")


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
