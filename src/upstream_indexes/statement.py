"""A migration file's statement once recognised (grammar.py), as data: its verb, and the index or
constraint definition it carries, each able to spell itself as PostgreSQL's catalog does."""

from dataclasses import dataclass, field
from enum import Enum

from .grammar_tokens import is_call
from .records import Record

DESC, NULLS_FIRST = 1, 2  # a key column's direction bits, as pg_index.indoption stores them
# ON DELETE / ON UPDATE actions as pg_constraint spells them (confdeltype, confupdtype).
ACTIONS = {"NO ACTION": "a", "RESTRICT": "r", "CASCADE": "c", "SET NULL": "n", "SET DEFAULT": "d"}


class Verb(str, Enum):
    SET_TIMEOUT = "SET"
    CREATE_INDEX = "CREATE INDEX CONCURRENTLY"
    DROP_INDEX = "DROP INDEX CONCURRENTLY IF EXISTS"
    ADD_CHECK = "ADD CONSTRAINT ... CHECK ... NOT VALID"
    ADD_FOREIGN_KEY = "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID"
    ADD_USING_INDEX = "ADD CONSTRAINT ... USING INDEX"
    VALIDATE = "VALIDATE CONSTRAINT"
    DROP_CONSTRAINT = "DROP CONSTRAINT IF EXISTS"
    RENAME_INDEX = "ALTER INDEX ... RENAME TO"


class Key(Record):
    """One key of an index: a column or an expression, and how it is ordered and compared."""

    column: str | None = None
    expression: str | None = None  # as written, without its outer parentheses
    collation: str | None = None  # as written (e.g. "C"); None: the key's own
    opclass: str | None = None  # None: the default operator class of its type
    descending: bool = False
    nulls_first: bool = False  # the default: NULLS FIRST with DESC, NULLS LAST without

    @property
    def option(self) -> int:
        """pg_index.indoption's bits for this key."""
        return (DESC if self.descending else 0) | (NULLS_FIRST if self.nulls_first else 0)

    def sql(self) -> str:
        text = self.column or (self.expression if is_call(self.expression) else f"({self.expression})")
        text += f" COLLATE {self.collation}" if self.collation else ""
        text += f" {self.opclass}" if self.opclass else ""
        text += " DESC" if self.descending else ""
        if self.nulls_first != self.descending:
            text += " NULLS FIRST" if self.nulls_first else " NULLS LAST"
        return text


class IndexDefinition(Record):
    """What CREATE INDEX says about an index, apart from its name."""

    table: str
    unique: bool
    method: str
    keys: tuple[Key, ...]
    include: tuple[str, ...] = ()
    nulls_not_distinct: bool = False
    predicate: str | None = None  # the WHERE of a partial index, as written

    def tail(self) -> str:
        """`USING btree (...) [INCLUDE (...)] [NULLS NOT DISTINCT] [WHERE ...]`: all after `ON <table>`."""
        text = f"USING {self.method} ({', '.join(k.sql() for k in self.keys)})"
        text += f" INCLUDE ({', '.join(self.include)})" if self.include else ""
        text += " NULLS NOT DISTINCT" if self.nulls_not_distinct else ""
        return text + (f" WHERE {self.predicate}" if self.predicate else "")

    def sql(self, name: str) -> str:
        """One spelling of the index, pg_get_indexdef's layout without its schema and CONCURRENTLY."""
        return f"CREATE {'UNIQUE ' if self.unique else ''}INDEX {name} ON {self.table} {self.tail()}"

    @property
    def plain(self) -> bool:
        """Columns only: no expression, no WHERE."""
        return self.predicate is None and all(k.column for k in self.keys)


class ConstraintDefinition(Record):
    """What ADD CONSTRAINT says about a constraint, apart from its name."""

    table: str
    type: str  # check | foreign key | unique | primary key
    expression: str | None = None  # CHECK, as written without its outer parentheses
    columns: tuple[str, ...] = ()  # FOREIGN KEY: the referencing columns
    references: str | None = None  # FOREIGN KEY: the referenced table
    referenced_columns: tuple[str, ...] = ()  # () : the referenced table's primary key
    match_full: bool = False
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"
    deferrable: bool = False
    initially_deferred: bool = False
    index: str | None = None  # UNIQUE / PRIMARY KEY USING INDEX: the index

    def sql(self) -> str:
        """One spelling, pg_get_constraintdef's layout (NOT VALID left out)."""
        if self.type == "check":
            body = f"CHECK ({self.expression})"
        elif self.type == "foreign key":
            body = (f"FOREIGN KEY ({', '.join(self.columns)}) REFERENCES {self.references}"
                    + (f"({', '.join(self.referenced_columns)})" if self.referenced_columns else "")
                    + (" MATCH FULL" if self.match_full else "")
                    + (f" ON UPDATE {self.on_update}" if self.on_update != "NO ACTION" else "")
                    + (f" ON DELETE {self.on_delete}" if self.on_delete != "NO ACTION" else ""))
        else:
            body = f"{self.type.upper()} USING INDEX {self.index}"
        if self.deferrable:
            body += " DEFERRABLE" + (" INITIALLY DEFERRED" if self.initially_deferred else "")
        return body


@dataclass(frozen=True)
class Statement:
    """One statement of a migration file, recognised."""

    verb: Verb
    sql: str  # as the runner sends it (yoyo's split: comments before it included)
    table: str | None = None
    name: str | None = None  # the index or constraint it creates, drops, validates or renames
    index: IndexDefinition | None = None
    constraint: ConstraintDefinition | None = None
    new_name: str | None = None  # RENAME TO
    setting: tuple[str, str] | None = None  # SET: (parameter, value as written)
    # Column names it mentions outside expressions (pre-flight checks they exist)
    columns: tuple[str, ...] = field(default=(), repr=False)
    text: str = ""  # the statement alone, in one line: no comments, no `;` (for messages)
