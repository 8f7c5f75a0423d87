"""Named targets (issue 23): one settings file, several databases, each with its own URL variable and
defaults, chosen by `--target NAME`, as Flyway's and Sqitch's users expect. A target's database is its
own variable's and nothing else: no fallback to DATABASE_URL, libpq's environment or the demo."""

import pytest

from support import assert_all_built, clean_env, invoke

SETTINGS = """
[tool.upstream-indexes]
maintenance-work-mem = "1GB"

[tool.upstream-indexes.targets.staging]
dsn-env = "STAGING_DATABASE_URL"
maintenance-work-mem = "64MB"
max-parallel-maintenance-workers = 0

[tool.upstream-indexes.targets.production]
dsn-env = "PRODUCTION_DATABASE_URL"
max-wait = 120
"""


@pytest.fixture
def settings_file(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text(SETTINGS)
    return path


def env(settings_file, **variables):
    return clean_env(UPSTREAM_INDEXES_SETTINGS=str(settings_file), **variables)


@pytest.mark.slow
def test_a_target_is_its_own_variables_database_with_its_own_defaults(db, settings_file):
    staging = env(settings_file, STAGING_DATABASE_URL=db.url, DATABASE_URL="postgresql://nobody@127.0.0.1:1/x")
    status = invoke("status", "--target", "staging", env=staging)
    assert status.returncode == 1, status.stdout + status.stderr  # migrate has work to do there
    assert status.stdout.splitlines()[0].endswith("(from STAGING_DATABASE_URL, --target staging)"), status.stdout

    # Its settings over the section's: the build settings the script shows.
    script = invoke("sql", "--target", "staging", env=staging).stdout
    assert "SET maintenance_work_mem = '64MB';" in script and "SET max_parallel_maintenance_workers = '0';" in script
    assert "SET maintenance_work_mem = '1GB';" in invoke("sql", env=staging).stdout

    migrated = invoke("migrate", "--target", "staging", env=staging)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    with db.connect() as conn:
        assert_all_built(conn)
    assert invoke("verify", "--target", "staging", env=staging).returncode == 0
    assert invoke("history", "--target", "staging", env=staging).stdout.splitlines()[-1] == \
        "history: 3 entries, oldest first"


@pytest.mark.parametrize("args, variables, message", [
    (("status", "--target", "production"), {"DATABASE_URL": "postgresql://app@127.0.0.1:1/appdb"},
     "error: --target production: PRODUCTION_DATABASE_URL is not set (its dsn-env); nothing else is tried"),
    (("migrate", "--target", "qa"), {},
     "error: --target qa: no such target in {path} (targets: staging, production)"),
    (("status", "--target", "staging", "--dsn", "postgresql://app@127.0.0.1:1/appdb"),
     {"STAGING_DATABASE_URL": "postgresql://app@127.0.0.1:1/appdb"},
     "error: --dsn and --target staging together: give one"),
])
def test_a_target_that_cannot_be_used_is_one_line(settings_file, args, variables, message):
    result = invoke(*args, env=env(settings_file, **variables))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == message.format(path=settings_file)


@pytest.mark.parametrize("table, message", [
    ("[tool.upstream-indexes.targets.qa]\nmax-wait = 5\n",
     "[tool.upstream-indexes.targets.qa]: dsn-env is missing: each target names the environment variable "
     "holding its database URL"),
    ("[tool.upstream-indexes.targets.qa]\ndsn-env = \"QA_URL\"\nmax_wait = 5\n",
     "[tool.upstream-indexes.targets.qa]: unknown key 'max_wait'"),
    ("[tool.upstream-indexes]\ntargets = \"qa\"\n",
     "[tool.upstream-indexes.targets]: each target must be a table, [tool.upstream-indexes.targets.<name>]"),
])
def test_a_bad_target_table_is_one_line(tmp_path, table, message):
    path = tmp_path / "pyproject.toml"
    path.write_text(table)
    result = invoke("status", env=clean_env(UPSTREAM_INDEXES_SETTINGS=str(path)))
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: settings: {path} {message}"), line
