"""The data pre-checks see what PostgreSQL will see (issue 18, point 3): duplicate keys only among the
rows a partial index keeps, a key with a NULL in it no duplicate unless NULLS NOT DISTINCT, each key
its expression or collation taken as the index takes it; a CHECK fails only on false; a foreign key's key with a NULL passes
unless MATCH FULL. Each verdict is held against the server's own: where the check finds nothing the
build or ADD ... VALIDATE succeeds, where it finds something they fail."""

import psycopg
import pytest

from kinds import examples, write
from upstream_indexes import datachecks, migrations

def migration(tmp_path, name: str, forward: str, rollback: str):
    folder = examples(tmp_path / name)
    write(folder, f"0001.{name}", forward, rollback)
    return migrations.load(folder)[0]


def server_agrees(conn, m, found: bool) -> None:
    """Run the migration's statements: they fail exactly when the check found something."""
    statements = [s.sql for s in m.statements]
    if found:
        with pytest.raises(psycopg.Error):
            for sql in statements:
                conn.execute(sql)
    else:
        for sql in statements:
            conn.execute(sql)


UNIQUE = [
    # (key and predicate, setup, found)
    ("(customer_id, filename) WHERE status = 'failed'",
     "UPDATE upstream_upload SET filename = 'same.csv' WHERE status <> 'failed'", False),  # outside the predicate
    ("(customer_id, filename) WHERE status = 'failed'",
     "UPDATE upstream_upload SET filename = 'same.csv' WHERE status = 'failed'", True),
    ("(customer_id, file_hash)", "UPDATE upstream_upload SET file_hash = NULL WHERE customer_id = 1", False),  # NULLs
    ("(customer_id, lower(filename))", "UPDATE upstream_upload SET filename = CASE WHEN id % 2 = 0 THEN 'A.csv' "
                                       "ELSE 'a.csv' END WHERE customer_id = 1", True),  # an expression key
    ('(customer_id, filename COLLATE "C" text_pattern_ops)', "", False),  # a collation and operator class of its own
]


@pytest.mark.parametrize("definition, setup, found", UNIQUE)
def test_duplicate_keys_as_the_unique_build_sees_them(db, tmp_path, definition, setup, found):
    m = migration(tmp_path, "x_unique", f"CREATE UNIQUE INDEX CONCURRENTLY x_unique ON upstream_upload {definition};",
                  "DROP INDEX CONCURRENTLY IF EXISTS x_unique;")
    with db.connect() as conn:
        conn.execute("DROP INDEX upload_unique_customer_file_hash")  # the app's own, on (customer_id, file_hash)
        if setup:
            conn.execute(setup)
        checked = datachecks.run(conn, m)
        assert (checked.finding is not None) == found, checked.finding and checked.finding.describe()
        server_agrees(conn, m, found)


def test_nulls_not_distinct(db, tmp_path):
    with db.connect() as conn:
        if conn.info.server_version < 150000:
            pytest.skip("NULLS NOT DISTINCT is PostgreSQL 15's")
        conn.execute("DROP INDEX upload_unique_customer_file_hash")
        conn.execute("UPDATE upstream_upload SET file_hash = NULL WHERE customer_id = 1")
    m = migration(tmp_path, "x_unique", "CREATE UNIQUE INDEX CONCURRENTLY x_unique ON upstream_upload (customer_id, "
                                        "file_hash) NULLS NOT DISTINCT;", "DROP INDEX CONCURRENTLY IF EXISTS x_unique;")
    with db.connect() as conn:
        checked = datachecks.run(conn, m)
        assert checked.finding is not None and "(1,) in " in checked.finding.examples[0]
        server_agrees(conn, m, True)


CONSTRAINTS = [
    # (constraint, setup, found)
    ("CHECK (row_count > 0)", "UPDATE upstream_upload SET row_count = NULL WHERE id = 1", False),  # NULL passes
    ("CHECK (row_count > 0)", "UPDATE upstream_upload SET row_count = 0 WHERE id = 1", True),
    ("FOREIGN KEY (customer_id, file_hash) REFERENCES x_parent (customer_id, file_hash)", "", False),  # NULL keys pass
    ("FOREIGN KEY (customer_id, file_hash) REFERENCES x_parent (customer_id, file_hash) MATCH FULL",
     "UPDATE upstream_upload SET file_hash = NULL WHERE id = 1", True),  # a key partly NULL
]


@pytest.mark.parametrize("constraint, setup, found", CONSTRAINTS)
def test_violating_rows_as_validate_sees_them(db, tmp_path, constraint, setup, found):
    m = migration(tmp_path, "x_constraint",
                  f"ALTER TABLE upstream_upload ADD CONSTRAINT x_constraint {constraint} NOT VALID;\n"
                  "ALTER TABLE upstream_upload VALIDATE CONSTRAINT x_constraint;\n",
                  "ALTER TABLE upstream_upload DROP CONSTRAINT IF EXISTS x_constraint;")
    with db.connect() as conn:
        # A parent holding every upload's key but those with a NULL file_hash: only NULL keys lack a parent.
        conn.execute("CREATE TABLE x_parent AS SELECT customer_id, file_hash FROM upstream_upload "
                     "WHERE file_hash IS NOT NULL")
        conn.execute("ALTER TABLE x_parent ADD UNIQUE (customer_id, file_hash)")
        if setup:
            conn.execute(setup)
        checked = datachecks.run(conn, m)
        assert (checked.finding is not None) == found, checked.finding and checked.finding.describe()
        server_agrees(conn, m, found)
