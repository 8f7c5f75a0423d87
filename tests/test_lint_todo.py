"""invoke lint and the header `invoke new` writes (issue 23): its TODO lines are findings until the
author has filled them in; "no findings" only then."""

import re

from support import invoke

NEW_INDEX = "claim_cust_payer_date_cov"


def test_lint_fails_while_a_header_still_says_todo(migrations_copy):
    made = invoke("new", NEW_INDEX, "--table", "upstream_claimrecord", "--columns", "customer_id, payer",
                  "--migrations", str(migrations_copy))
    assert made.returncode == 0, made.stdout + made.stderr
    forward = migrations_copy / f"0004.{NEW_INDEX}.sql"
    todo_lines = [number for number, line in enumerate(forward.read_text().splitlines(), 1) if "TODO" in line]
    assert len(todo_lines) == 4

    linted = invoke("lint", "--migrations", str(migrations_copy))
    assert linted.returncode == 1, linted.stdout + linted.stderr
    findings = [line for line in linted.stdout.splitlines() if line.startswith("header TODO: ")]
    assert [int(line.split(":")[2]) for line in findings] == todo_lines, linted.stdout
    assert findings[0].startswith(f"header TODO: migrations/0004.{NEW_INDEX}.sql:1: -- Covering index on")
    assert "no findings" not in linted.stdout and linted.stderr.strip() == "lint: 4 finding(s)"

    # Filled in, as the author does: no finding left.
    forward.write_text(re.sub(r"TODO ?", "", forward.read_text()))
    clean = invoke("lint", "--migrations", str(migrations_copy))
    assert clean.returncode == 0 and "lint: no findings" in clean.stdout, clean.stdout + clean.stderr
