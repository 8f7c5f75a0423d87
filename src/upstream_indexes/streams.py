"""stdout and stderr that outlive their reader (`invoke status | head -1`)."""

import os
import sys
from typing import TextIO


class ReaderSafeStream:
    """A text stream (stdout, stderr) that drops what it is given once its reader has gone
    (`invoke status | head -1`), instead of raising BrokenPipeError: a migration is never
    stopped half-way, nor its --max-wait watchdog killed, because nobody reads its lines any
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
