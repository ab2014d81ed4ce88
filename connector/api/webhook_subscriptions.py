"""`/api/v1/webhook-subscriptions` (admin): who receives outbound events, and the delivery log.
Nested in the v1 blueprint (same authentication). A signing secret appears in an answer only
when it is made: on create and on rotate-secret."""

from __future__ import annotations

from flask import Blueprint

from connector import schemas as s
from connector.api.auth import requires
from connector.api.common import context, db, documented, load_body, load_query
from connector.services import webhook_subscriptions as subscriptions

bp = Blueprint("webhook_subscriptions", __name__)

PERMISSION = "webhook-subscriptions:write"


@bp.post("/webhook-subscriptions")
@requires(PERMISSION)
@documented(
    "Subscribe a URL to outbound events (the signing secret is shown only in this answer)",
    body=s.webhook_subscription_create_schema,
    response=s.webhook_subscription_created_schema,
    status=201,
)
def create_subscription():
    data = load_body(s.webhook_subscription_create_schema)
    return subscriptions.create(context(), data), 201


@bp.get("/webhook-subscriptions")
@requires(PERMISSION)
@documented(
    "Every subscription, with its pause state and delivery counts",
    response=s.webhook_subscription_list_schema,
)
def list_subscriptions():
    return subscriptions.list_all(db())


@bp.get("/webhook-subscriptions/<id:subscription_id>")
@requires(PERMISSION)
@documented("One subscription (never its secret)", response=s.webhook_subscription_schema)
def get_subscription(subscription_id: int):
    session = db()
    return subscriptions.render(session, subscriptions.get(session, subscription_id))


@bp.patch("/webhook-subscriptions/<id:subscription_id>")
@requires(PERMISSION)
@documented(
    "Change url, events, name or active; active true resumes a paused subscription",
    body=s.webhook_subscription_patch_schema,
    response=s.webhook_subscription_schema,
)
def update_subscription(subscription_id: int):
    data = load_body(s.webhook_subscription_patch_schema)
    return subscriptions.update_subscription(context(), subscription_id, data)


@bp.delete("/webhook-subscriptions/<id:subscription_id>")
@requires(PERMISSION)
@documented("Remove a subscription and its delivery log", status=204)
def delete_subscription(subscription_id: int):
    subscriptions.remove(context(), subscription_id)
    return "", 204


@bp.post("/webhook-subscriptions/<id:subscription_id>/rotate-secret")
@requires(PERMISSION)
@documented(
    "Replace the signing secret (the new one is shown only in this answer)",
    response=s.webhook_secret_schema,
)
def rotate_secret(subscription_id: int):
    return subscriptions.rotate_secret(context(), subscription_id)


@bp.get("/webhook-subscriptions/<id:subscription_id>/deliveries")
@requires(PERMISSION)
@documented(
    "The delivery log, newest first: each event with every attempt's status code or error",
    query=s.webhook_delivery_query_schema,
    response=s.webhook_delivery_page_schema,
)
def list_deliveries(subscription_id: int):
    query = load_query(s.webhook_delivery_query_schema)
    return subscriptions.list_deliveries(db(), subscription_id, query)
