"""invoke django-state: the output is a Django 5.2 migration a throwaway Django project accepts; an
index name longer than Django's 30 characters is left out of it (and `invoke new` refuses one unless
--long-name). Every kind (issue 18): what Django's schema editor builds from the Meta.constraints and
Index(condition=Q(...)) lines is ours (status finds each valid and identical, migrate only records it).
The project (an `upstream` app with minimal models of the schema doc's tables) is built in the
test; Django runs in subprocesses, as `manage.py` would, against the test's PostgreSQL."""

import json
import re
import subprocess
import sys

import pytest
from psycopg.conninfo import conninfo_to_dict

from kinds import EXAMPLE_IDS, next_migrations, remove_drift_duplicates
from support import EXPECTED_INDEXDEFS, clean_env, index_defs, invoke

pytest.importorskip("django", minversion="5.2")

# The app's models, minimal (the columns the migrations name, one index of the app's own per table),
# each Meta holding what a test adds: {<model>_indexes} and {<model>_constraints} (Project.models).
MODELS = '''
from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=255, unique=True)


class Upload(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    uploaded_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=20, default="processing")

    class Meta:
        indexes = [models.Index(fields=["customer", "uploaded_at"], name="upload_cust_date_idx"), {upload_indexes}]
        constraints = [{upload_constraints}]


class ClaimRecord(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    upload = models.ForeignKey(Upload, on_delete=models.PROTECT)
    decided_date = models.DateField(db_index=True)
    outcome = models.CharField(max_length=20)

    class Meta:
        indexes = [models.Index(fields=["customer", "decided_date"], name="claim_cust_decdate_idx"),
                   {claimrecord_indexes}]
        constraints = [{claimrecord_constraints}]


class ReportRun(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    status = models.CharField(max_length=20)
    started_at = models.DateTimeField()


class DriftEvent(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    report_run = models.ForeignKey(ReportRun, on_delete=models.CASCADE)
    payer = models.TextField()
    cpt_group = models.TextField()
    drift_type = models.CharField(max_length=30)
    created_at = models.DateTimeField(auto_now_add=True)
    severity = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["customer", "-created_at"], name="drift_cust_created_idx"),
                   {driftevent_indexes}]
        constraints = [{driftevent_constraints}]
'''

# Builds the indexes and constraints of the generated migration (upstream.migrations.<argv[1]>) as Django
# would (its schema editor).
DJANGO_BUILDS_THEM = '''
import importlib
import sys
import django
django.setup()
from django.apps import apps
from django.db import connection
migration = importlib.import_module(f"upstream.migrations.{sys.argv[1]}").Migration
with connection.schema_editor() as editor:
    for operation in migration.operations[0].state_operations:
        model = apps.get_model("upstream", operation.model_name)
        if hasattr(operation, "index"):
            editor.add_index(model, operation.index)
        else:
            editor.add_constraint(model, operation.constraint)
'''


class Project:
    """A throwaway Django project in a folder: settings for one PostgreSQL database, the upstream app."""

    def __init__(self, root, conninfo):
        self.root = root
        (root / "upstream" / "migrations").mkdir(parents=True)
        params = conninfo_to_dict(conninfo)
        database = {"ENGINE": "django.db.backends.postgresql", "NAME": params["dbname"],
                    "USER": params.get("user", ""), "PASSWORD": params.get("password", ""),
                    "HOST": params.get("host", ""), "PORT": str(params.get("port", ""))}
        (root / "settings.py").write_text(
            f'SECRET_KEY = "test"\nINSTALLED_APPS = ["upstream"]\nDATABASES = {{"default": {database!r}}}\n'
            'DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"\nUSE_TZ = True\n')
        (root / "upstream" / "__init__.py").write_text("")
        (root / "upstream" / "migrations" / "__init__.py").write_text("")

    def models(self, meta: dict[tuple[str, str], list[str]]) -> None:
        """models.py with these Meta lines (meta_lines: by model and "indexes" or "constraints")."""
        code = {f"{model}_{kind}": "".join(f"{line}, " for line in meta.get((model, kind), []))
                for model in ("upload", "claimrecord", "driftevent") for kind in ("indexes", "constraints")}
        (self.root / "upstream" / "models.py").write_text(MODELS.format(**code))

    def start(self, generated: str, name: str) -> None:
        """The app as it was before our migrations (its initial migration), then the generated one as `name`."""
        self.models({})
        initial = self.manage("makemigrations", "upstream")
        assert initial.returncode == 0, initial.stdout + initial.stderr
        (self.root / "upstream" / "migrations" / f"{name}.py").write_text(generated)

    def run(self, *args) -> subprocess.CompletedProcess:
        env = clean_env(PYTHONPATH=str(self.root), DJANGO_SETTINGS_MODULE="settings")
        return subprocess.run([sys.executable, *args], cwd=self.root, env=env, capture_output=True, text=True,
                              timeout=120)

    def manage(self, *args) -> subprocess.CompletedProcess:
        return self.run("-m", "django", *args)


def meta_lines(module: str) -> dict[tuple[str, str], list[str]]:
    """The Meta.indexes and Meta.constraints lines of each model, from the output's opening comment."""
    blocks = re.findall(r'^#   model "(\w+)" \(table \w+\), Meta\.(indexes|constraints) \+= \[\n((?:#       .*\n)+)#   \]$',
                        module, re.MULTILINE)
    return {(model, kind): [line[len("#       "):].rstrip(",") for line in lines.splitlines()]
            for model, kind, lines in blocks}


@pytest.mark.slow
def test_django_accepts_the_migration_and_its_meta_lines(db, server, tmp_path):
    output = invoke("django-state", "--after", "0001_initial")
    assert output.returncode == 0, output.stderr
    meta = meta_lines(output.stdout)
    assert meta == {
        ("claimrecord", "indexes"): ['models.Index(fields=["customer_id", "-decided_date", "outcome"], '
                                     'name="claim_cust_date_outcome_cov", include=["id"])'],
        ("driftevent", "indexes"): ['models.Index(fields=["customer_id", "-created_at", "severity"], '
                                    'name="drift_cust_date_sev_cov", include=["id"])'],
        ("upload", "indexes"): ['models.Index(fields=["customer_id", "-uploaded_at", "status"], '
                                'name="upload_cust_date_status_cov", include=["id"])'],
    }
    project = Project(tmp_path / "project", db.conninfo)
    project.start(output.stdout, "0002_covering_indexes")

    # State has them, models do not: the autodetector would drop them.
    drift = project.manage("makemigrations", "--check", "--dry-run", "upstream")
    assert drift.returncode == 1 and "Remove index claim_cust_date_outcome_cov" in drift.stdout, drift.stdout

    # Models with the Meta lines: models and state agree, nothing to migrate.
    project.models(meta)
    check = project.manage("makemigrations", "--check", "--dry-run", "upstream")
    assert check.returncode == 0 and "No changes detected" in check.stdout, check.stdout + check.stderr

    # The migration runs no SQL.
    sql = project.manage("sqlmigrate", "upstream", "0002")
    assert sql.returncode == 0, sql.stderr
    statements = [line for line in sql.stdout.splitlines() if line and not line.startswith("--")]
    assert statements == ["BEGIN;", "COMMIT;"] and "(no-op)" in sql.stdout, sql.stdout

    # On a database `invoke migrate` built: Django records 0002 and touches nothing.
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    with db.connect() as conn:
        before = conn.execute("SELECT relname, oid FROM pg_class WHERE relname = ANY(%s) ORDER BY 1",
                              [list(EXPECTED_INDEXDEFS)]).fetchall()
    assert project.manage("migrate", "upstream", "0001", "--fake").returncode == 0
    applied = project.manage("migrate", "upstream")
    assert applied.returncode == 0 and "Applying upstream.0002_covering_indexes... OK" in applied.stdout, applied.stderr
    with db.connect() as conn:
        after = conn.execute("SELECT relname, oid FROM pg_class WHERE relname = ANY(%s) ORDER BY 1",
                             [list(EXPECTED_INDEXDEFS)]).fetchall()
        assert after == before and len(after) == 3
        assert conn.execute("SELECT name FROM django_migrations WHERE app = 'upstream' ORDER BY id").fetchall() == [
            ("0001_initial",), ("0002_covering_indexes",)]


def test_the_index_django_would_build_is_ours(server, template, tmp_path):
    """Django's models.Index from the output, built by Django's schema editor, equals the migration files'."""
    name = server.create_database(template)
    try:
        project = Project(tmp_path / "project", server.conninfo(name))
        project.start(invoke("django-state", "--after", "0001_initial").stdout, "0002_covering_indexes")
        built = project.run("-c", DJANGO_BUILDS_THEM, "0002_covering_indexes")
        assert built.returncode == 0, built.stderr
        with server.connect(name) as conn:
            assert index_defs(conn) == {n: (definition, True) for n, definition in EXPECTED_INDEXDEFS.items()}
    finally:
        server.drop_database(name)


def test_django_state_needs_the_latest_migration_name():
    result = invoke("django-state")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: --after must name the upstream app's latest migration")


# --- index names Django cannot carry (models.E034: at most 30 characters; PostgreSQL's 63) --------

LONG_NAME = "upload_customer_status_uploaded_cov"  # 35 characters


def add_long_named_migration(folder):
    """A fourth pair, as a DBA would write it by hand (or `invoke new --long-name`), whose name is over 30."""
    for suffix in (".sql", ".rollback.sql"):
        text = (folder / f"0003.upload_cust_date_status_cov{suffix}").read_text()
        text = text.replace("upload_cust_date_status_cov", LONG_NAME).replace(
            "(customer_id, uploaded_at DESC, status)", "(customer_id, status, uploaded_at DESC)")
        (folder / f"0004.{LONG_NAME}{suffix}").write_text(text)


def test_new_refuses_a_name_django_cannot_carry_unless_told(migrations_copy):
    args = ("new", LONG_NAME, "--table", "upstream_upload", "--columns", "customer_id, status",
            "--migrations", str(migrations_copy))
    before = sorted(path.name for path in migrations_copy.iterdir())
    refused = invoke(*args)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.strip() == (
        f"error: NAME: {LONG_NAME} has 35 characters; Django's models.Index takes at most 30 (models.E034), so "
        "`invoke django-state` could not hand it to Django: choose a shorter name, or pass --long-name to keep "
        "it out of Django's state")
    assert sorted(path.name for path in migrations_copy.iterdir()) == before

    written = invoke(*args, "--long-name")
    assert written.returncode == 0, written.stdout + written.stderr
    assert (migrations_copy / f"0004.{LONG_NAME}.sql").exists()


@pytest.mark.slow
def test_django_state_leaves_a_long_name_out_and_django_accepts_it(db, migrations_copy, tmp_path):
    add_long_named_migration(migrations_copy)
    output = invoke("django-state", "--after", "0001_initial", "--migrations", str(migrations_copy))
    assert output.returncode == 0, output.stderr
    assert output.stderr.strip() == (
        f"warning: 0004.{LONG_NAME}: {LONG_NAME} is left out: its name is longer than Django's 30 characters "
        "(models.E034); Django will not know this index")
    assert f"#   {LONG_NAME} on upstream_upload (0004.{LONG_NAME})" in output.stdout
    meta = meta_lines(output.stdout)
    assert sorted(meta) == [("claimrecord", "indexes"), ("driftevent", "indexes"), ("upload", "indexes")]
    assert not any(LONG_NAME in line for lines in meta.values() for line in lines)

    project = Project(tmp_path / "project", db.conninfo)
    project.start(output.stdout, "0002_covering_indexes")
    project.models(meta)
    # Django's real system checks (models.E034 among them) and its autodetector: nothing to object to.
    check = project.manage("check")
    assert check.returncode == 0 and "no issues" in check.stdout, check.stdout + check.stderr
    changes = project.manage("makemigrations", "--check", "--dry-run", "upstream")
    assert changes.returncode == 0 and "No changes detected" in changes.stdout, changes.stdout + changes.stderr


# --- every kind (issue 18): Meta.constraints (UniqueConstraint, CheckConstraint), Index(condition=Q(...)) ---

@pytest.mark.slow
def test_every_kind_as_django_declares_it_and_builds_it_is_ours(server, template, tmp_path):
    folder = next_migrations(tmp_path / "migrations")
    output = invoke("django-state", "--after", "0001_initial", "--migrations", str(folder))
    assert output.returncode == 0, output.stderr
    meta = meta_lines(output.stdout)
    assert meta[("upload", "constraints")] == [
        'models.CheckConstraint(condition=models.Q(status__in=["processing", "success", "failed", "partial"]), '
        'name="upload_status_valid")']
    assert meta[("driftevent", "constraints")] == [
        'models.UniqueConstraint(fields=["customer_id", "report_run_id", "payer", "cpt_group", "drift_type"], '
        'name="drift_event_unique")']  # once: the promotion stands for its unique index
    assert meta[("upload", "indexes")][1] == (
        'models.Index(fields=["customer_id", "-uploaded_at"], name="upload_processing_cov", include=["id"], '
        'condition=models.Q(status="processing"))')

    name = server.create_database(template)
    try:
        with server.connect(name) as conn:
            remove_drift_duplicates(conn)
        project = Project(tmp_path / "project", server.conninfo(name))
        project.start(output.stdout, "0002_next")
        project.models(meta)
        check = project.manage("makemigrations", "--check", "--dry-run", "upstream")
        assert check.returncode == 0 and "No changes detected" in check.stdout, check.stdout + check.stderr
        built = project.run("-c", DJANGO_BUILDS_THEM, "0002_next")
        assert built.returncode == 0, built.stderr

        url = server.url(name)
        status = json.loads(invoke("status", "--json", "--dsn", url, "--migrations", str(folder)).stdout)
        assert {i["migration"]: i["final_state"] for i in status["indexes"]}.items() >= {
            i: "valid" for i in EXAMPLE_IDS}.items()
        assert status["exit_code"] == 1  # work to do: only records; not 4, nothing foreign
        migrated = invoke("migrate", "--dsn", url, "--migrations", str(folder))
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        for migration_id in EXAMPLE_IDS:
            assert f"{migration_id}: " in migrated.stdout and "recorded as applied" in migrated.stdout
        assert "building" not in migrated.stdout
        verified = invoke("verify", "--dsn", url, "--migrations", str(folder))
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        server.drop_database(name)


@pytest.mark.slow
@pytest.mark.parametrize("where, refused", [
    ("lower(status) = 'x'", "`lower(status) = 'x'` has no Q(...) here"),
    ("status = 'x' AND row_count > 1 OR row_count < 0", "`status = 'x' AND row_count > 1 OR row_count < 0` has no Q"),
])
def test_a_condition_django_cannot_say_is_refused(tmp_path, where, refused):
    folder = next_migrations(tmp_path / "migrations")
    forward = folder / "0007.upload_processing_cov.sql"
    forward.write_text(forward.read_text().replace("WHERE status = 'processing'", f"WHERE {where}"))
    output = invoke("django-state", "--after", "0001_initial", "--migrations", str(folder))
    assert output.returncode == 2 and output.stdout == ""
    assert output.stderr.startswith(f"error: 0007.upload_processing_cov: {refused}")
