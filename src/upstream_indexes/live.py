"""The live display of an index build on a terminal (rich): the phase, a bar of blocks or
tuples done of total, the time left at the phase's pace, the elapsed time and, while the build
waits, the session it waits for.
When the output is not a terminal (CI logs, pipes) the plain LinePrinter prints one line per
phase instead."""

from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.padding import Padding
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from . import events as ev
from .redaction import redact
from .watchdog import Snapshot
from .lines import LinePrinter, counted, plain_lines


def printer_for(out: TextIO) -> LinePrinter:
    """The live display on a terminal, plain lines anywhere else."""
    return LiveDisplay(out) if out.isatty() else LinePrinter(out)


def indented(text: str, style: str = "") -> RenderableType:
    """A line whose wrapped rest stays under its start (a terminal's own wrap goes to column 0)."""
    depth = len(text) - len(text.lstrip(" "))
    return Padding(Text(text.lstrip(" "), style=style), (0, 0, 0, depth), expand=False)


def render(label: str, snap: Snapshot) -> RenderableType:
    """Laid out for 80 columns: the index and its phase on a line (the longest name and phase take
    70), the bar, count and time under it, the session the build waits for under that."""
    count = snap.counter
    bar = Table.grid(padding=(0, 1))
    bar.add_row(Text("   "), ProgressBar(total=count[1] if count else None,
                                         completed=count[0] if count else 0, width=20),
                Text(counted(snap)), Text(f"{snap.elapsed:.1f}s", style="dim"))
    rows = [indented(f"  {label}: {snap.phase or 'starting'}"), bar]
    if snap.blocker:
        rows.append(indented(redact(f"    waiting {snap.waiting_seconds:.0f}s for {snap.blocker.describe()}"),
                             style="yellow"))
    return Group(*rows)


class LiveDisplay(LinePrinter):
    """The plain lines printed above a live display of the builds running (one with --jobs 1)."""

    def __init__(self, out: TextIO, console: Console | None = None):
        super().__init__(out)
        self.console = console or Console(file=out, emoji=False, highlight=False)
        self._live: Live | None = None
        self._running: dict[str, RenderableType] = {}  # each running build's part of the display
        self._blocker_pids: dict[str, int] = {}

    def line(self, text: str) -> None:
        with self._lock:
            self.console.print(indented(redact(text)), markup=False, highlight=False)

    def emit(self, event: ev.Event) -> None:
        with self._lock:
            match event:
                case ev.StatementsStarted(index):
                    self._blocker_pids.pop(index, None)
                    self._running[index] = Text(f"  {index}: starting")
                    if self._live is None:
                        # transient: the display goes when the builds end; the runner's lines say how each ended.
                        self._live = Live(Group(*self._running.values()), console=self.console,
                                          refresh_per_second=4, transient=True)
                        self._live.start(refresh=True)
                    else:
                        self._live.update(Group(*self._running.values()))
                case ev.StatementsEnded(index):
                    self._running.pop(index, None)
                    if self._live is not None and self._running:
                        self._live.update(Group(*self._running.values()))
                    elif self._live is not None:
                        self._live.stop()
                        self._live = None
                case ev.Progress(index, snap) if index in self._running:
                    self._running[index] = render(index, snap)
                    self._live.update(Group(*self._running.values()))
                    # Who held a build up stays on screen once it is over.
                    if snap.blocker and snap.blocker.pid != self._blocker_pids.get(index):
                        self._blocker_pids[index] = snap.blocker.pid
                        for text in plain_lines(event):
                            self.line(text)
                case _:
                    super().emit(event)
