"""The statements a migration file may hold, each parsed from sqlparse's tokens (the lexer yoyo's
splitter uses), never matched by a loose regex: a statement is recognised only when it is exactly
one of these forms, start to end, and anything else is refused with one line saying why, and for
the blocking forms what the safe form is.

  SET statement_timeout | lock_timeout (= | TO) <value>
  CREATE [UNIQUE] INDEX CONCURRENTLY <name> ON <table> [USING <method>] (<key>, ...)
         [INCLUDE (<column>, ...)] [NULLS [NOT] DISTINCT] [WHERE <predicate>]
      <key>: <column> | (<expression>) | <function>(...), then [COLLATE <collation>] [<opclass>]
             [ASC | DESC] [NULLS FIRST | LAST]
  DROP INDEX CONCURRENTLY IF EXISTS <name>
  ALTER TABLE <table> ADD CONSTRAINT <name> CHECK (<expression>) NOT VALID
  ALTER TABLE <table> ADD CONSTRAINT <name> FOREIGN KEY (<column>, ...) REFERENCES <table>
        [(<column>, ...)] [MATCH FULL | SIMPLE] [ON DELETE <action>] [ON UPDATE <action>]
        [[NOT] DEFERRABLE] [INITIALLY DEFERRED | IMMEDIATE] NOT VALID
  ALTER TABLE <table> ADD CONSTRAINT <name> UNIQUE | PRIMARY KEY USING INDEX <index>
        [[NOT] DEFERRABLE] [INITIALLY DEFERRED | IMMEDIATE]
  ALTER TABLE <table> VALIDATE CONSTRAINT <name>
  ALTER TABLE <table> DROP CONSTRAINT IF EXISTS <name>
  ALTER INDEX [IF EXISTS] <name> RENAME TO <name>

Names are PostgreSQL's unquoted identifiers (folded to lower case), never schema-qualified: the
runner resolves them on the search path, as the app does. Which sequences of these make a
migration (its kind) is migrations.py's business.
"""

import re
from dataclasses import dataclass, field, replace
from enum import Enum

from .errors import MigrationFileProblem

DESC, NULLS_FIRST = 1, 2  # a key column's direction bits, as pg_index.indoption stores them
TIMEOUTS = ("statement_timeout", "lock_timeout")
# ON DELETE / ON UPDATE actions as pg_constraint spells them (confdeltype, confupdtype).
ACTIONS = {"NO ACTION": "a", "RESTRICT": "r", "CASCADE": "c", "SET NULL": "n", "SET DEFAULT": "d"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


class GrammarError(MigrationFileProblem):
    """A statement that is not one of the forms above (the caller adds the file's name)."""


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


@dataclass(frozen=True)
class Key:
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
        text = self.column or (self.expression if _is_call(self.expression) else f"({self.expression})")
        text += f" COLLATE {self.collation}" if self.collation else ""
        text += f" {self.opclass}" if self.opclass else ""
        text += " DESC" if self.descending else ""
        if self.nulls_first != self.descending:
            text += " NULLS FIRST" if self.nulls_first else " NULLS LAST"
        return text


@dataclass(frozen=True)
class IndexDefinition:
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


@dataclass(frozen=True)
class ConstraintDefinition:
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


# --- tokens ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str  # word | quoted | punct | literal | other
    text: str
    start: int
    end: int

    def upper(self) -> str:
        return self.text.upper()


def tokens(sql: str) -> list[_Token]:
    """sqlparse's tokens without whitespace and comments; a keyword of several words ("IF NOT EXISTS",
    "DESC NULLS LAST") as one token per word, each with its place in `sql`."""
    out, position = [], 0
    from sqlparse import lexer, tokens as T  # loaded when a file is read, not for `invoke --list`

    for ttype, value in lexer.tokenize(sql):
        start, position = position, position + len(value)
        if ttype in T.Whitespace or ttype in T.Newline or ttype in T.Comment:
            continue
        if ttype in T.Keyword or ttype in T.Name:
            offset = 0
            for word in value.split():
                at = value.index(word, offset)
                out.append(_Token("word", word, start + at, start + at + len(word)))
                offset = at + len(word)
        elif ttype in T.Literal.String.Symbol:
            out.append(_Token("quoted", value, start, position))
        elif ttype in T.Punctuation and value in "(),;":
            out.append(_Token("punct", value, start, position))
        elif ttype in T.Literal:
            out.append(_Token("literal", value, start, position))
        else:
            out.append(_Token("other", value, start, position))
    return out


def words(expression: str) -> list[str]:
    """The words an expression holds, lower-cased: its column names among them (with keywords and
    function names, which a caller filters out by the table's columns)."""
    return [t.text.lower() for t in tokens(expression) if t.kind == "word"]


def _is_call(expression: str | None) -> bool:
    """`lower(name)`: a function call PostgreSQL accepts as an index key without parentheses."""
    found = tokens(expression or "")
    return (len(found) >= 3 and found[0].kind == "word" and found[1].text == "("
            and _closing(found, 1) == len(found) - 1)


def _closing(tokens: list[_Token], opening: int) -> int:
    """The index of the `)` matching the `(` at `opening`."""
    depth = 0
    for i in range(opening, len(tokens)):
        if tokens[i].kind == "punct" and tokens[i].text == "(":
            depth += 1
        elif tokens[i].kind == "punct" and tokens[i].text == ")":
            depth -= 1
            if depth == 0:
                return i
    raise GrammarError("unbalanced parentheses")


class _Parser:
    """A cursor over one statement's tokens."""

    def __init__(self, sql: str):
        self.sql = sql
        self.tokens = tokens(sql)
        while self.tokens and self.tokens[-1].text == ";":
            self.tokens.pop()
        self.at = 0
        if any(t.kind == "punct" and t.text == ";" for t in self.tokens):
            raise GrammarError(f"`{self.shown()}`: one statement, not several")

    def words_ahead(self, *words: str) -> bool:
        ahead = self.tokens[self.at:self.at + len(words)]
        return len(ahead) == len(words) and all(t.kind == "word" and t.upper() == w for t, w in zip(ahead, words))

    def accept(self, *words: str) -> bool:
        if self.words_ahead(*words):
            self.at += len(words)
            return True
        return False

    def expect(self, *words: str, why: str = "") -> None:
        if not self.accept(*words):
            raise GrammarError(f"expected {' '.join(words)} {self.where()}" + (f" ({why})" if why else ""))

    def where(self) -> str:
        return f"after `{self.sql[:self.tokens[self.at - 1].end].split(None)[-1]}`" if self.at else "at the start"

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def identifier(self, what: str) -> str:
        token = self.peek()
        if token is not None and token.kind == "quoted":
            raise GrammarError(f"{what} {token.text}: write names as plain lower-case identifiers, not quoted")
        if token is None or token.kind != "word" or not _IDENTIFIER.match(token.text):
            raise GrammarError(f"expected {what} {self.where()}")
        if self.at + 1 < len(self.tokens) and self.tokens[self.at + 1].text == ".":
            raise GrammarError(f"{what} {token.text}.{self.tokens[self.at + 2].text if self.at + 2 < len(self.tokens) else ''}: "
                               "no schema: the runner finds tables and indexes on the search path")
        self.at += 1
        return token.text.lower()

    def group(self, what: str) -> tuple[str, list[_Token]]:
        """A parenthesised group: the text inside it and its tokens."""
        token = self.peek()
        if token is None or token.text != "(":
            raise GrammarError(f"expected ( and {what} {self.where()}")
        end = _closing(self.tokens, self.at)
        inner = self.tokens[self.at + 1:end]
        self.at = end + 1
        text = self.sql[token.end:self.tokens[end].start].strip()
        if not text:
            raise GrammarError(f"empty () where {what} belongs")
        return text, inner

    def identifiers(self, what: str) -> tuple[str, ...]:
        """(a, b, c)."""
        _, inner = self.group(what)
        names = []
        for part in _split_commas(inner):
            if len(part) != 1 or part[0].kind != "word" or not _IDENTIFIER.match(part[0].text):
                raise GrammarError(f"{what}: expected plain column names, found `{self._text(part)}`")
            names.append(part[0].text.lower())
        return tuple(names)

    def shown(self) -> str:
        """The statement in one line, for a message: without its comments and `;`, cut at 80 characters."""
        text = _one_line(self.sql[self.tokens[0].start:self.tokens[-1].end])
        return text if len(text) <= 80 else text[:77] + "..."

    def rest(self) -> str:
        """The text from here to the end of the statement (its `;` excluded)."""
        if self.at >= len(self.tokens):
            return ""
        text = self.sql[self.tokens[self.at].start:self.tokens[-1].end]
        self.at = len(self.tokens)
        return text

    def end(self) -> None:
        if self.at < len(self.tokens):
            where = self.where()
            raise GrammarError(f"unexpected `{self.rest()}` {where}: a statement holds one action")

    def _text(self, tokens: list[_Token]) -> str:
        return self.sql[tokens[0].start:tokens[-1].end] if tokens else ""


def _split_commas(tokens: list[_Token]) -> list[list[_Token]]:
    parts, depth, current = [], 0, []
    for token in tokens:
        if token.kind == "punct" and token.text == "(":
            depth += 1
        elif token.kind == "punct" and token.text == ")":
            depth -= 1
        if token.kind == "punct" and token.text == "," and depth == 0:
            parts.append(current)
            current = []
        else:
            current.append(token)
    parts.append(current)
    if any(not part for part in parts):
        raise GrammarError("an empty item in a list")
    return parts


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# --- statements -----------------------------------------------------------------------------------

def parse(sql: str) -> Statement | None:
    """The statement `sql` (one piece of yoyo's split) recognised; None when it holds only comments."""
    p = _Parser(sql)
    if not p.tokens:
        return None
    first = p.peek().upper()
    recognise = {"SET": _set, "CREATE": _create_index}.get(first)
    for words, parser in ((("DROP", "INDEX"), _drop_index), (("ALTER", "TABLE"), _alter_table),
                          (("ALTER", "INDEX"), _rename_index)):
        if p.words_ahead(*words):
            recognise = parser
    if recognise is not None:
        return replace(recognise(p), text=_one_line(sql[p.tokens[0].start:p.tokens[-1].end]))
    raise GrammarError(f"`{p.shown()}`: not a statement any migration kind holds (an index, a "
                       "constraint and its validation, a promotion, their rollbacks, and SET of their timeouts)")


def _set(p: _Parser) -> Statement:
    p.expect("SET")
    if p.accept("LOCAL"):
        raise GrammarError("SET LOCAL does nothing outside a transaction: write SET")
    p.accept("SESSION")
    parameter = p.identifier("a setting")
    if parameter not in TIMEOUTS:
        raise GrammarError(f"SET {parameter}: a migration file sets only statement_timeout and lock_timeout")
    token = p.peek()
    if token is None or not (token.upper() == "TO" or token.text == "="):
        raise GrammarError(f"expected = or TO after SET {parameter}")
    p.at += 1
    value = p.rest()
    if not re.fullmatch(r"'[^']*'|\d+|DEFAULT", value, re.IGNORECASE):
        raise GrammarError(f"SET {parameter} = {value}: expected a number or a quoted value such as '2s'")
    return Statement(Verb.SET_TIMEOUT, p.sql, setting=(parameter, value))


def _create_index(p: _Parser) -> Statement:
    p.expect("CREATE")
    unique = p.accept("UNIQUE")
    kind = "UNIQUE INDEX" if unique else "INDEX"
    if not p.words_ahead("INDEX"):
        raise GrammarError(f"`{p.shown()}`: not a statement any migration kind holds")
    p.expect("INDEX")
    if not p.accept("CONCURRENTLY"):
        raise GrammarError(f"CREATE {kind} without CONCURRENTLY blocks the table's writes for the whole build: "
                           f"write CREATE {kind} CONCURRENTLY")
    if p.words_ahead("IF", "NOT", "EXISTS"):
        raise GrammarError(f"CREATE {kind} ... IF NOT EXISTS would silently skip the INVALID index a failed build "
                           "leaves (and yoyo would record it as applied); remove it")
    name = p.identifier("the index's name")
    p.expect("ON")
    if p.words_ahead("ONLY"):
        raise GrammarError("CREATE INDEX CONCURRENTLY ... ON ONLY: PostgreSQL cannot build that concurrently; name "
                           "the table (on a partitioned table the runner builds each partition's index)")
    table = p.identifier("the table")
    method = p.identifier("the index method") if p.accept("USING") else "btree"
    _, inner = p.group("the index's keys")
    keys = tuple(_key(p, part) for part in _split_commas(inner))
    include = p.identifiers("INCLUDE's columns") if p.accept("INCLUDE") else ()
    nulls_not_distinct = False
    if p.accept("NULLS"):
        nulls_not_distinct = p.accept("NOT")
        p.expect("DISTINCT")
    for clause in ("WITH", "TABLESPACE"):
        if p.words_ahead(clause):
            raise GrammarError(f"CREATE INDEX ... {clause}: not supported (the runner compares the index's keys, "
                               "INCLUDE and WHERE with the catalog's, not its storage)")
    predicate = None
    if p.accept("WHERE"):
        predicate = _one_line(p.rest())
        if not predicate:
            raise GrammarError("WHERE without a predicate")
    p.end()
    definition = IndexDefinition(table, unique, method.lower(), keys, include, nulls_not_distinct, predicate)
    return Statement(Verb.CREATE_INDEX, p.sql, table, name, index=definition,
                     columns=tuple(k.column for k in keys if k.column) + include)


def _key(p: _Parser, tokens: list[_Token]) -> Key:
    """One index key: its column or expression, then COLLATE, operator class, ASC/DESC, NULLS."""
    text = lambda ts: p.sql[ts[0].start:ts[-1].end]
    i, column, expression = 0, None, None
    if tokens[0].text == "(":
        close = _closing(tokens, 0)
        expression = _one_line(p.sql[tokens[0].end:tokens[close].start])
        i = close + 1
    elif len(tokens) > 1 and tokens[1].text == "(" and tokens[0].kind == "word":
        close = _closing(tokens, 1)
        expression = _one_line(text(tokens[:close + 1]))
        i = close + 1
    elif tokens[0].kind == "word" and _IDENTIFIER.match(tokens[0].text):
        column, i = tokens[0].text.lower(), 1
    else:
        raise GrammarError(f"index key `{text(tokens)}`: expected a column, (an expression) or a function call")
    rest = tokens[i:]
    words = [t.upper() for t in rest]
    collation = opclass = None
    if words[:1] == ["COLLATE"]:
        if len(rest) < 2:
            raise GrammarError(f"index key `{text(tokens)}`: COLLATE without a collation")
        end = 4 if len(rest) > 3 and rest[2].text == "." else 2
        collation = text(rest[1:end])
        rest, words = rest[end:], words[end:]
    if rest and words[0] not in ("ASC", "DESC", "NULLS"):
        opclass = rest[0].text.lower()
        if rest[0].kind != "word" or (len(rest) > 1 and rest[1].text in ("(", ".")):
            raise GrammarError(f"index key `{text(tokens)}`: expected an operator class name (without parameters "
                               "or schema), ASC/DESC or NULLS FIRST/LAST")
        rest, words = rest[1:], words[1:]
    descending = words[:1] == ["DESC"]
    if words[:1] in (["ASC"], ["DESC"]):
        words = words[1:]
    nulls_first = descending
    if words[:2] in (["NULLS", "FIRST"], ["NULLS", "LAST"]):
        nulls_first = words[1] == "FIRST"
        words = words[2:]
    if words:
        raise GrammarError(f"index key `{text(tokens)}`: unexpected `{' '.join(words)}`")
    return Key(column, expression, collation, opclass, descending, nulls_first)


def _drop_index(p: _Parser) -> Statement:
    p.expect("DROP", "INDEX")
    if not p.accept("CONCURRENTLY"):
        raise GrammarError("DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table: write "
                           "DROP INDEX CONCURRENTLY IF EXISTS <name>")
    p.expect("IF", "EXISTS", why="a rollback must be able to run again")
    name = p.identifier("the index's name")
    p.end()
    return Statement(Verb.DROP_INDEX, p.sql, name=name)


def _alter_table(p: _Parser) -> Statement:
    p.expect("ALTER", "TABLE")
    if p.words_ahead("IF", "EXISTS") or p.words_ahead("ONLY"):
        raise GrammarError("ALTER TABLE IF EXISTS / ONLY: name the table alone (a missing table is a pre-flight "
                           "error; ONLY would leave partitions out)")
    table = p.identifier("the table")
    if p.accept("VALIDATE", "CONSTRAINT"):
        name = p.identifier("the constraint's name")
        p.end()
        return Statement(Verb.VALIDATE, p.sql, table, name)
    if p.accept("DROP", "CONSTRAINT"):
        p.expect("IF", "EXISTS", why="a rollback must be able to run again")
        name = p.identifier("the constraint's name")
        if p.words_ahead("CASCADE"):
            raise GrammarError(f"DROP CONSTRAINT {name} CASCADE would drop the constraints that depend on it too "
                               "(a foreign key on its index): drop those in their own migrations first")
        p.accept("RESTRICT")
        p.end()
        return Statement(Verb.DROP_CONSTRAINT, p.sql, table, name)
    if not p.accept("ADD"):
        raise GrammarError(f"`{p.shown()}`: not a statement any migration kind holds (ALTER TABLE "
                           "... ADD CONSTRAINT, VALIDATE CONSTRAINT or DROP CONSTRAINT IF EXISTS)")
    if not p.accept("CONSTRAINT"):
        raise GrammarError("ALTER TABLE ... ADD: name the constraint (ADD CONSTRAINT <name> ...), so that the runner "
                           "finds it in the catalog and the rollback drops it")
    name = p.identifier("the constraint's name")
    if p.accept("CHECK"):
        expression, _ = p.group("the CHECK expression")
        if p.words_ahead("NO", "INHERIT"):
            raise GrammarError("CHECK ... NO INHERIT: not supported")
        _not_valid(p, f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK (...) takes an ACCESS EXCLUSIVE lock for a "
                      "full scan of the table")
        constraint = ConstraintDefinition(table, "check", expression=_one_line(expression))
        return Statement(Verb.ADD_CHECK, p.sql, table, name, constraint=constraint)
    if p.accept("FOREIGN", "KEY"):
        return _foreign_key(p, table, name)
    for kind in (("UNIQUE",), ("PRIMARY", "KEY")):
        if p.accept(*kind):
            words = " ".join(kind)
            if not p.accept("USING", "INDEX"):
                raise GrammarError(f"ADD CONSTRAINT {name} {words} (...) builds its index under an ACCESS EXCLUSIVE "
                                   f"lock: build it first (CREATE UNIQUE INDEX CONCURRENTLY {name} ON {table} ...), "
                                   f"then ALTER TABLE {table} ADD CONSTRAINT {name} {words} USING INDEX {name}")
            index = p.identifier("the index's name")
            deferrable, deferred = _deferrable(p)
            p.end()
            constraint = ConstraintDefinition(table, words.lower(), index=index, deferrable=deferrable,
                                              initially_deferred=deferred)
            return Statement(Verb.ADD_USING_INDEX, p.sql, table, name, constraint=constraint)
    raise GrammarError(f"ADD CONSTRAINT {name}: expected CHECK, FOREIGN KEY, or UNIQUE / PRIMARY KEY USING INDEX")


def _foreign_key(p: _Parser, table: str, name: str) -> Statement:
    columns = p.identifiers("the foreign key's columns")
    p.expect("REFERENCES")
    references = p.identifier("the referenced table")
    referenced = p.identifiers("the referenced columns") if (p.peek() and p.peek().text == "(") else ()
    match_full, actions = False, {"DELETE": "NO ACTION", "UPDATE": "NO ACTION"}
    while True:
        if p.accept("MATCH"):
            token = p.peek()
            if token is None or token.upper() not in ("FULL", "SIMPLE"):
                raise GrammarError("MATCH: expected FULL or SIMPLE")
            match_full, p.at = token.upper() == "FULL", p.at + 1
        elif p.accept("ON"):
            token = p.peek()
            if token is None or token.upper() not in actions:
                raise GrammarError("ON: expected DELETE or UPDATE")
            p.at += 1
            for action in ACTIONS:
                if p.accept(*action.split()):
                    actions[token.upper()] = action
                    break
            else:
                raise GrammarError(f"ON {token.upper()}: expected {', '.join(ACTIONS)}")
            if p.peek() and p.peek().text == "(":
                raise GrammarError(f"ON {token.upper()} {actions[token.upper()]} (columns): not supported")
        else:
            break
    deferrable, deferred = _deferrable(p)
    _not_valid(p, f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ... takes a SHARE ROW EXCLUSIVE lock on "
                  f"{table} and {references}, stopping their writes, for a full scan")
    constraint = ConstraintDefinition(table, "foreign key", columns=columns, references=references,
                                      referenced_columns=referenced, match_full=match_full,
                                      on_delete=actions["DELETE"], on_update=actions["UPDATE"],
                                      deferrable=deferrable, initially_deferred=deferred)
    return Statement(Verb.ADD_FOREIGN_KEY, p.sql, table, name, constraint=constraint, columns=columns)


def _deferrable(p: _Parser) -> tuple[bool, bool]:
    deferrable = deferred = False
    while True:
        if p.accept("DEFERRABLE"):
            deferrable = True
        elif p.accept("NOT", "DEFERRABLE"):
            deferrable = False
        elif p.accept("INITIALLY", "DEFERRED"):
            deferred = True
        elif p.accept("INITIALLY", "IMMEDIATE"):
            deferred = False
        else:
            return deferrable, deferred


def _not_valid(p: _Parser, blocking: str) -> None:
    if p.accept("NOT", "VALID"):
        return p.end()
    if p.at < len(p.tokens):
        where = p.where()
        raise GrammarError(f"unexpected `{p.rest()}` {where}")
    raise GrammarError(f"{blocking}: add it NOT VALID (a brief lock; new writes are checked from then on), then "
                       "VALIDATE CONSTRAINT it in the same file (a scan that blocks no writes)")


def _rename_index(p: _Parser) -> Statement:
    p.expect("ALTER", "INDEX")
    p.accept("IF", "EXISTS")
    name = p.identifier("the index's name")
    if not p.accept("RENAME", "TO"):
        raise GrammarError(f"ALTER INDEX {name}: only RENAME TO (a promotion's rollback) is a migration statement")
    new_name = p.identifier("the index's new name")
    p.end()
    return Statement(Verb.RENAME_INDEX, p.sql, name=name, new_name=new_name)
