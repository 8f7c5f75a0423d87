"""The kinds of migration (an index, a CHECK, a foreign key, a promotion) as data: which statements
each kind's forward and rollback file hold (KINDS), the kind a file's statements make, and what both
files of a pair must agree on. migrations.py reads the files and asks these.
"""

from enum import Enum

from .errors import MigrationFileProblem
from .records import Record
from .statement import Statement, Verb


class Kind(str, Enum):
    INDEX = "index"
    CHECK = "check"
    FOREIGN_KEY = "foreign key"
    PROMOTION = "promotion"  # a unique index made a UNIQUE or PRIMARY KEY constraint

    @property
    def makes_index(self) -> bool:
        """Its object is an index (pg_index), else a constraint (pg_constraint)."""
        return self == Kind.INDEX


class KindSpec(Record):
    """One kind of migration as data: the statements of its forward and rollback file (SETs aside),
    and how a DBA writes them (the messages and docs/migration-kinds.md)."""

    kind: Kind
    forward: tuple[Verb, ...]
    rollback: tuple[Verb, ...]
    forward_form: str
    rollback_form: str


KINDS = (
    KindSpec(Kind.INDEX, (Verb.CREATE_INDEX,), (Verb.DROP_INDEX,),
             "CREATE [UNIQUE] INDEX CONCURRENTLY <name> ON <table> ... [WHERE ...]",
             "DROP INDEX CONCURRENTLY IF EXISTS <name>"),
    KindSpec(Kind.CHECK, (Verb.ADD_CHECK, Verb.VALIDATE), (Verb.DROP_CONSTRAINT,),
             "ALTER TABLE <table> ADD CONSTRAINT <name> CHECK (...) NOT VALID; "
             "ALTER TABLE <table> VALIDATE CONSTRAINT <name>",
             "ALTER TABLE <table> DROP CONSTRAINT IF EXISTS <name>"),
    KindSpec(Kind.FOREIGN_KEY, (Verb.ADD_FOREIGN_KEY, Verb.VALIDATE), (Verb.DROP_CONSTRAINT,),
             "ALTER TABLE <table> ADD CONSTRAINT <name> FOREIGN KEY (...) REFERENCES ... NOT VALID; "
             "ALTER TABLE <table> VALIDATE CONSTRAINT <name>",
             "ALTER TABLE <table> DROP CONSTRAINT IF EXISTS <name>"),
    KindSpec(Kind.PROMOTION, (Verb.ADD_USING_INDEX,), (Verb.CREATE_INDEX, Verb.DROP_CONSTRAINT, Verb.RENAME_INDEX),
             "ALTER TABLE <table> ADD CONSTRAINT <name> UNIQUE|PRIMARY KEY USING INDEX <name>",
             "CREATE UNIQUE INDEX CONCURRENTLY <twin> ON <table> ... (the same index); "
             "ALTER TABLE <table> DROP CONSTRAINT IF EXISTS <name>; ALTER INDEX <twin> RENAME TO <name>"),
)


def kind_of(name: str, statements: tuple[Statement, ...], specs, direction: str) -> KindSpec:
    """The kind whose statements the file holds, exactly; else one line saying what it holds and what
    each kind's file holds."""
    verbs = tuple(s.verb for s in statements if s.verb != Verb.SET_TIMEOUT)
    for spec in specs:
        if verbs == getattr(spec, direction):
            return spec
    held = "; ".join(s.verb.value + (f" {s.name}" if s.name else "") for s in statements
                     if s.verb != Verb.SET_TIMEOUT) or "no statement but SETs"
    forms = " | ".join(f"{spec.kind.value}: {getattr(spec, direction + '_form')}" for spec in specs)
    raise MigrationFileProblem(f"{name}: holds {held}; a {direction} file holds exactly the statements of one "
                               f"kind (and SETs of statement_timeout / lock_timeout): {forms}")


def check_consistent(name: str, rollback_name: str, kind: Kind, forward: tuple[Statement, ...],
                      rollback: tuple[Statement, ...]) -> None:
    """One table and one name across both files (and a promotion's index named as its constraint)."""
    made = [s for s in forward if s.verb != Verb.SET_TIMEOUT]
    undone = [s for s in rollback if s.verb != Verb.SET_TIMEOUT]
    target, table = made[0].name, made[0].table
    for s in made[1:]:
        if (s.table, s.name) != (table, target):
            raise MigrationFileProblem(f"{name}: {s.verb.value} {s.name} on {s.table}, but the file adds {target} on "
                                       f"{table}: both statements name the same constraint and table")
    if kind == Kind.PROMOTION and made[0].constraint.index != target:
        raise MigrationFileProblem(
            f"{name}: the constraint {target} uses index {made[0].constraint.index}: name the constraint as its "
            f"index (ADD CONSTRAINT {made[0].constraint.index} ... USING INDEX {made[0].constraint.index}); "
            "PostgreSQL renames the index to the constraint's name, and the index's own migration would find "
            "it gone")
    if kind == Kind.INDEX:
        if undone[0].name != target:
            raise MigrationFileProblem(f"{rollback_name}: must hold DROP INDEX CONCURRENTLY IF EXISTS {target};")
        return
    drop = next(s for s in undone if s.verb == Verb.DROP_CONSTRAINT)
    if (drop.table, drop.name) != (table, target):
        raise MigrationFileProblem(f"{rollback_name}: must hold ALTER TABLE {table} DROP CONSTRAINT IF EXISTS "
                                   f"{target};")
    if kind == Kind.PROMOTION:
        twin, rename = undone[0], undone[2]
        if not twin.index.unique or twin.table != table or twin.name == target:
            raise MigrationFileProblem(f"{rollback_name}: must first build a unique index on {table} under another "
                                       f"name than {target} (its twin), the index the constraint uses")
        if (rename.name, rename.new_name) != (twin.name, target):
            raise MigrationFileProblem(f"{rollback_name}: must end with ALTER INDEX {twin.name} RENAME TO {target};")
