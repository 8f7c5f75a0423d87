"""Where the benchmark writes: its own schema, upstream_bench, in a throwaway
database, on the embedded server (a database of its own there) or the one
--dsn / DATABASE_URL / libpq's environment names.

The benchmark loads demo data, builds and drops indexes and runs inserts and
updates, so "throwaway" is checked, not assumed: the database must hold no
relation outside the system schemas and the bench's schema, unless the user
passes --i-know-this-writes. Even then the bench writes only into its own
schema, which it marks with a comment when it creates it, and it drops and
reloads that schema only when the mark is there.
"""

from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from upstream_indexes import demo, embedded
from upstream_indexes.config import Target, resolve_target
from upstream_indexes.db import connect
from upstream_indexes.errors import ToolError

from . import bench_sql

SCHEMA = "upstream_bench"
EMBEDDED_DATABASE = "upstream_bench"
MARK = "created by invoke bench: throwaway benchmark data, dropped and reloaded by every run"


@dataclass(frozen=True)
class Sandbox:
    """The bench's schema in a checked database; `target` connects with search_path set to it."""

    target: Target
    database: str
    server: str  # "embedded PostgreSQL (.pgdata/)" or where the DSN came from

    def describe(self) -> str:
        return f"benchmark database: {self.database}, schema {SCHEMA} ({self.server}): {self.target.shown}"


def open_sandbox(dsn: str | None, allow_shared: bool) -> Sandbox:
    """Check the database (creating the embedded one if needed) and create the bench schema if missing."""
    chosen = resolve_target(dsn)
    if chosen.embedded:
        chosen = _embedded_database()
    with connect(chosen) as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            found = cur.execute(bench_sql("throwaway"), {"schema": SCHEMA}).fetchone()
        _check_throwaway(found, allow_shared)
        if not found["schema_exists"]:
            _create_schema(conn)
    return Sandbox(Target(in_schema(chosen.conninfo), chosen.source, is_demo=True), found["database"],
                   chosen.source)


def _embedded_database() -> Target:
    admin = embedded.start()
    with connect(Target(admin, "embedded")) as conn:
        if not demo.database_exists(conn, EMBEDDED_DATABASE):
            demo.create_database(conn, EMBEDDED_DATABASE)
    return Target(demo.database_conninfo(admin, EMBEDDED_DATABASE), "embedded PostgreSQL, .pgdata/")


def _check_throwaway(found: dict, allow_shared: bool) -> None:
    database = found["database"]
    if found["schema_exists"] and found["schema_comment"] != MARK:
        raise ToolError(f"database {database} already has a schema {SCHEMA} that the benchmark did not create; "
                        "the benchmark drops and reloads its schema, so it will not use that one: "
                        "point --dsn at another database")
    if found["other_relations"] and not allow_shared:
        raise ToolError(f"refusing to benchmark in database {database}: it holds {found['other_relations']} "
                        "relations the benchmark did not create, and the benchmark writes heavily (demo data "
                        f"in its own schema {SCHEMA}, index builds, inserts and updates); point --dsn at an "
                        "empty database, or pass --i-know-this-writes")


def _create_schema(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(sql.Identifier(SCHEMA), sql.Literal(MARK)))


def in_schema(conninfo: str | None) -> str:
    """The same connection with the bench schema as the only search_path entry."""
    options = conninfo_to_dict(conninfo or "").get("options", "")
    return make_conninfo(conninfo or "", options=f"{options} -c search_path={SCHEMA}".strip())


def reload(sandbox: Sandbox, scale: float, partitioned: bool = False) -> None:
    """Empty the bench schema and load the demo data at `scale` into it (claims partitioned or not)."""
    with connect(sandbox.target) as conn:
        _empty(conn)
        demo.load(conn, scale, partitioned=partitioned)


def holds(sandbox: Sandbox, scale: float) -> bool:
    """Whether the bench schema holds the demo data of `scale` already, claims not partitioned (kept by
    `python -m benchmarks.overhead --per-build`): seed.sql makes round(300,000 x scale) uploads, at least one."""
    with connect(sandbox.target) as conn:
        if not demo.is_loaded(conn):
            return False
        kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = 'upstream_claimrecord'::regclass").fetchone()[0]
        uploads = conn.execute("SELECT count(*) FROM upstream_upload").fetchone()[0]
    return kind == "r" and uploads == max(1, round(300_000 * scale))


def drop_data(sandbox: Sandbox) -> None:
    """Leave the bench schema empty: the data of a full run takes gigabytes."""
    with connect(sandbox.target) as conn:
        _empty(conn)


def _empty(conn: psycopg.Connection) -> None:
    # Only ever our schema: open_sandbox checked its mark.
    with conn.transaction():
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
        _create_schema(conn)
