"""What `invoke stamp` (runner.stamp) looks for: the catalog's object that already holds a migration's
definition, so that it can be recorded as applied without building. Per migration kind: an index for
now (built_as); a kind of its own adds its own finder.

Under another name (built by hand) the index is renamed to ours (ALTER INDEX ... RENAME: a catalog
change under SHARE UPDATE EXCLUSIVE, which blocks no reads or writes), so that status, verify and
rollback find it by name.
"""


import psycopg
from psycopg import sql

from . import catalog, migrations
from .migrations import IndexMigration
from .records import Record

RENAME_LOCK_TIMEOUT = "10s"  # the rename waits at most this long for its lock, then nothing changed


class Built(Record):
    """The catalog's object that holds a migration's definition."""

    schema: str
    name: str


def built_as(conn: psycopg.Connection, m: IndexMigration) -> Built | None:
    """A valid index on the migration's table with its definition, ours by name first, else any name."""
    ours = _unnamed(m.definition)
    for row in catalog.fetch(conn, "valid_indexes", {"table": m.table, "index": m.index}):
        if _unnamed(migrations.canonical(row["definition"])) == ours:
            return Built(row["schema_name"], row["index_name"])
    return None


def rename(conn: psycopg.Connection, found: Built, name: str) -> None:
    """Give the index found our name, waiting at most RENAME_LOCK_TIMEOUT for its lock."""
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(RENAME_LOCK_TIMEOUT)))
        conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(found.schema, found.name),
                                                                   sql.Identifier(name)))


def _unnamed(definition: str) -> str:
    """A canonical definition without the index's name: `CREATE INDEX ON t USING btree (...)`."""
    head, rest = definition.split(" ON ", 1)
    return f"{head.rsplit(' ', 1)[0]} ON {rest}"
