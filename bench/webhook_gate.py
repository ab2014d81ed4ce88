"""Signed work-order webhooks through the full path under gunicorn, next to `/healthz`.

The shared run of `bench/gate.py` (same database of 10,000 vendors with stored results, gunicorn
with 2 sync workers, wrk or the Python client, `/healthz` first), with a different target:
`POST /webhooks/dispatch/work-order`, carrying ServiceChannel-like work-order events (PEERS.md:
`Id`, `ProviderId`, `LocationId`, `Trade`, `Nte`, `ScheduledDate`, ...) for the vendors of the
gate benchmark's bodies. Every request is signed per Standard Webhooks with a `webhook-id` of
its own: a repeated id would be answered from the idempotency table, a cheaper path than the one
measured. So each request goes through the signature check on the raw body, the duplicate check
(a claim made before acting: a claim file on SQLite, a committed row on PostgreSQL, a Redis key
with `--redis-url`), the connection's inbound mapping, the gate (stored decision, audit), and
the stored answer. The connection asks for no writeback (the caller waits for the
answer).

Targets: >= 40% of `/healthz` throughput, p99 <= 30 ms at 16 connections.

Run: `.venv/bin/python bench/webhook_gate.py [--vendors N] [--connections N] [--duration S]
[--database-url URL] [--port N] [--client auto|wrk|python] [--server gunicorn|coi]`
(the options of `bench/gate.py`). Figures only, no assertions; only talks to 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime

from gate import Request, Run, _call, parse_args, run_benchmark
from standardwebhooks.webhooks import Webhook

from connector.clock import today
from connector.config import Settings
from connector.jobs import Jobs
from connector.services import connections
from connector.services.context import Context
from connector.services.webhook_subscriptions import new_secret
from connector.storage.db import make_engine, make_sessionmaker

SECRET_ENV = "COI_BENCH_WEBHOOK_SECRET"
CONNECTION = "dispatch"
PATH = f"/webhooks/{CONNECTION}/work-order"
#: Signed requests made per second of measurement: more than the server can take, so wrk never
#: comes round to a `webhook-id` it already sent.
REQUESTS_PER_SECOND = 5_000
#: The trades of `dispatch_work_order_in`'s table, by the work type they map to.
TRADES = {
    "plumbing": "PLUMBING",
    "hvac": "HVAC",
    "electrical": "ELECTRICAL",
    "roofing": "ROOFING",
    "painting": "PAINTING",
    "landscaping": "LANDSCAPING",
    "janitorial": "JANITORIAL",
}


def work_order_event(body: dict) -> dict:
    """The dispatch system's event for a gate body (one scheduled day: the body's first)."""
    return {
        "EventType": "WorkOrderCreated",
        "Id": body["work_order"]["external_id"],
        "ProviderId": body["vendor"]["external_id"],
        "LocationId": body["region"],
        "Trade": TRADES[body["work_type"]],
        "Category": "REPAIR",
        "Priority": "P3",
        "Status": {"Primary": "OPEN", "Extended": None},
        "Nte": body["amount"] / 100,
        "ScheduledDate": f"{body['scheduled_start']}T09:00:00Z",
    }


class WebhookRun(Run):
    name = PATH
    ratio_goal = 0.40
    p99_goal = 30.0

    def __init__(self, token: str, bodies: list[dict]):
        super().__init__(token, bodies)
        self.secret = new_secret()
        self.server_env = {SECRET_ENV: self.secret}
        self.events = [
            json.dumps(work_order_event(b)).encode() for b in bodies if b["work_type"] in TRADES
        ]
        self.ids = itertools.count(1)
        self.run_id = os.urandom(4).hex()

    def prepare(self, url: str) -> None:
        os.environ[SECRET_ENV] = self.secret  # read when the connection is checked on add
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        try:
            with sessions() as session:
                ctx = Context(session, Jobs(Settings(database_url=url), sessions), "bench", today())
                connections.add(
                    ctx,
                    {
                        "name": CONNECTION,
                        "kind": "dispatch",
                        "settings": {
                            # Never called: the connection asks for no writeback.
                            "base_url": "http://127.0.0.1:9",
                            "client_id": "bench",
                            "client_secret_env": SECRET_ENV,
                            "webhook_secret_env": SECRET_ENV,
                        },
                        "objects": [
                            {
                                "remote": "WorkOrder",
                                "canonical": "work_order",
                                "sync_in": False,
                                "mapping_in": "dispatch_work_order_in",
                            }
                        ],
                    },
                )
        finally:
            engine.dispose()

    def warm(self, port: int) -> str:
        mix: dict[str, int] = {}
        for method, path, body, headers in self.signed(len(self.events)):
            status, data = _call(port, method, path, body, headers)
            key = data["decision"] if status == 200 and data else f"HTTP {status}"
            mix[key] = mix.get(key, 0) + 1
        return f"work-order events: {len(self.events)} rotated (each sent once first): " + (
            ", ".join(f"{k} {v}" for k, v in sorted(mix.items()))
        )

    def requests(self, seconds: float) -> list[Request]:
        return self.signed(int(seconds * REQUESTS_PER_SECOND))

    def signed(self, count: int) -> list[Request]:
        """`count` deliveries of the events in turn, each with its own id, signed now."""
        webhook = Webhook(self.secret)
        now = datetime.now(UTC)
        out = []
        for body in itertools.islice(itertools.cycle(self.events), count):
            msg_id = f"msg_bench_{self.run_id}_{next(self.ids)}"
            headers = {
                "Content-Type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": webhook.sign(msg_id, now, body.decode()),
            }
            out.append(("POST", PATH, body, headers))
        return out


def main() -> None:
    run_benchmark(parse_args(__doc__.split("\n\n")[0]), WebhookRun, "coi-bench-webhook-")


if __name__ == "__main__":
    main()
