"""The live display during a rollback (issue 23): DROP INDEX CONCURRENTLY has no phases in
pg_stat_progress_create_index, so the header said `starting` while the drop waited for a lock. In a real
terminal (tmux) it says it drops, and that it waits."""

from live import Holder, wait_until
from support import invoke
from test_terminal_80 import Tmux

CLAIM_INDEX = "claim_cust_date_outcome_cov"


def test_a_waiting_drop_says_dropping_not_starting(db, tmp_path):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    # A session that has read the claims holds ACCESS SHARE on the table: the drop waits for it.
    holder = Holder(db.connect(), read_table="upstream_claimrecord")
    terminal = Tmux(tmp_path, ["rollback", "--dsn", db.url, "--count", "3", "--yes", "--max-wait", "600"], width=100)
    try:
        header = f"  {CLAIM_INDEX}: dropping (DROP INDEX CONCURRENTLY): waiting for a lock"
        rows = wait_until(lambda: (rows := terminal.screen()) and header in rows and rows, "the drop's frame")
        assert not any(row.startswith(f"  {CLAIM_INDEX}: starting") for row in rows), "\n".join(rows)
        holder.release()
        wait_until(terminal.exited, "the rollback to end")
        assert any(row.startswith(f"0001.{CLAIM_INDEX}: rolled back in") for row in terminal.screen())
    finally:
        holder.release()
        terminal.close()
