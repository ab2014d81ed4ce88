"""Background work: on rq queues when `COI_REDIS_URL` is set, inline otherwise.

Jobs are idempotent and re-read the current state when they run (a recompute job evaluates the
vendors as they stand then, not as they stood when it was queued), so a retried or duplicated job
is harmless.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from functools import cache

from redis import Redis
from rq import Queue, Retry
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from connector.clock import as_utc, today, utcnow
from connector.config import Settings
from connector.services.events import JOBS_KEY

RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])
#: Vendors a queued recompute job takes: a sync page's worth (Salesforce's largest page). Each
#: job is a work horse forked afresh, with a new engine and SQLAlchemy's statement cache cold,
#: which costs about as much as recomputing 700 vendors; jobs of 1,000 spent 40% on it.
RECOMPUTE_JOB_VENDORS = 2000


class Jobs:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session]):
        self.settings = settings
        self.sessions = sessions
        # Sessions made here carry their job runner, so an event emitted deep inside a service
        # (see `connector.services.events`) can have its delivery queued after the commit.
        sessions.configure(info={**sessions.kw.get("info", {}), JOBS_KEY: self})

    @property
    def queued(self) -> bool:
        return self.settings.redis_url is not None

    def queue(self) -> Queue:
        return _queue(self.settings.redis_url, self.settings.queue_name)

    def push_soon(self, connection: str) -> None:
        """Queue a push of the connection's outbox, unless one is already waiting or running (a
        running push that misses the newest rows schedules another for them)."""
        _enqueue_once(self.queue(), _job_id("push", connection), push_job, connection)

    def recompute(self, session: Session, vendor_ids: Iterable[int]) -> None:
        """Bring the stored results of these vendors up to date with this transaction's writes.

        Inline: inside the caller's transaction, so the write and its results commit together.
        Queued: enqueued once the caller's transaction has committed (never for a rollback).
        """
        ids = set(vendor_ids)
        if not ids:
            return
        if not self.queued:
            from connector.services.compliance import recompute

            recompute(session, ids, today())
            return
        self._listen(session)
        session.info.setdefault(_RECOMPUTE, set()).update(ids)

    def deliver_webhooks_after_commit(self, session: Session) -> None:
        """Queued: enqueue a delivery run once this transaction (which emitted outbound
        events) has committed. Inline: nothing; `coi webhooks deliver` sends them."""
        if not self.queued:
            return
        self._listen(session)
        session.info[_WEBHOOKS] = True

    def _listen(self, session: Session) -> None:
        """Have the work this session's transactions leave queued after each commit. Listeners
        stay for the session's life: it may commit many times (a sync commits every page), and
        SQLAlchemy registers a function once per session, so a `once` listener spent on the
        first commit could not be registered again for the next."""
        if session.info.get(_LISTENING):
            return
        session.info[_LISTENING] = True
        event.listen(session, "after_commit", self._after_commit)
        event.listen(session, "after_rollback", _after_rollback)

    def _after_commit(self, session: Session) -> None:
        ids = sorted(session.info.pop(_RECOMPUTE, ()))
        for start in range(0, len(ids), RECOMPUTE_JOB_VENDORS):
            chunk = ids[start : start + RECOMPUTE_JOB_VENDORS]
            self.queue().enqueue(recompute_job, chunk, retry=RETRY, job_timeout=600)
        if session.info.pop(_WEBHOOKS, False):
            queue = self.queue()
            job_id = _job_id("webhooks-deliver", queue.name)
            _enqueue_once(queue, job_id, deliver_webhooks_job, again_if_running=True)


#: `Session.info` keys: vendors to recompute and whether events await delivery, once the
#: current transaction commits; and whether the session's listeners are in place.
_RECOMPUTE = "coi_recompute"
_WEBHOOKS = "coi_webhooks"
_LISTENING = "coi_jobs_listening"


def _after_rollback(session: Session) -> None:
    session.info.pop(_RECOMPUTE, None)
    session.info.pop(_WEBHOOKS, None)


@cache
def _queue(redis_url: str, name: str) -> Queue:
    return Queue(name, connection=Redis.from_url(redis_url))


@cache
def _worker_sessions(database_url: str) -> sessionmaker[Session]:
    from connector.storage.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(database_url))


def recompute_job(vendor_ids: list[int]) -> int:
    """rq entry point: recompute these vendors' stored results in one transaction."""
    from connector.services.compliance import recompute

    session = _worker_jobs().sessions()
    with session, session.begin():
        recompute(session, vendor_ids, today())
    return len(vendor_ids)


def recompute_all_job() -> int:
    """Daily job: re-evaluate every vendor as of today, so results move from compliant to
    expiring to expired as the calendar does. Registered for `rq cron` in `connector.cron`."""
    from sqlalchemy import select

    from connector.services.compliance import recompute
    from connector.storage.models import Vendor

    session = _worker_jobs().sessions()
    with session, session.begin():
        return recompute(session, session.scalars(select(Vendor.id)).all(), today())


def _worker_jobs() -> Jobs:
    settings = Settings.from_env()
    return Jobs(settings, _worker_sessions(settings.database_url))


def sync_job(connection: str, remote_object: str, full: bool = False) -> dict:
    """rq entry point: pull one connection object, then push what the pull changed."""
    from rq import get_current_job

    from connector.services.sync import run_sync

    jobs = _worker_jobs()
    current = get_current_job()
    run_id = run_sync(
        jobs.sessions, jobs, connection, remote_object, full=full, job_id=current and current.id
    )
    jobs.push_soon(connection)
    return {"sync_run": run_id}


def push_job(connection: str) -> dict:
    """rq entry point: deliver the connection's due outbox entries; when some are left for
    later (remote down, backing off), schedule another push for when the first is due."""
    from connector.services.outbox import deliver, next_due

    jobs = _worker_jobs()
    counts = deliver(jobs.sessions, connection)
    with jobs.sessions() as session:
        due = next_due(session, connection)
    if due is not None:
        jobs.queue().enqueue_at(due, push_job, connection, job_timeout=3600)
    return counts


def scheduled_syncs_job() -> list[str]:
    """Every minute (see `connector.cron`): enqueue an incremental sync of each object of each
    connection whose schedule is due, and a push for connections with outbox entries due."""
    from sqlalchemy import func, select

    from connector.services.outbox import next_due
    from connector.storage import models as m

    jobs = _worker_jobs()
    now = utcnow()
    started = []
    with jobs.sessions() as session:
        for connection in session.scalars(select(m.Connection).where(m.Connection.active)):
            for cfg in connection.objects:
                if not cfg.get("sync_in", True) or not connection.schedule_minutes:
                    continue
                last = session.scalar(
                    select(func.max(m.SyncRun.started_at)).where(
                        m.SyncRun.connection == connection.name,
                        m.SyncRun.object == cfg["remote"],
                        m.SyncRun.direction == "in",
                    )
                )
                if last is None or as_utc(last) <= now - timedelta(
                    minutes=connection.schedule_minutes
                ):
                    job_id = _job_id("sync", connection.name, cfg["remote"])
                    if _enqueue_once(
                        jobs.queue(), job_id, sync_job, connection.name, cfg["remote"]
                    ):
                        started.append(job_id)
            due = next_due(session, connection.name)
            job_id = _job_id("push", connection.name)
            if (
                due is not None
                and as_utc(due) <= now
                and _enqueue_once(jobs.queue(), job_id, push_job, connection.name)
            ):
                started.append(job_id)
    return started


def preload() -> None:
    """Import what the jobs use and configure the ORM, in a worker before it forks a work
    horse per job: each horse inherits them instead of paying for them again (a fifth of a
    recompute job's time went on imports alone)."""
    import importlib

    from sqlalchemy.orm import configure_mappers

    from adapters import REGISTRY
    from connector.services import compliance, events, outbox, retention, sync  # noqa: F401
    from webhooks import delivery  # noqa: F401

    for target in REGISTRY.values():
        importlib.import_module(target.partition(":")[0])
    configure_mappers()


def _job_id(*parts: str) -> str:
    """A fixed rq job id (rq allows letters, digits, `_` and `-`)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", "-".join(parts))


def _enqueue_once(queue: Queue, job_id: str, func, *args, again_if_running: bool = False) -> bool:
    """Enqueue under a fixed id unless that job is still waiting (it will see what was committed
    before it runs). A running one is left alone, or with `again_if_running` followed by another
    under a fresh id, so rows committed after its last look are not left for a periodic run."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        status = Job.fetch(job_id, connection=queue.connection).get_status()
    except NoSuchJobError:
        status = None
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return False
    if status == JobStatus.STARTED:
        if not again_if_running:
            return False
        queue.enqueue(func, *args, retry=RETRY, job_timeout=6 * 3600)
        return True
    queue.enqueue(func, *args, job_id=job_id, retry=RETRY, job_timeout=6 * 3600)
    return True


def sync_one_job(connection: str, remote_object: str, external_id: str) -> dict:
    """rq entry point: pull one record a webhook said changed, then push what that changed."""
    from connector.services.sync import sync_one

    jobs = _worker_jobs()
    result = sync_one(jobs.sessions, jobs, connection, remote_object, external_id)
    jobs.push_soon(connection)
    return result


def deliver_webhooks_job() -> dict:
    """rq entry point: send the due outbound webhook deliveries (queued after a commit that
    emitted events, and every minute from `connector.cron` for retries that come due)."""
    from webhooks.delivery import deliver

    jobs = _worker_jobs()
    return deliver(jobs.sessions, jobs.settings.secret_key)


def policy_expiring_job() -> int:
    """Daily (see `connector.cron`): emit `policy.expiring` for newly expiring policies."""
    from connector.services.events import announce_expiring

    session = _worker_jobs().sessions()
    with session, session.begin():
        return announce_expiring(session, today())


def prune_webhooks_job() -> dict:
    """Daily (see `connector.cron`): drop webhook receipts and finished deliveries past their
    keeping time (`connector.services.retention`)."""
    from connector.services.retention import prune

    jobs = _worker_jobs()
    session = jobs.sessions()
    with session, session.begin():
        return prune(session, utcnow(), jobs.settings.claims_dir)
