"""SQLAlchemy 2 models: the connector's own records.

Anything the gate or a list filters on is a column with an index; nested canonical data that is
only read whole (limits, deficiency lists, request bodies) is JSON.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Vendor(Base):
    __tablename__ = "vendors"
    # Sync merges a record into the vendor another system brought in by e-mail, case-blind.
    __table_args__ = (Index("ix_vendors_email_lower", text("lower(email)")),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    email: Mapped[str | None] = mapped_column(String(254))
    tax_id: Mapped[str | None] = mapped_column(String(32), index=True)
    risk_tier: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # The connection whose remote record deactivated the vendor: only that connection's record
    # turning active again reactivates it (another system may still list it as inactive).
    deactivated_by: Mapped[str | None] = mapped_column(String(64))
    # Worst stored result over the vendor's applicable requirement sets (denormalised for lists).
    status: Mapped[str | None] = mapped_column(String(16), index=True)
    score: Mapped[int | None] = mapped_column(Integer)
    expires_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = _now()

    work_types: Mapped[list[VendorWorkType]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="VendorWorkType.work_type"
    )
    regions: Mapped[list[VendorRegion]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="VendorRegion.region"
    )
    bindings: Mapped[list[Binding]] = relationship(back_populates="vendor", lazy="selectin")


class VendorWorkType(Base):
    __tablename__ = "vendor_work_types"

    vendor_id: Mapped[int] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), primary_key=True
    )
    work_type: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class VendorRegion(Base):
    __tablename__ = "vendor_regions"

    vendor_id: Mapped[int] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), primary_key=True
    )
    region: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Binding(Base):
    """One remote record (connection/system, object, external id) bound to a local vendor."""

    __tablename__ = "bindings"
    __table_args__ = (
        UniqueConstraint("system", "object", "external_id"),
        # Vendors are looked up by (system, external id) whatever the bound object.
        Index("ix_bindings_ref", "system", "external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system: Mapped[str] = mapped_column(String(64), nullable=False)
    object: Mapped[str] = mapped_column(String(64), nullable=False, default="vendor")
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    vendor_id: Mapped[int] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pushed_hash: Mapped[str | None] = mapped_column(String(64))
    #: The field values the remote last acknowledged: a push sends only what differs.
    pushed_values: Mapped[dict | None] = mapped_column(JSON)
    #: Which mapping version produced the vendor fields from this remote record.
    mapping_version: Mapped[int | None] = mapped_column(Integer)

    vendor: Mapped[Vendor] = relationship(back_populates="bindings")


class Certificate(Base):
    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor_id: Mapped[int] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    producer: Mapped[dict | None] = mapped_column(JSON)
    insured_name: Mapped[str] = mapped_column(String(200), nullable=False)
    holder_name: Mapped[str] = mapped_column(String(200), nullable=False)
    holder_address: Mapped[str | None] = mapped_column(Text)
    description_of_operations: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = _now()

    policies: Mapped[list[Policy]] = relationship(
        back_populates="certificate", cascade="all, delete-orphan"
    )


class Policy(Base):
    __tablename__ = "policies"
    __table_args__ = (Index("ix_policies_match", "policy_number_norm", "insurer_name_norm"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_id: Mapped[int] = mapped_column(
        ForeignKey("certificates.id", ondelete="CASCADE"), nullable=False, index=True
    )
    vendor_id: Mapped[int] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    line: Mapped[str] = mapped_column(String(32), nullable=False)
    policy_number: Mapped[str] = mapped_column(String(64), nullable=False)
    policy_number_norm: Mapped[str] = mapped_column(String(64), nullable=False)
    insurer_name: Mapped[str] = mapped_column(String(200), nullable=False)
    insurer_name_norm: Mapped[str] = mapped_column(String(200), nullable=False)
    insurer_naic: Mapped[str | None] = mapped_column(String(5))
    am_best: Mapped[str | None] = mapped_column(String(3))
    effective_date: Mapped[date] = mapped_column(Date, nullable=False)
    expiration_date: Mapped[date] = mapped_column(Date, nullable=False)
    limits: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    statutory: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    additional_insured: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    waiver_of_subrogation: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    primary_noncontributory: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    claims_made: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    cancelled_on: Mapped[date | None] = mapped_column(Date)

    certificate: Mapped[Certificate] = relationship(back_populates="policies")


class Insurer(Base):
    """A.M. Best ratings by NAIC code, loaded by an admin (`coi insurers import`)."""

    __tablename__ = "insurers"

    naic: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    am_best: Mapped[str] = mapped_column(String(3), nullable=False)
    updated_at: Mapped[datetime] = _now()


class RequirementSetVersion(Base):
    """Each PUT of a requirement set is a new version; `spec` is the validated body."""

    __tablename__ = "requirement_sets"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    effective_from: Mapped[date] = mapped_column(Date, nullable=False)
    spec: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = _now()


class Waiver(Base):
    __tablename__ = "waivers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor_id: Mapped[int] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    code: Mapped[str] = mapped_column(String(40), nullable=False)
    line: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    granted_by: Mapped[str] = mapped_column(String(200), nullable=False)
    until: Mapped[date] = mapped_column(Date, nullable=False)
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ComplianceResult(Base):
    """Latest result per (vendor, requirement set); the gate and the alternatives read this."""

    __tablename__ = "compliance_results"
    # Alternatives walk this index from the best score down and stop after a handful.
    __table_args__ = (Index("ix_results_rank", "requirement_set", "score", "vendor_id"),)

    vendor_id: Mapped[int] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), primary_key=True
    )
    requirement_set: Mapped[str] = mapped_column(String(64), primary_key=True)
    set_version: Mapped[int] = mapped_column(Integer, nullable=False)
    as_of: Mapped[date] = mapped_column(Date, nullable=False)
    until: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    score: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_on: Mapped[date | None] = mapped_column(Date)
    stable_until: Mapped[date | None] = mapped_column(Date)
    body: Mapped[dict] = mapped_column(JSON, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ComplianceHistory(Base):
    """Every change of a stored result (status, score or deficiencies), oldest first."""

    __tablename__ = "compliance_history"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    vendor_id: Mapped[int] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    requirement_set: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    score: Mapped[int] = mapped_column(Integer, nullable=False)
    as_of: Mapped[date] = mapped_column(Date, nullable=False)
    body: Mapped[dict] = mapped_column(JSON, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class WorkOrder(Base):
    __tablename__ = "work_orders"
    __table_args__ = (UniqueConstraint("system", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system: Mapped[str] = mapped_column(String(64), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    vendor_id: Mapped[int | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="SET NULL"), index=True
    )
    work_type: Mapped[str] = mapped_column(String(64), nullable=False)
    region: Mapped[str] = mapped_column(String(64), nullable=False)
    scheduled_start: Mapped[date] = mapped_column(Date, nullable=False)
    scheduled_end: Mapped[date] = mapped_column(Date, nullable=False)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()


class GateDecision(Base):
    __tablename__ = "gate_decisions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: The `decision_id` answered to the caller, made before the row is written.
    uid: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)
    work_order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    vendor_id: Mapped[int | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="SET NULL"), index=True
    )
    decision: Mapped[str] = mapped_column(String(8), nullable=False)
    status: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int | None] = mapped_column(Integer)
    requirement_set: Mapped[str | None] = mapped_column(String(64))
    reasons: Mapped[list] = mapped_column(JSON, nullable=False)
    alternatives: Mapped[list] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = _now()


class CancellationNotice(Base):
    __tablename__ = "cancellation_notices"
    __table_args__ = (Index("ix_notices_match", "policy_number_norm", "insurer_name_norm"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_number: Mapped[str] = mapped_column(String(64), nullable=False)
    policy_number_norm: Mapped[str] = mapped_column(String(64), nullable=False)
    insurer_name: Mapped[str] = mapped_column(String(200), nullable=False)
    insurer_name_norm: Mapped[str] = mapped_column(String(200), nullable=False)
    effective_date: Mapped[date] = mapped_column(Date, nullable=False)
    received_via: Mapped[str] = mapped_column(String(32), nullable=False)
    notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("policies.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _now()


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = _now()
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    entity_type: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)


class ApiToken(Base):
    """Bearer tokens: only the SHA-256 of the token is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MappingVersion(Base):
    """Each save of a field mapping (connection, object, direction) is a new version; the highest
    version is the one in use. A rollback saves an older version's spec as a new version."""

    __tablename__ = "mapping_versions"
    __table_args__ = (UniqueConstraint("connection", "object", "direction", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection: Mapped[str] = mapped_column(String(64), nullable=False)
    object: Mapped[str] = mapped_column(String(32), nullable=False)
    direction: Mapped[str] = mapped_column(String(3), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    spec: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class Connection(Base):
    """A configured remote system. `settings` never holds a secret, only where to find it
    (`<name>_env` / `<name>_file`)."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    settings: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    #: [{"remote": "Account", "canonical": "vendor", "sync_in": true, "push": true,
    #:   "mapping_in": "<default name>", "mapping_out": "<default name>"}]
    objects: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    #: Minutes between incremental syncs (None: only on demand).
    schedule_minutes: Mapped[int | None] = mapped_column(Integer)
    #: Gate answer for vendors this connection does not know: False blocks, True warns.
    fail_open: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = _now()


class SyncState(Base):
    """The watermark (or bookmark) of the last fully processed page, per connection object."""

    __tablename__ = "sync_states"

    connection: Mapped[str] = mapped_column(String(64), primary_key=True)
    object: Mapped[str] = mapped_column(String(64), primary_key=True)
    watermark: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = _now()


class SyncRun(Base):
    """One pull (direction "in") or push ("out") for one connection object."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_connection", "connection", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection: Mapped[str] = mapped_column(String(64), nullable=False)
    object: Mapped[str] = mapped_column(String(64), nullable=False)
    direction: Mapped[str] = mapped_column(String(3), nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    counts: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    errors: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    watermark_from: Mapped[str | None] = mapped_column(String(255))
    watermark_to: Mapped[str | None] = mapped_column(String(255))
    mapping_version: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxEntry(Base):
    """Field values that must reach one remote record; kept until the remote acknowledges them.
    At most one pending entry per remote record: a newer change updates it in place."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("connection", "object", "external_id"),
        Index("ix_outbox_due", "connection", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    connection: Mapped[str] = mapped_column(String(64), nullable=False)
    object: Mapped[str] = mapped_column(String(64), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    vendor_id: Mapped[int | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), index=True
    )
    fields: Mapped[dict] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The delivery run holding the lease while status is "sending".
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookReceipt(Base):
    """An inbound webhook delivery, keyed by the sender's delivery id. The first arrival inserts
    the row and acts; a repeat (also a concurrent one) finds it and gets the stored response."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("connection", "delivery_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    connection: Mapped[str] = mapped_column(String(64), nullable=False)
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    delivery_id: Mapped[str] = mapped_column(String(255), nullable=False)
    #: "processing" while the first arrival acts, then "done".
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = _now()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookSubscription(Base):
    """A subscriber to outbound events. The signing secret is kept encrypted, never in plain
    text; a subscription that keeps failing is paused with the reason."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    events: Mapped[list] = mapped_column(JSON, nullable=False)
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class WebhookDelivery(Base):
    """One outbound event for one subscription, kept until the subscriber acknowledges it (2xx)
    or the retries run out. `event_id` is the `webhook-id` header, the same on every retry."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    event_id: Mapped[str] = mapped_column(String(64), nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict] = mapped_column(JSON, nullable=False)
    #: "pending", "sending" (leased by `claimed_by`), "delivered" or "failed".
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookAttempt(Base):
    """The delivery log: every attempt of an outbound event with its status code or error."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False, index=True
    )
    at: Mapped[datetime] = _now()
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False)


class ChangeVersion(Base):
    """A counter per table that the web workers' snapshots are built from, raised by every commit
    that writes to the table: a worker reads these few rows now and then to learn what other
    processes changed (`connector.storage.snapshots`)."""

    __tablename__ = "change_versions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)
