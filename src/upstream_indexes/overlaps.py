"""Redundant indexes: existing indexes whose key columns lead one of the new covering
indexes, so that every lookup they serve the new one serves too. Information for the DBA
(`invoke status`, docs/indexes.md); this tool never drops them.

Only a full index of ours covers: a partial one serves only the queries its WHERE implies, so
it makes no full index redundant. Its keys count up to the first that is an expression or has
an operator class or collation of its own (that key orders and compares otherwise). A unique
index, or a constraint's, is never reported (queries/overlapping_indexes.sql): it enforces
something.

A btree scans both ways, so an old index whose key directions are all the new one's, or all
reversed, is served in every order it serves. When the directions differ part-way, as
(customer_id, decided_date) against (customer_id, decided_date DESC, ...), a scan of the new
index serves its orders only once the leading columns before the difference are fixed by
equality, which every tenant-scoped query of the app does for customer_id.
"""

from dataclasses import dataclass

import psycopg

from . import catalog
from .migration_kinds import Kind
from .migrations import IndexMigration, column_list
from .statement import DESC, NULLS_FIRST, IndexDefinition


@dataclass(frozen=True)
class Overlap:
    """An existing index the new covering index makes redundant (its line: lines.plain_lines)."""

    index: str  # the existing index
    table: str
    columns: str  # its column list as the catalog spells it, e.g. "(customer_id, created_at DESC)"
    size_bytes: int
    covered_by: str  # our index
    order: str  # same | reverse | mixed: how its key directions compare with ours
    equality_columns: list[str]  # for "mixed": fixed by equality, a scan of ours serves its orders
    foreign_key: bool  # it is a foreign key's own index (Django's db_index on a ForeignKey)
    built: bool = True  # ours exists, valid; else it would make this one redundant once migrated


def equality_prefix(old: list[int], new: list[int]) -> int:
    """How many leading columns must be fixed by equality before a scan of `new`, forward or
    backward, returns rows in an order of `old` (0: it serves every order `old` serves)."""
    for fixed in range(len(old)):
        rest_old, rest_new = old[fixed:], new[fixed:len(old)]
        if rest_old == rest_new or rest_old == [option ^ (DESC | NULLS_FIRST) for option in rest_new]:
            return fixed
    return len(old)


def covering_keys(index: IndexDefinition) -> tuple[list[str | None], list[int]]:
    """The key columns of ours that another index's keys may match, and their direction bits; None
    for a key no plain column matches (an expression, an operator class or collation of its own)."""
    keys = [k.column if k.column and not (k.opclass or k.collation) else None for k in index.keys]
    return keys, [k.option for k in index.keys]


def find(conn: psycopg.Connection, migrations: list[IndexMigration]) -> list[Overlap]:
    """Every existing index that one of the migrations' indexes makes redundant (read-only)."""
    found = []
    for m in migrations:
        if m.kind != Kind.INDEX or m.index_definition.predicate is not None:
            continue
        built = catalog.index_state(conn, m).state == catalog.State.VALID
        keys, options = covering_keys(m.index_definition)
        rows = catalog.fetch(conn, "overlapping_indexes", {"table": m.table, "index": m.index, "keys": keys,
                                                           "columns": m.columns})
        for row in rows:
            old = row["key_options"]
            fixed = equality_prefix(old, options)
            order = "mixed" if fixed else ("same" if old == options[:len(old)] else "reverse")
            # On Citus the coordinator's own index is empty: its size is its shards'.
            size = row["size_bytes"] + sum(shard["size_bytes"] or 0
                                           for shard in catalog.shard_indexes(conn, row["index_name"], m.table))
            found.append(Overlap(row["index_name"], m.table, column_list(row["definition"]), size,
                                 m.index, order, row["key_columns"][:fixed], row["backs_foreign_key"], built))
    return found

