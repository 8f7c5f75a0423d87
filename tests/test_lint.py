"""invoke lint: header grammar and squawk over migration files, no database; any finding fails; the TODO
lines of the header `invoke new` writes are findings until the author fills them in."""

import re

import pytest

from support import invoke

FORWARD = "0001.claim_cust_date_outcome_cov.sql"
ROLLBACK = "0001.claim_cust_date_outcome_cov.rollback.sql"
TODO_INDEX = "claim_cust_payer_date_cov"  # a pair `invoke new` writes, with TODO lines in its header


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_lint_passes_on_the_repo():
    result = invoke("lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lint: no findings" in result.stdout


def test_lint_passes_on_an_untouched_copy(migrations_copy):
    assert invoke("lint", "--migrations", str(migrations_copy)).returncode == 0


def test_lint_fails_on_a_plain_create_index(migrations_copy):
    edit(migrations_copy / FORWARD, "CREATE INDEX CONCURRENTLY", "CREATE INDEX")
    result = invoke("lint", "--migrations", str(migrations_copy))
    assert result.returncode == 1
    assert f"migrations/{FORWARD}:" in result.stdout and "require-concurrent-index-creation" in result.stdout
    assert (f"header grammar: {FORWARD}: statement 3: CREATE INDEX without CONCURRENTLY blocks the table's writes "
            "for the whole build: write CREATE INDEX CONCURRENTLY") in result.stdout
    assert "lint: 2 finding(s)" in result.stderr


def test_lint_lists_every_bad_file_not_only_the_first(migrations_copy):
    edit(migrations_copy / FORWARD, "-- transactional: false", "-- transactional: no")
    edit(migrations_copy / "0003.upload_cust_date_status_cov.rollback.sql", "DROP INDEX CONCURRENTLY IF EXISTS",
         "DROP INDEX CONCURRENTLY")
    (migrations_copy / "0009.orphan.rollback.sql").write_text("-- orphan\n-- transactional: false\n")
    result = invoke("lint", "--migrations", str(migrations_copy))
    assert result.returncode == 1
    header = [line for line in result.stdout.splitlines() if line.startswith("header grammar: ")]
    assert [line.split(":")[1].strip() for line in header] == [
        FORWARD, "0003.upload_cust_date_status_cov.rollback.sql", "0009.orphan.rollback.sql"], result.stdout


@pytest.mark.parametrize("file, old, new, rule", [
    (ROLLBACK, "DROP INDEX CONCURRENTLY", "DROP INDEX", "require-concurrent-index-deletion"),
    (ROLLBACK, "IF EXISTS ", "", "prefer-robust-stmts"),
    (FORWARD, "SET lock_timeout = '10min';\n", "", "require-lock-timeout"),
    (FORWARD, "SET statement_timeout = 0;\n", "", "require-statement-timeout"),
    (FORWARD, "CREATE INDEX CONCURRENTLY claim_cust_date_outcome_cov ON upstream_claimrecord USING btree "
              "(customer_id, decided_date DESC, outcome) INCLUDE (id);",
     "BEGIN;\nCREATE INDEX CONCURRENTLY claim_cust_date_outcome_cov ON upstream_claimrecord USING btree "
     "(customer_id, decided_date DESC, outcome) INCLUDE (id);\nCOMMIT;", "ban-concurrent-index-creation-in-transaction"),
])
def test_squawk_catches(migrations_copy, file, old, new, rule):
    edit(migrations_copy / file, old, new)
    result = invoke("lint", "--migrations", str(migrations_copy))
    assert result.returncode == 1
    assert any(line.startswith(f"migrations/{file}:") and f" {rule} " in line for line in result.stdout.splitlines()), \
        result.stdout


def test_if_not_exists_is_refused(migrations_copy):
    edit(migrations_copy / FORWARD, "CONCURRENTLY claim_cust", "CONCURRENTLY IF NOT EXISTS claim_cust")
    result = invoke("lint", "--migrations", str(migrations_copy))
    assert result.returncode == 1
    assert "would silently skip the INVALID index a failed build leaves" in result.stdout


def test_lint_without_migrations_fails_in_one_line(tmp_path):
    result = invoke("lint", "--migrations", str(tmp_path))
    assert result.returncode == 1
    assert result.stdout.strip() == f"header grammar: no migrations found in {tmp_path}"


@pytest.mark.slow
def test_a_missing_migrations_folder_is_bad_input(tmp_path):
    for task in ("lint", "sql", "status"):
        result = invoke(task, "--migrations", str(tmp_path / "nowhere"))
        assert result.returncode == 2, (task, result.stderr)
        assert result.stderr.strip() == f"error: --migrations: no such folder: {tmp_path / 'nowhere'}"


def test_lint_fails_while_a_header_still_says_todo(migrations_copy):
    made = invoke("new", TODO_INDEX, "--table", "upstream_claimrecord", "--columns", "customer_id, payer",
                  "--migrations", str(migrations_copy))
    assert made.returncode == 0, made.stdout + made.stderr
    forward = migrations_copy / f"0004.{TODO_INDEX}.sql"
    todo_lines = [number for number, line in enumerate(forward.read_text().splitlines(), 1) if "TODO" in line]
    assert len(todo_lines) == 4

    linted = invoke("lint", "--migrations", str(migrations_copy))
    assert linted.returncode == 1, linted.stdout + linted.stderr
    findings = [line for line in linted.stdout.splitlines() if line.startswith("header TODO: ")]
    assert [int(line.split(":")[2]) for line in findings] == todo_lines, linted.stdout
    assert findings[0].startswith(f"header TODO: migrations/0004.{TODO_INDEX}.sql:1: -- Covering index on")
    assert "no findings" not in linted.stdout and linted.stderr.strip() == "lint: 4 finding(s)"

    # Filled in, as the author does: no finding left.
    forward.write_text(re.sub(r"TODO ?", "", forward.read_text()))
    clean = invoke("lint", "--migrations", str(migrations_copy))
    assert clean.returncode == 0 and "lint: no findings" in clean.stdout, clean.stdout + clean.stderr
