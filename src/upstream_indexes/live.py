"""The live display of an index build on a terminal (rich): the phase, a bar of blocks or
tuples done of total, the time left at the phase's pace, the elapsed time and, while the build
waits, the session it waits for.
When the output is not a terminal (CI logs, pipes) the plain LinePrinter prints one line per
phase instead, and this module (rich with it) is not imported at all (tasks.py)."""

import math
import re
import textwrap
from typing import TextIO

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.control import Control, ControlType
from rich.live import Live
from rich.live_render import LiveRender
from rich.padding import Padding
from rich.progress_bar import ProgressBar
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from . import events as ev, index_events
from .redaction import redact
from .watchdog import Snapshot
from .lines import LinePrinter, counted, plain_lines


_LABEL = re.compile(r"^(?:error|warning): ")


def fit(text: str, width: int) -> list[str]:
    """One line of output as rows of a terminal `width` columns wide: broken between words, each further
    row indented under the start (two more, or past an `error: ` label). The terminal's own wrap would cut
    a word and go on at column 0."""
    depth = len(text) - len(text.lstrip(" "))
    label = _LABEL.match(text)
    hang = " " * (len(label.group(0)) if label else depth + 2)
    return textwrap.wrap(text, width=max(width, 20), subsequent_indent=hang, break_on_hyphens=False) or [text]


def indented(text: str, style: str = "") -> RenderableType:
    """A line whose wrapped rest stays under its start (a terminal's own wrap goes to column 0)."""
    depth = len(text) - len(text.lstrip(" "))
    return Padding(Text(text.lstrip(" "), style=style), (0, 0, 0, depth), expand=False)


DROPPING = "dropping (DROP INDEX CONCURRENTLY)"


def render(label: str, snap: Snapshot, dropping: bool = False) -> RenderableType:
    """Laid out for 80 columns: the index and its phase on a line (the longest name and phase take
    70), the bar, count and time under it, the session the build waits for under that. A drop has
    no phases in pg_stat_progress_create_index: it says it drops, and whether it waits for a lock."""
    count = snap.counter
    bar = Table.grid(padding=(0, 1))
    bar.add_row(Text("   "), ProgressBar(total=count[1] if count else None,
                                         completed=count[0] if count else 0, width=20),
                Text(counted(snap)), Text(f"{snap.elapsed:.1f}s", style="dim"))
    doing = f"{DROPPING}{': waiting for a lock' if snap.blocker else ''}" if dropping else snap.phase or "starting"
    rows = [indented(f"  {label}: {doing}"), bar]
    if snap.blocker:
        rows.append(indented(redact(f"    waiting {snap.waiting_seconds:.0f}s for {snap.blocker.describe()}"),
                             style="yellow"))
    return Group(*rows)


class _ReflowAwareRender(LiveRender):
    """rich's LiveRender, erasing as many rows as its last frame takes now. A terminal made narrower
    rewraps (reflows) each line wider than it onto more rows; rich moves up one row per line, so the
    top of the old frame stayed on screen under the new one."""

    def __init__(self, renderable: RenderableType, console: Console):
        super().__init__(renderable)
        self._console = console
        self._widths: list[int] = []  # each line of the last frame, in cells

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        segments = list(super().__rich_console__(console, options))
        self._widths = [Segment.get_line_length(line) for line in Segment.split_lines(segments)]
        yield from segments

    def _rows(self) -> int:
        width = max(self._console.width, 1)
        return sum(max(1, math.ceil(line / width)) for line in self._widths) if self._shape else 0

    def position_cursor(self) -> Control:
        rows = self._rows()
        return Control(ControlType.CARRIAGE_RETURN, (ControlType.ERASE_IN_LINE, 2),
                       *((ControlType.CURSOR_UP, 1), (ControlType.ERASE_IN_LINE, 2)) * (rows - 1)) if rows else Control()

    def restore_cursor(self) -> Control:
        rows = self._rows()
        return Control(ControlType.CARRIAGE_RETURN,
                       *((ControlType.CURSOR_UP, 1), (ControlType.ERASE_IN_LINE, 2)) * rows) if rows else Control()


class LiveDisplay(LinePrinter):
    """The plain lines printed above a live display of the builds running (one with --jobs 1)."""

    def __init__(self, out: TextIO, console: Console | None = None):
        super().__init__(out)
        self.console = console or Console(file=out, emoji=False, highlight=False)
        self._live: Live | None = None
        self._running: dict[str, RenderableType] = {}  # each running build's part of the display
        self._blocker_pids: dict[str, int] = {}
        self._dropping: set[str] = set()  # indexes whose statements to come (or running) drop them

    def line(self, text: str) -> None:
        with self._lock:
            self.console.print("\n".join(fit(redact(text), self.console.width)), markup=False, highlight=False,
                               soft_wrap=True)

    def emit(self, event: ev.Event) -> None:
        with self._lock:
            match event:
                case index_events.Dropping() | index_events.DroppingLeftover():
                    self._dropping.add(event.index if isinstance(event, index_events.Dropping) else event.state.name)
                    super().emit(event)
                case index_events.StatementsStarted(index):
                    self._blocker_pids.pop(index, None)
                    self._running[index] = Text(f"  {index}: {DROPPING if index in self._dropping else 'starting'}")
                    if self._live is None:
                        # transient: the display goes when the builds end; the runner's lines say how each ended.
                        self._live = Live(Group(*self._running.values()), console=self.console,
                                          refresh_per_second=4, transient=True)
                        # rich has no parameter for it: its Live draws and erases through this attribute.
                        self._live._live_render = _ReflowAwareRender(self._live.renderable, self.console)
                        self._live.start(refresh=True)
                    else:
                        self._live.update(Group(*self._running.values()))
                case index_events.StatementsEnded(index):
                    self._running.pop(index, None)
                    self._dropping.discard(index)
                    if self._live is not None and self._running:
                        self._live.update(Group(*self._running.values()))
                    elif self._live is not None:
                        self._live.stop()
                        self._live = None
                case index_events.Progress(index, snap) if index in self._running:
                    self._running[index] = render(index, snap, dropping=index in self._dropping)
                    self._live.update(Group(*self._running.values()))
                    # Who held a build up stays on screen once it is over.
                    if snap.blocker and snap.blocker.pid != self._blocker_pids.get(index):
                        self._blocker_pids[index] = snap.blocker.pid
                        for text in plain_lines(event):
                            self.line(text)
                case _:
                    super().emit(event)
