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
migration (its kind) is migration_kinds.py's business. Here: the SET and index forms;
grammar_alter.py the ALTER TABLE ones, grammar_tokens.py the tokens and the cursor both use,
statement.py what a recognised statement is.
"""

import re
from dataclasses import replace

from .errors import GrammarError
from .grammar_alter import alter_table
from .grammar_tokens import IDENTIFIER, Parser, Token, closing, one_line, split_commas
from .statement import IndexDefinition, Key, Statement, Verb

TIMEOUTS = ("statement_timeout", "lock_timeout")


def parse(sql: str) -> Statement | None:
    """The statement `sql` (one piece of yoyo's split) recognised; None when it holds only comments."""
    p = Parser(sql)
    if not p.tokens:
        return None
    first = p.peek().upper()
    recognise = {"SET": _set, "CREATE": _create_index}.get(first)
    for words, parser in ((("DROP", "INDEX"), _drop_index), (("ALTER", "TABLE"), alter_table),
                          (("ALTER", "INDEX"), _rename_index)):
        if p.words_ahead(*words):
            recognise = parser
    if recognise is not None:
        return replace(recognise(p), text=one_line(sql[p.tokens[0].start:p.tokens[-1].end]))
    raise GrammarError(f"`{p.shown()}`: not a statement any migration kind holds (an index, a "
                       "constraint and its validation, a promotion, their rollbacks, and SET of their timeouts)")


def _set(p: Parser) -> Statement:
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


def _create_index(p: Parser) -> Statement:
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
    keys = tuple(_key(p, part) for part in split_commas(inner))
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
        predicate = one_line(p.rest())
        if not predicate:
            raise GrammarError("WHERE without a predicate")
    p.end()
    definition = IndexDefinition(table, unique, method.lower(), keys, include, nulls_not_distinct, predicate)
    return Statement(Verb.CREATE_INDEX, p.sql, table, name, index=definition,
                     columns=tuple(k.column for k in keys if k.column) + include)


def _key(p: Parser, tokens: list[Token]) -> Key:
    """One index key: its column or expression, then COLLATE, operator class, ASC/DESC, NULLS."""
    text = lambda ts: p.sql[ts[0].start:ts[-1].end]
    i, column, expression = 0, None, None
    if tokens[0].text == "(":
        close = closing(tokens, 0)
        expression = one_line(p.sql[tokens[0].end:tokens[close].start])
        i = close + 1
    elif len(tokens) > 1 and tokens[1].text == "(" and tokens[0].kind == "word":
        close = closing(tokens, 1)
        expression = one_line(text(tokens[:close + 1]))
        i = close + 1
    elif tokens[0].kind == "word" and IDENTIFIER.match(tokens[0].text):
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


def _drop_index(p: Parser) -> Statement:
    p.expect("DROP", "INDEX")
    if not p.accept("CONCURRENTLY"):
        raise GrammarError("DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table: write "
                           "DROP INDEX CONCURRENTLY IF EXISTS <name>")
    p.expect("IF", "EXISTS", why="a rollback must be able to run again")
    name = p.identifier("the index's name")
    p.end()
    return Statement(Verb.DROP_INDEX, p.sql, name=name)


def _rename_index(p: Parser) -> Statement:
    p.expect("ALTER", "INDEX")
    p.accept("IF", "EXISTS")
    name = p.identifier("the index's name")
    if not p.accept("RENAME", "TO"):
        raise GrammarError(f"ALTER INDEX {name}: only RENAME TO (a promotion's rollback) is a migration statement")
    new_name = p.identifier("the index's new name")
    p.end()
    return Statement(Verb.RENAME_INDEX, p.sql, name=name, new_name=new_name)
