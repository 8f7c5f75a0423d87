"""Bad input of the new kinds, refused in pre-flight (issue 18, point 1 and the guide's bad input):
one line each naming the problem, exit 2, before any change: a foreign key whose referenced table or
column is missing, a PRIMARY KEY promotion over a column that may hold NULL (PostgreSQL would scan
the table under ACCESS EXCLUSIVE to set NOT NULL), an expression that does not fit its table."""

import pytest

from kinds import examples, write
from live import unchanged_snapshot
from support import invoke

pytestmark = pytest.mark.slow  # each test migrates a database, some several times

PROMOTION_ROLLBACK = ("CREATE UNIQUE INDEX CONCURRENTLY upload_key_twin ON upstream_upload (customer_id, file_hash);\n"
                      "ALTER TABLE upstream_upload DROP CONSTRAINT IF EXISTS upload_key;\n"
                      "ALTER INDEX upload_key_twin RENAME TO upload_key;\n")
CASES = {
    "a missing referenced table": (
        [("0001.upload_fk", "ALTER TABLE upstream_upload ADD CONSTRAINT upload_fk FOREIGN KEY (customer_id) "
                            "REFERENCES upstream_tenant (id) NOT VALID;\nALTER TABLE upstream_upload VALIDATE "
                            "CONSTRAINT upload_fk;\n",
          "ALTER TABLE upstream_upload DROP CONSTRAINT IF EXISTS upload_fk;\n")],
        "error: 0001.upload_fk: the foreign key upload_fk: the referenced table upstream_tenant does not exist"),
    "a missing referenced column": (
        [("0001.upload_fk", "ALTER TABLE upstream_upload ADD CONSTRAINT upload_fk FOREIGN KEY (customer_id) "
                            "REFERENCES upstream_customer (uuid) NOT VALID;\nALTER TABLE upstream_upload VALIDATE "
                            "CONSTRAINT upload_fk;\n",
          "ALTER TABLE upstream_upload DROP CONSTRAINT IF EXISTS upload_fk;\n")],
        "error: 0001.upload_fk: the foreign key upload_fk: the referenced table upstream_customer has no column uuid"),
    "a primary key over a nullable column": (
        [("0001.upload_key", "CREATE UNIQUE INDEX CONCURRENTLY upload_key ON upstream_upload (customer_id, "
                             "file_hash);\n", "DROP INDEX CONCURRENTLY IF EXISTS upload_key;\n"),
         ("0002.upload_key", "ALTER TABLE upstream_upload ADD CONSTRAINT upload_key PRIMARY KEY USING INDEX "
                             "upload_key;\n", PROMOTION_ROLLBACK)],
        "error: 0002.upload_key: the PRIMARY KEY constraint upload_key: file_hash may hold NULL, so PostgreSQL would "
        "first set NOT NULL, scanning upstream_upload under an ACCESS EXCLUSIVE lock"),
    "an expression that does not fit": (
        [("0001.upload_lower", "CREATE INDEX CONCURRENTLY upload_lower ON upstream_upload (lower(file_name));\n",
          "DROP INDEX CONCURRENTLY IF EXISTS upload_lower;\n")],
        'error: 0001.upload_lower: the index upload_lower: its key or WHERE does not fit upstream_upload: column '
        '"file_name" does not exist'),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_in_pre_flight_with_one_line(db, tmp_path, case):
    files, message = CASES[case]
    folder = examples(tmp_path / "migrations")
    for name, forward, rollback in files:
        write(folder, name, forward, rollback)
    with db.connect() as conn:
        before = unchanged_snapshot(conn)
    for command in (("migrate",), ("migrate", "--dry-run"), ("sql",)):
        result = invoke(*command, "--dsn", db.url, "--migrations", str(folder))
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.strip().startswith(message), result.stderr
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before
