"""`invoke stamp`: record a pending migration as applied without building (Alembic's `stamp`, Flyway's
`baseline`, Django's `migrate --fake`), for an index a DBA built by hand, or a database restored from a
snapshot without yoyo's records.

Refused (exit 2, nothing changed) unless the catalog holds a valid index of the migration's definition:
under our name it is only recorded (as migrate would record it); under another name it is first
renamed to ours (ALTER INDEX ... RENAME: a catalog change under SHARE UPDATE EXCLUSIVE, which blocks no
reads or writes), so that status, verify and rollback find it. `force` records it whatever the catalog
holds, saying what it skipped. Per migration kind: an index for now (built_as).
"""

import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from . import catalog, events, ledger, migrations, runner
from .config import Target
from .db import connect, translate_errors
from .errors import ToolError
from .events import Listener
from .migrations import IndexMigration
from .paths import MIGRATIONS_DIR

RENAME_LOCK_TIMEOUT = "10s"  # the rename waits at most this long for its lock, then nothing changed


@dataclass(frozen=True)
class Built:
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


def _unnamed(definition: str) -> str:
    """A canonical definition without the index's name: `CREATE INDEX ON t USING btree (...)`."""
    head, rest = definition.split(" ON ", 1)
    return f"{head.rsplit(' ', 1)[0]} ON {rest}"


@translate_errors
def stamp(target: Target, reporter: Listener, reference: str, force: bool = False,
          directory=MIGRATIONS_DIR) -> runner.RunReport:
    files = migrations.load(directory)
    m = migrations.up_to(files, reference, flag="stamp")[-1]
    report = runner.RunReport("stamp")
    with connect(target) as conn:
        runner.preflight(conn, files, target, builds=False)
        with runner.migrator_lock(conn, reporter):
            _, applied = runner.read_state(conn, files)
            if m.id in applied:
                reporter.emit(events.NothingToStamp(m.id))
                return report
            found = built_as(conn, m)
            if found is None and not force:
                state = catalog.index_state(conn, m)
                raise ToolError(f"{m.id}: not stamped: no valid index of its definition on {m.table} (`{m.definition}`; "
                                f"{m.index} is {state.state.value}); stamp records only what exists: build it with "
                                "`invoke migrate`, or pass --force to record it anyway; nothing was changed")
            started = time.monotonic()
            with ledger.opened(target, files, runner._stale_lock_announcer(reporter)) as book:
                if found is not None and found.name != m.index:
                    _rename(book.connection, found, m.index)
                book.record(m, "mark", started)
            if found is None:
                reporter.emit(events.StampForced(m.id, m.index, catalog.index_state(conn, m).state.value))
            else:
                reporter.emit(events.Stamped(m.id, m.index, found.name))
    return report


def _rename(conn: psycopg.Connection, found: Built, name: str) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(RENAME_LOCK_TIMEOUT)))
        conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(found.schema, found.name),
                                                                   sql.Identifier(name)))
