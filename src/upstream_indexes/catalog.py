"""Read-only questions to the catalog: what state our indexes and constraints are in (who a backend is:
backends.py; the tables' pre-flight checks: table_checks.py; the bookkeeping tables: ledger.py). The SQL lives in queries/*.sql, but for the
comparison of definitions, which verify/definitions.sql makes for verify and us alike."""

import json
import re
from enum import Enum
from functools import cache

import psycopg
from psycopg.rows import dict_row

from .migrations import IndexMigration, canonical, expected_entry
from .partitions import Part, PartitionIndex, classify, index_name
from .paths import QUERIES_DIR, VERIFY_DIR
from .records import Record


@cache
def query(name: str) -> str:
    return (QUERIES_DIR / f"{name}.sql").read_text()


def fetch(conn: psycopg.Connection, name: str, params: dict) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query(name), params)
        return cur.fetchall()


class State(str, Enum):
    ABSENT = "missing"
    VALID = "valid"  # present, valid, and our definition
    INVALID = "INVALID"  # left by a failed or cancelled build, or a cancelled drop (invalid_origin)
    BUILDING = "building"  # a CREATE INDEX for it is still running on the server
    FOREIGN = "foreign"  # our name, another definition (or not an index at all)
    NOT_VALID = "NOT VALID"  # a constraint added NOT VALID and not validated yet: new rows are checked, old ones not


class IndexState(Record):
    migration: IndexMigration
    state: State
    definition: str | None = None  # canonical, as found
    size_bytes: int | None = None  # on Citus: the coordinator's index and every shard's
    building_pid: int | None = None
    shards_valid: int | None = None  # Citus: shard indexes valid with our definition (None: not distributed)
    shards_total: int | None = None  # Citus: shard placements of the table
    bad_shards: tuple[str, ...] = ()  # Citus: each shard index that is not, and why
    partitions: tuple[PartitionIndex, ...] | None = None  # a partitioned table's partitions (None: not one)
    schema: str | None = None  # a partitioned table's schema (the expanded statements name it)
    differences: tuple[str, ...] = ()  # FOREIGN: how it differs from ours (verify/definitions.sql)
    twin: State | None = None  # a promotion: the twin index its rollback builds, as it stands (None: none)

    @property
    def partitions_done(self) -> int:
        return sum(p.state == Part.DONE for p in self.partitions or ())

    @property
    def partition_leftovers(self) -> list[PartitionIndex]:
        """Our unattached INVALID partition indexes: what a failed or killed build left."""
        return [p for p in self.partitions or () if p.state == Part.INVALID]

    @property
    def name(self) -> str:
        return self.migration.index


class CitusTable(Record):
    name: str
    table_type: str  # distributed, reference, local
    distribution_column: str | None
    shard_count: int


class Citus(Record):
    """A database with the citus extension: this node's role and how our tables are spread."""

    is_coordinator: bool
    workers: int
    tables: tuple[CitusTable, ...]

    @property
    def distributed(self) -> tuple[CitusTable, ...]:
        return tuple(t for t in self.tables if t.table_type == "distributed")


def citus(conn: psycopg.Connection, tables: list[str]) -> Citus | None:
    """What Citus knows of this node and `tables`; None without the citus extension."""
    if not has_citus(conn):
        return None
    rows = fetch(conn, "citus_tables", {"tables": [t for t in tables if table_exists(conn, t)]})
    return Citus(rows[0]["is_coordinator"], rows[0]["workers"],
                 tuple(CitusTable(r["table_name"], r["table_type"], r["distribution_column"], r["shard_count"])
                       for r in rows if r["table_name"]))


def has_citus(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL").fetchone()[0]


def differences(conn: psycopg.Connection, migrations: list[IndexMigration]) -> dict[str, tuple[str, ...]]:
    """For each of `migrations` whose index or constraint exists: how it differs from the file's
    definition, compared as PostgreSQL canonicalises both (verify/definitions.sql); () when it is
    ours. Keyed by migration id. In a transaction of its own (or a savepoint), for its settings."""
    with conn.transaction():
        conn.execute("SELECT set_config('upstream_indexes.expected_indexes', %s, true), "
                     "set_config('upstream_indexes.expected_constraints', %s, true)",
                     [json.dumps([expected_entry(m) for m in migrations if m.kind.makes_index]),
                      json.dumps([expected_entry(m) for m in migrations if not m.kind.makes_index])])
        conn.execute(_definitions_sql())
        indexes, constraints = conn.execute("SELECT current_setting('upstream_indexes.index_differences')::jsonb, "
                                            "current_setting('upstream_indexes.constraint_differences')::jsonb"
                                            ).fetchone()
    found = {}
    for m in migrations:
        by_name = indexes if m.kind.makes_index else constraints
        if m.index in by_name:
            found[m.id] = tuple(by_name[m.index])
    return found


@cache
def _definitions_sql() -> str:
    return (VERIFY_DIR / "definitions.sql").read_text(encoding="utf-8")


def invalid_origin(recorded: bool) -> str:
    """What left an INVALID index of ours: recorded as applied, it was valid once, and a DROP INDEX
    CONCURRENTLY (a rollback's) marks it INVALID first, so a cancelled one leaves it so; unrecorded, a
    build that failed or was cancelled."""
    return "left by a cancelled DROP INDEX CONCURRENTLY of a rollback" if recorded else \
        "left by a failed or cancelled build"


def index_states(conn: psycopg.Connection, migrations: list[IndexMigration]) -> list[IndexState]:
    """index_state of each migration, their definitions compared in one query for all (verify/definitions.sql
    takes 2 to 8 ms a call) rather than one per index."""
    compared = differences(conn, migrations)
    return [index_state(conn, m, compared) for m in migrations]


def index_state(conn: psycopg.Connection, migration: IndexMigration,
                compared: dict[str, tuple[str, ...]] | None = None) -> IndexState:
    """Where the index or constraint a migration makes stands in the catalog. `compared`: differences() of
    migrations including this one, read before; one it lacks (absent then) is compared now."""
    if not migration.kind.makes_index:
        return _constraint_state(conn, migration, compared or {})
    state = _local_index_state(conn, migration, compared or {})
    if state.state == State.FOREIGN:
        return state
    rows = partition_rows(conn, migration)
    if rows:
        return _with_partitions(state, rows)
    if state.state == State.ABSENT:
        return state
    return _with_shards(state, shard_indexes(conn, migration.index, migration.table))


def partitions_of(conn: psycopg.Connection, migration: IndexMigration) -> list[dict]:
    """The partitions of the migration's table (queries/partition_indexes.sql, with no index of our name
    looked for yet: an index attached to ours only); [] when the table is not partitioned."""
    if not is_partitioned(conn, migration.table):
        return []  # asked first: planning the partitions query alone takes 1 to 4 ms, for every index
    return fetch(conn, "partition_indexes", {"table": migration.table, "index": migration.index,
                                             "partitions": [], "names": []})


def partition_rows(conn: psycopg.Connection, migration: IndexMigration) -> list[dict]:
    """The partitions of the migration's table and their index (queries/partition_indexes.sql); []
    when the table is not partitioned."""
    rows = partitions_of(conn, migration)
    if not rows:
        return []
    return fetch(conn, "partition_indexes", {
        "table": migration.table, "index": migration.index, "partitions": [r["partition"] for r in rows],
        "names": [index_name(migration.index, r["partition"]) for r in rows]})


def _with_partitions(state: IndexState, rows: list[dict]) -> IndexState:
    """A partitioned table's index: its size is its partitions' indexes; a partition's index still
    being built makes it `building` (that backend's pid)."""
    parts = tuple(classify(state.migration, row) for row in rows)
    building = next((p.building_pid for p in parts if p.state == Part.BUILDING), None)
    return IndexState(state.migration, State.BUILDING if building else state.state, state.definition,
                      sum(p.size_bytes or 0 for p in parts), building or state.building_pid,
                      partitions=parts, schema=rows[0]["table_schema"])


def shard_indexes(conn: psycopg.Connection, index: str, table: str) -> list[dict]:
    """Citus: the shard copies of `index` on every node, per shard of `table`; [] when `table` is not
    distributed (or there is no Citus)."""
    return fetch(conn, "citus_shard_indexes", {"index": index, "table": table}) if has_citus(conn) else []


def _with_shards(state: IndexState, shards: list[dict]) -> IndexState:
    """A distributed table's index (Citus): valid only when every shard's index is valid with our
    definition; INVALID, naming the shards, when some are not (migrate drops it and builds again)."""
    if not shards:  # not a distributed table
        return state
    bad = []
    for shard in shards:
        definition = shard["definition"] and canonical(re.sub(rf"_{shard['shardid']}\b", "", shard["definition"]))
        problem = (f"node did not answer ({shard['node_error']})" if shard["node_error"] else
                   "missing" if shard["valid"] is None else
                   "INVALID" if not shard["valid"] else
                   f"definition `{definition}`" if definition != state.migration.definition else None)
        if problem:
            bad.append(f"{shard['shard_index']} on {shard['node']}: {problem}")
    size = (state.size_bytes or 0) + sum(shard["size_bytes"] or 0 for shard in shards)
    worst = State.INVALID if bad and state.state == State.VALID else state.state
    return IndexState(state.migration, worst, state.definition, size, state.building_pid,
                      shards_valid=len(shards) - len(bad), shards_total=len(shards), bad_shards=tuple(bad))


def _local_index_state(conn: psycopg.Connection, migration: IndexMigration, compared: dict) -> IndexState:
    rows = fetch(conn, "index_state", {"name": migration.index})
    if not rows:
        return IndexState(migration, State.ABSENT)
    row = rows[0]
    if row["relkind"] not in ("i", "I"):
        return IndexState(migration, State.FOREIGN, definition=f"a relation of kind {row['relkind']!r}, not an index")
    found = canonical(row["definition"])
    common = dict(definition=found, size_bytes=row["size_bytes"], building_pid=row["building_pid"])
    if row["building_pid"]:
        return IndexState(migration, State.BUILDING, **common)
    if different := _differences(conn, migration, compared):
        return IndexState(migration, State.FOREIGN, differences=different, **common)
    if not (row["valid"] and row["ready"] and row["live"]):
        return IndexState(migration, State.INVALID, **common)
    return IndexState(migration, State.VALID, **common)


def index_validity(conn: psycopg.Connection, name: str) -> State | None:
    """Whether an index of this name (search path) is VALID or INVALID; None when there is none."""
    rows = fetch(conn, "index_state", {"name": name})
    if not rows or rows[0]["relkind"] not in ("i", "I"):
        return None
    row = rows[0]
    return State.VALID if row["valid"] and row["ready"] and row["live"] else State.INVALID


def _differences(conn: psycopg.Connection, migration: IndexMigration, compared: dict) -> tuple[str, ...]:
    """How the existing index or constraint differs from the file's: from `compared` when it was there."""
    if migration.id in compared:
        return compared[migration.id]
    return differences(conn, [migration]).get(migration.id, ())


def _constraint_state(conn: psycopg.Connection, migration: IndexMigration, compared: dict) -> IndexState:
    rows = fetch(conn, "constraint_state", {"table": migration.table, "name": migration.index})
    twin = index_validity(conn, migration.twin) if migration.twin else None
    if not rows:
        return IndexState(migration, State.ABSENT, twin=twin)
    row = rows[0]
    common = dict(definition=row["definition"], size_bytes=row["size_bytes"], twin=twin)
    if different := _differences(conn, migration, compared):
        return IndexState(migration, State.FOREIGN, differences=different, **common)
    return IndexState(migration, State.VALID if row["validated"] else State.NOT_VALID, **common)


def row_estimate(conn: psycopg.Connection, table: str) -> int | None:
    """The planner's estimate of a table's rows (pg_class.reltuples; -1 before its first ANALYZE)."""
    row = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table]).fetchone()
    return row[0] if row else None


def is_partitioned(conn: psycopg.Connection, table: str) -> bool:
    """Whether the search path resolves `table` to a partitioned table."""
    return conn.execute("SELECT EXISTS (SELECT FROM pg_class WHERE oid = to_regclass(%s) AND relkind = 'p')",
                        [table]).fetchone()[0]


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    """Whether the search path resolves `name` (bookkeeping tables, ours and yoyo's)."""
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()[0]


def server_version(conn: psycopg.Connection) -> int:
    return conn.info.server_version
