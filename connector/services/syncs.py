"""Starting syncs as jobs and reporting on them (runs, job states)."""

from __future__ import annotations

from typing import Any

from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.errors import NotFound
from connector.jobs import RETRY, Jobs, sync_job
from connector.services.outbox import deliver
from connector.services.paging import paginate
from connector.services.sync import run_sync
from connector.storage import models as m

INLINE = "inline-"


def start(jobs: Jobs, connection: str, remote_object: str, *, full: bool) -> dict[str, Any]:
    """Queue the sync (with Redis), or run it and the push that follows now (without)."""
    if jobs.queued:
        job = jobs.queue().enqueue(
            sync_job, connection, remote_object, full, retry=RETRY, job_timeout=6 * 3600
        )
        return {"job_id": job.id, "status": job.get_status().value}
    run_id = run_sync(jobs.sessions, jobs, connection, remote_object, full=full)
    deliver(jobs.sessions, connection)
    return {"job_id": f"{INLINE}{run_id}", "status": "finished"}


def job_status(jobs: Jobs, job_id: str) -> dict[str, Any]:
    if job_id.startswith(INLINE):
        with jobs.sessions() as session:
            run = session.get(m.SyncRun, int(job_id.removeprefix(INLINE) or 0))
            if run is None:
                raise NotFound("job", job_id)
            return {"job_id": job_id, "status": "finished", "result": render(run)}
    if not jobs.queued:
        raise NotFound("job", job_id)
    try:
        job = Job.fetch(job_id, connection=jobs.queue().connection)
    except NoSuchJobError:
        raise NotFound("job", job_id) from None
    status = job.get_status()
    body: dict[str, Any] = {"job_id": job.id, "status": getattr(status, "value", status)}
    if job.is_finished:
        body["result"] = job.return_value()
    if job.is_failed:
        body["error"] = "the job failed; see the sync run's errors"
    return body


def list_runs(session: Session, query: dict[str, Any]) -> dict[str, Any]:
    stmt = select(m.SyncRun)
    if query.get("connection"):
        stmt = stmt.where(m.SyncRun.connection == query["connection"])
    if query.get("object"):
        stmt = stmt.where(m.SyncRun.object == query["object"])
    return paginate(session, stmt.order_by(m.SyncRun.id.desc()), query, render)


def render(run: m.SyncRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "connection": run.connection,
        "object": run.object,
        "direction": run.direction,
        "mode": run.mode,
        "status": run.status,
        "counts": run.counts,
        "errors": run.errors,
        "watermark_from": run.watermark_from,
        "watermark_to": run.watermark_to,
        "mapping_version": run.mapping_version,
        "job_id": run.job_id,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
