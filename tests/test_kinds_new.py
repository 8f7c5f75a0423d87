"""`invoke new` for each kind (issue 18, point 7): --unique, --where, --check, --foreign-key and
--using-index each write a pair the grammar takes as that kind and `invoke lint` passes; bad input
writes nothing. No database."""

import pytest

from support import invoke
from upstream_indexes import migrations
from upstream_indexes.migration_kinds import Kind

DRIFT_KEY = "customer_id, report_run_id, payer, cpt_group, drift_type"
WRITES = [
    (("drift_event_unique", "--table", "upstream_driftevent", "--columns", DRIFT_KEY, "--unique"), Kind.INDEX,
     "CREATE UNIQUE INDEX CONCURRENTLY drift_event_unique ON upstream_driftevent USING btree "
     f"({DRIFT_KEY});"),
    (("drift_event_unique", "--table", "upstream_driftevent", "--using-index", "drift_event_unique"), Kind.PROMOTION,
     "ALTER TABLE upstream_driftevent ADD CONSTRAINT drift_event_unique UNIQUE USING INDEX drift_event_unique;"),
    (("upload_status_valid", "--table", "upstream_upload", "--check", "status IN ('processing', 'success')"),
     Kind.CHECK, "ALTER TABLE upstream_upload ADD CONSTRAINT upload_status_valid CHECK (status IN ('processing', "
                 "'success')) NOT VALID;\nSET lock_timeout = '10min';"),
    (("drift_run_fk", "--table", "upstream_driftevent", "--foreign-key", "report_run_id REFERENCES upstream_reportrun "
      "(id)"), Kind.FOREIGN_KEY, "ALTER TABLE upstream_driftevent ADD CONSTRAINT drift_run_fk FOREIGN KEY "
                                 "(report_run_id) REFERENCES upstream_reportrun (id) NOT VALID;"),
    (("upload_processing_cov", "--table", "upstream_upload", "--columns", "customer_id, uploaded_at desc", "--include",
      "id", "--where", "status = 'processing'"), Kind.INDEX,
     "CREATE INDEX CONCURRENTLY upload_processing_cov ON upstream_upload USING btree (customer_id, uploaded_at DESC) "
     "INCLUDE (id) WHERE status = 'processing';"),
]


def test_new_writes_each_kind_in_the_house_style(migrations_copy):
    for number, (args, kind, statement) in enumerate(WRITES, start=4):
        result = invoke("new", *args, "--migrations", str(migrations_copy))
        assert result.returncode == 0, result.stdout + result.stderr
        forward = migrations_copy / f"{number:04d}.{args[0]}.sql"
        assert statement in forward.read_text()
        assert migrations.load(migrations_copy)[-1].kind == kind
    promotion = migrations.load(migrations_copy)[4]
    assert promotion.index_definition == migrations.load(migrations_copy)[3].index_definition  # its twin
    partial = invoke("new", "upload_failed_cov", "--table", "upstream_upload", "--columns", "customer_id",
                     "--where", "status = 'failed'", "--migrations", str(migrations_copy)).stdout
    assert "WHERE customer_id = $1\n  AND status = 'failed'\nLIMIT 10;" in partial  # a query its predicate serves
    # Lint finds nothing but the TODO lines of the headers, until their author fills them in.
    linted = invoke("lint", "--migrations", str(migrations_copy))
    assert linted.returncode == 1 and linted.stdout.count("header TODO: ") >= len(WRITES), linted.stdout
    assert [line for line in linted.stdout.splitlines() if not line.startswith("header TODO: ")] == [], linted.stdout


@pytest.mark.parametrize("args, problem", [
    (("x_check", "--table", "upstream_upload", "--check", "a > 0)"),
     "nothing written: 0004.x_check.sql: statement 3: unexpected `) NOT VALID`"),
    (("x_cov", "--table", "upstream_upload", "--columns", "a", "--where", "b = 1; DROP TABLE upstream_upload"),
     "--where: `CREATE INDEX CONCURRENTLY x_cov ON upstream_upload (a) WHERE b = 1; DROP TABL...`: one statement, "
     "not several"),
    (("x_key", "--table", "upstream_upload", "--using-index", "x_idx"),
     "--using-index x_idx: name the constraint as its index (x_idx)"),
    (("x_idx", "--table", "upstream_upload", "--using-index", "x_idx"),
     "--using-index x_idx: no migration in this folder builds a unique index x_idx on upstream_upload"),
    (("x_fk", "--table", "upstream_upload", "--foreign-key", "customer_id"), "--foreign-key: 'customer_id' is not"),
    (("x", "--table", "upstream_upload", "--columns", "a", "--check", "a > 0"),
     "give one of --columns (an index), --check (a CHECK), --foreign-key (a foreign key) or --using-index (a "
     "promotion); not --columns and --check"),
    (("x", "--table", "upstream_upload", "--check", "a > 0", "--unique"),
     "--include, --unique and --where describe an index: give its --columns"),
])
def test_new_refuses_bad_input_and_writes_nothing(migrations_copy, args, problem):
    before = sorted(path.name for path in migrations_copy.iterdir())
    result = invoke("new", *args, "--migrations", str(migrations_copy))
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {problem}"), line
    assert sorted(path.name for path in migrations_copy.iterdir()) == before
