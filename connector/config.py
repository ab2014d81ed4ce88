"""Runtime settings, read once from the environment (12-factor style).

Unset `COI_DATABASE_URL` means the embedded default: a SQLite file in the working directory.
Unset `COI_REDIS_URL` means jobs run inline in the request that causes them.
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
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("COI_DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=env.get("COI_REDIS_URL") or None,
            max_body_bytes=int(env.get("COI_MAX_BODY_BYTES") or 1024 * 1024),
            queue_name=env.get("COI_QUEUE") or "coi",
        )
