"""Write-behind for a web worker's hot paths: records are queued in memory with the function that
writes them, and a background thread writes them in batches, one transaction per batch (each
function once, with all its records, in the order the functions were first queued).

Used for gate decisions and webhook receipts: the answer does not wait for its own rows, and a
batch costs one commit instead of one per request. What this trades:
- a decision is in the database within `interval` seconds of its answer, not before;
- a worker killed with SIGKILL loses what it had not yet written (a graceful stop — SIGTERM,
  gunicorn's reload, interpreter exit — writes it first);
- while the database is unreachable the records stay queued and are tried again; when
  `max_pending` records are waiting, `add` refuses (the caller answers 503) rather than drop one;
- a record that cannot be written (the database refuses what it holds — a row it refers to was
  deleted meanwhile — or the writer fails on it) is logged whole at ERROR and not retried, so it
  cannot hold up the records behind it; the rest of its batch is written one by one.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from connector.errors import APIError

log = logging.getLogger(__name__)

#: Writes a batch of records in the session's transaction.
Writer = Callable[[Session, list[Any]], None]


class WriteBehind:
    def __init__(
        self, sessions: sessionmaker[Session], *, interval: float, max_pending: int = 20_000
    ):
        self._sessions = sessions
        self._interval = interval
        self._max_pending = max_pending
        self._pending: list[tuple[Writer, Any]] = []
        self._lock = threading.Lock()
        # One flush at a time, so batches reach the database in the order they were queued.
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def add(self, write: Writer, record: Any) -> None:
        """Queue `record` for `write(session, records)`."""
        with self._lock:
            if len(self._pending) >= self._max_pending:
                raise APIError(
                    503, "unavailable", "the database is not taking writes; try again shortly"
                )
            self._pending.append((write, record))
            if self._pid != os.getpid():
                # First record in this process (gunicorn forks workers after the app is made).
                self._start()

    def flush(self) -> int:
        """Write what is queued now; returns how many records were written."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                self._write_batch(batch)
            except (OperationalError, InterfaceError) as err:
                # The database is away: everything waits for the next try.
                log.error(
                    "write-behind: %d records kept for the next try: %s", len(batch), _brief(err)
                )
                with self._lock:
                    self._pending[:0] = batch
                return 0
            except Exception:
                # Some record that can never be written (a row it refers to was deleted
                # meanwhile, a value the writer cannot take): write the others one by one, and
                # log the refused ones whole.
                return sum(self._write_alone(item) for item in batch)
            return len(batch)

    def _write_batch(self, batch: list[tuple[Writer, Any]]) -> None:
        groups: dict[Writer, list[Any]] = {}
        for write, record in batch:
            groups.setdefault(write, []).append(record)
        with self._sessions() as session, session.begin():
            for write, records in groups.items():
                write(session, records)

    def _write_alone(self, item: tuple[Writer, Any]) -> bool:
        try:
            self._write_batch([item])
        except Exception as err:
            log.error(
                "write-behind: record refused, not written: %r (%s)",
                item[1],
                _brief(err),
            )
            return False
        return True

    def close(self) -> None:
        self._stop.set()
        self.flush()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _start(self) -> None:
        self._pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="coi-write-behind", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # the thread must outlive one bad batch; the batch is logged
                log.exception("write-behind: a batch could not be written")


def _brief(err: Exception) -> str:
    """The driver's message without the statement and its parameters (a batch's worth)."""
    cause = getattr(err, "orig", None) or err
    return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
