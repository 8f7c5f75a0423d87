"""verify --traffic: the statements pg_stat_statements has seen, each planned generically, against
our indexes. The app's traffic comes from a Django project of the upstream app's models (in a
subprocess, as the app runs), its views' query shapes through the ORM.

pg_stat_statements must be preloaded: the embedded 18 does it (tests/support.py); for 15 run
`pg_virtualenv -o shared_preload_libraries=pg_stat_statements -v 15 pytest`. Without it these
tests skip, unless UPSTREAM_INDEXES_PG_STAT_STATEMENTS=required (set by .ci/run).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from support import clean_env, invoke, json_report, missing, pinned_server_or_skip
from topology import PGBOUNCER, assert_pool_clean, start_pooler
from upstream_indexes import demo, migrations

pytest.importorskip("django", minversion="5.2")

INDEX_OF_TABLE = {m.table: m.index for m in migrations.load()}

SETTINGS = '''SECRET_KEY = "test"
INSTALLED_APPS = ["upstream"]
DATABASES = {{"default": {database!r}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
'''

# The upstream app's models, as far as its list views and dashboards read them (the tables exist).
MODELS = '''from django.db import models


class Upload(models.Model):
    customer_id = models.BigIntegerField()
    uploaded_at = models.DateTimeField()
    status = models.CharField(max_length=20)

    class Meta:
        managed = False
        db_table = "upstream_upload"


class ClaimRecord(models.Model):
    customer_id = models.BigIntegerField()
    payer = models.CharField(max_length=255)
    submitted_date = models.DateField()
    decided_date = models.DateField()
    outcome = models.CharField(max_length=20)

    class Meta:
        managed = False
        db_table = "upstream_claimrecord"


class DriftEvent(models.Model):
    customer_id = models.BigIntegerField()
    created_at = models.DateTimeField()
    severity = models.FloatField()

    class Meta:
        managed = False
        db_table = "upstream_driftevent"
'''

# The app's views, each as the ORM builds it: the catalogue's shapes (verify/app_queries.sql), and a
# list no index of ours can serve: a payer's claims, newest submitted first (the app's own
# claim_cust_payer_date_idx does).
VIEWS = '''import datetime
import sys

import django

django.setup()
from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone

from upstream.models import ClaimRecord, DriftEvent, Upload

CLAIM = ("id", "customer_id", "decided_date", "outcome")
UPLOAD = ("id", "customer_id", "uploaded_at", "status")


def views(customer):
    today, now = datetime.date.today(), timezone.now()
    claims = ClaimRecord.objects.filter(customer_id=customer)
    drift = DriftEvent.objects.filter(customer_id=customer)
    uploads = Upload.objects.filter(customer_id=customer)
    list(claims.order_by("-decided_date").values_list(*CLAIM)[:10])  # latest_claims
    list(claims.filter(decided_date__gte=today.replace(day=1) - datetime.timedelta(days=150))  # monthly_claim_trend
         .annotate(month=TruncMonth("decided_date")).values("month")
         .annotate(claims=Count("id"), denied=Count("id", filter=Q(outcome="DENIED"))).order_by("month"))
    list(claims.filter(decided_date__gte=today - datetime.timedelta(days=90),  # claims_in_decided_range
                       decided_date__lt=today - datetime.timedelta(days=30))
         .order_by("-decided_date").values_list(*CLAIM)[:10])
    list(claims.filter(payer="Payer 1").order_by("-submitted_date")  # a payer's claims
         .values_list("id", "payer", "submitted_date", "outcome")[:10])
    list(drift.order_by("-created_at").values_list("id", "customer_id", "created_at", "severity")[:10])
    drift.filter(created_at__gte=now - datetime.timedelta(days=30), severity__gte=0.7).count()
    list(uploads.order_by("-uploaded_at").values_list(*UPLOAD)[:10])  # latest_uploads
    list(uploads.filter(status="failed", uploaded_at__gte=now - datetime.timedelta(days=30))  # recent_failed_uploads
         .order_by("-uploaded_at").values_list(*UPLOAD)[:10])
    list(uploads.values("status").annotate(uploads=Count("id")).order_by("status"))  # upload_status_counts


for customer in sys.argv[1:]:
    views(int(customer))
'''


@pytest.fixture
def traffic_db(db):
    """The test database with CREATE EXTENSION pg_stat_statements (preloaded by the server)."""
    with db.connect() as conn:
        if conn.execute("SELECT current_setting('pg_stat_statements.max', true) IS NULL").fetchone()[0]:
            missing("pg_stat_statements is not preloaded on this server (for 15: pg_virtualenv -o "
                    "shared_preload_libraries=pg_stat_statements -v 15 pytest)", "UPSTREAM_INDEXES_PG_STAT_STATEMENTS")
        conn.execute("CREATE EXTENSION pg_stat_statements")
        # The server's statements are shared by every test database (and a statement's id includes its tables'
        # oids, so each database's are new ones): after a full suite the table is full, and a full table evicts
        # its least used entries, maybe the app's between two of its calls (a CI run counted 59 of 60).
        conn.execute("SELECT pg_stat_statements_reset()")
    return db


def run_the_app(db, tmp_path: Path, rounds: int = 3) -> int:
    """The app's views for twenty customers, `rounds` times, through Django and psycopg as the app runs;
    how many times each view ran."""
    project = tmp_path / "app"
    (project / "upstream").mkdir(parents=True, exist_ok=True)
    params = conninfo_to_dict(db.conninfo)
    database = {"ENGINE": "django.db.backends.postgresql", "NAME": params["dbname"],
                "USER": params.get("user", ""), "PASSWORD": params.get("password", ""),
                "HOST": params.get("host", ""), "PORT": str(params.get("port", ""))}
    (project / "settings.py").write_text(SETTINGS.format(database=database))
    (project / "upstream" / "__init__.py").write_text("")
    (project / "upstream" / "models.py").write_text(MODELS)
    (project / "views.py").write_text(VIEWS)
    with db.connect() as conn:
        customers = [str(row[0]) for row in conn.execute("SELECT id FROM upstream_customer ORDER BY id LIMIT 20")]
    for _ in range(rounds):
        ran = subprocess.run([sys.executable, "views.py", *customers], cwd=project, capture_output=True, text=True,
                             env=clean_env(PYTHONPATH=str(project), DJANGO_SETTINGS_MODULE="settings"), timeout=120)
        assert ran.returncode == 0, ran.stderr
    return rounds * len(customers)


def traffic(db, *flags: str) -> tuple[int, dict, list[dict]]:
    """verify --traffic --json: its exit code, the document (valid by docs/report.schema.json), and the
    traffic checks of the app's statements (Django's, with quoted names), each with its data."""
    result = invoke("verify", "--traffic", "--top", "20", "--json", *flags, "--dsn", db.url)
    assert "Traceback" not in result.stdout + result.stderr
    doc = json_report(result)
    app = [c for c in doc["checks"] if c["script"] == "traffic.sql" and c["data"] and '"upstream_' in c["data"]["query"]]
    return result.returncode, doc, app


def table_of(check: dict) -> str:
    [table] = [t for t in INDEX_OF_TABLE if f'FROM "{t}"' in check["data"]["query"]]
    return table


def is_payer_list(check: dict) -> bool:
    return '"upstream_claimrecord"."payer" = $' in check["data"]["query"]


@pytest.mark.slow
def test_traffic_before_and_after_migrate(traffic_db, tmp_path):
    calls = run_the_app(traffic_db, tmp_path)
    code, doc, before = traffic(traffic_db)
    assert code == 1 and doc["traffic"] is True  # the indexes are not built: indexes.sql fails
    assert len(before) == 9, [c["data"]["query"] for c in before]
    for check in before:
        index = INDEX_OF_TABLE[table_of(check)]
        # Every view filters on customer_id, the leading column of the index its table will have.
        assert check["status"] == "warn", check
        assert (check["data"]["uses"], check["data"]["misses"]) == ([], [index]), check
        assert check["data"]["calls"] == calls and check["data"]["mean_ms"] >= 0
        assert check["check"] == f"traffic {check['data']['rank']}"
        assert check["message"].startswith(f"filters on customer_id, the leading column of {index}, but its plan "
                                           "uses none of ours: ")

    assert invoke("migrate", "--dsn", traffic_db.url).returncode == 0
    code, doc, after = traffic(traffic_db)
    assert {c["data"]["queryid"] for c in after} == {c["data"]["queryid"] for c in before}
    for check in after:
        index = INDEX_OF_TABLE[table_of(check)]
        if is_payer_list(check):
            # Heavy traffic on the claims that our claim index does not serve (it filters on its leading column).
            assert check["status"] == "warn" and check["data"]["misses"] == [index], check
            assert check["data"]["uses"] == [] and "but its plan uses none of ours" in check["message"], check
        else:
            assert check["status"] == "pass", check
            assert check["data"]["uses"] == [f"Index Only Scan using {index}"] and check["data"]["index_only"], check
            assert check["message"].startswith(f"Index Only Scan using {index} ({calls} calls, mean ")
    assert code == 0 and doc["summary"]["fail"] == 0 and doc["summary"]["warn"] == 1

    # --strict: a statement in the top N that filters on an index's leading column must use it.
    code, doc, strict = traffic(traffic_db, "--strict")
    assert code == 1 and [c["status"] for c in strict if c["status"] != "pass"] == ["fail"]
    assert [c for c in doc["checks"] if c["status"] == "fail"] == [c for c in strict if is_payer_list(c)]


def test_a_password_in_a_statements_text_is_not_shown(traffic_db):
    """pg_stat_statements keeps a comment inside a statement as the app sent it: the line and the JSON
    show no password that was in one."""
    secret = "Tr4ffic-s3cret"
    with traffic_db.connect() as conn:
        conn.execute(f"SELECT count(*) /* from postgresql://app:{secret}@db1/upstream */ FROM upstream_upload "
                     "WHERE customer_id = 1")
    result = invoke("verify", "--traffic", "--json", "--dsn", traffic_db.url)
    assert secret not in result.stdout + result.stderr
    [check] = [c for c in json.loads(result.stdout)["checks"] if c["data"] and "app:***@db1" in c["data"]["query"]]
    assert "app:***@db1" in check["message"] and "traffic " in check["check"]


@pytest.mark.parametrize("args, line", [
    (("--top", "5"), "error: --top goes with --traffic"),
    (("--traffic", "--top", "0"), "error: --top must be a number >= 1, not '0'"),
    (("--traffic", "--top", "ten"), "error: --top must be a number >= 1, not 'ten'"),
])
def test_bad_top_is_one_line_before_any_connection(args, line):
    result = invoke("verify", *args, "--dsn", "postgresql://nobody@127.0.0.1:1/none")
    assert (result.returncode, result.stdout, result.stderr.strip()) == (2, "", line)


def test_without_pg_stat_statements_in_the_database_one_line(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    result = invoke("verify", "--traffic", "--dsn", db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    traffic_lines = [line for line in result.stdout.splitlines() if "traffic" in line]
    assert traffic_lines[:1] == [
        f"warn  traffic: pg_stat_statements is loaded but not created in database {db.name}: a superuser runs "
        "CREATE EXTENSION pg_stat_statements there (a view and functions; verify never writes)"]
    assert result.stdout.splitlines()[-1] == "verify: 13 checks: 12 pass, 1 warn, 0 fail"
    strict = invoke("verify", "--traffic", "--strict", "--dsn", db.url)
    assert strict.returncode == 1 and "fail  traffic: pg_stat_statements is loaded but not created" in strict.stdout


@pytest.mark.npm
@pytest.mark.pg
@pytest.mark.slow
def test_a_server_without_either_extension_says_how_to_enable_each(tmp_path_factory):
    """A server as installed, nothing preloaded, no HypoPG (PostgreSQL 16 from npm): the what-if and
    verify --traffic each say in one line what to do, and the rest runs as it did."""
    with pinned_server_or_skip("16", tmp_path_factory.mktemp("pg16")) as server:
        name = server.create_database()
        with server.connect(name) as conn:
            demo.load(conn, 0.01)
        url = server.url(name)
        dry_run = invoke("migrate", "--dry-run", "--dsn", url)
        assert dry_run.returncode == 0, dry_run.stderr
        assert dry_run.stdout.splitlines()[-2:] == [
            "what-if: skipped: HypoPG is not installed on this server (PostgreSQL 16.14): build it from source "
            "against this server's pg_config (https://github.com/HypoPG/hypopg, `make install`), or install "
            f"postgresql-16-hypopg from the PGDG repository, then run CREATE EXTENSION hypopg in database {name}",
            "dry run: nothing was changed"]
        assert invoke("migrate", "--dsn", url).returncode == 0
        verified = invoke("verify", "--traffic", "--dsn", url)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert f"warn  traffic: pg_stat_statements is not enabled: add it to shared_preload_libraries (a restart), " \
               f"then a superuser runs CREATE EXTENSION pg_stat_statements in database {name}; verify --traffic " \
               "reads the statements it counts from then on" in verified.stdout.splitlines()


@pytest.mark.skipif(not Path(PGBOUNCER).exists() and os.environ.get("CI") != "true",
                    reason="PgBouncer is not installed (apt-get install pgbouncer; .ci/run does)")
@pytest.mark.topology
@pytest.mark.slow
def test_traffic_through_a_transaction_pooler_leaves_nothing(traffic_db, server, tmp_path):
    """Every statement planned (before 16: prepared, explained, deallocated) through a transaction pool:
    no server connection of the pool keeps a prepared statement or a setting."""
    run_the_app(traffic_db, tmp_path, rounds=1)
    assert invoke("migrate", "--dsn", traffic_db.url).returncode == 0
    pooler = start_pooler(server, tmp_path / "pgbouncer", "transaction", pool_size=2)
    try:
        result = invoke("verify", "--traffic", "--dsn", pooler.conninfo(traffic_db.name))
        assert result.returncode == 0, result.stdout + result.stderr
        assert len([line for line in result.stdout.splitlines() if line.startswith("pass  traffic ")]) >= 8
        assert_pool_clean(pooler, traffic_db, 2)
    finally:
        pooler.stop()
