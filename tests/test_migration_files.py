"""The header grammar (src/upstream_indexes/migrations.py) over every file in migrations/, and each way
to break it refused with one line naming the file and the problem. No database needed."""


import pytest
from yoyo import read_migrations
from yoyo.migrations import read_sql_migration

from support import EXPECTED_INDEXDEFS
from upstream_indexes import ledger, migrations, runner
from upstream_indexes.config import Target
from upstream_indexes.errors import EXIT_CANNOT_RUN, MigrationFileProblem
from upstream_indexes.paths import MIGRATIONS_DIR
from upstream_indexes.lines import LinePrinter

FORWARD = "0001.claim_cust_date_outcome_cov.sql"
ROLLBACK = "0001.claim_cust_date_outcome_cov.rollback.sql"
CREATE = ("CREATE INDEX CONCURRENTLY claim_cust_date_outcome_cov ON upstream_claimrecord USING btree "
          "(customer_id, decided_date DESC, outcome) INCLUDE (id);")


# --- the files in the repo ---------------------------------------------------

def test_every_file_in_migrations_belongs_to_a_checked_pair():
    loaded = migrations.load(MIGRATIONS_DIR)
    assert {path.name for path in MIGRATIONS_DIR.iterdir()} == {
        path.name for m in loaded for path in (m.path, m.rollback_path)}
    assert [m.id.split(".")[0] for m in loaded] == [f"{n:04d}" for n in range(1, len(loaded) + 1)]
    assert [m.index for m in loaded] == list(EXPECTED_INDEXDEFS)


def test_every_file_is_non_transactional_as_yoyo_reads_it():
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        directives, leading_comment, _ = read_sql_migration(str(path))
        assert directives == {"transactional": "false"}, path.name
        assert leading_comment.splitlines()[0] == path.read_text().splitlines()[0][3:], path.name
    for migration in read_migrations(str(MIGRATIONS_DIR)):
        migration.load()
        assert migration.use_transactions is False, migration.id


def test_every_file_sets_both_timeouts_then_runs_its_one_statement():
    for m in migrations.load(MIGRATIONS_DIR):
        for path, direction, verb in (
                (m.path, "apply", f"CREATE INDEX CONCURRENTLY {m.index} ON {m.table} USING btree ("),
                (m.rollback_path, "rollback", f"DROP INDEX CONCURRENTLY IF EXISTS {m.index};")):
            steps = ledger.statements(m, direction)
            assert steps[:2] == ["SET statement_timeout = 0;", "SET lock_timeout = '10min';"], path.name
            assert len(steps) == 3 and steps[2].splitlines()[-1].startswith(verb), path.name


# --- each malformed variant is refused ------------------------------------------

def replace(name, old, new):
    def change(directory):
        path = directory / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new, 1))
    return change


def delete(name):
    return lambda directory: (directory / name).unlink()


def both(*changes):
    return lambda directory: [change(directory) for change in changes]


def add(name, text):
    return lambda directory: (directory / name).write_text(text)


MALFORMED = {
    "transactional: no": (replace(FORWARD, "-- transactional: false", "-- transactional: no"),
                          f"{FORWARD}: line 2: `-- transactional: no` must be `true` or `false` (yoyo crashes"),
    "directive after SQL": (both(replace(FORWARD, "-- transactional: false\n", ""),
                                 replace(FORWARD, "SET lock_timeout = '10min';\n",
                                         "SET lock_timeout = '10min';\n-- transactional: false\n")),
                            f"{FORWARD}: line 21: `-- transactional: false` after the first SQL statement is "
                            "ignored by yoyo"),
    "/* */ header": (replace(FORWARD, "-- transactional: false", "/* transactional: false */"),
                     f"{FORWARD}: line 2: a /* */ comment in the header hides the directives from yoyo"),
    "no transactional directive": (replace(FORWARD, "-- transactional: false\n", ""),
                                   f"{FORWARD}: the leading comment block must say `-- transactional: false`"),
    "transactional: true": (replace(FORWARD, "-- transactional: false", "-- transactional: true"),
                            f"{FORWARD}: the leading comment block must say `-- transactional: false`"),
    "rollback without the directive": (replace(ROLLBACK, "-- transactional: false\n", ""),
                                       f"{ROLLBACK}: the leading comment block must say `-- transactional: false`"),
    "line 1 not a description": (replace(FORWARD, "-- Covering index", "SELECT 1; -- Covering index"),
                                 f"{FORWARD}: line 1 must be a `-- <description>` comment"),
    "missing rollback file": (delete(ROLLBACK), f"{FORWARD}: its rollback file {ROLLBACK} is missing"),
    "rollback without forward": (add("0004.orphan_idx.rollback.sql", "-- x\n-- transactional: false\n"),
                                 "0004.orphan_idx.rollback.sql: a rollback file without its forward migration"),
    "wrong index name": (replace(FORWARD, "CONCURRENTLY claim_cust_date_outcome_cov", "CONCURRENTLY claim_idx"),
                         f"{FORWARD}: builds claim_idx, but the file name says claim_cust_date_outcome_cov"),
    "plain CREATE INDEX": (replace(FORWARD, "CREATE INDEX CONCURRENTLY", "CREATE INDEX"),
                           f"{FORWARD}: statement 3: CREATE INDEX without CONCURRENTLY blocks the table's writes "
                           "for the whole build: write CREATE INDEX CONCURRENTLY"),
    "two CREATE INDEX": (replace(FORWARD, CREATE, CREATE + "\n" + CREATE.replace("outcome)", "payer)")),
                         f"{FORWARD}: holds CREATE INDEX CONCURRENTLY claim_cust_date_outcome_cov; CREATE INDEX "
                         "CONCURRENTLY claim_cust_date_outcome_cov; a forward file holds exactly the statements of "
                         "one kind"),
    "IF NOT EXISTS": (replace(FORWARD, "CONCURRENTLY claim", "CONCURRENTLY IF NOT EXISTS claim"),
                      f"{FORWARD}: statement 3: CREATE INDEX ... IF NOT EXISTS would silently skip the INVALID index"),
    "plain DROP INDEX": (replace(ROLLBACK, "DROP INDEX CONCURRENTLY IF", "DROP INDEX IF"),
                         f"{ROLLBACK}: statement 3: DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock "
                         "on the table: write DROP INDEX CONCURRENTLY IF EXISTS <name>"),
    "bad file name": (add("add_index.sql", "-- x\n-- transactional: false\n"),
                      "add_index.sql: name must be NNNN.<index_or_constraint_name>.sql"),
    "yoyo post-apply hook": (add("post-apply.sql", "-- x\n-- transactional: false\n"),
                             "post-apply.sql: name must be NNNN.<index_or_constraint_name>.sql"),
    "not UTF-8": (lambda directory: (directory / ROLLBACK).write_bytes(b"-- Drop the index \xe9\n"),
                  f"{ROLLBACK}: not UTF-8 text (byte 18: invalid continuation byte)"),
}


@pytest.mark.parametrize("variant", list(MALFORMED))
def test_malformed_variant_is_refused_in_one_line(migrations_copy, variant):
    change, message = MALFORMED[variant]
    change(migrations_copy)
    with pytest.raises(MigrationFileProblem) as refused:
        migrations.load(migrations_copy)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
    assert refused.value.exit_code == EXIT_CANNOT_RUN


def test_a_malformed_file_stops_migrate_before_it_connects(migrations_copy):
    MALFORMED["plain CREATE INDEX"][0](migrations_copy)
    unreachable = Target("host=/nonexistent-socket-dir dbname=nowhere", "test")
    for command in (runner.migrate, runner.rollback, runner.status):
        with pytest.raises(MigrationFileProblem):  # not ConnectionProblem: the files are read first
            command(unreachable, LinePrinter(), directory=migrations_copy)


def test_no_migrations_is_refused(tmp_path):
    with pytest.raises(MigrationFileProblem, match="no migrations found"):
        migrations.load(tmp_path)


# --- why: what yoyo does with the files the grammar refuses -----------------------

def yoyo_migration(directory):
    return {m.id: m for m in read_migrations(str(directory))}[FORWARD[:-4]]


def test_yoyo_crashes_on_transactional_no(migrations_copy):
    MALFORMED["transactional: no"][0](migrations_copy)
    with pytest.raises(KeyError):
        yoyo_migration(migrations_copy).load()


@pytest.mark.parametrize("variant", ["directive after SQL", "/* */ header"])
def test_yoyo_silently_runs_a_hidden_directive_in_a_transaction(migrations_copy, variant):
    MALFORMED[variant][0](migrations_copy)
    migration = yoyo_migration(migrations_copy)
    migration.load()
    assert migration.use_transactions is True  # CREATE INDEX CONCURRENTLY would then fail at run time
