"""invoke verify and the verify/*.sql files a DBA runs with psql, against real servers."""

import io
import re
import subprocess
import uuid

import pytest
from psycopg import sql

from support import Database, clean_env, invoke, json_report, scratch_database
from upstream_indexes import app_queries, demo, migrations, runner
from upstream_indexes.config import Target
from upstream_indexes.errors import ToolError
from upstream_indexes.paths import VERIFY_DIR
from upstream_indexes.lines import LinePrinter
from upstream_indexes.verify import script_sql

CATALOGUE = app_queries.load()
OUR_INDEX = {m.table: m.index for m in migrations.load()}
CHECKS_PER_RUN = len(OUR_INDEX) + 1 + len(CATALOGUE)  # each index, the index count, each query's plan
NEARLY_EMPTY_SCALE = 0.0001  # 30 uploads, ~300 claims, ~100 drift events


def migrate(db: Database) -> None:
    runner.migrate(Target(db.conninfo, "test"), LinePrinter(io.StringIO()))


@pytest.fixture(scope="module")
def migrated_template(server, template) -> str:
    """The test template with the three indexes built, copied for each test that starts from there."""
    with scratch_database(server, template) as database:
        migrate(database)
        yield database.name


@pytest.fixture
def migrated(server, migrated_template) -> Database:
    with scratch_database(server, migrated_template) as database:
        yield database


def lines(result, status: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(f"{status}  ")]


def psql(server, db: Database, *files: str, conninfo: str | None = None) -> subprocess.CompletedProcess:
    """The DBA's way: psql -v ON_ERROR_STOP=1 -f verify/<file> ..., as the files are."""
    args = [server.psql, "-X", "-v", "ON_ERROR_STOP=1", "-d", conninfo or db.conninfo]
    for name in files:
        args += ["-f", str(VERIFY_DIR / name)]
    return subprocess.run(args, capture_output=True, text=True, env=clean_env(), timeout=120)


# --- the catalogue -----------------------------------------------------------

def test_catalogue_holds_the_apps_patterns_each_expecting_its_tables_covering_index():
    names = {q.name for q in CATALOGUE}
    assert {"latest_claims", "latest_drift_events", "latest_uploads", "monthly_claim_trend",
            "recent_high_severity_drift_count", "recent_failed_uploads"} <= names
    for query in CATALOGUE:
        assert query.expected_index == OUR_INDEX[query.table], query.name
        assert query.prepare.startswith(f"PREPARE {query.name}(bigint) AS\nSELECT ")
        assert "$1" in query.query and query.description


@pytest.mark.parametrize("text, problem", [
    ("-- name: a\n-- expect: x\n-- what\nPREPARE b(bigint) AS\nSELECT id FROM t;\n", "heads PREPARE b"),
    ("-- name: a\n-- what\nPREPARE a(bigint) AS\nSELECT id FROM t;\n", "1 `-- name:` headers but 0"),
    ("-- name: a\n-- expect: x\n-- what\nPREPARE a(bigint) AS\nSELECT 1;\n", "exactly one table"),
])
def test_a_malformed_catalogue_is_named(tmp_path, text, problem):
    path = tmp_path / "app_queries.sql"
    path.write_text(text)
    with pytest.raises(app_queries.CatalogueProblem, match=problem):
        app_queries.load(path)


def test_plans_sql_includes_the_catalogue_and_nothing_else_of_psql(tmp_path):
    text = script_sql(VERIFY_DIR / "plans.sql")
    assert all(q.prepare in text for q in CATALOGUE)
    assert "\\ir" not in text
    (tmp_path / "bad.sql").write_text("SELECT 1;\n\\set x 1\n")
    with pytest.raises(ToolError, match=r"psql command `\\set x 1` is not supported"):
        script_sql(tmp_path / "bad.sql")


# --- after migrate: everything passes, for invoke and for psql ----------------

@pytest.mark.slow
def test_after_migrate_every_check_passes_strict_too_and_psql_agrees(server, migrated):
    result = invoke("verify", "--dsn", migrated.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].startswith("database: ")
    assert len(lines(result, "pass")) == CHECKS_PER_RUN, result.stdout
    for query in CATALOGUE:
        assert f"pass  plan {query.name}: Index Only Scan on {query.expected_index}" in result.stdout
    assert result.stdout.splitlines()[-1] == f"verify: {CHECKS_PER_RUN} checks: {CHECKS_PER_RUN} pass, 0 warn, 0 fail"
    assert invoke("verify", "--strict", "--dsn", migrated.url).returncode == 0

    by_psql = psql(server, migrated, "indexes.sql", "plans.sql")
    assert by_psql.returncode == 0, by_psql.stderr
    assert by_psql.stderr.count("NOTICE:  pass: ") == CHECKS_PER_RUN
    assert "WARNING" not in by_psql.stderr and "ROLLBACK" in by_psql.stdout


@pytest.mark.parametrize("script", ["indexes.sql", "plans.sql"])
def test_psql_prints_no_settings_value_before_the_checks(server, db, script):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    run = psql(server, db, script)
    assert run.returncode == 0, run.stderr
    assert "set_config" not in run.stdout and "index_name" not in run.stdout, run.stdout
    assert all(len(line) <= 80 for line in run.stdout.splitlines()), run.stdout
    assert "NOTICE:  pass: " in run.stderr


@pytest.mark.slow
def test_strict_passes_on_the_default_demo_data(server):
    with scratch_database(server) as db:
        with db.connect() as conn:
            demo.load(conn, demo.DEFAULT_SCALE)
        migrate(db)
        result = invoke("verify", "--strict", "--dsn", db.url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(lines(result, "pass")) == CHECKS_PER_RUN, result.stdout


def test_before_migrate_each_missing_index_fails_and_nothing_is_created(server, db):
    result = invoke("verify", "--dsn", db.url)
    assert result.returncode == 1, result.stdout + result.stderr
    for index in OUR_INDEX.values():
        assert f"fail  index {index}: expected on " in result.stdout
    assert "fail  index count: expected 3 indexes of our names, each on its table, found 0" in result.stdout
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE '%%yoyo%%' OR relname = ANY(%s)",
                            [list(OUR_INDEX.values())]).fetchone()[0] == 0


# --- each way the indexes can be wrong ---------------------------------------

def drop_one(conn):
    conn.execute("DROP INDEX drift_cust_date_sev_cov")


def mark_invalid(conn):
    conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'upload_cust_date_status_cov'::regclass")


def other_definition(conn):
    conn.execute("DROP INDEX upload_cust_date_status_cov")
    conn.execute("CREATE INDEX upload_cust_date_status_cov ON upstream_upload (customer_id, uploaded_at DESC, status)")


def extra_in_other_schema(conn):
    conn.execute("CREATE SCHEMA elsewhere")
    conn.execute("CREATE TABLE elsewhere.upstream_claimrecord (LIKE public.upstream_claimrecord)")
    conn.execute("CREATE INDEX claim_cust_date_outcome_cov ON elsewhere.upstream_claimrecord "
                 "(customer_id, decided_date DESC, outcome) INCLUDE (id)")


@pytest.mark.parametrize("damage, expected_lines", [
    (drop_one, ["fail  index drift_cust_date_sev_cov: expected on upstream_driftevent, found no index of this name",
                "fail  index count: expected 3 indexes of our names, each on its table, found 2",
                "fail  plan latest_drift_events: expected an Index Only Scan on drift_cust_date_sev_cov, found "]),
    (mark_invalid, ["fail  index upload_cust_date_status_cov: expected valid, ready and live, found INVALID "
                    "(indisvalid = false",
                    "fail  plan latest_uploads: expected an Index Only Scan on upload_cust_date_status_cov"]),
    (other_definition, ["fail  index upload_cust_date_status_cov: expected definition `CREATE INDEX "
                        "upload_cust_date_status_cov ON public.upstream_upload USING btree (customer_id, uploaded_at "
                        "DESC, status) INCLUDE (id)`, found `CREATE INDEX upload_cust_date_status_cov ON "
                        "public.upstream_upload USING btree (customer_id, uploaded_at DESC, status)`",
                        "fail  plan latest_uploads: expected an Index Only Scan on upload_cust_date_status_cov"]),
    (extra_in_other_schema, ["fail  index claim_cust_date_outcome_cov: expected only on upstream_claimrecord, "
                             "found another index of this name on elsewhere.upstream_claimrecord",
                             "fail  index count: expected 3 indexes of our names, each on its table, found 4"]),
], ids=["dropped", "invalid", "other-definition", "extra-on-another-table"])
def test_each_damage_fails_naming_the_index_and_problem(server, migrated, damage, expected_lines):
    with migrated.connect() as conn:
        damage(conn)
    result = invoke("verify", "--dsn", migrated.url)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = lines(result, "fail")
    for expected in expected_lines:
        assert any(line.startswith(expected) for line in failed), (expected, result.stdout)
    assert "Traceback" not in result.stderr

    # The DBA's psql run of the same files stops with an ERROR, the same lines as WARNINGs.
    by_psql = psql(server, migrated, "indexes.sql", "plans.sql")
    assert by_psql.returncode == 3, by_psql.stderr
    assert "ERROR:  verify/indexes.sql: " in by_psql.stderr
    assert expected_lines[0].replace("fail  ", "WARNING:  fail: ") in by_psql.stderr


# --- planner preference on a nearly empty table: a warning, not a failure -----

@pytest.mark.slow
def test_nearly_empty_tables_warn_with_row_counts_and_strict_fails(server):
    with scratch_database(server) as db:
        with db.connect() as conn:
            demo.load(conn, NEARLY_EMPTY_SCALE)  # ends with VACUUM ANALYZE
            upload_rows = conn.execute("SELECT count(*) FROM upstream_upload").fetchone()[0]
        migrate(db)
        result = invoke("verify", "--dsn", db.url)
        assert result.returncode == 0, result.stdout + result.stderr
        warned = lines(result, "warn")
        assert warned, result.stdout
        assert any(line.startswith("warn  plan latest_uploads: on this data the planner prefers Seq Scan on "
                                   "upstream_upload (customer ") and f"upstream_upload: {upload_rows} rows" in line
                   and "with sequential and bitmap scans off it takes the Index Only Scan on "
                       "upload_cust_date_status_cov" in line for line in warned), result.stdout
        assert not lines(result, "fail")

        strict = invoke("verify", "--strict", "--dsn", db.url)
        assert strict.returncode == 1
        assert [line.removeprefix("fail  ") for line in lines(strict, "fail")] == \
               [line.removeprefix("warn  ") for line in warned]


# --- --analyze: heap fetches and VACUUM ---------------------------------------

@pytest.mark.slow
def test_analyze_reports_heap_fetches_until_vacuum(migrated):
    result = invoke("verify", "--analyze", "--dsn", migrated.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len([line for line in lines(result, "pass") if line.startswith("pass  heap fetches ")]) == len(CATALOGUE)

    customer = re.search(r"pass  plan latest_uploads: .* \(customer (\d+)\)", result.stdout).group(1)
    with migrated.connect() as conn:
        # Commits flushed at once, so that the VACUUM below can set the visibility map (see demo.load).
        conn.execute("SET synchronous_commit = on")
        conn.execute("ALTER TABLE upstream_upload SET (autovacuum_enabled = false)")
        # The customer's latest uploads change: their pages are no longer all-visible.
        conn.execute("UPDATE upstream_upload SET row_count = row_count WHERE id IN (SELECT id FROM upstream_upload"
                     " WHERE customer_id = %s ORDER BY uploaded_at DESC LIMIT 10)", [int(customer)])
    stale = invoke("verify", "--analyze", "--dsn", migrated.url)
    assert stale.returncode == 0, stale.stdout + stale.stderr
    assert any(line.startswith("warn  heap fetches latest_uploads: ") and
               "VACUUM (ANALYZE) upstream_upload is due" in line for line in lines(stale, "warn")), stale.stdout
    assert invoke("verify", "--analyze", "--strict", "--dsn", migrated.url).returncode == 1

    with migrated.connect() as conn:
        conn.execute("VACUUM upstream_upload")
    assert invoke("verify", "--analyze", "--strict", "--dsn", migrated.url).returncode == 0


# --- never writes: a role with SELECT only, read-only by default ---------------

@pytest.mark.slow
def test_passes_as_a_read_only_role_with_select_only(server, migrated):
    role, password = f"reader_{uuid.uuid4().hex[:8]}", "reader-pw"
    tables = [sql.Identifier(table) for table in OUR_INDEX]
    with migrated.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(role)))
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.SQL(", ").join(tables), sql.Identifier(role)))
    url = server.url(migrated.name, user=role, password=password)
    try:
        # The role is what it claims: it cannot write, even where it could otherwise create.
        cannot_write = subprocess.run([server.psql, "-X", "-d", url, "-c", "CREATE TEMP TABLE t (x int)"],
                                      capture_output=True, text=True, env=clean_env())
        assert "read-only transaction" in cannot_write.stderr

        for flags in ([], ["--strict", "--analyze"]):
            result = invoke("verify", *flags, "--dsn", url)
            assert result.returncode == 0, result.stdout + result.stderr
            assert len(lines(result, "pass")) == CHECKS_PER_RUN + (len(CATALOGUE) if flags else 0)
        by_psql = psql(server, migrated, "indexes.sql", "plans.sql", conninfo=url)
        assert by_psql.returncode == 0, by_psql.stderr

        with migrated.connect() as conn:
            conn.execute(sql.SQL("REVOKE SELECT ON upstream_upload FROM {}").format(sql.Identifier(role)))
        denied = invoke("verify", "--dsn", url)
        assert denied.returncode == 2
        assert "could not run: permission denied for table upstream_upload" in denied.stderr
    finally:
        with migrated.connect() as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# --- --json -------------------------------------------------------------------

def test_json_report_is_the_only_stdout_and_matches_the_exit_code(migrated):
    with migrated.connect() as conn:
        drop_one(conn)
    result = invoke("verify", "--json", "--dsn", migrated.url)
    assert result.returncode == 1, result.stderr
    report = json_report(result)
    assert result.stderr.startswith("database: ")
    assert set(report) == {"format", "command", "database", "exit_code", "error", "duration_s",
                           "strict", "analyze", "traffic", "summary", "checks"}
    assert (report["command"], report["exit_code"], report["strict"], report["analyze"], report["traffic"]) == \
        ("verify", 1, False, False, False)
    assert f"/{migrated.name}" in report["database"]["name"] and report["error"] is None
    assert len(report["checks"]) == CHECKS_PER_RUN
    assert all(set(check) == {"script", "check", "status", "message", "data"} and check["data"] is None
               for check in report["checks"])  # data: --traffic's (tests/test_traffic.py)
    assert report["summary"] == {status: sum(c["status"] == status for c in report["checks"])
                                 for status in ("pass", "warn", "fail")}
    by_check = {c["check"]: c for c in report["checks"]}
    assert by_check["index drift_cust_date_sev_cov"]["status"] == "fail"
    assert by_check["index drift_cust_date_sev_cov"]["script"] == "indexes.sql"
    assert (by_check["plan latest_claims"]["script"], by_check["plan latest_claims"]["status"]) == ("plans.sql", "pass")
    assert by_check["plan latest_claims"]["message"].startswith("Index Only Scan on claim_cust_date_outcome_cov")


# --- could not run: exit 2, one line ------------------------------------------

def test_cannot_run_without_the_tables_or_the_server(server):
    with scratch_database(server) as empty:
        result = invoke("verify", "--dsn", empty.url)
        assert result.returncode == 2
        assert "error: table upstream_upload does not exist" in result.stderr
        assert "Traceback" not in result.stderr
    unreachable = invoke("verify", "--dsn", "postgresql://nobody@127.0.0.1:1/none")
    assert unreachable.returncode == 2
    assert unreachable.stderr.startswith("error: cannot connect: ")


@pytest.mark.slow
def test_stops_rather_than_queue_behind_pending_ddl(migrated):
    with migrated.connect() as ddl:
        with ddl.transaction():
            ddl.execute("LOCK TABLE upstream_upload IN ACCESS EXCLUSIVE MODE")
            result = invoke("verify", "--dsn", migrated.url, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error: indexes.sql: could not run: canceling statement due to lock timeout" in result.stderr
