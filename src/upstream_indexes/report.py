"""What the operator sees: one line per event, redacted, on stdout."""

import os
import sys
import threading
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


class ReaderSafeStream:
    """A text stream (stdout, stderr) that drops what it is given once its reader has gone
    (`invoke status | head -1`), instead of raising BrokenPipeError: a migration is never
    stopped half-way, nor its --max-wait watcher killed, because nobody reads its lines any
    more, and the process ends with its own exit code and no traceback."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._discard_from_now_on()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._discard_from_now_on()

    def _discard_from_now_on(self) -> None:
        self.reader_gone = True
        # What the stream still buffers is flushed at exit: into /dev/null, not the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def guard_standard_streams() -> None:
    """Make sys.stdout and sys.stderr ReaderSafeStreams (once), for everything printed after."""
    if not isinstance(sys.stdout, ReaderSafeStream):
        sys.stdout = ReaderSafeStream(sys.stdout)
    if not isinstance(sys.stderr, ReaderSafeStream):
        sys.stderr = ReaderSafeStream(sys.stderr)


class Reporter:
    """Prints lines; while builds run (several with --jobs, each from its own thread), one line per
    phase change or new blocker of each."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out
        self._last_progress: dict[str, tuple] = {}  # each build's last phase and blocker shown
        self._lock = threading.RLock()  # whole lines, never two interleaved

    def line(self, text: str) -> None:
        with self._lock:
            print(redact(text), file=self.out, flush=True)

    @contextmanager
    def build(self, label: str):
        """Around one watched build: each build reports its phases afresh."""
        self._last_progress.pop(label, None)
        yield

    def progress(self, label: str, snap: Snapshot) -> None:
        key = (snap.phase, snap.blocker.pid if snap.blocker else None)
        if self._last_progress.get(label) == key:
            return
        self._last_progress[label] = key
        if snap.blocker:
            self.line(f"  {label}: {snap.phase or 'waiting for a lock'}: waiting for {snap.blocker.describe()}")
        elif snap.phase:
            self.line(f"  {label}: {snap.phase} ({snap.elapsed:.1f}s)")
