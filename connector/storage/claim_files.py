"""Claims as files beside a SQLite database: "the first one wins" across threads and processes
for the price of creating a file, with no write transaction.

SQLite lets one connection write at a time, so a claim committed as a row waits for the writer
lock (behind another process's batch, say) and pays a commit, on every claim. A file created with
`O_CREAT | O_EXCL` is just as exclusive -- the kernel lets exactly one creator succeed -- and as
shared: every process that opens the database file can reach the folder beside it
(`<database>-claims/`), and nothing else can open a SQLite file anyway. A claim is named by a
SHA-256 of its key (any text becomes a safe file name), under one of 256 subfolders so none grows
long. Its modification time is when it was claimed (or taken over).

Used for webhook delivery claims (`webhooks/receipts.py`), which are kept as long as the receipts
they stand for and swept with them (`connector/services/retention.py`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Iterable
from contextlib import contextmanager, suppress

from sqlalchemy import Engine

_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
_TAKE_OVER_LOCK = ".take-over.lock"


class ClaimFiles:
    def __init__(self, folder: str):
        self.folder = folder

    @classmethod
    def beside(cls, engine: Engine) -> ClaimFiles | None:
        """The claims folder of a SQLite database file; None for other databases and in-memory
        SQLite (processes share no folder there)."""
        database = engine.url.database or ""
        if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
            return None
        if database.startswith("file:"):
            return None
        return cls(os.path.abspath(database) + "-claims")

    def exists(self) -> bool:
        return os.path.isdir(self.folder)

    def take(self, key: str, at: float | None = None) -> bool:
        """Claim `key` (now, or at `at` seconds since the epoch): True when this call made the
        claim, False when it was already made."""
        path = self._path(key)
        try:
            os.close(os.open(path, _FLAGS, 0o600))
        except FileExistsError:
            return False
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return self.take(key, at)
        if at is not None:
            os.utime(path, (at, at))
        return True

    def take_over(self, key: str, older_than: float) -> bool:
        """Claim `key` anew when its claim was made before `older_than` (seconds since the
        epoch): True for the one caller that did. Claims are rarely taken over, so the callers
        queue on a lock here rather than make the common path pay for it."""
        path = self._path(key)
        with self._lock():
            try:
                claimed_at = os.stat(path).st_mtime
            except FileNotFoundError:
                return self.take(key)
            if claimed_at >= older_than:
                return False
            os.utime(path)
            return True

    def release(self, key: str) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def restore(self, claims: Iterable[tuple[str, float]]) -> None:
        """Create the folder holding `(key, claimed at)` claims, unless it exists: built aside,
        then moved into place at once, so a process never finds it half made."""
        if self.exists():
            return
        aside = f"{self.folder}.{os.getpid()}.{time.monotonic_ns()}"
        try:
            built = ClaimFiles(aside)
            os.makedirs(aside, mode=0o700)
            for key, claimed_at in claims:
                built.take(key, claimed_at)
            with suppress(OSError):  # another process put its own in place first
                os.rename(aside, self.folder)
        finally:
            shutil.rmtree(aside, ignore_errors=True)

    def sweep(self, older_than: float) -> int:
        """Remove the claims made before `older_than` (seconds since the epoch); returns their
        number."""
        removed = 0
        for bucket in _entries(self.folder):
            if not bucket.is_dir():
                continue
            for claim in _entries(bucket.path):
                with suppress(FileNotFoundError):
                    if claim.stat().st_mtime < older_than:
                        os.unlink(claim.path)
                        removed += 1
        return removed

    def _path(self, key: str) -> str:
        name = hashlib.sha256(key.encode()).hexdigest()
        return os.path.join(self.folder, name[:2], name)

    @contextmanager
    def _lock(self):
        os.makedirs(self.folder, exist_ok=True)
        fd = os.open(os.path.join(self.folder, _TAKE_OVER_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _entries(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []
