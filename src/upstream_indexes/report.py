"""What the operator sees: one line per event, redacted, on stdout."""

import sys
from contextlib import contextmanager
from typing import TextIO

from .config import redact
from .progress import Snapshot


def human_size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "-"
    size = float(size_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size_bytes} B"


class Reporter:
    """Prints lines; while a build runs, one line per phase change or new blocker."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out
        self._last_progress: tuple | None = None

    def line(self, text: str) -> None:
        print(redact(text), file=self.out, flush=True)

    @contextmanager
    def build(self, label: str):
        """Around one watched build: each build reports its phases afresh."""
        self._last_progress = None
        yield

    def progress(self, label: str, snap: Snapshot) -> None:
        key = (snap.phase, snap.blocker.pid if snap.blocker else None)
        if key == self._last_progress:
            return
        self._last_progress = key
        if snap.blocker:
            self.line(f"  {label}: {snap.phase or 'waiting for a lock'}: waiting for {snap.blocker.describe()}")
        elif snap.phase:
            self.line(f"  {label}: {snap.phase} ({snap.elapsed:.1f}s)")
