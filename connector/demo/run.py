"""`coi demo`: the end-to-end run on the embedded default, through the real HTTP API in-process,
against the peer systems' stand-ins on real sockets.

It starts the Salesforce, Business Central and dispatch stand-ins (see `connector.demo.peers`),
seeded with the contractors of the bundled sample network, and then does what an admin and the
integrations would: adds the three connections (secrets in environment variables, compliance
pushed back to every peer, Business Central blocking payments), puts the requirement sets and
insurer ratings, pulls the vendors in from each peer — the same contractor seen in several
systems becomes one vendor with a binding per system — records the certificates and
cancellation notices, prints where the network stands, gates the sample work orders, delivers
the outbox to each peer and prints the compliance fields as the peers now hold them. Then it
serves the app on a real socket and the dispatch system, subscribed as its admin would, sends
signed work-order webhooks: one for a compliant provider (allow), one for a non-compliant one
(block, and the work order is flagged back in the dispatch system); the blocked one is sent
again with the same delivery id and gets the same answer, with no second decision.

It exits non-zero when any call fails, a decision differs from what the sample work order is
meant to show, a peer does not hold what was pushed, or a webhook is not answered, written back
or de-duplicated as it should be, so the demo doubles as a smoke test.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from adapters.base import AdapterError
from connector.api.auth import create_token
from connector.app import create_app, runtime
from connector.config import Settings
from connector.demo.network import SampleNetwork, sample_network
from connector.demo.peers import (
    BC,
    DISPATCH,
    LABELS,
    OBJECTS,
    SALESFORCE,
    SYNC_ORDER,
    WEBHOOK_SECRET_ENV,
    WORK_ORDER_EVENTS,
    DemoPeers,
    ref,
)
from connector.errors import APIError
from connector.services.context import Context
from connector.services.insurers import import_rows, parse_csv
from connector.services.outbox import deliver
from connector.services.reports import print_summary
from connector.services.sync import run_sync
from connector.storage import models as m
from connector.storage.db import make_engine, upgrade_if_empty
from sandbox.dispatch import send_webhook
from sandbox.server import serve

#: How many vendors the closing table shows (the work orders' vendors come first).
SHOWN_VENDORS = 6
_SF_STATUS = {"compliant": "Compliant", "expiring": "Expiring", "non_compliant": "Non-compliant"}
#: How long the demo waits for a webhook's writeback to reach the dispatch system.
WRITEBACK_SECONDS = 10.0
#: How much of a work order's compliance note the demo prints.
NOTE_SHOWN = 100


class DemoFailed(Exception):
    pass


def run_demo(database_url: str | None, as_of: date, echo: Callable[[str], None]) -> int:
    started = time.monotonic()
    if database_url is None:
        # A database of its own, its webhook claims beside it (not in shared memory).
        folder = Path(tempfile.mkdtemp(prefix="coi-demo-"))
        settings = Settings(database_url=f"sqlite:///{folder / 'coi.db'}", claims_dir=str(folder))
    else:
        settings = Settings(database_url=database_url, claims_dir=os.environ.get("COI_CLAIMS_DIR"))
    echo(f"coi demo on {settings.database_url} as of {as_of.isoformat()}")
    engine = make_engine(settings.database_url)
    upgrade_if_empty(engine)
    app = create_app(settings, engine=engine)
    network = sample_network(as_of)
    peers = DemoPeers(network, as_of)
    try:
        with peers.running(), _environment(peers.environment()):
            demo = _Demo(app, network, peers, as_of, echo)
            demo.configure()
            demo.sync()
            demo.load()
            with demo.rt.sessions() as session:
                print_summary(session, echo)
            mismatches = demo.gate()
            demo.push()
            differences = demo.show_peers()
            with _served(app) as url:
                unexpected = demo.webhooks(url)
    except DemoFailed as err:
        echo(f"\ndemo failed: {err}")
        return 1
    except (AdapterError, APIError) as err:
        echo(f"\ndemo failed: {type(err).__name__}: {err}")
        return 1
    if mismatches:
        echo(f"\n{mismatches} gate decision(s) differ from what the sample meant to show")
    if differences:
        echo(f"\n{differences} peer record(s) do not hold the compliance the connector pushed")
    if unexpected:
        echo(f"\n{unexpected} webhook check(s) did not hold")
    if mismatches or differences or unexpected:
        return 1
    echo(
        f"\ndemo finished in {time.monotonic() - started:.1f} s: every call succeeded, "
        "every decision is as expected and the peers hold what was pushed"
    )
    return 0


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (the connections' `*_env` secrets)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _served(app) -> Iterator[str]:
    """The app on a real socket (a thread) for the peers' webhooks; its base URL."""
    server = serve(app)
    try:
        yield server.url
    finally:
        server.stop()


class _Demo:
    def __init__(self, app, network: SampleNetwork, peers: DemoPeers, as_of: date, echo):
        self.app = app
        self.rt = runtime(app)
        self.network = network
        self.peers = peers
        self.as_of = as_of
        self.echo = echo
        self.client = app.test_client()
        session = self.rt.sessions()
        with session.begin():
            self.token = create_token(session, "demo", "admin")
        session.close()
        #: (system, external id) -> vendor id, once the peers are synced.
        self.vendor_ids: dict[tuple[str, str], int] = {}

    # -- setup ---------------------------------------------------------------------------------

    def configure(self) -> None:
        counts = self.peers.counts()
        self.echo("\npeers started")
        for name, (url, speaks) in self.peers.describe().items():
            self.echo(
                f"  {LABELS[name]:<17} {url:<24} {counts[name]:>3} {OBJECTS[name]} records, "
                + speaks
            )
        for key, body in self.network.requirement_sets:
            self.call("PUT", f"/api/v1/requirement-sets/{key}", body)
        with resources.files("connector.demo").joinpath("insurers.csv").open() as csv_file:
            rows = parse_csv(csv_file)
        import_rows(Context(self.rt.sessions(), self.rt.jobs, "demo", self.as_of), rows)
        for body in self.peers.connections():
            self.call("POST", "/api/v1/connections", body)
        self.echo(
            f"\nput {len(self.network.requirement_sets)} requirement set versions and "
            f"{len(rows)} insurer ratings\n"
            f"added connections {', '.join(SYNC_ORDER)}: secrets in environment variables, "
            "compliance pushed back, bc blocking payments, dispatch sending work-order webhooks"
        )

    # -- sync in -------------------------------------------------------------------------------

    def sync(self) -> None:
        self.echo("\nsynced vendors in")
        for name in SYNC_ORDER:
            run_id = run_sync(self.rt.sessions, self.rt.jobs, name, OBJECTS[name], full=True)
            with self.rt.sessions() as session:
                run = session.get(m.SyncRun, run_id)
                status, counts, errors = run.status, dict(run.counts), list(run.errors)
            if status != "succeeded":
                raise DemoFailed(f"the {name} sync {status}: {errors[:3]}")
            skipped = counts["seen"] - sum(
                counts[k] for k in ("created", "merged", "updated", "deactivated", "rejected")
            )
            parts = [f"{counts['created']} created", f"{counts['merged']} merged"]
            if counts["updated"]:
                parts.append(f"{counts['updated']} updated")
            if skipped:
                parts.append(f"{skipped} skipped (blocked or inactive)")
            self.echo(
                f"  {LABELS[name]:<17} {counts['seen']:>3} {OBJECTS[name]} records seen: "
                + ", ".join(parts)
            )
        vendors = self.list_vendors()
        for vendor in vendors:
            for binding in vendor["external_refs"]:
                self.vendor_ids[(binding["system"], binding["external_id"])] = vendor["id"]
        systems = Counter(len({r["system"] for r in v["external_refs"]}) for v in vendors)
        bindings = sum(len(v["external_refs"]) for v in vendors)
        self.echo(
            f"  -> {len(vendors)} vendors with {bindings} bindings: "
            + ", ".join(
                f"{n} known to {_count_word(k)}" for k, n in sorted(systems.items(), reverse=True)
            )
        )
        if len(vendors) != len(self.network.vendors):
            raise DemoFailed(
                f"the sync made {len(vendors)} vendors of {len(self.network.vendors)} contractors"
            )
        for entry in self.network.vendors:
            self.vendor_id(entry["vendor"])

    def vendor_id(self, vendor: dict[str, Any]) -> int:
        """The one vendor the sync made of a contractor (found by its refs in every peer)."""
        found = {
            self.vendor_ids[(r["system"], r["external_id"])]
            for r in vendor["external_refs"]
            if (r["system"], r["external_id"]) in self.vendor_ids
        }
        if len(found) != 1:
            raise DemoFailed(f"{vendor['name']} became {len(found)} vendors after the sync")
        return found.pop()

    def list_vendors(self) -> list[dict[str, Any]]:
        items, page = [], 1
        while True:
            body = self.call("GET", f"/api/v1/vendors?page={page}&per_page=100")
            items.extend(body["items"])
            if len(items) >= body["total"] or not body["items"]:
                return items
            page += 1

    # -- certificates --------------------------------------------------------------------------

    def load(self) -> None:
        certificates = 0
        for entry in self.network.vendors:
            vendor_id = self.vendor_id(entry["vendor"])
            for certificate in entry["certificates"]:
                self.call("POST", f"/api/v1/vendors/{vendor_id}/certificates", certificate)
                certificates += 1
        for notice in self.network.cancellation_notices:
            self.call("POST", "/api/v1/cancellation-notices", notice)
        self.echo(
            f"\nrecorded {certificates} certificates and "
            f"{len(self.network.cancellation_notices)} cancellation notices, evaluated"
        )

    # -- gate ----------------------------------------------------------------------------------

    def gate(self) -> int:
        mismatches = 0
        self.echo("\ngate decisions")
        for body, intent in zip(
            self.network.work_orders, self.network.work_order_intents, strict=True
        ):
            decision = self.call("POST", "/api/v1/gate", body)
            named = f"{body['vendor']['system']} {body['vendor']['external_id']}"
            ok = decision["decision"] == intent["intent"]
            mismatches += not ok
            self.echo(
                f"\n{body['work_order']['external_id']} {body['work_type']}/{body['region']} "
                f"{body['scheduled_start']}..{body['scheduled_end']}, {named}: "
                f"{decision['decision'].upper()}"
                f" (vendor {decision['vendor_id']}, {decision['status']}, "
                f"score {decision['score']})"
                + ("" if ok else f"  <-- expected {intent['intent']}: {intent['why']}")
            )
            for reason in decision["reasons"]:
                self.echo(f"    reason: {reason['code']}: {reason['message']}")
            for alt in decision["alternatives"][:3]:
                self.echo(f"    alternative: {alt['name']} ({alt['status']}, score {alt['score']})")
        return mismatches

    # -- push ----------------------------------------------------------------------------------

    def push(self) -> None:
        self.echo("\npushed compliance back")
        for name in SYNC_ORDER[::-1]:
            before = self.peers.calls()[name]
            counts = deliver(self.rt.sessions, name)
            made = self.peers.calls()[name] - before
            detail = ", ".join(f"{endpoint} {n}" for endpoint, n in sorted(made.items()))
            self.echo(
                f"  {LABELS[name]:<17} {counts['sent']:>3} {OBJECTS[name]} records sent "
                f"in {counts['calls']} batch(es): {made.total()} API calls ({detail})"
            )
            if counts["failed"] or counts["retry"]:
                raise DemoFailed(
                    f"the push to {name} left {counts['failed']} failed and "
                    f"{counts['retry']} retrying record(s)"
                )

    # -- the peers now -------------------------------------------------------------------------

    def show_peers(self) -> int:
        """Print a few vendors' compliance fields as the peers hold them; check all of them."""
        vendors = {v["id"]: v for v in self.list_vendors()}
        differences = 0
        for entry in self.network.vendors:
            vendor = vendors[self.vendor_id(entry["vendor"])]
            differences += len(self.peer_differences(entry["vendor"], vendor))
        self.echo("\ncompliance fields as the peers now hold them")
        for contractor in self.shown():
            vendor = vendors[self.vendor_id(contractor)]
            self.echo(
                f"\n{vendor['name']} (vendor {vendor['id']}: {vendor['status']}, "
                f"score {vendor['score']})"
            )
            account_id = ref(contractor, SALESFORCE)
            account = self.peers.salesforce_fields(account_id)
            if account is None:
                self.echo(f"    {'Salesforce':<17} {account_id}  (not in Salesforce)")
            else:
                self.echo(
                    f"    {'Salesforce':<17} {account_id}  "
                    + _fields(
                        account,
                        "COI_Status__c",
                        "COI_Score__c",
                        "COI_Expires__c",
                        "Is_Insurance_Compliant__c",
                    )
                )
            number = ref(contractor, BC)
            self.echo(
                f"    {'Business Central':<17} {number}  "
                + _fields(self.peers.bc_fields(number), "Blocked")
            )
            provider_id = ref(contractor, DISPATCH)
            self.echo(
                f"    {'dispatch':<17} {provider_id}  "
                + _fields(
                    self.peers.dispatch_fields(provider_id), "DoNotDispatch", "ComplianceScore"
                )
            )
            for problem in self.peer_differences(contractor, vendor):
                self.echo(f"    <-- {problem}")
        return differences

    # -- webhooks ------------------------------------------------------------------------------

    def webhooks(self, base_url: str) -> int:
        """The dispatch system, subscribed to our receiver, sends a signed `WorkOrderCreated`
        for a compliant and a non-compliant provider's work order, then the blocked one again
        (a sender's retry); the number of checks that did not hold."""
        dispatch, secret = self.peers.dispatch, self.peers.webhook_secret
        target = f"{base_url}/webhooks/{DISPATCH}/work-order"
        dispatch.subscribe(target, secret, WORK_ORDER_EVENTS, "standard")
        self.echo(
            "\nwebhooks from dispatch, our app served on a real socket\n"
            f"  {'subscribed':<11} {target}\n"
            f"  {'events':<11} {', '.join(WORK_ORDER_EVENTS)}\n"
            f"  {'signed':<11} Standard Webhooks, a new whsec_ secret in {WEBHOOK_SECRET_ENV}\n"
            f"  {'writeback':<11} flag: a blocked work order gets ComplianceHold, ComplianceNote"
        )
        unexpected = 0
        sent: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for intent, order, contractor in self.webhook_cases():
            created = self.peers.create_work_order(order, contractor)
            deliveries = dispatch.emit("WorkOrderCreated", created["Id"])
            if len(deliveries) != 1:
                raise DemoFailed(f"the dispatch system sent {len(deliveries)} webhooks, not 1")
            status, answer = deliveries[0].status, _answer(deliveries[0].body)
            ok = status == 200 and answer.get("decision") == intent
            unexpected += not ok
            self.echo(
                f"\nWorkOrderCreated {created['Id']} {order['work_type']} at location "
                f"{created['LocationId']}, {created['ProviderId']} {created['ProviderName']}\n"
                f"    got back {_decision(status, answer)}"
                + ("" if ok else f"  <-- expected 200 {intent}")
            )
            for reason in answer.get("reasons") or ():
                self.echo(f"    reason: {reason['code']}: {reason['message']}")
            held = self.writeback(created["Id"], intent == "block")
            unexpected += held["ComplianceHold"] is not (intent == "block")
            self.echo(
                f"    dispatch work order {created['Id']}  "
                + _fields(held, "ComplianceHold")
                + f"  ComplianceNote={_brief(held.get('ComplianceNote'))}"
                + ("" if held["ComplianceHold"] is (intent == "block") else "  <-- not as decided")
            )
            sent.append((created, answer))
        created, answer = sent[-1]
        delivery_id = self.delivery_id(answer.get("decision_id"))
        repeat = send_webhook(target, "WorkOrderCreated", created, secret, msg_id=delivery_id)
        same = repeat.status == 200 and _answer(repeat.body) == answer
        unexpected += not same
        self.echo(
            f"\nsent {created['Id']} again, same webhook-id {delivery_id}\n"
            f"    got back {_decision(repeat.status, _answer(repeat.body))}, "
            + ("the same answer" if same else "a different answer  <-- expected the same")
        )
        stored = {str(c["Id"]): self.decisions_stored(str(c["Id"])) for c, _ in sent}
        unexpected += sum(n != 1 for n in stored.values())
        self.echo(
            "    decisions stored: "
            + ", ".join(
                f"{wo} {n}" + ("" if n == 1 else "  <-- expected 1") for wo, n in stored.items()
            )
        )
        return unexpected

    def webhook_cases(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(intent, sample gate request, contractor): the first work order meant to be allowed,
        then the first meant to be blocked whose vendor is non-compliant."""
        by_ref = {
            (r["system"], r["external_id"]): entry
            for entry in self.network.vendors
            for r in entry["vendor"]["external_refs"]
        }
        vendors = {v["id"]: v for v in self.list_vendors()}
        cases: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
        for order, intent in zip(
            self.network.work_orders, self.network.work_order_intents, strict=True
        ):
            entry = by_ref.get((order["vendor"]["system"], order["vendor"]["external_id"]))
            if entry is None or intent["intent"] not in ("allow", "block"):
                continue
            status = vendors[self.vendor_id(entry["vendor"])]["status"]
            if intent["intent"] == "allow" or status == "non_compliant":
                cases.setdefault(intent["intent"], (intent["intent"], order, entry["vendor"]))
        if set(cases) != {"allow", "block"}:
            raise DemoFailed("the sample has no allowed and non-compliant work orders to send")
        return [cases["allow"], cases["block"]]

    def writeback(self, work_order_id: int, expected: bool) -> dict[str, Any]:
        """The work order as the dispatch system holds it, once the hold is as `expected` (the
        writeback is delivered right after the answer) or the wait is over."""
        deadline = time.monotonic() + WRITEBACK_SECONDS
        while True:
            held = self.peers.dispatch.work_order(work_order_id)
            if held["ComplianceHold"] is expected or time.monotonic() >= deadline:
                return held
            time.sleep(0.02)

    def delivery_id(self, decision_id: Any) -> str:
        """The `webhook-id` of the delivery that was answered with this decision, as the
        receiver recorded it."""
        self.flush()
        with self.rt.sessions() as session:
            receipts = session.execute(
                select(m.WebhookReceipt.delivery_id, m.WebhookReceipt.response_body).where(
                    m.WebhookReceipt.connection == DISPATCH
                )
            ).all()
        for delivery_id, body in receipts:
            if isinstance(body, dict) and body.get("decision_id") == decision_id:
                return delivery_id
        raise DemoFailed(f"no webhook receipt holds the answer with decision {decision_id}")

    def decisions_stored(self, work_order_id: str) -> int:
        self.flush()
        with self.rt.sessions() as session:
            return session.scalar(
                select(func.count())
                .select_from(m.GateDecision)
                .join(m.WorkOrder, m.WorkOrder.id == m.GateDecision.work_order_id)
                .where(m.WorkOrder.system == DISPATCH, m.WorkOrder.external_id == work_order_id)
            )

    def flush(self) -> None:
        """Store what the web app keeps behind its answers (decisions, webhook receipts)."""
        if self.rt.write_behind is not None:
            self.rt.write_behind.flush()

    def shown(self) -> list[dict[str, Any]]:
        """One work-order vendor per scenario (allow, warn, expired, cancelled, expiring), then
        one that Salesforce does not know."""
        by_ref = {
            (r["system"], r["external_id"]): entry
            for entry in self.network.vendors
            for r in entry["vendor"]["external_refs"]
        }
        chosen: dict[str, dict[str, Any]] = {}
        for order in self.network.work_orders:
            entry = by_ref.get((order["vendor"]["system"], order["vendor"]["external_id"]))
            if entry is not None:
                chosen.setdefault(entry["scenario"], entry["vendor"])
        shown = list(chosen.values())[: SHOWN_VENDORS - 1]
        shown += [
            entry["vendor"]
            for entry in self.network.vendors
            if ref(entry["vendor"], SALESFORCE) in self.peers.not_in_salesforce
        ][:1]
        return shown

    def peer_differences(self, contractor: dict[str, Any], vendor: dict[str, Any]) -> list[str]:
        """What a peer holds that differs from the vendor's compliance."""
        status, score = vendor["status"], vendor["score"]
        blocked = status == "non_compliant"
        expected: list[tuple[str, dict | None, str, Any]] = []
        account_id = ref(contractor, SALESFORCE)
        if account_id not in self.peers.not_in_salesforce:
            account = self.peers.salesforce_fields(account_id)
            expected += [
                (SALESFORCE, account, "COI_Status__c", _SF_STATUS.get(status)),
                (SALESFORCE, account, "COI_Score__c", score),
                (SALESFORCE, account, "COI_Expires__c", vendor["expires_on"]),
                (SALESFORCE, account, "Is_Insurance_Compliant__c", not blocked),
            ]
        card = self.peers.bc_fields(ref(contractor, BC))
        expected.append((BC, card, "Blocked", "Payment" if blocked else "_blank_"))
        provider = self.peers.dispatch_fields(ref(contractor, DISPATCH))
        expected += [
            (DISPATCH, provider, "DoNotDispatch", blocked),
            (DISPATCH, provider, "ComplianceScore", score),
        ]
        return [
            f"{name} {field} is {None if record is None else record.get(field)!r}, "
            f"expected {want!r}"
            for name, record, field, want in expected
            if record is None or record.get(field) != want
        ]

    # -- HTTP ----------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.client.open(
            path, method=method, json=body, headers={"Authorization": f"Bearer {self.token}"}
        )
        if response.status_code >= 300:
            raise DemoFailed(
                f"{method} {path} answered {response.status_code}: {response.get_json()}"
            )
        return response.get_json()


def _fields(record: dict[str, Any] | None, *names: str) -> str:
    if record is None:
        return "(record not found)"
    return "  ".join(f"{name}={_show(record.get(name))}" for name in names)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "-" if value is None else str(value)


def _answer(body: str) -> dict[str, Any]:
    """A webhook's JSON answer (an object), or {} when it is not one."""
    try:
        answer = json.loads(body)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _decision(status: int, answer: dict[str, Any]) -> str:
    if not answer.get("decision"):
        return f"{status} {answer.get('error') or answer}"
    return (
        f"{status} {answer['decision'].upper()} (vendor {answer['vendor_id']}, "
        f"{answer['status']}, score {answer['score']})"
    )


def _brief(text: str | None) -> str:
    if text is None:
        return "-"
    return text if len(text) <= NOTE_SHOWN else text[: NOTE_SHOWN - 3] + "..."


def _count_word(n: int) -> str:
    return {1: "one system", 2: "two systems", 3: "three systems"}.get(n, f"{n} systems")
