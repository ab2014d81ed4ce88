"""Sync in: pull changed records of one connection object and upsert vendors through bindings.

Like a Singer stream: records come page by page in change order with a replication key; each
page is one transaction that upserts its vendors, advances the stored watermark and updates the
run's counts, so a run killed at any point resumes from the last committed page and a record
seen twice is simply upserted again (bindings are unique). A record that fails its mapping or
validation is rejected with its reason and never stops the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from adapters.base import AdapterError, Page
from connector.clock import utcnow
from connector.compliance import normalise_holder
from connector.jobs import Jobs
from connector.schemas import vendor_create_schema
from connector.services import audit, connections
from connector.services.vendors import apply_fields
from connector.storage import models as m
from mappings import CompiledMapping

MAX_ERRORS_KEPT = 200
VENDOR_FIELDS = ("name", "email", "tax_id", "work_types", "regions", "risk_tier")


def run_sync(
    sessions,
    jobs: Jobs,
    connection_name: str,
    remote_object: str,
    *,
    full: bool = False,
    job_id: str | None = None,
    progress: Callable[[dict], None] | None = None,
) -> int:
    """Pull `remote_object` from the connection; returns the SyncRun id."""
    session: Session = sessions()
    with session.begin():
        connection = connections.get(session, connection_name)
        cfg = connections.object_config(connection, remote_object)
        mapping = connections.mapping_for(session, connection, cfg, "in")
        state = session.get(m.SyncState, (connection.name, remote_object))
        since = None if full or state is None else state.watermark
        run = m.SyncRun(
            connection=connection.name,
            object=remote_object,
            direction="in",
            mode="full" if since is None else "incremental",
            status="running",
            counts=_zero_counts(),
            errors=[],
            watermark_from=since,
            watermark_to=since,
            mapping_version=mapping.version,
            job_id=job_id,
            started_at=utcnow(),
        )
        session.add(run)
        session.flush()
        run_id = run.id
        adapter = connections.adapter_for(connection)
        connection_name, kind = connection.name, connection.kind
    status = "succeeded"
    try:
        for page in adapter.read_changes(remote_object, since):
            try:
                counts = _commit_page(
                    session, jobs, connection_name, remote_object, mapping, page, run_id
                )
            except IntegrityError:
                # Another run of the same object bound some of these records first (a worker
                # presumed dead, a manual run beside a scheduled one): read the page again
                # against what is committed now.
                session.rollback()
                counts = _commit_page(
                    session, jobs, connection_name, remote_object, mapping, page, run_id
                )
            if progress is not None:
                progress(counts)
    except AdapterError as err:
        status = "failed"
        _finish(session, run_id, status, {"external_id": None, "message": f"{kind}: {err}"})
        raise
    finally:
        adapter.close()
    with session.begin():
        run = session.get(m.SyncRun, run_id)
        if run.counts.get("rejected"):
            status = "partial"
    _finish(session, run_id, status, None)
    session.close()
    return run_id


def _commit_page(
    session: Session,
    jobs: Jobs,
    connection: str,
    remote_object: str,
    mapping: CompiledMapping,
    page: Page,
    run_id: int,
) -> dict[str, int]:
    """Apply one page in one transaction: vendors, recompute, watermark, run counts."""
    with session.begin():
        run = session.get(m.SyncRun, run_id)
        touched = _apply_page(session, connection, remote_object, mapping, page, run)
        jobs.recompute(session, touched)
        _advance(session, connection, remote_object, page, run)
        counts = dict(run.counts)
    session.expunge_all()
    return counts


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(("seen", "created", "merged", "updated", "deactivated", "rejected"), 0)


def _finish(session: Session, run_id: int, status: str, error: dict | None) -> None:
    with session.begin():
        run = session.get(m.SyncRun, run_id)
        run.status = status
        run.finished_at = utcnow()
        if error is not None:
            run.errors = [*run.errors, error][:MAX_ERRORS_KEPT]
        audit.record(
            session,
            f"sync:{run.connection}",
            "sync.run",
            "sync_run",
            run.id,
            {
                "object": run.object,
                "status": status,
                "counts": run.counts,
                "mapping_version": run.mapping_version,
            },
        )


def _advance(session: Session, connection: str, remote: str, page: Page, run: m.SyncRun) -> None:
    marks = [r.watermark for r in page.records if r.watermark]
    mark = page.bookmark or (max(marks) if marks else None)
    if mark is None:
        return
    state = session.get(m.SyncState, (connection, remote))
    if state is None:
        state = m.SyncState(connection=connection, object=remote)
        session.add(state)
    state.watermark = mark
    state.updated_at = utcnow()
    run.watermark_to = mark


def _apply_page(
    session: Session,
    connection: str,
    remote: str,
    mapping: CompiledMapping,
    page: Page,
    run: m.SyncRun,
) -> set[int]:
    counts = dict(run.counts)
    errors = list(run.errors)
    ids = [r.external_id for r in page.records if r.external_id]
    bound = {
        b.external_id: b
        for b in session.scalars(
            select(m.Binding)
            .options(selectinload(m.Binding.vendor))
            .where(m.Binding.system == connection, m.Binding.external_id.in_(ids))
        )
    }
    touched: set[int] = set()
    now = utcnow()
    for record in page.records:
        counts["seen"] += 1
        binding = bound.get(record.external_id)
        if record.deleted:
            if binding is not None and binding.vendor.active:
                binding.vendor.active = False
                counts["deactivated"] += 1
                touched.add(binding.vendor_id)
            continue
        data, problem = _canonical_vendor(mapping, record.external_id, record.data)
        if problem is not None:
            counts["rejected"] += 1
            if len(errors) < MAX_ERRORS_KEPT:
                errors.append({"external_id": record.external_id, "message": problem})
            continue
        if data.pop("active", True) is False:
            if binding is not None and binding.vendor.active:
                binding.vendor.active = False
                counts["deactivated"] += 1
                touched.add(binding.vendor_id)
            continue
        if binding is not None:
            vendor = binding.vendor
            # A vendor is known in a system by its id there; a binding made through the API
            # (object "vendor") becomes this object's binding, so pushes reach it.
            binding.object = remote
            counts["updated"] += 1
        else:
            vendor = _same_vendor(session, data)
            if vendor is None:
                vendor = m.Vendor(name=data["name"])
                session.add(vendor)
                counts["created"] += 1
            else:
                counts["merged"] += 1
            binding = m.Binding(system=connection, object=remote, external_id=record.external_id)
            binding.vendor = vendor
            session.add(binding)
            bound[record.external_id] = binding
        apply_fields(vendor, data)
        binding.mapping_version = mapping.version
        binding.last_synced_at = now
        session.flush()
        touched.add(vendor.id)
    run.counts = counts
    run.errors = errors
    return touched


def _canonical_vendor(
    mapping: CompiledMapping, external_id: str, raw: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    if not external_id:
        return {}, "the record has no id"
    outcome = mapping.apply(raw)
    if not outcome.ok:
        return {}, "; ".join(f"{e['rule']}: {e['message']}" for e in outcome.errors)
    values = outcome.values
    active = values.get("active", True)
    body = {k: values[k] for k in VENDOR_FIELDS if values.get(k) not in (None, "")}
    try:
        data = vendor_create_schema.load(body)
    except ValidationError as err:
        return {}, "; ".join(f"{field}: {msgs}" for field, msgs in err.messages.items())
    data["active"] = active
    return data, None


def _same_vendor(session: Session, data: dict[str, Any]) -> m.Vendor | None:
    """The vendor another system already brought in: same tax id, else same normalised name
    and email."""
    if data.get("tax_id"):
        found = session.scalar(
            select(m.Vendor).where(m.Vendor.tax_id == data["tax_id"]).order_by(m.Vendor.id)
        )
        if found is not None:
            return found
    if data.get("email"):
        key = normalise_holder(data["name"])
        for candidate in session.scalars(
            select(m.Vendor).where(func.lower(m.Vendor.email) == data["email"].lower())
        ):
            if normalise_holder(candidate.name) == key:
                return candidate
    return None
