"""The migration kinds as files (issue 18, point 1): each kind recognised from the SQL a DBA writes,
every other statement refused in one line (the blocking forms with their safe form), and a refused
file stopping migrate, rollback, sql and --dry-run alike before any connection. No database."""

import shutil

import pytest

from kinds import write
from support import invoke
from upstream_indexes import migrations
from upstream_indexes.errors import EXIT_CANNOT_RUN, GrammarError, MigrationFileProblem
from upstream_indexes.grammar import parse
from upstream_indexes.migration_kinds import Kind
from upstream_indexes.paths import MIGRATIONS_DIR, ROOT
from upstream_indexes.statement import DESC, NULLS_FIRST, Key

EXAMPLES = ROOT / "examples" / "next-migrations"


# --- the kinds -------------------------------------------------------------------------------------

def test_the_examples_are_each_kind():
    loaded = {m.id: m for m in migrations.load(EXAMPLES)}
    assert {i: m.kind for i, m in loaded.items()} == {
        "0004.upload_status_valid": Kind.CHECK, "0005.drift_event_unique": Kind.INDEX,
        "0006.drift_event_unique": Kind.PROMOTION, "0007.upload_processing_cov": Kind.INDEX}
    check = loaded["0004.upload_status_valid"]
    assert (check.table, check.constraint.type) == ("upstream_upload", "check")
    assert check.constraint.expression == "status IN ('processing', 'success', 'failed', 'partial')"
    unique = loaded["0005.drift_event_unique"].index_definition
    assert unique.unique and [k.column for k in unique.keys] == ["customer_id", "report_run_id", "payer",
                                                                   "cpt_group", "drift_type"]
    promotion = loaded["0006.drift_event_unique"]
    assert (promotion.constraint.type, promotion.constraint.index) == ("unique", "drift_event_unique")
    assert promotion.index_definition == unique  # the index its rollback restores
    partial = loaded["0007.upload_processing_cov"]
    assert partial.index_definition.predicate == "status = 'processing'"
    assert partial.definition == ("CREATE INDEX upload_processing_cov ON upstream_upload USING btree "
                                  "(customer_id, uploaded_at DESC) INCLUDE (id) WHERE status = 'processing'")
    assert not partial.plain_columns and loaded["0005.drift_event_unique"].plain_columns


def test_any_key_list():
    index = parse('CREATE UNIQUE INDEX CONCURRENTLY x ON t USING btree (a, lower(b) COLLATE "C" text_pattern_ops '
                  "DESC NULLS LAST, (c + d), e DESC, f NULLS FIRST) INCLUDE (id, g) NULLS NOT DISTINCT "
                  "WHERE status = 'failed' AND g IS NOT NULL;").index
    assert index.keys == (Key("a"), Key(expression="lower(b)", collation='"C"', opclass="text_pattern_ops",
                                        descending=True),
                          Key(expression="c + d"), Key("e", descending=True, nulls_first=True),
                          Key("f", nulls_first=True))
    assert [k.option for k in index.keys] == [0, DESC, 0, DESC | NULLS_FIRST, NULLS_FIRST]
    assert index.include == ("id", "g") and index.nulls_not_distinct and index.unique
    assert index.predicate == "status = 'failed' AND g IS NOT NULL"
    assert index.sql("x") == ('CREATE UNIQUE INDEX x ON t USING btree (a, lower(b) COLLATE "C" text_pattern_ops DESC '
                              "NULLS LAST, (c + d), e DESC, f NULLS FIRST) INCLUDE (id, g) NULLS NOT DISTINCT "
                              "WHERE status = 'failed' AND g IS NOT NULL")


def test_a_foreign_key_and_its_options():
    statement = parse("ALTER TABLE upstream_driftevent ADD CONSTRAINT drift_run_fk FOREIGN KEY (report_run_id) "
                      "REFERENCES upstream_reportrun (id) MATCH FULL ON DELETE CASCADE ON UPDATE SET NULL "
                      "DEFERRABLE INITIALLY DEFERRED NOT VALID")
    fk = statement.constraint
    assert (fk.columns, fk.references, fk.referenced_columns) == (("report_run_id",), "upstream_reportrun", ("id",))
    assert (fk.match_full, fk.on_delete, fk.on_update, fk.deferrable, fk.initially_deferred) == (
        True, "CASCADE", "SET NULL", True, True)
    assert fk.sql() == ("FOREIGN KEY (report_run_id) REFERENCES upstream_reportrun(id) MATCH FULL ON UPDATE SET NULL "
                        "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED")


# --- what a statement may not be --------------------------------------------------------------------

REFUSED_STATEMENTS = {
    "CREATE INDEX x ON t (a)": "CREATE INDEX without CONCURRENTLY blocks the table's writes for the whole build: "
                               "write CREATE INDEX CONCURRENTLY",
    "CREATE UNIQUE INDEX x ON t (a)": "write CREATE UNIQUE INDEX CONCURRENTLY",
    "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)": "ALTER TABLE t ADD CONSTRAINT c CHECK (...) takes an ACCESS "
                                                    "EXCLUSIVE lock for a full scan of the table: add it NOT VALID",
    "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES r (id)": "takes a SHARE ROW EXCLUSIVE lock on t and "
                                                                         "r, stopping their writes, for a full scan: "
                                                                         "add it NOT VALID",
    "ALTER TABLE t ADD CONSTRAINT u UNIQUE (a, b)": "builds its index under an ACCESS EXCLUSIVE lock: build it first "
                                                    "(CREATE UNIQUE INDEX CONCURRENTLY u ON t ...), then ALTER TABLE t "
                                                    "ADD CONSTRAINT u UNIQUE USING INDEX u",
    "ALTER TABLE t ADD CONSTRAINT p PRIMARY KEY (id)": "then ALTER TABLE t ADD CONSTRAINT p PRIMARY KEY USING INDEX p",
    "ALTER TABLE t ADD CHECK (a > 0) NOT VALID": "name the constraint (ADD CONSTRAINT <name> ...)",
    "DROP INDEX x": "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock",
    "DROP INDEX CONCURRENTLY x": "expected IF EXISTS",
    "DROP TABLE upstream_customer CASCADE": "`DROP TABLE upstream_customer CASCADE`: not a statement any migration "
                                            "kind holds",
    "UPDATE upstream_upload SET status = 'failed'": "not a statement any migration kind holds",
    "BEGIN": "not a statement any migration kind holds",
    "ALTER TABLE t DROP COLUMN a": "not a statement any migration kind holds",
    "ALTER TABLE t DROP CONSTRAINT IF EXISTS c CASCADE": "would drop the constraints that depend on it too",
    "ALTER TABLE t VALIDATE CONSTRAINT c, DROP COLUMN a": "a statement holds one action",
    "ALTER TABLE ONLY t VALIDATE CONSTRAINT c": "ALTER TABLE IF EXISTS / ONLY: name the table alone",
    "SET work_mem = '1GB'": "SET work_mem: a migration file sets only statement_timeout and lock_timeout",
    "SET LOCAL lock_timeout = '1s'": "SET LOCAL does nothing outside a transaction",
    "CREATE INDEX CONCURRENTLY x ON public.t (a)": "no schema",
    'CREATE INDEX CONCURRENTLY "X" ON t (a)': "write names as plain lower-case identifiers",
    "CREATE INDEX CONCURRENTLY x ON ONLY t (a)": "PostgreSQL cannot build that concurrently",
    "CREATE INDEX CONCURRENTLY x ON t (a) WITH (fillfactor = 70)": "WITH: not supported",
    "CREATE INDEX CONCURRENTLY x ON t (a) WHERE": "WHERE without a predicate",
    "CREATE INDEX CONCURRENTLY x ON t (a foo bar)": "unexpected `BAR`",
    "CREATE INDEX CONCURRENTLY x ON t (a) garbage": "unexpected `garbage`",
    "ALTER INDEX x SET TABLESPACE y": "only RENAME TO",
}


@pytest.mark.parametrize("statement", list(REFUSED_STATEMENTS))
def test_a_statement_outside_the_grammar_is_refused(statement):
    with pytest.raises(GrammarError) as refused:
        parse(statement + ";")
    assert REFUSED_STATEMENTS[statement] in str(refused.value)


def test_comments_alone_are_no_statement():
    assert parse("-- a comment\n/* another */") is None


# --- what a file may not hold ----------------------------------------------------------------------

INDEX = "CREATE INDEX CONCURRENTLY x_idx ON upstream_upload (customer_id);\n"
DROP = "DROP INDEX CONCURRENTLY IF EXISTS x_idx;\n"
CHECK = ("ALTER TABLE upstream_upload ADD CONSTRAINT x_check CHECK (row_count >= 0) NOT VALID;\n"
         "ALTER TABLE upstream_upload VALIDATE CONSTRAINT x_check;\n")
DROP_CHECK = "ALTER TABLE upstream_upload DROP CONSTRAINT IF EXISTS x_check;\n"

REFUSED_FILES = {
    "a DROP TABLE after its index": ("0004.x_idx", INDEX + "DROP TABLE upstream_customer CASCADE;\n", DROP,
                                     "0004.x_idx.sql: statement 4: `DROP TABLE upstream_customer CASCADE`: not a "
                                     "statement any migration kind holds"),
    "an UPDATE": ("0004.x_idx", INDEX + "UPDATE upstream_upload SET status = 'failed';", DROP,
                  "not a statement any migration kind holds"),
    "a second index": ("0004.x_idx", INDEX + INDEX.replace("x_idx", "y_idx"), DROP,
                       "0004.x_idx.sql: holds CREATE INDEX CONCURRENTLY x_idx; CREATE INDEX CONCURRENTLY y_idx; a "
                       "forward file holds exactly the statements of one kind"),
    "a CHECK without its VALIDATE": ("0004.x_check", CHECK.splitlines()[0], DROP_CHECK,
                                     "0004.x_check.sql: holds ADD CONSTRAINT ... CHECK ... NOT VALID x_check; a "
                                     "forward file holds exactly"),
    "a VALIDATE of another constraint": ("0004.x_check", CHECK.replace("CONSTRAINT x_check;", "CONSTRAINT y;"),
                                         DROP_CHECK, "VALIDATE CONSTRAINT y on upstream_upload, but the file adds "
                                                     "x_check on upstream_upload"),
    "a CHECK and an index": ("0004.x_check", CHECK + INDEX, DROP_CHECK, "holds exactly the statements of one kind"),
    "an index's rollback dropping a constraint": ("0004.x_idx", INDEX, DROP_CHECK,
                                                  "0004.x_idx.rollback.sql: holds DROP CONSTRAINT IF EXISTS x_check; "
                                                  "a rollback file holds exactly the statements of one kind"),
    "a CHECK's rollback of another name": ("0004.x_check", CHECK, DROP_CHECK.replace("x_check", "y_check"),
                                           "0004.x_check.rollback.sql: must hold ALTER TABLE upstream_upload DROP "
                                           "CONSTRAINT IF EXISTS x_check;"),
    "a file named for another": ("0004.y_check", CHECK, DROP_CHECK,
                                 "0004.y_check.sql: adds x_check, but the file name says y_check"),
    "a promotion under another name": ("0004.x_key",
                                       "ALTER TABLE upstream_upload ADD CONSTRAINT x_key UNIQUE USING INDEX x_idx;",
                                       "CREATE UNIQUE INDEX CONCURRENTLY x_twin ON upstream_upload (id);\n"
                                       "ALTER TABLE upstream_upload DROP CONSTRAINT IF EXISTS x_key;\n"
                                       "ALTER INDEX x_twin RENAME TO x_key;",
                                       "name the constraint as its index (ADD CONSTRAINT x_idx ... USING INDEX x_idx); "
                                       "PostgreSQL renames the index"),
    "a promotion's rollback without its twin": ("0004.x_key",
                                                "ALTER TABLE upstream_upload ADD CONSTRAINT x_key UNIQUE USING INDEX "
                                                "x_key;", "ALTER TABLE upstream_upload DROP CONSTRAINT IF EXISTS x_key;",
                                                "0004.x_key.rollback.sql: holds DROP CONSTRAINT IF EXISTS x_key; a "
                                                "rollback file holds exactly the statements of one kind"),
}


@pytest.mark.parametrize("variant", list(REFUSED_FILES))
def test_a_file_holding_anything_else_is_refused_in_one_line(tmp_path, variant):
    name, forward, rollback, message = REFUSED_FILES[variant]
    write(tmp_path, name, forward, rollback)
    with pytest.raises(MigrationFileProblem) as refused:
        migrations.load(tmp_path)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value) and refused.value.exit_code == EXIT_CANNOT_RUN


def test_a_promotions_twin_must_be_the_index_it_promotes(tmp_path):
    shutil.copy(EXAMPLES / "0005.drift_event_unique.sql", tmp_path)
    shutil.copy(EXAMPLES / "0005.drift_event_unique.rollback.sql", tmp_path)
    shutil.copy(EXAMPLES / "0006.drift_event_unique.sql", tmp_path)
    rollback = (EXAMPLES / "0006.drift_event_unique.rollback.sql").read_text()
    (tmp_path / "0006.drift_event_unique.rollback.sql").write_text(rollback.replace(", drift_type)", ")"))
    with pytest.raises(MigrationFileProblem, match="0006.drift_event_unique.rollback.sql: its twin must be the index "
                                                   "0005.drift_event_unique builds"):
        migrations.load(tmp_path)


EVIL = REFUSED_FILES["a DROP TABLE after its index"]


@pytest.mark.parametrize("command", [("migrate",), ("migrate", "--dry-run"), ("rollback",), ("sql",),
                                     ("sql", "--rollback"), ("status",), ("verify",)])
def test_an_evil_file_stops_every_command_before_any_connection(tmp_path, command):
    folder = shutil.copytree(MIGRATIONS_DIR, tmp_path / "migrations")
    write(folder, *EVIL[:3])
    # An unreachable server: a command that connected first would fail with "cannot connect".
    dsn = "host=/nonexistent-socket-dir dbname=nowhere"
    done = invoke(*command, "--migrations", str(folder), *(("--dsn", dsn) if command[0] != "sql" else ()))
    assert done.returncode == EXIT_CANNOT_RUN, done.stderr
    assert done.stderr.strip() == f"error: {EVIL[3]} (an index, a constraint and its validation, a promotion, their " \
                                  "rollbacks, and SET of their timeouts)"


LINTED = {
    "a CHECK without NOT VALID": ("0004.x_check", CHECK.replace(" NOT VALID", ""), DROP_CHECK,
                                  "add it NOT VALID (a brief lock; new writes are checked from then on), then VALIDATE "
                                  "CONSTRAINT it in the same file"),
    "a foreign key without NOT VALID": ("0004.x_fk", "ALTER TABLE upstream_upload ADD CONSTRAINT x_fk FOREIGN KEY "
                                                     "(customer_id) REFERENCES upstream_customer (id);",
                                        "ALTER TABLE upstream_upload DROP CONSTRAINT IF EXISTS x_fk;",
                                        "stopping their writes, for a full scan: add it NOT VALID"),
    "a UNIQUE without USING INDEX": ("0004.x_key", "ALTER TABLE upstream_upload ADD CONSTRAINT x_key UNIQUE (id);",
                                     "ALTER TABLE upstream_upload DROP CONSTRAINT IF EXISTS x_key;",
                                     "build it first (CREATE UNIQUE INDEX CONCURRENTLY x_key ON upstream_upload ...), "
                                     "then ALTER TABLE upstream_upload ADD CONSTRAINT x_key UNIQUE USING INDEX x_key"),
    "an index without CONCURRENTLY": ("0004.x_idx", INDEX.replace(" CONCURRENTLY", ""), DROP,
                                      "CREATE INDEX without CONCURRENTLY blocks the table's writes for the whole build: "
                                      "write CREATE INDEX CONCURRENTLY"),
}


@pytest.mark.parametrize("variant", list(LINTED))
def test_lint_refuses_the_blocking_forms_with_the_safe_form(tmp_path, variant):
    name, forward, rollback, safe_form = LINTED[variant]
    folder = shutil.copytree(MIGRATIONS_DIR, tmp_path / "migrations")
    write(folder, name, forward, rollback)
    linted = invoke("lint", "--migrations", str(folder))
    assert linted.returncode == 1, linted.stdout + linted.stderr
    assert f"header grammar: {name}.sql: statement 3: " in linted.stdout and safe_form in linted.stdout


def test_the_hand_written_files_pass_lint():
    for folder in (EXAMPLES, ROOT / "benchmarks" / "migrations"):
        linted = invoke("lint", "--migrations", str(folder))
        assert linted.returncode == 0, linted.stdout + linted.stderr
