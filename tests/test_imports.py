"""Issue 22: each command imports only what it needs, so that a no-op `invoke migrate`, `status` and
`verify` cost about what `yoyo apply` with nothing to do costs (docs/performance.md, "The tool's own
overhead", measures it; no time is asserted here). Which modules a whole `invoke` process imported,
by `python -X importtime`; piped output, as in CI and scripts."""

import subprocess

import pytest

from support import ROOT, clean_env, invoke, invoke_argv

# Loaded only by the commands that use them: yoyo when a build or drop opens the ledger, rich on a
# terminal, HypoPG's what-if on request, the benchmark's matplotlib for `invoke bench`. (sqlparse reads
# the migration files, which every command checks before it connects: only `--list` goes without it.)
ONLY_WHEN_NEEDED = ("yoyo", "rich", "matplotlib", "upstream_indexes.whatif", "upstream_indexes.live")


def imported(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `invoke <args>` under -X importtime; its result and the top-level names of what it imported
    (our own modules by their full name)."""
    argv = invoke_argv(*args)
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=ROOT, env=env or clean_env(),
                          capture_output=True, text=True, timeout=300)
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            module = line.rsplit("|", 1)[1].strip()
            names.add(module if module.startswith("upstream_indexes.") else module.split(".")[0])
    return done, names


def loaded(names: set[str]) -> set[str]:
    return {name for name in ONLY_WHEN_NEEDED if name in names}


@pytest.mark.parametrize("args", [["--list"], ["--help", "verify"], ["--help", "db.reset"], ["--help", "new"]])
def test_listing_the_tasks_or_a_task_s_help_imports_none_of_the_commands(args):
    # The defaults and limits the help states (the demo's scale, verify's --top, Django's name length) come
    # from upstream_indexes.defaults, which imports nothing: no driver for the help.
    done, names = imported(*args)
    assert done.returncode == 0 and ("migrate" in done.stdout or "Usage" in done.stdout), done.stderr
    assert loaded(names) == set() and not names & {"sqlparse", "psycopg"}
    assert not names & {"upstream_indexes.runner", "upstream_indexes.embedded", "upstream_indexes.docs"}


@pytest.mark.slow
@pytest.mark.parametrize("command", [["status"], ["verify"], ["migrate"]])
def test_a_command_with_nothing_to_do_loads_neither_yoyo_nor_rich(db, command):
    first, names = imported("migrate", "--dsn", db.url)
    assert first.returncode == 0, first.stderr
    # The builds opened the ledger: yoyo and sqlparse were loaded then (the check below can fail).
    assert {"yoyo", "sqlparse"} <= names and not names & {"rich", "upstream_indexes.whatif"}
    again, names = imported(*command, "--dsn", db.url)
    assert again.returncode == 0, again.stderr
    assert loaded(names) == set(), command


@pytest.mark.slow
def test_a_rollback_loads_yoyo_to_remove_the_record(db):
    assert imported("migrate", "--dsn", db.url)[0].returncode == 0
    done, names = imported("rollback", "--dsn", db.url)
    assert done.returncode == 0, done.stderr
    assert {"yoyo", "sqlparse"} <= names and "rich" not in names


def test_dry_run_loads_the_what_if(db):
    done, names = imported("migrate", "--dsn", db.url, "--dry-run")
    assert done.returncode == 0, done.stderr  # without HypoPG on the server it says so and goes on
    assert "upstream_indexes.whatif" in names and "yoyo" not in names


def test_the_bench_help_loads_no_benchmark():
    """`invoke --help bench` shows the held-snapshot scenario's defaults (benchmarks/__init__.py) without
    loading the scenario (held_snapshot.py: psycopg) or any other benchmark module."""
    done, names = imported("--help", "bench")
    assert done.returncode == 0, done.stderr
    shown = " ".join(done.stdout.split())  # as wrapped to the terminal's width
    assert "(default 60)" in shown and "(default 10)" in shown and "(default scale 0.1)" in shown
    benchmarks = [line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
                  if line.startswith("import time:") and "| " in line and "benchmarks" in line.rsplit("|", 1)[1]]
    assert benchmarks == ["benchmarks"] and loaded(names) == set() and "psycopg" not in names


@pytest.mark.parametrize("no_bytecode", [False, True])
def test_the_package_s_bytecode_is_cached_under_invoke_unless_python_is_told_not_to(tmp_path, no_bytecode):
    """invoke turns Python's bytecode cache off; tasks.py turns it back on for the package's modules, so that
    an editable install does not compile them on every command, and leaves it off under
    PYTHONDONTWRITEBYTECODE. PYTHONPYCACHEPREFIX puts the cache in an empty folder of the test's."""
    env = {k: v for k, v in clean_env(PYTHONPYCACHEPREFIX=str(tmp_path)).items() if k != "PYTHONDONTWRITEBYTECODE"}
    if no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = invoke("sql", env=env)
    assert done.returncode == 0, done.stderr
    cached = {path.name.split(".")[0] for path in tmp_path.rglob("*.pyc") if "upstream_indexes" in path.parts}
    if no_bytecode:
        assert cached == set()
    else:
        assert {"migrations", "sqlscript", "grammar"} <= cached
