"""`coi demo`: the end-to-end run on the embedded default, through the real HTTP API in-process.

It loads the bundled sample network (requirement sets, insurer ratings, vendors with ACORD 25
shaped certificates, cancellation notices), lets the connector evaluate it, prints where the
network stands, then gates the sample work orders and prints each decision with its reasons and
alternatives. It exits non-zero when any call fails or a decision differs from what the sample
work order is meant to show, so the demo doubles as a smoke test.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import date
from importlib import resources
from pathlib import Path

from connector.api.auth import create_token
from connector.app import create_app, runtime
from connector.config import Settings
from connector.demo.network import sample_network
from connector.services.context import Context
from connector.services.insurers import import_rows, parse_csv
from connector.services.reports import print_summary
from connector.storage.db import make_engine, upgrade_if_empty


class DemoFailed(Exception):
    pass


def run_demo(database_url: str | None, as_of: date, echo: Callable[[str], None]) -> int:
    if database_url is None:
        database_url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='coi-demo-')) / 'coi.db'}"
    echo(f"coi demo on {database_url} as of {as_of.isoformat()}")
    engine = make_engine(database_url)
    upgrade_if_empty(engine)
    app = create_app(Settings(database_url=database_url), engine=engine)
    rt = runtime(app)
    try:
        _load(app, rt, as_of, echo)
        with rt.sessions() as session:
            print_summary(session, echo)
        mismatches = _gate(app, as_of, echo)
    except DemoFailed as err:
        echo(f"demo failed: {err}")
        return 1
    if mismatches:
        echo(f"{mismatches} gate decision(s) differ from what the sample meant to show")
        return 1
    echo("\ndemo finished: every call succeeded and every decision is as expected")
    return 0


def _load(app, rt, as_of: date, echo) -> None:
    network = sample_network(as_of)
    session = rt.sessions()
    with session.begin():
        token = create_token(session, "demo", "admin")
    app.config["DEMO_TOKEN"] = token
    client = app.test_client()
    for key, body in network.requirement_sets:
        _call(client, token, "PUT", f"/api/v1/requirement-sets/{key}", body)
    with resources.files("connector.demo").joinpath("insurers.csv").open() as csv_file:
        rows = parse_csv(csv_file)
    import_rows(Context(rt.sessions(), rt.jobs, "demo", as_of), rows)
    for entry in network.vendors:
        vendor = _call(client, token, "POST", "/api/v1/vendors", entry["vendor"])
        for certificate in entry["certificates"]:
            _call(
                client, token, "POST", f"/api/v1/vendors/{vendor['id']}/certificates", certificate
            )
    for notice in network.cancellation_notices:
        _call(client, token, "POST", "/api/v1/cancellation-notices", notice)
    echo(
        f"loaded {len(network.requirement_sets)} requirement set versions, "
        f"{len(rows)} insurers, {len(network.vendors)} vendors, "
        f"{sum(len(e['certificates']) for e in network.vendors)} certificates, "
        f"{len(network.cancellation_notices)} cancellation notices"
    )


def _gate(app, as_of: date, echo) -> int:
    network = sample_network(as_of)
    client = app.test_client()
    token = app.config["DEMO_TOKEN"]
    mismatches = 0
    echo("\ngate decisions")
    for body, intent in zip(network.work_orders, network.work_order_intents, strict=True):
        decision = _call(client, token, "POST", "/api/v1/gate", body)
        ok = decision["decision"] == intent["intent"]
        mismatches += not ok
        echo(
            f"\n{body['work_order']['external_id']} {body['work_type']}/{body['region']} "
            f"{body['scheduled_start']}..{body['scheduled_end']}: {decision['decision'].upper()}"
            f" (vendor {decision['vendor_id']}, {decision['status']}, score {decision['score']})"
            + ("" if ok else f"  <-- expected {intent['intent']}: {intent['why']}")
        )
        for reason in decision["reasons"]:
            echo(f"    reason: {reason['code']}: {reason['message']}")
        for alt in decision["alternatives"][:3]:
            echo(f"    alternative: {alt['name']} ({alt['status']}, score {alt['score']})")
    return mismatches


def _call(client, token: str, method: str, path: str, body: dict) -> dict:
    response = client.open(
        path, method=method, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code >= 300:
        raise DemoFailed(f"{method} {path} answered {response.status_code}: {response.get_json()}")
    return response.get_json()
