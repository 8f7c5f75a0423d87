"""invoke bench --constraints (issue 18, point 11) at a tiny scale: the whole report (the CHECK added
back both ways with the worst write of each step; each data pre-check against the work it guards),
written only into the bench's own schema."""

import json

from support import invoke
from test_bench import bench_schema, public_state


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
