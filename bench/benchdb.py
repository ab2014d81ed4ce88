"""Databases for the benchmarks: a throwaway SQLite file by default (its webhook claims go with
it), or a PostgreSQL URL on 127.0.0.1 whose database is created for the run (and dropped after)
when it does not exist."""

from __future__ import annotations

import re
import shutil
import tempfile
from contextlib import ExitStack

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connector.storage.claim_files import ClaimFiles


def prepare_database(url: str | None, stack: ExitStack, prefix: str) -> str:
    """The URL to use; registers its cleanup (temp dir, or a database this run created)."""
    if url is None:
        folder = tempfile.mkdtemp(prefix=prefix)
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        url = f"sqlite:///{folder}/coi.db"
        # Run first (last in, first out), while the database file that names them is there.
        stack.callback(ClaimFiles.remove_for, url)
        return url
    parsed = make_url(url)
    if not parsed.get_backend_name().startswith("postgresql"):
        return url
    if parsed.host not in (None, "127.0.0.1", "localhost"):
        raise SystemExit("this benchmark only talks to 127.0.0.1")
    name = parsed.database
    if not name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise SystemExit(f"database name {name!r}: use letters, digits and underscores")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    if not exists:
        stack.callback(_drop_database, parsed, name)
    return url


def _drop_database(parsed, name: str) -> None:
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
