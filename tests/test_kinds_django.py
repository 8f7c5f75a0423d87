"""invoke django-state for every kind (issue 18, point 9): the Meta.indexes and Meta.constraints
lines (UniqueConstraint, CheckConstraint, Index(condition=Q(...))) are what Django's state needs,
and what Django would build from them is ours: on a database where Django's schema editor built
them, `invoke status` finds each one valid and identical (not foreign), migrate only records them,
and verify passes."""

import json
import re

import pytest

from kinds import EXAMPLE_IDS, next_migrations, remove_drift_duplicates
from support import invoke
from test_django_state import Project

pytest.importorskip("django", minversion="5.2")

MODELS = '''
from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=255, unique=True)


class Upload(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    uploaded_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=20, default="processing")

    class Meta:
        indexes = [{upload_indexes}]
        constraints = [{upload_constraints}]


class ClaimRecord(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    upload = models.ForeignKey(Upload, on_delete=models.PROTECT)
    decided_date = models.DateField(db_index=True)
    outcome = models.CharField(max_length=20)

    class Meta:
        indexes = [{claimrecord_indexes}]


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
        indexes = [{driftevent_indexes}]
        constraints = [{driftevent_constraints}]
'''

# Builds the generated migration's indexes and constraints as Django would (its schema editor).
DJANGO_BUILDS_THEM = '''
import importlib
import django
django.setup()
from django.apps import apps
from django.db import connection
migration = importlib.import_module("upstream.migrations.0002_next").Migration
with connection.schema_editor() as editor:
    for operation in migration.operations[0].state_operations:
        model = apps.get_model("upstream", operation.model_name)
        if hasattr(operation, "index"):
            editor.add_index(model, operation.index)
        else:
            editor.add_constraint(model, operation.constraint)
'''


class KindsProject(Project):
    def models(self, meta: dict[str, list[str]]) -> None:
        code = {f"{model}_{kind}": "".join(f"{line}, " for line in meta.get((model, kind), []))
                for model in ("upload", "claimrecord", "driftevent") for kind in ("indexes", "constraints")}
        (self.root / "upstream" / "models.py").write_text(MODELS.format(**code))

    def start(self, generated: str) -> None:
        self.models({})
        initial = self.manage("makemigrations", "upstream")
        assert initial.returncode == 0, initial.stdout + initial.stderr
        (self.root / "upstream" / "migrations" / "0002_next.py").write_text(generated)


def meta_lines(module: str) -> dict[tuple[str, str], list[str]]:
    blocks = re.findall(r'^#   model "(\w+)" \(table \w+\), Meta\.(indexes|constraints) \+= \[\n((?:#       .*\n)+)#   \]$',
                        module, re.MULTILINE)
    return {(model, kind): [line[len("#       "):].rstrip(",") for line in lines.splitlines()]
            for model, kind, lines in blocks}


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
        project = KindsProject(tmp_path / "project", server.conninfo(name))
        project.start(output.stdout)
        project.models(meta)
        check = project.manage("makemigrations", "--check", "--dry-run", "upstream")
        assert check.returncode == 0 and "No changes detected" in check.stdout, check.stdout + check.stderr
        built = project.run("-c", DJANGO_BUILDS_THEM)
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
