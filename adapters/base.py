"""The Adapter interface every remote system implements, and what adapters share.

An adapter talks to one remote system in that system's own field names: it reads records that
changed since a watermark (streaming, page by page), reads one record, and writes records in
batches with a result per record. It knows nothing of compliance or of our storage; mappings turn
its plain dicts into canonical records and back.

Secrets never live in settings: a setting `<name>_env` names an environment variable and
`<name>_file` names a file that holds the value (see `secret`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


class AdapterError(Exception):
    """A remote call failed. `retryable` says whether trying again later can succeed."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class RateLimited(AdapterError):
    """The remote asked us to slow down (HTTP 429, Salesforce REQUEST_LIMIT_EXCEEDED)."""


class ConfigurationError(AdapterError):
    """Settings or secrets are missing or wrong; retrying will not help."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class RemoteRecord:
    """One record as the remote system has it."""

    external_id: str
    data: dict[str, Any]
    #: The record's position in the change stream (e.g. SystemModstamp); the sync keeps the
    #: highest one it has fully processed as its watermark.
    watermark: str | None = None
    #: The remote says the record is gone or inactive.
    deleted: bool = False


@dataclass(frozen=True)
class WriteRequest:
    external_id: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class WriteResult:
    external_id: str
    ok: bool
    error: str | None = None
    #: When not ok: would the same write succeed later (remote down, locked row)?
    retryable: bool = False


@dataclass
class Page:
    """One page of a change stream: its records and the bookmark to resume after it."""

    records: list[RemoteRecord] = field(default_factory=list)
    bookmark: str | None = None
    #: How many records the whole read will yield, when the remote says (e.g. Salesforce's
    #: `totalSize`); None when it does not.
    total: int | None = None


def secret(settings: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    """The secret `name` from the environment variable named by `<name>_env` or the file named
    by `<name>_file`. The value itself is never accepted in settings, so it never reaches the
    database, an API response or a log."""
    if name in settings:
        raise ConfigurationError(
            f"{name} must not be given in plain text; use {name}_env or {name}_file"
        )
    env_name = settings.get(f"{name}_env")
    if env_name:
        value = os.environ.get(env_name)
        if value is None and required:
            raise ConfigurationError(f"environment variable {env_name} (for {name}) is not set")
        return value
    file_name = settings.get(f"{name}_file")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigurationError(f"cannot read {name}_file: {err.strerror}") from None
    if required:
        raise ConfigurationError(f"{name}_env or {name}_file is required")
    return None


class Adapter(ABC):
    """Talks to one remote system. Instances hold a connection/session and are not shared
    between threads."""

    #: Connection kind, e.g. "salesforce", "business_central", "dispatch", "csv".
    kind: ClassVar[str]
    #: Objects this adapter reads and writes, e.g. ("Account", "ServiceResource").
    objects: ClassVar[tuple[str, ...]]

    def __init__(self, settings: Mapping[str, Any]):
        self.settings = settings

    @abstractmethod
    def test(self) -> dict[str, Any]:
        """Check that the remote answers and the credentials work; return facts worth showing
        (e.g. API version, user). Raises AdapterError."""

    @abstractmethod
    def read_changes(self, object: str, since: str | None) -> Iterator[Page]:
        """Pages of records changed after watermark `since` (all records when None), oldest
        change first, streamed: memory stays flat however many records there are."""

    @abstractmethod
    def read_one(self, object: str, external_id: str) -> RemoteRecord | None:
        """One record, or None when the remote does not have it."""

    @abstractmethod
    def write(self, object: str, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        """Write field values to existing records, batched as the remote allows; one result per
        request, in order. Raises AdapterError only when nothing could be attempted."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
