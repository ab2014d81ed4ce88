"""What each inbound event does, through the connector's services (the narrow interface
`webhooks` may use): a work order goes through the connection's inbound mapping and the gate (and
its writeback through the outbox); a vendor change pulls that one record; a certificate or a
cancellation notice is recorded as the REST API records it.

Each handler takes the verified, parsed payload and answers an `Outcome`: the HTTP status and
JSON body to store for the delivery, and optionally work to do once the answer is sent (inline
delivery of a writeback when no job queue is configured).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import schemas as s
from connector.clock import today
from connector.jobs import RETRY, Jobs, sync_one_job
from connector.schema_load import load
from connector.services import audit, cancellations, certificates, connections, gate, outbox
from connector.services.context import Context
from connector.services.sync import sync_one
from connector.services.vendors import find_by_ref
from connector.services.write_behind import WriteBehind
from connector.storage import models as m
from connector.storage.snapshots import Snapshots
from mappings import CompiledMapping, jsonable
from webhooks.inbound import ReceiverConfig, writeback_fields

log = logging.getLogger(__name__)

_vendor_ref_schema = s.ExternalRefSchema()


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    #: Run after the answer has been sent (never for a repeated delivery).
    after: Callable[[], None] | None = None


@dataclass
class Inbound:
    """One verified delivery: whose it is, the parsed payload, and what the app shares."""

    connection: str
    config: ReceiverConfig
    payload: Any
    sessions: Any
    jobs: Jobs
    #: The web process's snapshots (None: read everything afresh).
    snapshots: Snapshots | None = None
    #: The web process's write-behind for decisions (None: stored before answering).
    write_behind: WriteBehind | None = None

    def context(self) -> Context:
        """A context whose session is opened on first use and closed when the context exits."""
        return Context(self.sessions, self.jobs, self.actor, today())

    @property
    def actor(self) -> str:
        return f"webhook:{self.connection}"


def work_order(inbound: Inbound) -> Outcome:
    """Map the event to a work order, gate it, answer the decision; write back when asked."""
    payload = _object(inbound.payload)
    with inbound.context() as ctx:
        cfg, mapping = (inbound.snapshots or Snapshots.uncached()).get(
            ("work_order_mapping", inbound.connection),
            ("connections", "mapping_versions"),
            lambda: _work_order_mapping(ctx.session, inbound.connection),
        )
        mapped = mapping.apply(payload)
        if not mapped.ok:
            raise ValidationError(
                {"payload": [f"{e['rule']}: {e['message']}" for e in mapped.errors]}
            )
        values = jsonable(mapped.values)
        ref = {"system": inbound.connection, "external_id": values["external_id"]}
        if not values.get("vendor_external_id"):
            return Outcome(200, {"decision": None, "work_order": ref, "skipped": "no_vendor"})
        request = load(
            s.gate_request_schema,
            {
                "work_order": ref,
                "vendor": {
                    "system": inbound.connection,
                    "external_id": values["vendor_external_id"],
                },
                "work_type": values.get("work_type"),
                "region": values.get("region"),
                "scheduled_start": values.get("scheduled_start"),
                "scheduled_end": values.get("scheduled_end"),
                "amount": values.get("amount"),
            },
        )
        if inbound.config.writeback == "none":
            # Stored behind the answer, like the REST gate's decisions.
            return Outcome(200, gate.decide(ctx, request, inbound.snapshots, inbound.write_behind))
        staged = []

        def write_back(session: Session, work_order_id: int, decision: dict[str, Any]) -> None:
            # In the decision's own transaction: no decision without its writeback.
            fields = writeback_fields(inbound.config, decision)
            if not fields:
                return
            outbox.stage_record(
                session, inbound.connection, cfg["remote"], ref["external_id"], fields
            )
            audit.record(
                session,
                ctx.actor,
                "work_order.writeback",
                "work_order",
                work_order_id,
                {
                    "writeback": inbound.config.writeback,
                    "decision": decision["decision"],
                    "decision_id": decision["decision_id"],
                },
            )
            staged.append(work_order_id)

        decision = gate.decide(ctx, request, inbound.snapshots, then=write_back)
    return Outcome(200, decision, _push(inbound) if staged else None)


def vendor_changed(inbound: Inbound) -> Outcome:
    """Pull the one vendor record that changed (`external_id`, or the record's own `Id`/`id`;
    `object` when the connection syncs vendors from several objects)."""
    payload = _object(inbound.payload)
    external_id = next(
        (payload[k] for k in ("external_id", "Id", "id") if payload.get(k) not in (None, "")),
        None,
    )
    errors = {}
    if not isinstance(external_id, str | int) or isinstance(external_id, bool):
        errors["external_id"] = ["The changed record's id is required (external_id or Id)."]
    elif len(str(external_id)) > 255:
        errors["external_id"] = ["At most 255 characters."]
    with inbound.sessions() as session:
        connection = connections.get(session, inbound.connection)
        remote = _vendor_object(connection, payload.get("object"), errors)
    if errors:
        raise ValidationError(errors)
    external_id = str(external_id)
    if inbound.jobs.queued:
        job = inbound.jobs.queue().enqueue(
            sync_one_job, inbound.connection, remote, external_id, retry=RETRY, job_timeout=600
        )
        return Outcome(202, {"job_id": job.id, "object": remote, "external_id": external_id})
    result = sync_one(inbound.sessions, inbound.jobs, inbound.connection, remote, external_id)
    return Outcome(200, {"object": remote, "external_id": external_id, **result}, _push(inbound))


def certificate_submitted(inbound: Inbound) -> Outcome:
    """Record a certificate; the body is the API's certificate plus the vendor, by `vendor`
    {system, external_id} or `vendor_id`. The source defaults to `agent`."""
    body = dict(_object(inbound.payload))
    ref, vendor_id = body.pop("vendor", None), body.pop("vendor_id", None)
    body.setdefault("source", "agent")
    errors: dict[str, Any] = {}
    try:
        data = s.certificate_schema.load(body)
    except ValidationError as err:
        errors.update(err.messages if isinstance(err.messages, dict) else {"_schema": err.messages})
    with inbound.context() as ctx:
        with ctx.session.begin():
            vendor = _vendor(ctx.session, ref, vendor_id, errors)
        if errors:
            raise ValidationError(errors)
        cert = certificates.add_certificate(ctx, vendor, data)
        return Outcome(201, certificates.render(cert))


def cancellation_notice(inbound: Inbound) -> Outcome:
    """Record a cancellation notice (the API's body; `received_via` defaults to `webhook`)."""
    body = {"received_via": "webhook", **_object(inbound.payload)}
    data = s.cancellation_notice_schema.load(body)
    with inbound.context() as ctx:
        notice = cancellations.record_notice(ctx, data)
        return Outcome(201, cancellations.render(notice))


HANDLERS: dict[str, Callable[[Inbound], Outcome]] = {
    "work-order": work_order,
    "vendor-changed": vendor_changed,
    "certificate-submitted": certificate_submitted,
    "cancellation-notice": cancellation_notice,
}


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValidationError({"_schema": ["The body must be a JSON object."]})
    return payload


def _work_order_mapping(session: Session, name: str) -> tuple[dict[str, Any], CompiledMapping]:
    with session.begin():
        connection = connections.get(session, name)
        cfg = connections.object_for(connection, "work_order")
        return cfg, connections.mapping_for(session, connection, cfg, "in")


def _vendor_object(connection: m.Connection, named: Any, errors: dict) -> str | None:
    remotes = [c["remote"] for c in connection.objects if c["canonical"] == "vendor"]
    if named is not None:
        if named not in remotes:
            errors["object"] = [f"One of: {', '.join(remotes) or '(no vendor objects)'}."]
        return named
    if len(remotes) != 1:
        errors["object"] = [f"Name the object: one of {', '.join(remotes) or '(none)'}."]
        return None
    return remotes[0]


def _vendor(session, ref: Any, vendor_id: Any, errors: dict) -> int | None:
    """The vendor a certificate names (by reference or id); problems go into `errors`."""
    if (ref is None) == (vendor_id is None):
        errors["vendor"] = ["vendor or vendor_id is required (not both)."]
        return None
    if vendor_id is not None:
        if not isinstance(vendor_id, int) or isinstance(vendor_id, bool) or vendor_id < 1:
            errors["vendor_id"] = ["Not a valid vendor id."]
            return None
        found = session.scalar(select(m.Vendor.id).where(m.Vendor.id == vendor_id))
        if found is None:
            errors["vendor_id"] = [f"No vendor {vendor_id}."]
        return found
    try:
        ref = _vendor_ref_schema.load(ref)
    except ValidationError as err:
        errors["vendor"] = err.messages
        return None
    vendor = find_by_ref(session, ref["system"], ref["external_id"])
    if vendor is None:
        errors["vendor"] = ["No vendor is bound to that reference."]
        return None
    return vendor.id


def _push(inbound: Inbound) -> Callable[[], None] | None:
    """Deliver the connection's outbox: queued as a push job now, or inline once answered."""
    if inbound.jobs.queued:
        inbound.jobs.push_soon(inbound.connection)
        return None

    def deliver() -> None:
        try:
            outbox.deliver(inbound.sessions, inbound.connection)
        except Exception as err:  # the entry waits in the outbox; the next push sends it
            log.warning("webhook writeback for %s not delivered: %s", inbound.connection, err)

    return deliver
