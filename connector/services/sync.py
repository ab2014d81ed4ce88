"""Sync in: pull changed records of one connection object and upsert vendors through bindings.

Like a Singer stream: records come page by page in change order with a replication key; each
page is one transaction that upserts its vendors, advances the stored watermark and updates the
run's counts, so a run killed at any point resumes from the last committed page and a record
seen twice is simply upserted again (bindings are unique). A record that fails its mapping or
validation is rejected with its reason and never stops the run.

Speed: pages are read in a background thread, one page ahead of the page being applied, so
waiting for the remote overlaps our own work. A page is applied as a set: one query for its
bindings, one each for vendors it may merge with (by tax id, by e-mail), then bulk inserts of
new vendors, bindings, work types and regions, and updates only of vendors whose fields
changed. Merging follows the records in page order, so a record merges with a vendor an
earlier record of the same page created or changed, exactly as if each were written at once.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.base import Adapter, AdapterError, Page, RemoteRecord
from connector import collector
from connector.clock import utcnow
from connector.compliance import normalise_holder
from connector.jobs import Jobs
from connector.schema_load import load
from connector.schemas import vendor_create_schema
from connector.services import audit, connections
from connector.services.vendors import SCALAR_FIELDS, tag_values
from connector.storage import models as m
from connector.storage.bulk import insert_returning_ids, insert_rows, update_rows
from connector.storage.db import in_values
from mappings import CompiledMapping

MAX_ERRORS_KEPT = 200
VENDOR_FIELDS = ("name", "email", "tax_id", "work_types", "regions", "risk_tier")
#: Pages read ahead of the one being applied: enough to overlap, few enough to keep memory flat.
READ_AHEAD = 1


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
    """Pull `remote_object` from the connection; returns the SyncRun id.

    `progress` is called after each committed page with the run's counts so far, plus `total`
    when the remote said how many records the run will read."""
    session: Session = sessions()
    with session.begin():
        state = session.get(m.SyncState, (connection_name, remote_object))
        since = None if full or state is None else state.watermark
        mode = "full" if since is None else "incremental"
        run = _start_run(session, connection_name, remote_object, mode, since, job_id)
    status = "succeeded"
    pages = _ReadAhead(run.adapter, remote_object, since)
    try:
        for page in pages:
            counts = _commit_page_retrying(session, jobs, run, page)
            if progress is not None:
                progress(counts if page.total is None else {**counts, "total": page.total})
    except AdapterError as err:
        status = "failed"
        _finish(session, run.id, status, {"external_id": None, "message": f"{run.kind}: {err}"})
        raise
    finally:
        pages.close()
    with session.begin():
        if session.get(m.SyncRun, run.id).counts.get("rejected"):
            status = "partial"
    _finish(session, run.id, status, None)
    session.close()
    return run.id


@dataclasses.dataclass
class _Run:
    """A started SyncRun and what applying its pages needs."""

    id: int
    connection: str
    kind: str
    remote_object: str
    mapping: CompiledMapping
    adapter: Adapter


def _start_run(
    session: Session,
    connection_name: str,
    remote_object: str,
    mode: str,
    since: str | None,
    job_id: str | None,
) -> _Run:
    """Record a running SyncRun (in the caller's transaction) with the mapping it applies."""
    connection = connections.get(session, connection_name)
    cfg = connections.object_config(connection, remote_object)
    mapping = connections.mapping_for(session, connection, cfg, "in")
    run = m.SyncRun(
        connection=connection.name,
        object=remote_object,
        direction="in",
        mode=mode,
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
    adapter = connections.adapter_for(connection)
    return _Run(run.id, connection.name, connection.kind, remote_object, mapping, adapter)


def _commit_page_retrying(session: Session, jobs: Jobs, run: _Run, page: Page) -> dict[str, int]:
    try:
        return _commit_page(
            session, jobs, run.connection, run.remote_object, run.mapping, page, run.id
        )
    except IntegrityError:
        # Another run of the same object bound some of these records first (a worker presumed
        # dead, a manual run beside a scheduled one, a webhook's one-record sync): apply the
        # page again against what is committed now.
        session.rollback()
        return _commit_page(
            session, jobs, run.connection, run.remote_object, run.mapping, page, run.id
        )


class _Failed:
    """What the reading thread hands over instead of a page when the adapter raised."""

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


class _ReadAhead:
    """The adapter's pages, read by a thread of their own at most READ_AHEAD pages ahead of
    the consumer. Only that thread uses the adapter; whatever it raises is raised by the
    consumer's iteration at the same point of the stream, after the pages read before it."""

    def __init__(self, adapter: Adapter, remote_object: str, since: str | None):
        self._adapter = adapter
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._read, args=(remote_object, since), name="sync-read-ahead", daemon=True
        )
        self._thread.start()

    def _read(self, remote_object: str, since: str | None) -> None:
        try:
            pages = self._adapter.read_changes(remote_object, since)
            try:
                for page in pages:
                    if not self._hand_over(page):
                        return
            finally:
                close = getattr(pages, "close", None)
                if close is not None:
                    close()
        except BaseException as err:  # handed to the consumer, which raises it
            self._hand_over(_Failed(err))
            return
        self._hand_over(_END)

    def _hand_over(self, item: Any) -> bool:
        """Queue `item`; False when the consumer stopped listening."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Page]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop reading (the thread ends after the call it is in) and release the adapter."""
        self._stop.set()
        self._thread.join()
        self._adapter.close()


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
    with collector.paused(), session.begin():
        run = session.get(m.SyncRun, run_id)
        touched = _apply_page(session, connection, remote_object, mapping, page, run)
        jobs.recompute(session, touched)
        _advance(session, connection, remote_object, page, run)
        counts = dict(run.counts)
    session.expunge_all()
    return counts


def _zero_counts() -> dict[str, int]:
    # `reactivated` counts records among those `updated` or `merged`, not beside them.
    kinds = ("seen", "created", "merged", "updated", "deactivated", "reactivated", "rejected")
    return dict.fromkeys(kinds, 0)


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


# -- applying a page ---------------------------------------------------------------------------


@dataclass(eq=False)
class _Vendor:
    """A vendor as the page leaves it. `stored` holds the stored column values (None: new, to
    be inserted); `rank` orders vendors as their ids will (stored ones first, then new ones in
    the order the page creates them), which is the order the merge rules pick the first in."""

    rank: tuple[int, int]
    id: int | None
    name: str
    email: str | None = None
    tax_id: str | None = None
    risk_tier: str | None = None
    active: bool = True
    deactivated_by: str | None = None
    stored: dict[str, Any] | None = None
    #: Work types / regions the page sets (sorted, unique); None: the page leaves them.
    work_types: list[str] | None = None
    regions: list[str] | None = None
    _name_key: tuple[str, str] | None = None

    @property
    def name_key(self) -> str:
        """The normalised name (cached per name)."""
        if self._name_key is None or self._name_key[0] != self.name:
            self._name_key = (self.name, normalise_holder(self.name))
        return self._name_key[1]

    def changes(self) -> dict[str, Any]:
        """Stored columns whose value the page changed."""
        assert self.stored is not None
        return {k: getattr(self, k) for k, v in self.stored.items() if getattr(self, k) != v}


@dataclass(eq=False)
class _Bound:
    """A binding of one of the page's external ids: stored (`id`) or made by this page."""

    vendor: _Vendor
    id: int | None = None
    synced: bool = False


_COLUMNS = ("name", "email", "tax_id", "risk_tier", "active", "deactivated_by")


class _PageVendors:
    """The vendors one page reads and writes, with the merge rules' lookups over them."""

    def __init__(self) -> None:
        self.by_id: dict[int, _Vendor] = {}
        self.created: list[_Vendor] = []
        self._by_tax: dict[str, list[_Vendor]] = defaultdict(list)
        self._by_email: dict[str, list[_Vendor]] = defaultdict(list)

    def load(self, session: Session, condition) -> None:
        """Add the stored vendors matching `condition` (those already here are kept)."""
        table = m.Vendor.__table__
        rows = session.execute(select(table.c.id, *(table.c[c] for c in _COLUMNS)).where(condition))
        for row in rows:
            if row.id in self.by_id:
                continue
            stored = {c: getattr(row, c) for c in _COLUMNS}
            vendor = _Vendor(rank=(0, row.id), id=row.id, stored=stored, **stored)
            self.by_id[row.id] = vendor
            self._index(vendor)

    def _index(self, vendor: _Vendor) -> None:
        if vendor.tax_id:
            self._by_tax[vendor.tax_id].append(vendor)
        if vendor.email:
            self._by_email[vendor.email.lower()].append(vendor)

    def same_vendor(self, data: dict[str, Any]) -> _Vendor | None:
        """The vendor another system already brought in: same tax id, else same normalised
        name and email; the first by id when several are."""
        tax_id = data.get("tax_id")
        if tax_id:
            found = [v for v in self._by_tax.get(tax_id, ()) if v.tax_id == tax_id]
            if found:
                return min(found, key=_rank)
        email = data.get("email")
        candidates = self._by_email.get(email.lower(), ()) if email else ()
        if candidates:
            email = email.lower()
            key = normalise_holder(data["name"])
            found = [
                v
                for v in candidates
                if v.email is not None and v.email.lower() == email and v.name_key == key
            ]
            if found:
                return min(found, key=_rank)
        return None

    def create(self, name: str) -> _Vendor:
        vendor = _Vendor(rank=(1, len(self.created)), id=None, name=name)
        self.created.append(vendor)
        return vendor

    def apply(self, vendor: _Vendor, data: dict[str, Any]) -> None:
        """Set the fields `data` carries, as `vendors.apply_fields` does on a stored vendor."""
        for name in SCALAR_FIELDS:
            if name in data:
                setattr(vendor, name, data[name])
        if "work_types" in data:
            vendor.work_types = tag_values(data["work_types"])
        if "regions" in data:
            vendor.regions = tag_values(data["regions"])
        self._index(vendor)

    def write(self, session: Session) -> None:
        """Insert the new vendors (their ids assigned), update the changed ones, and replace
        work types and regions where the page changed them."""
        if self.created:
            ids = insert_returning_ids(
                session,
                m.Vendor.__table__,
                [{c: getattr(v, c) for c in _COLUMNS} for v in self.created],
            )
            for vendor, vendor_id in zip(self.created, ids, strict=True):
                vendor.id = vendor_id
        changed = [{"id": v.id, **changes} for v in self.by_id.values() if (changes := v.changes())]
        if changed:
            update_rows(session, m.Vendor.__table__, changed)
        vendors = [*self.by_id.values(), *self.created]
        _replace_tags(session, m.VendorWorkType, "work_type", vendors, "work_types")
        _replace_tags(session, m.VendorRegion, "region", vendors, "regions")


def _rank(vendor: _Vendor) -> tuple[int, int]:
    return vendor.rank


def _replace_tags(session: Session, model, column: str, vendors: list[_Vendor], attr: str) -> None:
    """Store the work types (or regions) the page set where they differ from the stored ones:
    the vendor's old rows go, the new ones come (as the ORM's delete-orphan collection did)."""
    wanted = {v.id: tags for v in vendors if (tags := getattr(v, attr)) is not None}
    if not wanted:
        return
    table = model.__table__
    current: dict[int, list[str]] = defaultdict(list)
    stored_ids = [v.id for v in vendors if v.stored is not None and v.id in wanted]
    if stored_ids:
        rows = session.execute(
            select(table.c.vendor_id, table.c[column])
            .where(in_values(table.c.vendor_id, stored_ids))
            .order_by(table.c.vendor_id, table.c[column])
        )
        for vendor_id, tag in rows:
            current[vendor_id].append(tag)
    replace = [vid for vid, tags in wanted.items() if current.get(vid, []) != tags]
    stale = [vid for vid in replace if vid in current]
    if stale:
        session.execute(delete(table).where(in_values(table.c.vendor_id, stale)))
    insert_rows(
        session, table, [{"vendor_id": vid, column: tag} for vid in replace for tag in wanted[vid]]
    )


def _apply_page(
    session: Session,
    connection: str,
    remote: str,
    mapping: CompiledMapping,
    page: Page,
    run: m.SyncRun,
) -> set[int]:
    """Upsert the page's vendors and bindings; returns the ids of the vendors it touched."""
    counts = dict(run.counts)
    errors = list(run.errors)
    canonical = [
        None if record.deleted else _canonical_vendor(mapping, record.external_id, record.data)
        for record in page.records
    ]
    vendors = _PageVendors()
    bound = _stored_bindings(session, connection, [r.external_id for r in page.records], vendors)
    valid = [data for data, problem in filter(None, canonical) if problem is None]
    tax_ids = sorted({d["tax_id"] for d in valid if d.get("tax_id")})
    emails = sorted({d["email"].lower() for d in valid if d.get("email")})
    if tax_ids:
        vendors.load(session, in_values(m.Vendor.__table__.c.tax_id, tax_ids))
    if emails:
        vendors.load(session, in_values(func.lower(m.Vendor.__table__.c.email), emails))
    touched: dict[int, _Vendor] = {}
    made: list[tuple[str, _Bound]] = []
    for record, prepared in zip(page.records, canonical, strict=True):
        counts["seen"] += 1
        binding = bound.get(record.external_id)
        if prepared is None:  # deleted remotely
            _deactivate(binding, connection, counts, touched)
            continue
        data, problem = prepared
        if problem is not None:
            counts["rejected"] += 1
            if len(errors) < MAX_ERRORS_KEPT:
                errors.append({"external_id": record.external_id, "message": problem})
            continue
        if data.pop("active", True) is False:
            _deactivate(binding, connection, counts, touched)
            continue
        if binding is not None:
            vendor = binding.vendor
            counts["updated"] += 1
        else:
            vendor = vendors.same_vendor(data)
            if vendor is None:
                vendor = vendors.create(data["name"])
                counts["created"] += 1
            else:
                counts["merged"] += 1
            binding = bound[record.external_id] = _Bound(vendor)
            made.append((record.external_id, binding))
        binding.synced = True
        if not vendor.active and vendor.deactivated_by in (None, connection):
            vendor.active, vendor.deactivated_by = True, None
            counts["reactivated"] += 1
        vendors.apply(vendor, data)
        touched[id(vendor)] = vendor
    vendors.write(session)
    _write_bindings(session, connection, remote, mapping.version, bound, made)
    run.counts = counts
    run.errors = errors
    return {v.id for v in touched.values()}


def _deactivate(
    binding: _Bound | None, connection: str, counts: dict[str, int], touched: dict
) -> None:
    if binding is not None and binding.vendor.active:
        binding.vendor.active = False
        binding.vendor.deactivated_by = connection
        counts["deactivated"] += 1
        touched[id(binding.vendor)] = binding.vendor


def _stored_bindings(
    session: Session, connection: str, external_ids: list[str], vendors: _PageVendors
) -> dict[str, _Bound]:
    """The stored bindings of these external ids in `connection` (any object), with their
    vendors loaded into `vendors`."""
    ids = [i for i in external_ids if i]
    if not ids:
        return {}
    table = m.Binding.__table__
    rows = session.execute(
        select(table.c.id, table.c.external_id, table.c.vendor_id)
        .where(table.c.system == connection, in_values(table.c.external_id, ids))
        .order_by(table.c.id)
    ).all()
    vendors.load(session, in_values(m.Vendor.__table__.c.id, {r.vendor_id for r in rows}))
    return {r.external_id: _Bound(vendors.by_id[r.vendor_id], id=r.id) for r in rows}


def _write_bindings(
    session: Session,
    connection: str,
    remote: str,
    version: int | None,
    bound: dict[str, _Bound],
    made: list[tuple[str, _Bound]],
) -> None:
    """Insert the bindings the page made; stamp those it synced. A vendor is known in a system
    by its id there: a binding made through the API (object "vendor") becomes this object's
    binding, so pushes reach it."""
    now = utcnow()
    synced = [
        {"id": b.id, "object": remote, "mapping_version": version, "last_synced_at": now}
        for b in bound.values()
        if b.synced and b.id is not None
    ]
    if synced:
        update_rows(session, m.Binding.__table__, synced)
    if made:
        insert_rows(
            session,
            m.Binding.__table__,
            [
                {
                    "system": connection,
                    "object": remote,
                    "external_id": external_id,
                    "vendor_id": b.vendor.id,
                    "mapping_version": version,
                    "last_synced_at": now,
                }
                for external_id, b in made
            ],
        )


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
        data = load(vendor_create_schema, body)
    except ValidationError as err:
        return {}, "; ".join(f"{field}: {msgs}" for field, msgs in err.messages.items())
    data["active"] = active
    return data, None


def sync_one(
    sessions, jobs: Jobs, connection_name: str, remote_object: str, external_id: str
) -> dict[str, Any]:
    """Pull one record now (a webhook said it changed) through the same page-apply path as a
    run, recorded as a run of mode "one". The object's watermark does not move: the record is
    read out of turn, and changes before it must still come with the next incremental run. A
    record the remote no longer has deactivates its vendor."""
    session: Session = sessions()
    with session.begin():
        run = _start_run(session, connection_name, remote_object, "one", None, None)
    try:
        record = run.adapter.read_one(remote_object, external_id)
    except AdapterError as err:
        problem = {"external_id": external_id, "message": f"{run.kind}: {err}"}
        _finish(session, run.id, "failed", problem)
        raise
    finally:
        run.adapter.close()
    if record is None:
        record = RemoteRecord(external_id, {}, deleted=True)
    counts = _commit_page_retrying(
        session, jobs, run, Page([dataclasses.replace(record, watermark=None)])
    )
    status = "partial" if counts.get("rejected") else "succeeded"
    _finish(session, run.id, status, None)
    session.close()
    return {"sync_run": run.id, "status": status, "counts": counts}
