"""Index names Django cannot carry (issue 23): models.Index names are at most 30 characters (models.E034),
PostgreSQL's 63. `invoke new` refuses a longer name unless --long-name; `invoke django-state` leaves such an
index out of Meta and state alike, and Django's own system checks and autodetector accept what it prints."""

import pytest

from support import invoke
from test_django_state import Project, meta_lines

pytest.importorskip("django", minversion="5.2")

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


def test_django_state_leaves_a_long_name_out_and_django_accepts_it(db, migrations_copy, tmp_path):
    add_long_named_migration(migrations_copy)
    output = invoke("django-state", "--after", "0001_initial", "--migrations", str(migrations_copy))
    assert output.returncode == 0, output.stderr
    assert output.stderr.strip() == (
        f"warning: 0004.{LONG_NAME}: {LONG_NAME} is left out: its name is longer than Django's 30 characters "
        "(models.E034); Django will not know this index")
    assert f"#   {LONG_NAME} on upstream_upload (0004.{LONG_NAME})" in output.stdout
    meta = meta_lines(output.stdout)
    assert sorted(meta) == ["claimrecord", "driftevent", "upload"]
    assert not any(LONG_NAME in line for lines in meta.values() for line in lines)

    project = Project(tmp_path / "project", db.conninfo)
    project.start(output.stdout)
    project.models(meta)
    # Django's real system checks (models.E034 among them) and its autodetector: nothing to object to.
    check = project.manage("check")
    assert check.returncode == 0 and "no issues" in check.stdout, check.stdout + check.stderr
    changes = project.manage("makemigrations", "--check", "--dry-run", "upstream")
    assert changes.returncode == 0 and "No changes detected" in changes.stdout, changes.stdout + changes.stderr
