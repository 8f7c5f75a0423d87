"""Partitioned tables: CREATE INDEX CONCURRENTLY cannot build an index on one, so migrate expands the
migration file's one statement into the steps PostgreSQL offers instead (its docs, CREATE INDEX,
"Building Indexes Concurrently" on partitioned tables):

  1. CREATE INDEX IF NOT EXISTS <index> ON ONLY <table> ...   the parent's index: catalog only, INVALID
  2. per partition: CREATE INDEX CONCURRENTLY <partition index> ON <partition> ...
  3. per partition: ALTER INDEX <index> ATTACH PARTITION <partition index>
     (the parent index turns valid when the last partition's index is attached)

The migration file stays as the DBA wrote it; the expansion reuses its parsed definition (the part
after `ON <table>`, as verify/expected.sql has it) and its SET lines. Each partition's index is named
<index>_<partition>; when that exceeds PostgreSQL's 63 bytes, its first 54 bytes, `_` and the first
8 hex digits of the md5 of the whole name (verify/indexes.sql computes the same;
tests/test_partition_names.py holds the two to it).

Rollback: a partitioned index cannot be dropped concurrently, and a partition's index attached to it
cannot be dropped alone, so rollback runs a plain DROP INDEX on the parent (it takes ACCESS EXCLUSIVE
on the table and every partition: docs/scale-out.md, "Partitioned tables", has its measured length), waiting at
most SHORT_LOCK_TIMEOUT for the lock, and drops the unattached leftovers of killed runs concurrently.
"""

import hashlib
import re
from enum import Enum

from psycopg import sql

from .migrations import IndexMigration, canonical
from .records import Record

MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1
_CLIPPED_BYTES = MAX_IDENTIFIER_BYTES - 9  # room for `_` and 8 hex digits
# The catalog-only statements (the parent's index, ATTACH, the parent's DROP) hold a lock that stops
# the table's writes (SHARE on it for the parent's CREATE, ACCESS EXCLUSIVE for the DROP) or the
# planning of queries on a partition (ACCESS EXCLUSIVE on its new index for ATTACH) while they wait
# for it: they wait at most this long, then count as blocked (retried under --max-wait / --retries).
SHORT_LOCK_TIMEOUT = "2s"
_CREATE = re.compile(r"^\s*CREATE\s+INDEX\s+CONCURRENTLY\b", re.IGNORECASE | re.MULTILINE)
_DROP = re.compile(r"^\s*DROP\s+INDEX\s+CONCURRENTLY\b", re.IGNORECASE | re.MULTILINE)
_LOCK_TIMEOUT = re.compile(r"^\s*SET\s+lock_timeout\b", re.IGNORECASE | re.MULTILINE)


def index_name(index: str, partition: str) -> str:
    """Our name for `index`'s index on `partition`: deterministic, at most 63 bytes."""
    full = f"{index}_{partition}"
    if len(full.encode()) <= MAX_IDENTIFIER_BYTES:
        return full
    clipped = full
    while len(clipped.encode()) > _CLIPPED_BYTES:
        clipped = clipped[:-1]
    return f"{clipped}_{hashlib.md5(full.encode()).hexdigest()[:8]}"


class Part(str, Enum):
    """Where one partition's index stands."""

    DONE = "done"  # attached to the parent index, valid
    BUILT = "built"  # ours, valid, our definition, not attached yet (a run killed before its ATTACH)
    MISSING = "missing"
    INVALID = "INVALID"  # ours, not attached, not valid: a killed or cancelled build's leftover
    BUILDING = "building"  # a CREATE INDEX for it is still running
    FOREIGN = "foreign"  # our name with another definition, or attached but not valid: a human decides


class PartitionIndex(Record):
    schema: str
    partition: str
    index: str  # our name for its index
    state: Part
    found: str | None = None  # the index there (an attached one may have PostgreSQL's name)
    building_pid: int | None = None
    size_bytes: int | None = None
    problem: str | None = None  # FOREIGN: what is wrong

    @property
    def attached(self) -> bool:
        return self.state == Part.DONE


def classify(migration: IndexMigration, row: dict) -> PartitionIndex:
    """One row of queries/partition_indexes.sql as a PartitionIndex."""
    name = index_name(migration.index, row["partition"])
    common = dict(schema=row["schema"], partition=row["partition"], index=name, found=row["found"],
                  building_pid=row["building_pid"], size_bytes=row["size_bytes"])
    if row["found"] is None:
        return PartitionIndex(state=Part.MISSING, **common)
    if row["building_pid"]:
        return PartitionIndex(state=Part.BUILDING, **common)
    if row["attached"]:
        if row["valid"]:
            return PartitionIndex(state=Part.DONE, **common)
        return PartitionIndex(state=Part.FOREIGN, problem=(
            f"{row['found']} is attached to {migration.index} but INVALID (not a build of ours: we attach only "
            f"valid indexes); a DBA runs REINDEX INDEX CONCURRENTLY {row['found']}, then ALTER INDEX "
            f"{migration.index} ATTACH PARTITION {row['found']} again, which validates {migration.index} on "
            "PostgreSQL 15 and later (not on 12: there `invoke rollback`, then `invoke migrate`)"), **common)
    expected = canonical(f"CREATE INDEX {name} ON {row['partition']} {definition_tail(migration)}")
    if canonical(row["definition"]) != expected:
        return PartitionIndex(state=Part.FOREIGN, problem=f"{name} exists with another definition: found "
                              f"`{canonical(row['definition'])}`, ours is `{expected}`", **common)
    return PartitionIndex(state=Part.BUILT if row["valid"] else Part.INVALID, **common)


def definition_tail(migration: IndexMigration) -> str:
    """`USING btree (...) INCLUDE (...)`: the definition after `ON <table>`."""
    return migration.definition.split(f" ON {migration.table} ", 1)[1]


class Do(str, Enum):
    """One per-partition step the planner orders (see the module docstring)."""

    CREATE_PARENT = "create-parent"
    DROP_LEFTOVER = "drop-leftover"  # an unattached INVALID index of ours on a partition: drop it concurrently
    BUILD = "build"
    ATTACH = "attach"
    DROP_PARENT = "drop-parent"


class PartitionStep(Record):
    do: Do
    partition: PartitionIndex | None = None  # None for the parent's steps


class PlannedStatement(Record):
    """One statement a session (sessions.Session) sends, with what it does; not a file's parsed statement
    (statement.Statement)."""

    sql: str  # as the runner sends it and `invoke sql` prints it: a file's statement as split, or ours ended by `;`
    note: str | None = None  # what it does, said as it starts (and printed above it by `invoke sql`)


def expand(migration: IndexMigration, schema: str, steps: tuple[PartitionStep, ...], file_statements: list[str],
           rollback: bool) -> list[PlannedStatement]:
    """The migration file's statements (ledger.statements: forward, or rollback) with its CREATE (or
    DROP) INDEX CONCURRENTLY replaced by `steps`."""
    lines = [s.strip().rstrip(";") + ";" for s in file_statements]
    file_timeout = next((s for s in lines if _LOCK_TIMEOUT.search(s)), "RESET lock_timeout;")
    replaced = _DROP if rollback else _CREATE
    out: list[PlannedStatement] = []
    for line in lines:
        if replaced.search(line):
            out += _step_statements(migration, schema, steps, file_timeout)
        else:
            out.append(PlannedStatement(line))
    return out


def _step_statements(migration: IndexMigration, schema: str, steps: tuple[PartitionStep, ...],
                     file_timeout: str) -> list[PlannedStatement]:
    parent = sql.Identifier(schema, migration.index)
    table = sql.Identifier(schema, migration.table)
    tail = sql.SQL(definition_tail(migration))
    short = f"SET lock_timeout = '{SHORT_LOCK_TIMEOUT}';"
    builds = [s for s in steps if s.do == Do.BUILD]
    out: list[PlannedStatement] = []
    timeout = file_timeout

    def add(query: sql.Composable, note: str | None = None, lock_timeout: str = file_timeout) -> None:
        nonlocal timeout
        if lock_timeout != timeout:
            out.append(PlannedStatement(lock_timeout))
            timeout = lock_timeout
        out.append(PlannedStatement(query.as_string() + ";", note))

    for step in steps:
        p = step.partition
        index = p and sql.Identifier(p.schema, p.index)
        if step.do == Do.CREATE_PARENT:
            add(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON ONLY {} {}").format(
                sql.Identifier(migration.index), table, tail),
                f"{migration.index}: ON ONLY {migration.table}, INVALID until every partition's index is attached",
                short)
        elif step.do == Do.DROP_LEFTOVER:
            add(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(index),
                f"{migration.index}: dropping the INVALID {p.index} (left by a killed or cancelled build)")
        elif step.do == Do.BUILD:
            number = builds.index(step) + 1
            add(sql.SQL("CREATE INDEX CONCURRENTLY {} ON {} {}").format(
                sql.Identifier(p.index), sql.Identifier(p.schema, p.partition), tail),
                f"{migration.index}: partition {p.partition} ({number} of {len(builds)} to build): "
                f"building {p.index}")
        elif step.do == Do.ATTACH:
            add(sql.SQL("ALTER INDEX {} ATTACH PARTITION {}").format(parent, index), None, short)
        elif step.do == Do.DROP_PARENT:
            add(sql.SQL("DROP INDEX IF EXISTS {}").format(parent),
                f"{migration.index}: DROP INDEX (not CONCURRENTLY: a partitioned index cannot be), ACCESS "
                f"EXCLUSIVE on {migration.table} and its partitions, waiting at most {SHORT_LOCK_TIMEOUT} for it",
                short)
    if timeout != file_timeout:
        out.append(PlannedStatement(file_timeout))
    return out
