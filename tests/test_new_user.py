"""What a new user hit (issue 15): redaction by structure, usage errors, an empty --dsn, PGPORT
with the embedded server, status without the tables, Ctrl-C with --json, rollback's flags,
short flags, and the small inconsistencies."""

import re
import signal

import psycopg
import pytest

from live import Holder, Running, waiting_claim_build
from support import CLAIM_INDEX, DATABASE_ENV, assert_refused, clean_env, invoke, json_report
from upstream_indexes import embedded
from upstream_indexes.config import normalize_dsn
from upstream_indexes.redaction import redact
from upstream_indexes.errors import ConnectionProblem


# --- 1. redaction by structure --------------------------------------------------

@pytest.mark.parametrize("text, shown", [
    # the password equal to the user, the database and a fragment of the scheme: only the password goes
    ("postgresql://postgres:postgres@127.0.0.1:5499/postgres", "postgresql://postgres:***@127.0.0.1:5499/postgres"),
    ("postgresql://app:ql@db.example/app", "postgresql://app:***@db.example/app"),
    ("postgresql://app:1@127.0.0.1:5499/upstream", "postgresql://app:***@127.0.0.1:5499/upstream"),
    # URL-escaped: neither the escaped nor the plain spelling survives
    ("postgresql://app:p%40ss%2Fw%3A@db.example/app", "postgresql://app:***@db.example/app"),
    ("postgresql://app@db.example/app?password=p%40ss&sslmode=require",
     "postgresql://app@db.example/app?password=***&sslmode=require"),
    # key=value, quoted with spaces, escaped quote inside
    ("host=db.example password='two words \\' here' dbname=app", "host=db.example password=*** dbname=app"),
    ("host=db.example password = app user=app dbname=app", "host=db.example password = *** user=app dbname=app"),
    # libpq's error quotes the user, never the password: the user stays readable
    ('connection to server at "127.0.0.1", port 5499 failed: FATAL:  password authentication failed for user '
     '"postgres"', 'connection to server at "127.0.0.1", port 5499 failed: FATAL:  password authentication failed '
     'for user "postgres"'),
    ("ALTER ROLE app PASSWORD 'it''s' VALID UNTIL 'infinity'", "ALTER ROLE app PASSWORD '***' VALID UNTIL 'infinity'"),
])
def test_redaction_replaces_the_password_field_only(text, shown):
    try:
        normalize_dsn(text)  # as the tool does with a --dsn first (it used to remember the password then)
    except ConnectionProblem:
        pass
    assert redact(text) == shown


@pytest.mark.parametrize("dsn", [
    "postgresql://app:p@ss@db.example/appdb",  # libpq would take 'ss@db.example' as the host
    "postgresql://app:pa/ss@db.example/appdb",  # libpq would take 'pa' as the port
    "postgresql://app:pa#ss@db.example/appdb",
])
def test_a_url_whose_password_needs_escaping_is_refused_without_echoing_it(dsn):
    with pytest.raises(ConnectionProblem) as refused:
        normalize_dsn(dsn)
    message = str(refused.value)
    assert "percent-encode" in message, message
    assert "ss@" not in message and "pa" not in message.replace("password", "").replace("part", ""), message


def test_malformed_url_end_to_end_names_no_part_of_the_password():
    result = invoke("status", "--dsn", "postgresql://app:p@ss@127.0.0.1:1/appdb")
    assert_refused(result, "malformed DSN")
    assert "ss@" not in result.stdout + result.stderr and "p@ss" not in result.stdout + result.stderr


def test_password_equal_to_user_and_database_leaves_them_readable(db, server):
    """The issue's case: every `postgres` was replaced. Only the password field may be."""
    url = server.url(db.name, "postgres", "postgres")
    result = invoke("status", "--dsn", url)
    first = result.stdout.splitlines()[0]
    assert first.startswith("database: postgresql://postgres:***@"), first


def test_pgpassword_never_printed(db, server):
    secret = "pgpass-Secret-7"
    params = dict(part.split("=", 1) for part in db.conninfo.split())
    env = clean_env(PGHOST=params["host"], PGDATABASE=db.name, PGUSER=params.get("user", "postgres"),
                    PGPASSWORD=secret, **({"PGPORT": params["port"]} if "port" in params else {}))
    result = invoke("status", env=env)
    assert secret not in result.stdout + result.stderr
    assert result.stdout.startswith("database: PGHOST="), result.stdout


# --- 2. usage errors: exit 2, one error line --------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["migrate", "--bogus"], "--bogus"),
    (["migrate", "--dsn"], "--dsn needs a value"),
    (["status", "--migrations"], "--migrations needs a value"),
    (["no-such-task"], "no-such-task"),
    (["migrate", "--json=yes"], "unknown task or flag 'yes'"),
])
def test_usage_error_exits_2_with_one_error_line(args, fragment):
    assert_refused(invoke(*args), fragment)


# --- 3. an empty --dsn ---------------------------------------------------------------

@pytest.mark.parametrize("task", ["migrate", "status", "verify", "rollback"])
def test_empty_dsn_is_refused_not_the_demo(task):
    result = invoke(task, "--dsn", "")
    assert_refused(result, "--dsn is empty")
    assert "embedded" not in result.stdout


# --- 4. PGPORT alone, 8. the first run ---------------------------------------------------

def test_embedded_server_ignores_pgport_and_shows_each_step(tmp_path, monkeypatch):
    """PGPORT set alone (no PGHOST) chooses the embedded server; its conninfo names its own port, so
    libpq does not take PGPORT's. The server start and each demo load step are announced as they begin."""
    for name in DATABASE_ENV:  # pg_virtualenv's too: PGPORT alone is the case
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGPORT", "1")
    lines = []
    pgdata = tmp_path / "pgdata"
    try:
        target = embedded.demo_target(scale=0.002, pgdata=pgdata, announce=lines.append)
        assert re.search(r" port=\d+", target.conninfo), target.conninfo
        monkeypatch.setenv("PGPORT", "2")  # another server's: the conninfo's own port wins
        with psycopg.connect(target.conninfo) as conn:
            assert conn.execute("SELECT count(*) > 0 FROM upstream_claimrecord").fetchone()[0]
    finally:
        embedded.stop(pgdata)
    assert lines[0].startswith("PGPORT=1 is ignored: the embedded server has its own"), lines
    assert lines[1] == f"starting the embedded PostgreSQL server in {pgdata} ...", lines
    assert lines[2].startswith("  server started ("), lines
    steps = [line.split(" (")[0].strip() for line in lines if line.startswith("  demo data: ")]
    assert steps == ["demo data: customers", "demo data: uploads", "demo data: claims", "demo data: report runs",
                     "demo data: drift events", "demo data: foreign keys and the app's 39 indexes",
                     "demo data: VACUUM ANALYZE", "demo data: loaded"], lines


def test_first_line_names_the_embedded_database_before_it_starts():
    was_running = embedded.is_running()
    try:
        result = invoke("status", env=clean_env(PGPORT="1"))
    finally:
        if not was_running:
            embedded.stop()
    assert result.returncode in (0, 1), result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "database: embedded demo server in .pgdata/ (demo data)", lines
    assert lines[1].startswith("PGPORT=1 is ignored"), lines


# --- 5. status without the tables --------------------------------------------------

def test_status_without_the_tables_is_exit_2_like_migrate(db):
    with db.connect() as conn:
        conn.execute("ALTER TABLE upstream_claimrecord RENAME TO upstream_claimrecord_old")
    migrate = invoke("migrate", "--dsn", db.url)
    status = invoke("status", "--dsn", db.url)
    assert_refused(status, "table upstream_claimrecord does not exist")
    migrate_line = [line for line in migrate.stderr.splitlines() if "upstream_claimrecord" in line]
    assert migrate_line == status.stderr.strip().splitlines(), (migrate.stderr, status.stderr)


# --- 6. Ctrl-C with --json -------------------------------------------------------------

def test_ctrl_c_with_json_reports_the_invalid_index_left(db):
    with db.connect() as conn:
        holder = Holder(db.connect())
        run = Running("migrate", "--dsn", db.url, "--json")
        waiting_claim_build(conn)
        run.process.send_signal(signal.SIGINT)
        result = run.finish(60)
        holder.release()
    assert result.returncode == 130, result.stdout + result.stderr
    doc = json_report(result)
    assert doc["exit_code"] == 130 and "interrupted" in doc["error"]
    left = {entry["index"]: entry for entry in doc["indexes"]}
    assert left[CLAIM_INDEX]["final_state"] == "INVALID", doc["indexes"]
    assert left[CLAIM_INDEX]["size_bytes"] is not None and left[CLAIM_INDEX]["applied"] is False


# --- 7. rollback --count with --all ----------------------------------------------------

def test_rollback_count_with_all_is_refused(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    assert_refused(invoke("rollback", "--dsn", db.url, "--count", "1", "--all"), "--count and --all")
    status = invoke("status", "--dsn", db.url)
    assert status.returncode == 0, status.stdout  # nothing rolled back


# --- 10. short flags: one letter per meaning, or none ------------------------------------

def test_no_short_flag_means_two_things():
    meanings = {}
    for task in ("migrate", "rollback", "status", "verify", "sql", "lint", "django-state", "bench", "db.seed"):
        help_text = invoke("--help", task).stdout
        for short, long in re.findall(r"^\s+-(\w)(?: \w+)?, --([\w-]+)", help_text, re.M):
            meanings.setdefault(short, set()).add(long)
    assert all(len(longs) == 1 for longs in meanings.values()), meanings


# --- 11. small inconsistencies -------------------------------------------------------------

def test_db_url_prints_what_the_list_says():
    listing = " ".join(invoke("--list").stdout.split())  # as words: invoke wraps them by the widest name
    was_running = embedded.is_running()
    try:
        url = invoke("db.url")
    finally:
        if not was_running:
            embedded.stop()
    assert url.returncode == 0, url.stderr
    assert re.fullmatch(r"user=postgres dbname=upstream_demo host=\S+ port=\d+\n", url.stdout), url.stdout
    assert "libpq connection string" in listing and "URL" not in listing


@pytest.mark.parametrize("scale", ["0", "-1", "lots", "1000"])
def test_every_bad_scale_gets_the_same_words(scale):
    assert_refused(invoke("db.seed", "--scale", scale),
                       f"--scale must be a number above 0 and at most 100 (1.0 = 3M claims), not {scale!r}")


def test_verify_json_error_is_one_message(db):
    with db.connect() as conn:
        conn.execute("ALTER TABLE upstream_claimrecord RENAME TO claims_old")
        conn.execute("ALTER TABLE upstream_upload RENAME TO uploads_old")
    result = invoke("verify", "--dsn", db.url, "--json")
    doc = json_report(result)
    assert result.returncode == 2 and "\n" not in doc["error"], doc["error"]
    assert "upstream_claimrecord" in doc["error"] and "upstream_upload" in doc["error"]
