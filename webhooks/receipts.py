"""Delivery receipts: who acts on an inbound webhook delivery, once.

The delivery id (per connection) is the idempotency key. The first arrival *claims* it and acts;
a repeat — also one arriving while the first is still at work — finds the claim, waits for the
answer and gets it back, with no second effect. The claims are kept in one of three places:

- `ClaimReceipts` over claim files (a SQLite database file, no Redis configured;
  `connector/storage/claim_files.py`) or over `RedisClaims` (`COI_REDIS_URL` set): the claim is
  made outside the database -- a file created, a Redis `SET NX` -- so the request commits
  nothing: the row is written afterwards, already "done" with its answer (through the
  write-behind, beside the decision). Claims are kept as long as the rows (`RECEIPT_DAYS`), so a
  first arrival needs nothing more than its claim; a repeat that finds the claim reads the
  answer from the row (waiting while there is none yet); a claim left by a process that died is
  taken over after `STALE_AFTER`. Claims that were lost (a folder in memory after a reboot, a
  Redis restarted without persistence) are rebuilt from the rows before anyone claims again.
  The store unreachable or broken: 503, nothing acted on, and the sender retries.
- `DatabaseReceipts` (PostgreSQL without Redis, or SQLite in memory): the claim is a committed
  "processing" row in `webhook_receipts`, unique per (connection, delivery id), which every
  process sees before acting; a claim left by a process that died is taken over after
  `STALE_AFTER`.

Either way the answered row is kept for the retention period (`connector/services/retention.py`);
claim files are swept with it, Redis keys expire with it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, Text, bindparam, cast, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from connector.clock import as_utc, utcnow
from connector.config import Settings
from connector.errors import APIError
from connector.services.retention import RECEIPT_DAYS
from connector.storage import models as m
from connector.storage.claim_files import ClaimFiles, ForeignFolder
from connector.storage.db import driver_error, make_claim_engine

log = logging.getLogger(__name__)

#: A claim still "processing" after this long belongs to a process that died.
STALE_AFTER = timedelta(minutes=5)


class Stored(NamedTuple):
    """What a repeat finds: "processing" (no answer yet) or "done" with the answer."""

    status: str
    response_status: int | None = None
    response_body: Any = None


class Answered(NamedTuple):
    """A delivery's answer, to be stored on its receipt row."""

    connection: str
    event: str
    delivery_id: str
    received_at: datetime
    status: int
    #: The body as answered: JSON text, stored as it is.
    body: str


def complete(session: Session, answered: list[Answered]) -> None:
    """Store the answers on the receipt rows, inserting the rows a Redis claim did not."""
    now = utcnow()
    connection = session.connection()
    connection.execute(
        _COMPLETE[connection.dialect.name],
        [
            {
                "connection": a.connection,
                "event": a.event,
                "delivery_id": a.delivery_id,
                "status": "done",
                "response_status": a.status,
                "response_body": a.body,
                "received_at": a.received_at,
                "completed_at": now,
            }
            for a in answered
        ],
    )


def _complete(dialect_insert) -> Any:
    table = m.WebhookReceipt.__table__
    names = (
        "connection",
        "event",
        "delivery_id",
        "status",
        "response_status",
        "received_at",
        "completed_at",
    )
    values: dict[str, Any] = {name: bindparam(name, type_=table.c[name].type) for name in names}
    # The body comes as JSON text: bound as text, not serialised again (cast to the column's
    # type on PostgreSQL; SQLite keeps JSON as text).
    body = bindparam("response_body", type_=Text())
    values["response_body"] = (
        cast(body, postgresql.JSON) if dialect_insert is postgresql.insert else body
    )
    stmt = dialect_insert(table).values(values)
    answer = ("status", "response_status", "response_body", "completed_at")
    return stmt.on_conflict_do_update(
        index_elements=["connection", "delivery_id"],
        set_={name: stmt.excluded[name] for name in answer},
    )


def _claim_row(dialect_insert) -> Any:
    stmt = dialect_insert(m.WebhookReceipt.__table__)
    return stmt.on_conflict_do_nothing(index_elements=["connection", "delivery_id"]).returning(
        m.WebhookReceipt.id
    )


def _per_dialect(build) -> dict[str, Any]:
    return {"postgresql": build(postgresql.insert), "sqlite": build(sqlite.insert)}


_COMPLETE = _per_dialect(_complete)
#: One statement: the claim's row, or no row back when the delivery was claimed before.
_CLAIM = _per_dialect(_claim_row)
#: What a claim gives the statement (the rest of the row is left to its defaults).
_CLAIM_COLUMNS = ("connection", "event", "delivery_id", "status", "received_at")


class DatabaseReceipts:
    """Claims as committed rows (see the module docstring). With a `claim_engine` (PostgreSQL:
    `connector.storage.db.make_claim_engine`) a claim is one statement, one round trip, sent by
    the driver on a connection from that engine's pool: SQLAlchemy's connection, transaction and
    execution layers cost a claim more CPU than the driver's own work (docs/BENCHMARKS.md)."""

    def __init__(self, sessions: sessionmaker[Session], claim_engine: Engine | None = None):
        self._sessions = sessions
        self._engine = claim_engine
        if claim_engine is not None:
            self._sql = str(
                _CLAIM[claim_engine.dialect.name].compile(
                    dialect=claim_engine.dialect, column_keys=list(_CLAIM_COLUMNS)
                )
            )

    def claim(self, connection: str, event: str, delivery_id: str) -> tuple[bool, Stored | None]:
        """(True, None) when this arrival is the first (its claim is committed); else (False,
        what was found), None when the first arrival let go meanwhile (try again)."""
        claim = {  # the keys are _CLAIM_COLUMNS
            "connection": connection,
            "event": event,
            "delivery_id": delivery_id,
            "status": "processing",
            "received_at": utcnow(),
        }
        if self._insert(claim):
            return True, None
        with self._sessions() as session:
            with session.begin():
                row = session.scalar(select(m.WebhookReceipt).where(_key(connection, delivery_id)))
            if row is None:
                return False, None
            if row.status == "processing" and as_utc(row.received_at) < utcnow() - STALE_AFTER:
                with session.begin():
                    taken = session.execute(
                        update(m.WebhookReceipt)
                        .where(m.WebhookReceipt.id == row.id)
                        .where(m.WebhookReceipt.status == "processing")
                        .where(m.WebhookReceipt.received_at == row.received_at)
                        .values(received_at=utcnow())
                    )
                if taken.rowcount == 1:
                    log.warning("webhook %s/%s: taking over a stale delivery", connection, event)
                    return True, None
            return False, Stored(row.status, row.response_status, row.response_body)

    def forget(self, connection: str, delivery_id: str) -> None:
        with self._sessions() as session, session.begin():
            session.execute(delete(m.WebhookReceipt).where(_key(connection, delivery_id)))

    def _insert(self, claim: dict[str, Any]) -> bool:
        if self._engine is None:  # SQLite in memory: a test's or a throwaway database
            with self._sessions() as session, session.begin():
                connection = session.connection()
                statement = _CLAIM[connection.dialect.name]
                return connection.execute(statement, claim).first() is not None
        try:
            return self._send(claim)
        except DBAPIError as err:
            if not err.connection_invalidated:
                raise
            # The claim engine does not ping a connection before use: one the server dropped
            # fails once, and the claim goes through a new one.
            return self._send(claim)

    def _send(self, claim: dict[str, Any]) -> bool:
        """The claim's statement through the driver (the engine is in autocommit); its errors
        raised as SQLAlchemy raises them, a dropped connection taken out of the pool."""
        raw = self._engine.raw_connection()
        dialect = self._engine.dialect
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(self._sql, claim)
                return cursor.fetchone() is not None
            except dialect.loaded_dbapi.Error as err:
                dropped = dialect.is_disconnect(err, raw.dbapi_connection, cursor)
                if dropped:
                    raw.invalidate(err)
                raise driver_error(self._sql, err, dialect, connection_invalidated=dropped) from err
            finally:
                cursor.close()
        finally:
            raw.close()


class RedisClaims:
    """Claims as Redis keys, kept as long as the receipts (`RECEIPT_DAYS`), valued with the time
    they were made (ms). Redis may forget everything (a restart without persistence): a key of
    the namespace, `complete`, is set once the claims are rebuilt from the receipt rows, and a
    claim is refused while it is missing, so nobody acts on a delivery the lost keys knew."""

    def __init__(self, redis: Redis, namespace: str):
        self._redis = redis
        # One hash slot for the namespace (the braces), so the claim script runs on a cluster.
        self._prefix = f"coi:webhook-claim:{{{namespace}}}:"
        self._complete = self._prefix + "complete"
        self._take = redis.register_script(_TAKE_SCRIPT)

    @classmethod
    def from_url(cls, redis_url: str, database_url: str) -> RedisClaims:
        # Deployments sharing one Redis keep their claims apart by their database.
        namespace = hashlib.sha256(database_url.encode()).hexdigest()[:16]
        return cls(Redis.from_url(redis_url), namespace)

    @property
    def folder(self) -> str:
        """Where the claims are, for messages."""
        return f"Redis ({self._prefix}*)"

    def exists(self) -> bool:
        return bool(self._redis.exists(self._complete))

    def take(self, key: str) -> bool | None:
        """True when this call made the claim, False when it was made before, None while the
        claims are not complete (restore them, then take again)."""
        taken = self._take(keys=[self._name(key), self._complete], args=[_now_ms(), _KEEP_MS])
        return None if taken < 0 else bool(taken)

    def take_over(self, key: str, older_than: float) -> bool:
        name = self._name(key)
        seen = self._redis.get(name)
        if seen is None:
            return bool(self.take(key))
        if int(seen) >= older_than * 1000:
            return False
        # Only the caller that replaces the value it saw takes it over.
        return self._redis.set(name, _now_ms(), xx=True, get=True, px=_KEEP_MS) == seen

    def release(self, key: str) -> None:
        self._redis.delete(self._name(key))

    def restore(self, claims: Iterable[tuple[str, float]]) -> None:
        now = _now_ms()
        pipe = self._redis.pipeline(transaction=False)
        for key, claimed_at in claims:
            left = int(claimed_at * 1000) + _KEEP_MS - now
            if left > 0:
                pipe.set(self._name(key), int(claimed_at * 1000), nx=True, px=left)
            if len(pipe) >= 1000:
                pipe.execute()
        pipe.set(self._complete, now)
        pipe.execute()

    def _name(self, key: str) -> str:
        return self._prefix + hashlib.sha256(key.encode()).hexdigest()[:32]


_KEEP_MS = RECEIPT_DAYS * 86_400_000
# KEYS: the claim, the namespace's "complete" mark; ARGV: now (ms), how long to keep (ms).
_TAKE_SCRIPT = """
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


def _now_ms() -> int:
    return int(utcnow().timestamp() * 1000)


class ClaimReceipts:
    """Claims kept outside the receipt table -- claim files or Redis keys -- as long as the
    receipts (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], claims: ClaimFiles | RedisClaims):
        self._sessions = sessions
        self._claims = claims
        with self._store_answers():
            if not claims.exists():
                self._restore()

    def claim(self, connection: str, event: str, delivery_id: str) -> tuple[bool, Stored | None]:
        key = _claim_key(connection, delivery_id)
        with self._store_answers():
            taken = self._claims.take(key)
            if taken is None:
                log.warning("webhook claims in %s were lost: rebuilding them", self._claims.folder)
                self._restore()
                taken = self._claims.take(key)
            if taken:
                return True, None
            found = _stored_answer(self._sessions, connection, delivery_id)
            if found is not None:
                return False, found
            if self._claims.take_over(key, (utcnow() - STALE_AFTER).timestamp()):
                log.warning("webhook %s/%s: taking over a stale delivery", connection, event)
                return True, None
        return False, Stored("processing")

    def forget(self, connection: str, delivery_id: str) -> None:
        try:
            self._claims.release(_claim_key(connection, delivery_id))
        except (OSError, RedisError) as err:
            # The sender's retries get 409 until the claim is taken over as stale.
            log.error("webhook claims: a failed delivery's claim stays: %s", err)

    @contextmanager
    def _store_answers(self) -> Iterator[None]:
        try:
            yield
        except (OSError, RedisError) as err:
            # The store is unreachable or broken (full, read-only): nothing was acted on.
            log.error("webhook claims in %s: %s", self._claims.folder, err)
            raise APIError(
                503, "dependency_down", "the webhook claim store did not answer; retry"
            ) from None

    def _restore(self) -> None:
        since = utcnow() - timedelta(days=RECEIPT_DAYS)
        with self._sessions() as session:
            rows = session.execute(
                select(_r.connection, _r.delivery_id, _r.received_at).where(_r.received_at >= since)
            ).all()
        self._claims.restore(
            (_claim_key(connection, delivery_id), as_utc(received_at).timestamp())
            for connection, delivery_id, received_at in rows
        )


Receipts = DatabaseReceipts | ClaimReceipts


def receipts_for(settings: Settings, engine: Engine, sessions: sessionmaker[Session]) -> Receipts:
    """The receipt store of a deployment: Redis when configured, else claim files for a SQLite
    database file, else rows (through claim connections of their own on PostgreSQL). A claims
    folder others can write to: 503 `not_configured`, the reason in the log."""
    try:
        if settings.redis_url:
            claims = RedisClaims.from_url(settings.redis_url, settings.database_url)
            return ClaimReceipts(sessions, claims)
        files = ClaimFiles.for_database(engine.url, settings.claims_dir)
        if files is not None:
            return ClaimReceipts(sessions, files)
    except ForeignFolder as err:
        log.error("webhook claims: %s; set COI_CLAIMS_DIR to a folder of its own", err)
        raise APIError(
            503, "not_configured", "the webhook claim store is not usable; see the log"
        ) from None
    if engine.dialect.name == "postgresql":
        return DatabaseReceipts(sessions, make_claim_engine(engine))
    return DatabaseReceipts(sessions)


def _claim_key(connection: str, delivery_id: str) -> str:
    return f"{connection}\0{delivery_id}"


def _stored_answer(
    sessions: sessionmaker[Session], connection: str, delivery_id: str
) -> Stored | None:
    """The delivery's answer, when its row holds one."""
    with sessions() as session:
        row = (
            session.connection()
            .execute(_ANSWER, {"connection": connection, "delivery_id": delivery_id})
            .first()
        )
    # A "processing" row is a database claim made before the claims moved (to Redis or to
    # files): the new store holds the claim now.
    return Stored(*row) if row is not None and row.status == "done" else None


_r = m.WebhookReceipt
_ANSWER = select(_r.status, _r.response_status, _r.response_body).where(
    _r.connection == bindparam("connection"), _r.delivery_id == bindparam("delivery_id")
)


def _key(connection: str, delivery_id: str):
    return (m.WebhookReceipt.connection == connection) & (
        m.WebhookReceipt.delivery_id == delivery_id
    )
