"""A hard budget of time and memory for reading one message.

The parser is bounded by its caps (headers, parts, parameters, sizes), but the
caps are only as good as our knowledge of the standard library's slow paths,
and one message that runs away holds the poll lock and every other request
with it. So the parse itself runs in a child process with an address-space
limit (``RLIMIT_AS``) and a wall-clock deadline; past either, the child is
killed and the message becomes a ``ParsedMessage`` with a
``parse_budget_exceeded`` Problem, which sends it to review. A crashed child
(segfault, MemoryError, killed by the kernel) is the same Problem: the caller
never sees an exception for what a message does and is never kept waiting
longer than the deadline. Only a worker that cannot be started at all (no
processes left) raises ``ParserUnavailableError``, a temporary failure: that is
not the message's fault, and the message is read on the next run.

One long-lived worker parses message after message (a poll may read a
thousand); it is a fresh interpreter (``python -m erasure.parse.budget``)
rather than a fork of the caller, so it holds none of the caller's database
connections, sockets, threads or memory. After a breach it is replaced.

This is the parse package's one module with side effects (it starts
processes); ``parse_message`` itself stays pure.
"""

from __future__ import annotations

import atexit
import io
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self

from erasure.errors import ParserUnavailableError
from erasure.parse import ParsedMessage, parse_message, unread_message

DEFAULT_TIMEOUT_SECONDS = 20
DEFAULT_MEMORY_MB = 512
START_TIMEOUT_SECONDS = 60  # a fresh interpreter on a loaded machine; not part of any message's budget
READY = b"ready"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # so the worker imports this very copy of erasure


@dataclass(frozen=True)
class ParseBudget:
    """How long, and how much memory, one message may take to read."""

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    memory_mb: int = DEFAULT_MEMORY_MB


def _serve(conn: Connection, memory_bytes: int) -> None:
    """The worker: parse what arrives, answer with the ParsedMessage, until the socket closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))  # hard too: no way back up
    conn.send_bytes(READY)
    while True:
        try:
            limits = conn.recv()
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            parsed = parse_message(raw, **limits)
        except BaseException:  # parse_message never raises; this is a last line of defence
            parsed = unread_message(raw, "parse_budget_exceeded", "the parser stopped unexpectedly")
        del raw
        try:
            conn.send_bytes(pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL))
        except MemoryError:
            return  # the parent sees the pipe close: a crash, reported as over budget
        if any(p.code == "parse_budget_exceeded" for p in parsed.problems):
            return  # a MemoryError inside the parse: start afresh for the next message


class _ResultUnpickler(pickle.Unpickler):
    """The worker has read hostile bytes: from it we accept ParsedMessage and Problem, nothing else."""

    # datetime.date: ParsedMessage.controller_received_on (a date rebuilt from its 4 bytes, nothing more).
    ALLOWED = frozenset({("erasure.parse", "ParsedMessage"), ("erasure.parse.problems", "Problem"),
                         ("datetime", "date")})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not a parse result")
        return super().find_class(module, name)


def _load_result(data: bytes) -> object:
    return _ResultUnpickler(io.BytesIO(data)).load()


class ParseWorker:
    """One child process that parses messages within a budget; replaced after a breach."""

    def __init__(self, budget: ParseBudget = ParseBudget()) -> None:
        self.budget = budget
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()  # one message at a time through the one pipe

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The worker's process id (None until the first message): lets tests see a replacement."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> Connection:
        if self._conn is not None and self._process is not None and self._process.poll() is None:
            return self._conn
        self.close()
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-P", "-m", "erasure.parse.budget", str(theirs.fileno()),
                 str(self.budget.memory_mb * 1024 * 1024)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            ours.close()
            # Not the message's fault (no processes left, no interpreter): try again later, not review.
            raise ParserUnavailableError(
                f"the parser's worker process could not be started ({exc}); check the process and memory limits "
                f"of the account running erasure; the message stays in the mailbox and is read on the next run"
            ) from exc
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        try:  # the worker says when it is ready, so a worker that cannot even start is not blamed on a message
            ready = self._conn.poll(START_TIMEOUT_SECONDS) and self._conn.recv_bytes() == READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            code = self._process.poll()
            self.close()
            raise ParserUnavailableError(
                f"the parser's worker process did not start (exit code {code}); run `python -m erasure.parse.budget` "
                "to see why; the message stays in the mailbox and is read on the next run"
            )
        return self._conn

    def close(self) -> None:
        """Stop the worker (killed: it holds nothing worth finishing)."""
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()

    def parse(self, raw: bytes, **limits: Any) -> ParsedMessage:
        """``parse_message(raw, **limits)`` in the worker; over budget or crashed -> a review Problem."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._start()
                try:
                    conn.send(limits)
                    conn.send_bytes(raw)
                except OSError:
                    # The worker died before it had the message (killed while idle): one fresh start.
                    if attempt == 1:
                        self.close()
                        continue
                    return self._breach(raw, self._crash_text())
                # The clock starts once the worker holds the message, so a slow start on a
                # loaded machine does not count against the message.
                deadline = time.monotonic() + self.budget.timeout_seconds
                try:
                    ready = conn.poll(max(0.0, deadline - time.monotonic()))
                    result = _load_result(conn.recv_bytes()) if ready else None
                except (EOFError, OSError):
                    return self._breach(raw, self._crash_text())
                except pickle.UnpicklingError:
                    return self._breach(raw, "the parser process answered with something unexpected")
                if result is None:
                    return self._breach(
                        raw, f"reading it took longer than {self.budget.timeout_seconds:g} s (policy.parse_timeout_seconds)",
                    )
                if not isinstance(result, ParsedMessage):  # pragma: no cover - the worker only sends these
                    return self._breach(raw, "the parser process answered with something unexpected")
                if any(p.code == "parse_budget_exceeded" for p in result.problems):
                    self.close()  # a MemoryError in the worker: it exits; so do we, cleanly
                return result
            raise AssertionError("unreachable")  # pragma: no cover

    def _crash_text(self) -> str:
        process = self._process
        if process is None:  # pragma: no cover - only called after a start
            return "the parser process stopped"
        try:
            code = process.wait(2)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return (f"the parser process was stopped by {name}, most likely over the memory budget of "
                    f"{self.budget.memory_mb} MB (policy.parse_memory_mb)")
        return (f"the parser process stopped (exit code {code}), most likely over the memory budget of "
                f"{self.budget.memory_mb} MB (policy.parse_memory_mb)")

    def _breach(self, raw: bytes, why: str) -> ParsedMessage:
        self.close()  # never reuse a worker that overran: the next message gets a fresh one
        return unread_message(raw, "parse_budget_exceeded", why)


_workers: dict[ParseBudget, ParseWorker] = {}
_workers_lock = threading.Lock()


def parse_within_budget(raw: bytes, budget: ParseBudget = ParseBudget(), **limits: Any) -> ParsedMessage:
    """Parse one message in the shared worker for this budget (started on first use, stopped at exit)."""
    with _workers_lock:
        worker = _workers.get(budget)
        if worker is None:
            worker = _workers[budget] = ParseWorker(budget)
    return worker.parse(raw, **limits)


@atexit.register
def _stop_workers() -> None:
    for worker in list(_workers.values()):
        worker.close()
    _workers.clear()


if __name__ == "__main__":  # the worker: python -m erasure.parse.budget FD MEMORY_BYTES
    if len(sys.argv) != 3:
        sys.exit("the parse worker is started by erasure itself (python -m erasure.parse.budget FD MEMORY_BYTES)")
    _serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
