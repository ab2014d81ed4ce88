"""Shared fixtures: a real database per backend (SQLite file and a PostgreSQL database of the
suite's own), the app on it, tokens per role, and a small JSON client.

Every test that takes `app` (or anything built on it) runs once per backend. Tables are emptied
after each test, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import text

from connector.api.auth import create_token
from connector.app import create_app, runtime
from connector.clock import today
from connector.config import Settings
from connector.services.webhook_subscriptions import new_secret
from connector.storage.claim_files import ClaimFiles
from connector.storage.db import make_engine, upgrade
from connector.storage.models import Base
from sandbox.server import serve

PG_ADMIN_URL = os.environ.get("COI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
#: The apps under test have a secret key (embed links, subscription secrets) unless a test
#: builds one without.
#: The Redis every test that queues jobs or keeps claims talks to (started by `.ci/run`).
REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_SECRET_KEY = "test-secret-key-not-for-production"


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + (
        f"/{name}"
    )


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'coi.db'}"
        return
    name = f"coi_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def engine(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    ClaimFiles.remove_for(engine.url)
    engine.dispose()


@pytest.fixture
def app(engine, database_url):
    settings = Settings(
        database_url=database_url, max_body_bytes=1024 * 1024, secret_key=TEST_SECRET_KEY
    )
    app = create_app(settings, engine=engine)
    app.config["TESTING"] = True
    yield app
    if runtime(app).write_behind is not None:
        runtime(app).write_behind.close()
    empty_tables(engine)


def drop_queue(queue) -> None:
    """Remove a test's rq queue with its jobs and its registries (finished, failed, ...), which
    would otherwise stay in Redis after every run."""
    queue.empty()
    queue.delete(delete_jobs=True)
    for key in queue.connection.scan_iter(f"rq:*:{queue.name}"):
        queue.connection.delete(key)


def empty_tables(engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f"DELETE FROM {table.name}"))
    ClaimFiles.remove_for(engine.url)  # the claims stand for the receipt rows: they go too


@pytest.fixture
def sessions(app):
    return runtime(app).sessions


@pytest.fixture
def make_token(sessions):
    def make(role: str, name: str | None = None) -> str:
        session = sessions()
        with session, session.begin():
            return create_token(session, name or f"test-{role}", role)

    return make


class JSONClient:
    """The Flask test client with a bearer token and JSON in and out."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.token = token

    def call(self, method: str, path: str, body=None, *, token: str | None = "default", **kw):
        headers = kw.pop("headers", {})
        bearer = self.token if token == "default" else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return self.client.open(path, method=method, json=body, headers=headers, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


@pytest.fixture
def api(app, make_token) -> JSONClient:
    """A client acting as an admin."""
    return JSONClient(app.test_client(), make_token("admin"))


@pytest.fixture
def client_as(app, make_token):
    def as_role(role: str) -> JSONClient:
        return JSONClient(app.test_client(), make_token(role))

    return as_role


TODAY = today()


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


HOLDER = "Acme Facilities Management, Inc."

STANDARD_SET = {
    "name": "Standard",
    "certificate_holder": {"name": HOLDER},
    "coverages": [
        {
            "line": "general_liability",
            "limits": {"each_occurrence": 1_000_000, "general_aggregate": 2_000_000},
            "additional_insured": True,
        },
        {"line": "automobile_liability", "limits": {"combined_single_limit": 1_000_000}},
    ],
    "umbrella_counts_toward": ["general_liability", "automobile_liability"],
}


def policy(line: str, number: str, start: int, end: int, **extra) -> dict:
    limits = {
        "general_liability": {"each_occurrence": 1_000_000, "general_aggregate": 2_000_000},
        "automobile_liability": {"combined_single_limit": 1_000_000},
        "umbrella_liability": {"each_occurrence": 5_000_000, "aggregate": 5_000_000},
    }[line]
    body = {
        "line": line,
        "policy_number": number,
        "insurer": {"name": "Keystone Mutual Insurance Co.", "naic": "10001"},
        "effective_date": day(start),
        "expiration_date": day(end),
        "limits": dict(limits),
        "additional_insured": line == "general_liability",
    }
    body.update(extra)
    return body


def certificate(*policies: dict, holder: str = HOLDER) -> dict:
    return {
        "insured": {"name": "Vendor"},
        "certificate_holder": {"name": holder},
        "policies": list(policies),
    }


def good_certificate(start: int = -100, end: int = 265) -> dict:
    return certificate(
        policy("general_liability", "GL-1", start, end),
        policy("automobile_liability", "AU-1", start, end),
    )


@pytest.fixture
def standard_set(api):
    response = api.put("/api/v1/requirement-sets/standard", STANDARD_SET)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def make_vendor(api):
    counter = iter(range(1, 10_000))

    def make(
        name: str | None = None,
        *,
        work_types=("plumbing",),
        regions=("us-east",),
        cert: dict | None = None,
        **extra,
    ) -> int:
        n = next(counter)
        body = {
            "name": name or f"Vendor {n}",
            "work_types": list(work_types),
            "regions": list(regions),
            "external_refs": [{"system": "dispatch", "external_id": f"P-{n}"}],
            **extra,
        }
        response = api.post("/api/v1/vendors", body)
        assert response.status_code == 201, response.get_json()
        vendor_id = response.get_json()["id"]
        if cert is not None:
            added = api.post(f"/api/v1/vendors/{vendor_id}/certificates", cert)
            assert added.status_code == 201, added.get_json()
        return vendor_id

    return make


def salesforce_connection(peer, secret_env: str, **settings) -> dict:
    """The body of a connection `crm` to a Salesforce stand-in: Accounts in, compliance out."""
    return {
        "name": "crm",
        "kind": "salesforce",
        "settings": {
            "token_url": peer.token_url,
            "client_id": peer.client_id,
            "client_secret_env": secret_env,
            "ca_bundle": peer.ca_bundle(),
            "retry_base_seconds": 0.01,
            "include_deleted": False,
            **settings,
        },
        "objects": [
            {
                "remote": "Account",
                "canonical": "vendor",
                "push": True,
                "mapping_in": "salesforce_account_in",
                "mapping_out": "salesforce_account_out",
            }
        ],
    }


#: The environment variable holding the webhook secret of the webhook tests' connections.
WEBHOOK_SECRET_ENV = "COI_TEST_WEBHOOK_SECRET"

#: The objects of the webhook tests' `dispatch` connections: providers in, work orders gated.
DISPATCH_OBJECTS = [
    {"remote": "Provider", "canonical": "vendor", "mapping_in": "dispatch_provider_in"},
    {
        "remote": "WorkOrder",
        "canonical": "work_order",
        "sync_in": False,
        "mapping_in": "dispatch_work_order_in",
    },
]


@pytest.fixture
def secret(monkeypatch):
    """A fresh Standard Webhooks secret, in WEBHOOK_SECRET_ENV."""
    value = new_secret()
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, value)
    return value


@pytest.fixture
def served(app):
    """The app on a real socket (for senders over HTTP); its base URL."""
    server = serve(app)
    yield server.url
    server.stop()
