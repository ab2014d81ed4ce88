"""Claims as files: "the first one wins" across threads and processes for the price of creating
a file, with no write transaction.

SQLite lets one connection write at a time, so a claim committed as a row waits for the writer
lock (behind another process's batch, say) and pays a commit, on every claim. A file created with
`O_CREAT | O_EXCL` is just as exclusive -- the kernel lets exactly one creator succeed -- and as
shared, when every process that opens the database uses the same folder. A claim is named by a
SHA-256 of its key (any text becomes a safe file name), under one of 256 subfolders so none grows
long. Its modification time is when it was claimed (or taken over).

Where the folder is (`for_database`): under `COI_CLAIMS_DIR` when set, else under `/dev/shm`
where it exists (memory: creating a file there never waits for the disk, while on a disk the
first files in a fresh inode block wait for it to be read -- seen at 0.3-0.6 ms a file here), else
beside the database. Claims are kept as long as the receipts they stand for, so whoever holds the
records can rebuild the claims (`restore`) when the folder is gone, after a reboot for one in
memory. The folder is named by the database file's path: a database file replaced by another
(a restored backup) needs its folder removed, to be rebuilt from the records it holds.

Used for webhook delivery claims (`webhooks/receipts.py`), which are swept with their receipts
(`connector/services/retention.py`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Iterable
from contextlib import contextmanager, suppress

from sqlalchemy.engine import URL, make_url

_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
_TAKE_OVER_LOCK = ".take-over.lock"
#: Memory shared by the processes of one machine, where it exists (Linux).
SHARED_MEMORY = "/dev/shm"


class ForeignFolder(Exception):
    """The claims folder exists but is not this user's alone: claims there cannot be trusted."""


class ClaimFiles:
    """The claims of one folder (see the module docstring)."""

    def __init__(self, folder: str):
        self.folder = folder

    @classmethod
    def for_database(cls, url: str | URL, root: str | None = None) -> ClaimFiles | None:
        """The claims folder of a SQLite database file, under `root` (see the module docstring);
        None for other databases and in-memory SQLite (processes share no folder there)."""
        url = make_url(url)
        database = url.database or ""
        if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
            return None
        if database.startswith("file:"):
            return None
        path = os.path.abspath(database)
        if root is None and os.path.isdir(SHARED_MEMORY):
            root = SHARED_MEMORY
        if root is None:
            return cls(path + "-claims")
        return cls(os.path.join(root, "coi-claims-" + _digest(path)[:24]))

    @classmethod
    def remove_for(cls, url: str | URL, root: str | None = None) -> None:
        """Remove a database's claims folder, if it has one (with a throwaway database, or after
        replacing the database file: the next claim rebuilds it from the records)."""
        files = cls.for_database(url, root)
        if files is not None:
            shutil.rmtree(files.folder, ignore_errors=True)

    def exists(self) -> bool:
        """Whether the folder is there; `ForeignFolder` when it is there but not this user's
        alone (in a shared place such as `/dev/shm`, anyone may have made it first)."""
        try:
            found = os.stat(self.folder)
        except FileNotFoundError:
            return False
        if found.st_uid != os.getuid() or found.st_mode & 0o077:
            raise ForeignFolder(f"{self.folder} is not a folder of this user's alone")
        return True

    def take(self, key: str, at: float | None = None) -> bool | None:
        """Claim `key` (now, or at `at` seconds since the epoch): True when this call made the
        claim, False when it was already made, None when the folder is gone (`restore` it, then
        take again: a folder made afresh would not know the claims made before)."""
        path = self._path(key)
        try:
            os.close(os.open(path, _FLAGS, 0o600))
        except FileExistsError:
            return False
        except FileNotFoundError:
            if not os.path.isdir(self.folder):
                return None
            with suppress(FileExistsError):
                os.mkdir(os.path.dirname(path), 0o700)
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
                return bool(self.take(key))
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
            os.mkdir(aside, 0o700)
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
        name = _digest(key)
        return os.path.join(self.folder, name[:2], name)

    @contextmanager
    def _lock(self):
        fd = os.open(os.path.join(self.folder, _TAKE_OVER_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _entries(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []
