"""invoke bench: a tiny quick run produces the whole report, writes only into
its own schema, and refuses databases that are not throwaways; so does the constraints
scenario (issue 18: the CHECK added back both ways, each data check against its work)."""

import json

import pytest

from support import EXPECTED_INDEXDEFS, clean_env, invoke
from upstream_indexes import app_queries
from upstream_indexes.paths import ROOT

pytestmark = pytest.mark.bench

TINY = ("--quick", "--scale", "0.004")  # 12k claims at the largest of its three sizes
ROUNDS = 3  # the quick run's rounds of the bare statement against ours


def public_state(conn) -> dict:
    """What lives in schema public: every relation, and the rows of the demo tables."""
    relations = sorted(row[0] for row in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"))
    counts = {table: conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()[0]
              for table in ("upstream_claimrecord", "upstream_driftevent", "upstream_upload")}
    return {"relations": relations, "rows": counts}


def bench_schema(conn):
    """(comment, relation count) of schema upstream_bench, or None when it does not exist."""
    return conn.execute(
        "SELECT obj_description(n.oid, 'pg_namespace'),"
        " (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid)"
        " FROM pg_namespace n WHERE n.nspname = 'upstream_bench'").fetchone()


@pytest.mark.slow
def test_quick_bench_writes_json_markdown_and_charts_and_touches_only_its_schema(db, tmp_path):
    with db.connect() as conn:
        before = public_state(conn)
    result = invoke("bench", *TINY, "--dsn", db.url, "--i-know-this-writes", "--out", str(tmp_path), timeout=480)
    assert result.returncode == 0, result.stderr

    (report_path,) = tmp_path.glob("*.json")
    report = json.loads(report_path.read_text())
    assert report_path.name.endswith("-quick-scale0.004.json")
    assert {"meta", "plan", "scales", "queries", "build_cost", "tool_overhead", "charts"} <= set(report)
    assert report["meta"]["postgresql"]["major"] >= 12
    assert report["meta"]["machine"]["nproc"] >= 1

    # Write stall at three sizes: every index built plain once, then in each round by the bare statement
    # and by ours (at the two largest sizes also without parallel workers); every write of every table recorded.
    assert [entry["scale"] for entry in report["scales"]] == [0.001, 0.002, 0.004]
    for number, entry in enumerate(report["scales"]):
        assert all(t["row_count"] > 0 for t in entry["tables"])
        arms = ["bare", "ours"] + (["ours_0_workers"] if number > 0 else [])
        assert {(row["mode"], row["round"], row["index"]) for row in entry["stall"]} == (
            {("plain", None, index) for index in EXPECTED_INDEXDEFS}
            | {(arm, r, index) for arm in arms for r in range(1, ROUNDS + 1) for index in EXPECTED_INDEXDEFS})
        for row in entry["stall"]:
            assert row["build_s"] > 0 and row["failed_writes"] == 0
            assert set(row["latency_ms"]) == {"p50", "p99", "max"}
            assert all(write["latency_ms"] > 20 and write["kind"] in ("insert", "update")
                       for write in row["slow_writes"])
            assert set(row["checkpoints"]) == {"counted", "started", "running"}
        # Each arm against the bare statement of the same round, per index and measure.
        compared = {(row["mode"], row["index"]): row for row in entry["against_bare"]}
        assert set(compared) == {(arm, index) for arm in arms for index in EXPECTED_INDEXDEFS}
        for (arm, index), row in compared.items():
            assert row["rounds"] == ROUNDS and len(row["build_s"]["ratios"]) == ROUNDS
            if arm == "bare":
                assert row["build_s"]["ratios"] == [1.0] * ROUNDS
        assert {row["mode"] for row in entry["slow_writes"]} == {"plain", *arms}
        whole = entry["whole_migrate"]
        assert [(row["jobs"], row["round"]) for row in whole["runs"]] == [(1, 1), (1, 2), (1, 3), (3, None)]
        assert whole["bare_median_s"] > 0
        assert all(row["whole_s"] >= row["builds_span_s"] > 0 and row["failed_writes"] == 0 for row in whole["runs"])
        assert [(t["mode"], t["round"]) for t in entry["timelines"]] == [("plain", None)] + [(arm, 1) for arm in arms]
        for timeline in entry["timelines"]:
            assert {w["index"] for w in timeline["windows"]} == set(EXPECTED_INDEXDEFS)
            for writes in timeline["writes"].values():
                assert len(writes["start_s"]) == len(writes["latency_ms"]) == len(writes["kind"]) > 5
                assert set(writes["kind"]) == {"i", "u"} and writes["failed"] == 0
    claims = [entry["tables"][0]["row_count"] for entry in report["scales"]]
    assert claims == sorted(claims) and claims[0] < claims[-1]

    # Query cost: every catalogue query for three customers; before, no covering index existed;
    # after, the largest customer's plan is an Index Only Scan on the expected index.
    queries = report["queries"]
    assert {row["query"] for row in queries} == {q.name for q in app_queries.load()}
    assert {row["customer"] for row in queries} == {"small", "median", "largest"}
    for row in queries:
        assert row["before"]["index"] not in EXPECTED_INDEXDEFS
        assert row["before"]["shared_buffers"] > 0 and row["buffers_ratio"] > 0
        if row["customer"] == "largest":
            assert row["after"]["index_only_on_expected"], row
            assert row["after"]["heap_fetches"] == 0, row

    assert len(report["build_cost"]) == 4 * len(EXPECTED_INDEXDEFS)
    overhead = {row["command"]: row for row in report["tool_overhead"]}
    assert set(overhead) == {"yoyo apply (nothing to do)", "Python, invoke and psycopg imported (the floor)",
                             "invoke --version (Python and invoke)",
                             "invoke --list (tasks.py too)",
                             "invoke migrate (nothing pending)", "invoke status", "invoke verify"}
    assert all(row["exit_codes"] == [0] and row["ratio_to_yoyo"] > 0 for row in overhead.values())
    per_build = report["per_build_overhead"]
    assert per_build["index"] == "claim_cust_date_outcome_cov" and len(per_build["rounds"]) == ROUNDS
    for row in per_build["rounds"]:
        assert row["ours_s"] > row["start_s"] > 0 and row["bare_s"] > 0 and row["build_s"] > 0

    for chart in report["charts"].values():
        assert (tmp_path / chart).read_bytes().startswith(b"\x89PNG")
    summary = (tmp_path / report_path.name.replace(".json", ".md")).read_text()
    for heading in ("## Query cost", "## Ours against the bare statement", "## Writes over 20 ms",
                    "## A plain CREATE INDEX", "## Whole migrate", "## Per-build overhead", "## Build cost",
                    "## Tool overhead against `yoyo apply`", "## How it was measured"):
        assert heading in summary
    for chart in report["charts"].values():
        assert f"]({chart})" in summary

    # It wrote only into its own schema, marked, and emptied it at the end.
    with db.connect() as conn:
        assert public_state(conn) == before
        comment, relations = bench_schema(conn)
    assert comment.startswith("created by invoke bench") and relations == 0


def test_bench_refuses_a_database_holding_other_data(db, tmp_path):
    result = invoke("bench", *TINY, "--dsn", db.url, "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: refusing to benchmark in database ")
    assert "--i-know-this-writes" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    with db.connect() as conn:
        assert bench_schema(conn) is None
    assert list(tmp_path.iterdir()) == []


def test_bench_will_not_reuse_a_schema_it_did_not_create(db, tmp_path):
    with db.connect() as conn:
        conn.execute("CREATE SCHEMA upstream_bench; CREATE TABLE upstream_bench.keep_me (id int)")
    result = invoke("bench", *TINY, "--dsn", db.url, "--i-know-this-writes", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "already has a schema upstream_bench that the benchmark did not create" in result.stderr
    with db.connect() as conn:
        assert bench_schema(conn) == (None, 1)


@pytest.mark.parametrize("scale, message", [("lots", "--scale must be a number"), ("0", "--scale must be a number above 0")])
def test_bench_rejects_a_bad_scale_before_connecting(scale, message):
    result = invoke("bench", "--scale", scale, "--dsn", "postgresql://nobody@127.0.0.1:1/none", env=clean_env())
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {message}")


def test_write_latency_legend_names_every_shade(monkeypatch):
    """Issue 15: every build is shaded from 0 s, and where they overlap the shades mix; the legend
    named the dots only. Issue 22: the bare statement is one of them."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import charts

    newest = sorted((ROOT / "benchmarks/results").glob("*-pg18-quick-scale0.1.json"))[-1]
    figure = charts._write_latency(json.loads(newest.read_text()))
    for ax in figure.axes:
        labels = [text.get_text() for text in ax.get_legend().get_texts()]
        for build in ("plain CREATE INDEX build", "bare CREATE INDEX CONCURRENTLY build", "invoke migrate build",
                      "several builds (overlapping shades)"):
            assert any(build in label for label in labels), (build, labels)


@pytest.mark.slow
def test_constraints_bench_reports_every_step_and_touches_only_its_schema(db, tmp_path):
    with db.connect() as conn:
        before = public_state(conn)
    result = invoke("bench", "--constraints", "--scale", "0.004", "--dsn", db.url, "--i-know-this-writes", "--out",
                    str(tmp_path), timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    (report_path,) = tmp_path.glob("*.json")
    assert report_path.name.endswith("-constraints-scale0.004.json")
    report = json.loads(report_path.read_text())
    steps = ("django_add_constraint", "migrate_whole", "data check", "ADD ... NOT VALID", "VALIDATE")
    assert set(steps) <= set(report["check"])
    for step in steps:  # a step of milliseconds at this scale may see no write: only the whole run surely does
        assert report["check"][step]["seconds"] > 0 and report["check"][step]["failed_writes"] == 0, step
    assert report["check"]["migrate_whole"]["writes"] > 0
    assert {"data check", "ADD ... NOT VALID", "VALIDATE"} == set(report["foreign_key"])
    assert report["unique"]["data_check_s"] > 0 and report["unique"]["build_s"] > 0
    markdown = report_path.with_suffix(".md").read_text()
    assert "| Django: ALTER TABLE ... ADD CONSTRAINT ... CHECK |" in markdown
    assert "| the unique index on " in markdown
    with db.connect() as conn:
        assert public_state(conn) == before
        assert bench_schema(conn)[1] == 0  # emptied after the run
