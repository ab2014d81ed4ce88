"""`/api/v1`: vendors, certificates, compliance, waivers, requirement sets, the gate,
cancellation notices and the audit log. Every view authenticates, checks its permission, loads its
input through a schema and hands over to one service call."""

from __future__ import annotations

from flask import Blueprint, current_app, g

from connector import schemas as s
from connector.api import connections as connections_api
from connector.api import mappings as mappings_api
from connector.api import webhook_subscriptions as webhook_subscriptions_api
from connector.api.auth import authenticate, requires
from connector.api.common import context, db, documented, load_body, load_query
from connector.api.openapi import cached_spec
from connector.clock import today
from connector.services import audit, cancellations, certificates, gate, requirements, vendors
from connector.services import embed as embed_service
from connector.services import waivers as waiver_service
from connector.services.compliance import vendor_compliance

bp = Blueprint("v1", __name__, url_prefix="/api/v1")
bp.register_blueprint(mappings_api.bp)
bp.register_blueprint(connections_api.bp)
bp.register_blueprint(webhook_subscriptions_api.bp)


@bp.before_request
def _authenticate():
    runtime = current_app.extensions["coi"]
    g.token = authenticate(runtime.sessions, runtime.snapshots)


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI document (any valid token)."""
    return cached_spec()


@bp.post("/vendors")
@requires("vendors:write")
@documented(
    "Create a vendor, or update the vendor its external references are bound to",
    body=s.vendor_create_schema,
    response=s.vendor_schema,
    status=201,
)
def create_vendor():
    vendor, created = vendors.upsert_vendor(context(), load_body(s.vendor_create_schema))
    return vendors.render(vendor), 201 if created else 200


@bp.get("/vendors")
@requires("read")
@documented("List vendors", query=s.vendor_query_schema, response=s.vendors_schema)
def list_vendors():
    return vendors.list_vendors(db(), load_query(s.vendor_query_schema))


@bp.get("/vendors/<id:vendor_id>")
@requires("read")
@documented("One vendor", response=s.vendor_schema)
def get_vendor(vendor_id: int):
    return vendors.render(vendors.get_vendor(db(), vendor_id))


@bp.post("/vendors/<id:vendor_id>/certificates")
@requires("certificates:write")
@documented("Record a certificate of insurance", body=s.certificate_schema, status=201)
def add_certificate(vendor_id: int):
    data = load_body(s.certificate_schema)
    return certificates.render(certificates.add_certificate(context(), vendor_id, data)), 201


@bp.get("/vendors/<id:vendor_id>/compliance")
@requires("read")
@documented(
    "The vendor's compliance over a window of days",
    query=s.compliance_query_schema,
    response=s.compliance_result_schema,
)
def get_compliance(vendor_id: int):
    query = load_query(s.compliance_query_schema)
    session = db()
    vendor = vendors.get_vendor(session, vendor_id)
    as_of = query.get("as_of") or today()
    return vendor_compliance(
        session, vendor, query.get("requirement_set"), as_of, query.get("until")
    )


@bp.post("/vendors/<id:vendor_id>/waivers")
@requires("waivers:write")
@documented("Waive one deficiency of one vendor until a date", body=s.waiver_schema, status=201)
def grant_waiver(vendor_id: int):
    data = load_body(s.waiver_schema)
    return waiver_service.render(waiver_service.grant(context(), vendor_id, data)), 201


@bp.delete("/vendors/<id:vendor_id>/waivers/<id:waiver_id>")
@requires("waivers:write")
@documented("Revoke a waiver", status=204)
def revoke_waiver(vendor_id: int, waiver_id: int):
    waiver_service.revoke(context(), vendor_id, waiver_id)
    return "", 204


@bp.put("/requirement-sets/<key>")
@requires("requirements:write")
@documented("Store a new version of a requirement set", body=s.requirement_set_schema)
def put_requirement_set(key: str):
    s.validate_requirement_key(key)
    row = requirements.put_set(context(), key, load_body(s.requirement_set_schema))
    return requirements.render(row), 201 if row.version == 1 else 200


@bp.get("/requirement-sets")
@requires("read")
@documented("Every version of every requirement set")
def list_requirement_sets():
    return {"items": requirements.list_sets(db())}


@bp.post("/gate")
@requires("gate")
@documented(
    "Allow, warn or block a vendor for a work order",
    body=s.gate_request_schema,
    response=s.gate_decision_schema,
)
def gate_decision():
    runtime = current_app.extensions["coi"]
    request = load_body(s.gate_request_schema)
    return gate.decide(context(), request, runtime.snapshots, runtime.write_behind)


@bp.post("/embed-links")
@requires("read")
@documented(
    "A signed link to a vendor's dispatcher page (for an iframe or a custom link)",
    body=s.embed_link_request_schema,
    response=s.embed_link_schema,
    status=201,
)
def create_embed_link():
    data = load_body(s.embed_link_request_schema)
    secret_key = current_app.extensions["coi"].settings.secret_key
    return embed_service.mint(context(), secret_key, data), 201


@bp.post("/cancellation-notices")
@requires("notices:write")
@documented("Record a cancellation notice", body=s.cancellation_notice_schema, status=201)
def record_notice():
    notice = cancellations.record_notice(context(), load_body(s.cancellation_notice_schema))
    return cancellations.render(notice), 201


@bp.get("/audit")
@requires("audit:read")
@documented("The audit log, newest first", query=s.audit_query_schema)
def list_audit():
    return audit.list_events(db(), load_query(s.audit_query_schema))
