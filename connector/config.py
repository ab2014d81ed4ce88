"""Runtime settings, read once from the environment (12-factor style).

Unset `COI_DATABASE_URL` means the embedded default: a SQLite file in the working directory.
Unset `COI_REDIS_URL` means jobs run inline in the request that causes them.
`COI_SECRET_KEY` (or a file named by `COI_SECRET_KEY_FILE`) signs embed links and encrypts the
signing secrets of webhook subscriptions; the features that need it refuse to work without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_DATABASE_URL = "sqlite:///coi.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    max_body_bytes: int = 1024 * 1024
    queue_name: str = "coi"
    secret_key: str | None = field(default=None, repr=False)
    #: How often a web worker asks the database whether other processes changed what its
    #: snapshots hold (sets, tokens, stored results, alternatives); its own writes are seen at once.
    snapshot_seconds: float = 1.0
    #: Gate decisions and webhook receipts are stored in batches this often by each web worker
    #: (0: in the request).
    write_behind_ms: int = 100
    #: CSP `frame-ancestors` sources allowed to frame the dispatcher pages (`/embed/...`).
    embed_frame_ancestors: str = "'self'"
    #: Where the webhook claims of a SQLite database file are kept (None: `/dev/shm` where it
    #: exists, else beside the database; `connector/storage/claim_files.py`).
    claims_dir: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("COI_DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=env.get("COI_REDIS_URL") or None,
            max_body_bytes=int(env.get("COI_MAX_BODY_BYTES") or 1024 * 1024),
            queue_name=env.get("COI_QUEUE") or "coi",
            secret_key=_secret_key(env),
            snapshot_seconds=float(env.get("COI_SNAPSHOT_SECONDS") or 1.0),
            write_behind_ms=int(env.get("COI_WRITE_BEHIND_MS") or 100),
            embed_frame_ancestors=env.get("COI_EMBED_FRAME_ANCESTORS") or "'self'",
            claims_dir=env.get("COI_CLAIMS_DIR") or None,
        )


def _secret_key(env) -> str | None:
    if env.get("COI_SECRET_KEY"):
        return env["COI_SECRET_KEY"]
    path = env.get("COI_SECRET_KEY_FILE")
    if path:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    return None
