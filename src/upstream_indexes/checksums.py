"""What each applied migration contained when it was applied.

yoyo records a hash of a migration's id, not of its content, so a file edited
after apply would run (or be trusted) unnoticed. We keep IndexMigration.checksum
(sha256 of the forward and rollback file) in a table of our own next to yoyo's,
written and deleted in the same transaction as yoyo's record, and refuse to
work with an applied migration whose files no longer match. The SQL is in
queries/checksum_*.sql.
"""

import psycopg

from . import catalog
from .migrations import IndexMigration

TABLE = "_upstream_indexes_checksum"


def recorded(conn: psycopg.Connection) -> dict[str, str]:
    """migration id -> sha256 recorded at apply; empty before the first migrate."""
    if not catalog.table_exists(conn, TABLE):
        return {}
    return {row["migration_id"]: row["sha256"] for row in catalog.fetch(conn, "checksums", {})}


def edited(conn: psycopg.Connection, files: list[IndexMigration], applied: set[str]) -> list[str]:
    """One line per applied migration whose files changed since; empty when none did."""
    sums = recorded(conn)
    return [f"{m.id} changed after it was applied: {m.path.name} or {m.rollback_path.name} is not what was "
            f"applied (sha256 {sums[m.id][:12]}, now {m.checksum[:12]}); restore the files as they were applied "
            "(to change an applied index, roll it back with those files first)"
            for m in files if m.id in applied and m.id in sums and sums[m.id] != m.checksum]


def ensure_table(conn: psycopg.Connection) -> None:
    """Create our table next to yoyo's, the first time (never from status or a failed pre-flight)."""
    if not catalog.table_exists(conn, TABLE):
        conn.execute(catalog.query("checksum_table"))


def record(conn: psycopg.Connection, migration: IndexMigration) -> None:
    conn.execute(catalog.query("checksum_record"), {"migration_id": migration.id, "sha256": migration.checksum})


def forget(conn: psycopg.Connection, migration: IndexMigration) -> None:
    conn.execute(catalog.query("checksum_forget"), {"migration_id": migration.id})


def accept(conn: psycopg.Connection, migration: IndexMigration) -> None:
    conn.execute(catalog.query("checksum_accept"), {"migration_id": migration.id, "sha256": migration.checksum})
