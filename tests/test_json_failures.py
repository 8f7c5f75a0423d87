"""--json when the command line itself is wrong: still exactly one JSON document on stdout (the
README promises it for every run), with the same one `error:` line on stderr and exit 2, nothing
connected to."""

import pytest

from support import invoke, json_report

FAILURES = {
    "an unknown flag": (["migrate", "--frob"], "unknown task or flag '--frob'"),
    "a bad number": (["migrate", "--max-wait", "abc"], "--max-wait must be a number >= 0.1, not 'abc'"),
    "a flag without its value": (["migrate", "--dsn"], "--dsn needs a value"),
    "a bad size": (["migrate", "--maintenance-work-mem", "lots"], "--maintenance-work-mem must be a size"),
    "an empty --to": (["migrate", "--to", " "], "--to is empty"),
    "--count with --all": (["rollback", "--count", "2", "--all"], "--count and --all together: give one"),
    "a bad --count": (["rollback", "--count", "0"], "--count must be a number >= 1, not '0'"),
    "no such --migrations folder": (["status", "--migrations", "/nonexistent"], "--migrations: no such folder"),
    "an unknown flag of status": (["status", "--bogus"], "unknown task or flag '--bogus'"),
    "an unknown flag of verify": (["verify", "--frob"], "unknown task or flag '--frob'"),
    "a stray word after verify": (["verify", "strictly"], "unknown task or flag 'strictly'"),
}


@pytest.mark.parametrize("args, message", FAILURES.values(), ids=FAILURES.keys())
def test_a_usage_error_under_json_prints_one_document(args, message):
    result = invoke(args[0], "--json", *args[1:])
    doc = json_report(result)  # exactly one document, valid against the schema, its exit_code the process's
    assert result.returncode == 2
    assert doc["command"] == args[0] and doc["database"] is None and message in doc["error"]
    errors = result.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {doc['error']}"), result.stderr
