"""Connections: one place that opens them, names us, and turns failures into one line; and the two things
that end a wait on the server the server may never end: a look that gets no answer in time
(`answered_within`), and Ctrl-C (`interruptible`).

Every connection of ours (yoyo's too: `track`) is known here, so that a thread waiting on one can be
freed from another: `cut` shuts its socket down, and the waiting statement fails at once, whatever the
server or the network does. A server that vanishes without closing the connection is also noticed by
the kernel, through the keepalives every session asks for (config.SESSION_DEFAULTS).
"""

import _thread
import functools
import logging
import os
import signal
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import pq

from .config import DEFAULT_CONNECT_TIMEOUT, Target, connect_kwargs, connect_timeout, server_address
from .errors import EXIT_INTERRUPTED, INTERRUPTED, ConnectionProblem, NoAnswer, ToolError
from .redaction import redact

# A look of a wait or of the watchdog (a few catalog reads, milliseconds) that has no answer in this
# long: the server, or the path to it, stopped answering (a proxy that accepts packets and forwards
# none, a route that drops them).
ANSWER_SECONDS = 10.0
# After Ctrl-C: a statement still running this long is cancelled; one still running as long again
# after its cancel gets no answer from the server, and every connection of ours is cut.
INTERRUPT_GRACE = 0.25

# psycopg logs what it does on its own after a failure (a cancel that did not get through): we say
# what failed ourselves, in one line.
logging.getLogger("psycopg").addHandler(logging.NullHandler())
logging.getLogger("psycopg").propagate = False

_ours: "weakref.WeakSet[psycopg.Connection]" = weakref.WeakSet()
_ours_lock = threading.Lock()


def connect(target: Target, **kwargs) -> psycopg.Connection:
    """An autocommit connection, so that we never hold a transaction a concurrent build would wait for.

    Never server-side prepared (psycopg prepares a query it runs often): behind a transaction-mode
    pooler the next statement may land on another server session, where it does not exist.
    """
    try:
        conn = psycopg.connect(**connect_kwargs(target), autocommit=True, prepare_threshold=None, **kwargs)
    except psycopg.errors.ConnectionTimeout:
        # psycopg's own message names neither the server nor the limit.
        raise ConnectionProblem(f"cannot connect: no answer from {server_address(target)} within "
                                f"{connect_timeout(target)}s (connect_timeout in the DSN, else PGCONNECT_TIMEOUT, "
                                f"else {DEFAULT_CONNECT_TIMEOUT})") from None
    except psycopg.Error as exc:
        raise ConnectionProblem(f"cannot connect: {one_line(exc)}") from None
    return track(conn)


@contextmanager
def read_only_transaction(conn: psycopg.Connection) -> Iterator[None]:
    """A READ ONLY transaction, rolled back: no session setting, so nothing of ours stays on a server
    connection a pooler hands to the app's next client; every read in it sees one snapshot."""
    was = conn.read_only
    conn.read_only = True
    try:
        with conn.transaction(force_rollback=True):
            yield
    finally:
        if not conn.closed:  # its later transactions are as the caller had them
            conn.read_only = was


def track(conn: psycopg.Connection) -> psycopg.Connection:
    """Count `conn` among ours (for one yoyo opened: connect() counts its own)."""
    with _ours_lock:
        _ours.add(conn)
    return conn


def _our_connections() -> list[psycopg.Connection]:
    with _ours_lock:
        return [conn for conn in _ours if not conn.closed]


def cut(conn: psycopg.Connection) -> None:
    """Shut the connection's socket down, from any thread: a statement waiting on it fails at once
    (psycopg: the server closed the connection), however long the server or the network would
    keep it waiting. The server's session ends when it next reads or writes that socket."""
    try:
        fd = conn.pgconn.socket
    except psycopg.Error:
        return  # closed already
    with socket.socket(fileno=os.dup(fd)) as sock:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected any more


def busy(conn: psycopg.Connection) -> bool:
    """Whether a statement on `conn` waits for its answer (read from another thread: a status word)."""
    return not conn.closed and conn.pgconn.transaction_status == pq.TransactionStatus.ACTIVE


_unreachable = threading.Event()


def cut_all() -> None:
    """The server does not answer: cut every connection of ours to it, so that no cleanup on the way
    out waits for it either (the next run removes what a cleanup would have)."""
    _unreachable.set()
    for conn in _our_connections():
        cut(conn)


def server_unreachable() -> bool:
    """Whether this command found the server not answering and cut every connection of ours."""
    return _unreachable.is_set()


@contextmanager
def answered_within(conn: psycopg.Connection, seconds: float, what: str, others_too: bool = True) -> Iterator[None]:
    """The block's statements on `conn` must have their answers within `seconds` of its start; if not,
    NoAnswer is raised (`what`: what they were for, for its line). For the quick looks of a wait, whose
    silence means the server or the path to it is gone: then every connection of ours is cut, or with
    `others_too` false only `conn` (the watchdog, which tries to connect again first)."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        cut_all() if others_too else cut(conn)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except psycopg.Error:
        if expired.is_set():
            raise NoAnswer(seconds, what) from None
        raise
    finally:
        timer.cancel()
    if expired.is_set():
        raise NoAnswer(seconds, what)


def one_line(exc: BaseException) -> str:
    """The first meaningful line of a driver error, password-free."""
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # libpq puts the useful part last on multi-host attempts ("connection to server ... failed: <why>").
    return redact(lines[0] if len(lines) == 1 else "; ".join(lines[:2]))


# --- Ctrl-C -------------------------------------------------------------------------------------

class _Interrupt:
    """Ctrl-C while a command runs. Python raises KeyboardInterrupt in the main thread; inside a
    psycopg wait that would make psycopg cancel the statement itself, waiting up to 10 s for a
    server that may be gone. So there the handler only notes it, and a monitor thread ends the
    statement (a cancel, then a cut) and raises KeyboardInterrupt in the main thread once it is out
    of the wait. It also cancels the statements of the other threads (migrate --jobs, the watchdogs),
    and cuts every connection of ours once one does not end after its cancel: the server is not
    answering, and the cleanup on the way out must not wait for it either."""

    def __init__(self):
        self.requested = threading.Event()
        self.delivered = False  # KeyboardInterrupt raised in the main thread
        self._nudged = False  # the next SIGINT is the monitor's (interrupt_main), not the user's
        self._stopped = threading.Event()
        self._monitor: threading.Thread | None = None

    def on_sigint(self, signum, frame) -> None:
        nudged, self._nudged = self._nudged, False
        if self.delivered:
            if not nudged:  # a second Ctrl-C: do not wait for the cleanup's statements either
                cut_all()
            return
        self.requested.set()
        if self._monitor is None:
            self._monitor = threading.Thread(target=self._watch, name="interrupt", daemon=True)
            self._monitor.start()
        if _psycopg_waiting(frame):
            return  # the monitor ends that statement, then raises it
        self.delivered = True
        raise KeyboardInterrupt

    def deliver(self) -> None:
        """Raise KeyboardInterrupt here if Ctrl-C was pressed (the main thread marks it raised)."""
        if not self.requested.is_set():
            return
        if threading.current_thread() is threading.main_thread():
            self.delivered = True
        raise KeyboardInterrupt

    def _watch(self) -> None:
        seen: dict[psycopg.Connection, float] = {}  # busy connection -> since when (after Ctrl-C)
        cancelled: dict[psycopg.Connection, float] = {}
        while not self._stopped.wait(0.05):
            if not self.delivered:
                self._nudged = True
                _thread.interrupt_main()  # runs on_sigint in the main thread: raises once out of psycopg
            now = time.monotonic()
            for conn in _our_connections():
                if not busy(conn):
                    seen.pop(conn, None)
                    cancelled.pop(conn, None)
                    continue
                since = seen.setdefault(conn, now)
                if conn not in cancelled and now - since >= INTERRUPT_GRACE:
                    cancelled[conn] = now
                    threading.Thread(target=_cancel_quietly, args=(conn,), daemon=True).start()
                elif conn in cancelled and now - cancelled[conn] >= INTERRUPT_GRACE:
                    cut_all()

    def stop(self) -> None:
        self._stopped.set()


_interrupt = _Interrupt()
# psycopg waits for every answer in this method (a C loop that runs signal handlers between polls).
_PSYCOPG_WAIT = psycopg.Connection.wait.__code__


def _psycopg_waiting(frame) -> bool:
    while frame is not None:
        if frame.f_code is _PSYCOPG_WAIT:
            return True
        frame = frame.f_back
    return False


def _cancel_quietly(conn: psycopg.Connection) -> None:
    try:
        conn.cancel_safe(timeout=INTERRUPT_GRACE)
    except psycopg.Error:
        pass  # no answer: the monitor cuts it


@contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C during the block ends every wait of ours within about a second (_Interrupt), the server
    answering or not. Only the main thread handles signals; elsewhere, and nested, it changes nothing."""
    global _interrupt
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) == _interrupt.on_sigint:
        yield
        return
    _interrupt = _Interrupt()
    _unreachable.clear()
    previous = signal.signal(signal.SIGINT, _interrupt.on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _interrupt.stop()


def interrupted() -> bool:
    """Whether Ctrl-C was pressed during this command."""
    return _interrupt.requested.is_set()


def raise_if_interrupted() -> None:
    """KeyboardInterrupt if Ctrl-C was pressed: for a statement that failed because Ctrl-C ended it,
    and for the waits of the --jobs threads (they get no signal)."""
    _interrupt.deliver()


def pause(seconds: float) -> None:
    """time.sleep for a wait's poll, ended by Ctrl-C in any thread."""
    if _interrupt.requested.wait(seconds):
        _interrupt.deliver()


def translate_errors(func):
    """Decorator for task entry points: Ctrl-C ends the command (exit 130) within about a second; a
    driver error that escaped becomes one ToolError line (after Ctrl-C: the interruption)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with interruptible():
                return func(*args, **kwargs)
        except ToolError as exc:
            if interrupted() and exc.exit_code != EXIT_INTERRUPTED:
                raise ToolError(INTERRUPTED, EXIT_INTERRUPTED) from None
            raise
        except psycopg.Error as exc:
            if interrupted():
                raise ToolError(INTERRUPTED, EXIT_INTERRUPTED) from None
            raise ToolError(f"database error: {one_line(exc)}") from None
        except KeyboardInterrupt:
            raise ToolError(INTERRUPTED, EXIT_INTERRUPTED) from None

    return wrapper
