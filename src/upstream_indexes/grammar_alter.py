"""The ALTER TABLE forms of grammar.py: ADD CONSTRAINT (CHECK and FOREIGN KEY, NOT VALID; UNIQUE and
PRIMARY KEY USING INDEX), VALIDATE CONSTRAINT and DROP CONSTRAINT IF EXISTS."""

from .errors import GrammarError
from .grammar_tokens import Parser, one_line
from .statement import ACTIONS, ConstraintDefinition, Statement, Verb


def alter_table(p: Parser) -> Statement:
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
        constraint = ConstraintDefinition(table, "check", expression=one_line(expression))
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


def _foreign_key(p: Parser, table: str, name: str) -> Statement:
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


def _deferrable(p: Parser) -> tuple[bool, bool]:
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


def _not_valid(p: Parser, blocking: str) -> None:
    if p.accept("NOT", "VALID"):
        return p.end()
    if p.at < len(p.tokens):
        where = p.where()
        raise GrammarError(f"unexpected `{p.rest()}` {where}")
    raise GrammarError(f"{blocking}: add it NOT VALID (a brief lock; new writes are checked from then on), then "
                       "VALIDATE CONSTRAINT it in the same file (a scan that blocks no writes)")

