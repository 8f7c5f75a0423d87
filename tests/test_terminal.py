"""The live display in a real terminal: `invoke` runs in tmux (a real pseudo-terminal and a terminal that
rewraps its lines on resize, as most do); the screen is read back with capture-pane. At 80 columns no row
is wrapped by the terminal (which cuts words and goes on at column 0): the tool breaks its lines between
words, indented; a resize mid-build leaves no stale frame; a rollback's waiting drop says it drops
(DROP INDEX CONCURRENTLY has no phases in pg_stat_progress_create_index), not `starting`."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid

import pytest

from live import Holder, wait_until
from support import CLAIM_INDEX, CLAIMS, clean_env, invoke
from upstream_indexes.paths import ROOT

FRAME_HEADER = f"  {CLAIM_INDEX}: waiting for writers before build"


class Tmux:
    """A tmux server of its own (its own socket) running one command in a window of a given size."""

    def __init__(self, tmp_path, args, width):
        if not shutil.which("tmux"):
            if os.environ.get("CI"):
                raise AssertionError("tmux is not installed (.ci/run installs it)")
            pytest.skip("tmux is not installed")
        self.socket = f"upstream-indexes-test-{uuid.uuid4().hex[:8]}"
        script = tmp_path / "run.sh"
        variables = " ".join(f"{name}={shlex.quote(value)}" for name, value in clean_env().items()
                             if re.fullmatch(r"[A-Za-z_]\w*", name))
        script.write_text(f"cd {shlex.quote(str(ROOT))} && exec env -i {variables} TERM=xterm-256color "
                          f"{shlex.quote(sys.executable)} -m invoke {' '.join(map(shlex.quote, args))}\n")
        self.tmux("new-session", "-d", "-x", str(width), "-y", "100", "sh", str(script))
        self.tmux("set-option", "-t", "0", "remain-on-exit", "on")

    def tmux(self, *args) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True,
                              timeout=30).stdout

    def screen(self, joined=False) -> list[str]:
        """The window's rows, or with `joined` the lines the terminal wrapped joined back (capture-pane -J)."""
        text = self.tmux("capture-pane", "-p", "-t", "0", *(["-J"] if joined else []))
        rows = [row.rstrip() for row in text.splitlines() if not row.startswith("Pane is dead")]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def exited(self) -> bool:
        return self.tmux("display-message", "-p", "-t", "0", "#{pane_dead}").strip() == "1"

    def resize(self, width) -> None:
        self.tmux("resize-window", "-t", "0", "-x", str(width))

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def blocked(db):
    """An uncommitted write on the claims: the claim build waits for it before it builds."""
    holder = Holder(db.connect(), write_table=CLAIMS)
    yield holder
    holder.release()


@pytest.mark.slow
def test_at_80_columns_no_row_is_wrapped_by_the_terminal(db, blocked, tmp_path):
    terminal = Tmux(tmp_path, ["migrate", "--dsn", db.url, "--max-wait", "2", "--retries", "0"], width=80)
    try:
        wait_until(terminal.exited, "migrate to give up waiting", timeout=120)
        rows, lines = terminal.screen(), terminal.screen(joined=True)
    finally:
        terminal.close()
    text = "\n".join(rows)
    assert any(row.startswith("error: ") for row in rows), text
    # Nothing the terminal wrapped: -J (which joins what the terminal wrapped) changes nothing.
    assert rows == lines, text
    assert all(len(row) <= 80 for row in rows), text
    # The long lines went on indented: the building line, the blocker, the error (past `error: `).
    error = rows.index(next(row for row in rows if row.startswith("error: ")))
    assert len(rows[error]) > 60 and rows[error + 1].startswith("       ") and rows[error + 1][7] != " ", text
    assert "waited more than 2s" in " ".join(row.strip() for row in rows[error:]), text
    building = next(i for i, row in enumerate(rows) if row.startswith(f"0001.{CLAIM_INDEX}: building"))
    assert rows[building + 1].startswith("  ") and not rows[building + 1].startswith("   "), text


def test_a_resize_mid_build_leaves_no_stale_frame(db, blocked, tmp_path):
    terminal = Tmux(tmp_path, ["migrate", "--dsn", db.url, "--max-wait", "600"], width=120)
    try:
        wait_until(lambda: any(row == FRAME_HEADER for row in terminal.screen()), "the live frame")
        # The frame's waiting line holds the blocker's query: at 120 columns one or two rows, which a
        # terminal made narrower rewraps onto more.
        wait_until(lambda: any(row.startswith("    waiting ") for row in terminal.screen()), "the blocker")
        terminal.resize(70)
        # Redrawn at the new width (4 times a second): its rows fit it.
        wait_until(lambda: all(len(row) <= 70 for row in terminal.screen()[-4:]), "a frame at 70 columns")
        wait_until(lambda: any(re.search(r"\b[2-9]\.\ds$", row) for row in terminal.screen()), "a later frame")
        rows = terminal.screen()
        # One frame: one header, one bar (a stale frame leaves its top rows above the new one).
        assert [row for row in rows if row == FRAME_HEADER] == [FRAME_HEADER], "\n".join(rows)
        assert len([row for row in rows if "━" in row]) == 1, "\n".join(rows)
    finally:
        blocked.release()
        terminal.close()


def test_a_waiting_drop_says_dropping_not_starting(db, tmp_path):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    # A session that has read the claims holds ACCESS SHARE on the table: the drop waits for it.
    holder = Holder(db.connect(), read_table=CLAIMS)
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
