"""The three peer systems of ``coi demo``, seeded with the contractors of the sample network.

The stand-ins of ``sandbox/`` speak the real wire protocols (Salesforce REST over HTTPS with a
throwaway CA, Business Central SOAP page services, a ServiceChannel-like REST API). Here they are
seeded so that every contractor of :func:`connector.demo.network.sample_network` exists in each
system under the external id the network gives it, with the same name, email and tax id, and
with its trades and regions in each system's own vocabulary:

- **Salesforce** ``Account``: ``Email__c``, ``Tax_ID__c``, ``Trades__c`` / ``Service_Regions__c``
  (multi-select picklists), ``Risk_Tier__c``, ``Active__c``. A few single-region contractors
  are not set up in Salesforce yet (never one a sample work order names by its Salesforce id),
  so some vendors are known to two systems and the others to three.
- **Business Central** ``Vendor`` page: ``Name``, ``E_Mail``, ``VAT_Registration_No`` (the EIN);
  no trade or region field. The card numbered ``V10000`` is an old supplier blocked for
  everything, which a sync reads but does not import.
- **Dispatch** ``Provider``: ``Name``, ``Email``, ``Trades`` (trade codes), ``Region``,
  ``Locations``; providers carry no tax id, so the sync matches them by email and name.

The stand-ins only offer seeding helpers that make up their own records (and numbers), so the
Business Central cards and dispatch providers are seeded first and then overwritten with the
network's data through the sandboxes' ``set_fields`` / ``touch_provider``; their numbering
(``V10000`` + 10 n, ``P-1001`` + n) is what the network's refs follow.

Secrets never enter connection settings: :meth:`DemoPeers.environment` gives the environment
variables the connections name (``*_env`` settings), among them the dispatch webhooks' signing
secret, a fresh ``whsec_`` secret per run.

The dispatch connection also receives work-order webhooks (its ``WorkOrder`` object, mapped
with the shipped ``dispatch_work_order_in``) and flags a blocked work order back
(``writeback: flag``); :meth:`DemoPeers.create_work_order` makes such a work order in the
dispatch system from a sample gate request.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, time
from typing import Any

from connector.demo.network import REGIONS, SampleNetwork
from connector.services.webhook_subscriptions import new_secret
from sandbox.business_central import BusinessCentralSandbox
from sandbox.dispatch import DispatchSandbox
from sandbox.salesforce import SalesforceSandbox

#: Connection name per peer: the `system` of the network's external refs.
SALESFORCE, BC, DISPATCH = "salesforce", "bc", "dispatch"
#: Remote object per connection.
OBJECTS = {SALESFORCE: "Account", BC: "Vendor", DISPATCH: "Provider"}
#: Pull order: Salesforce last, since it holds the fullest vendor record (its lists win).
SYNC_ORDER = (DISPATCH, BC, SALESFORCE)
LABELS = {SALESFORCE: "Salesforce", BC: "Business Central", DISPATCH: "dispatch"}

SECRET_ENV = {
    SALESFORCE: "COI_DEMO_SALESFORCE_CLIENT_SECRET",
    BC: "COI_DEMO_BC_PASSWORD",
    DISPATCH: "COI_DEMO_DISPATCH_CLIENT_SECRET",
}
WEBHOOK_SECRET_ENV = "COI_DEMO_DISPATCH_WEBHOOK_SECRET"
#: The work-order events the dispatch system's admin subscribes the connector to.
WORK_ORDER_EVENTS = ("WorkOrderCreated", "WorkOrderTechnicianAssigned")

_SF_TRADES = {
    "plumbing": "Plumbing",
    "electrical": "Electrical",
    "hvac": "HVAC",
    "roofing": "Roofing",
    "landscaping": "Landscaping",
    "janitorial": "Janitorial",
    "painting": "Painting",
    # The picklist's API name; its label reads "General Contractor".
    "general_contractor": "General_Contractor",
}
_DISPATCH_TRADES = {
    "plumbing": "PLUMBING",
    "electrical": "ELECTRICAL",
    "hvac": "HVAC",
    "roofing": "ROOFING",
    "landscaping": "LANDSCAPING",
    "janitorial": "JANITORIAL",
    "painting": "PAINTING",
    "general_contractor": "GENERAL CONTRACTOR",
}
_RISK_TIERS = {"low": "Low", "medium": "Medium", "high": "High"}
#: Every this-many single-region contractor is not in Salesforce.
_NOT_IN_SALESFORCE_EVERY = 5


def ref(vendor: dict[str, Any], system: str) -> str:
    return next(r["external_id"] for r in vendor["external_refs"] if r["system"] == system)


class DemoPeers:
    """The three stand-ins, seeded from the network; ``running()`` starts and stops them."""

    def __init__(self, network: SampleNetwork, as_of: date):
        self.network = network
        self.salesforce = SalesforceSandbox()
        self.bc = BusinessCentralSandbox(company="ACME FACILITIES", today=as_of)
        self.dispatch = DispatchSandbox()
        #: A Standard Webhooks secret (`whsec_` + base64 of the key), shared by both sides.
        self.webhook_secret = new_secret()
        named = {(o["vendor"]["system"], o["vendor"]["external_id"]) for o in network.work_orders}
        single = [e["vendor"] for e in network.vendors if len(e["vendor"]["regions"]) == 1]
        self.not_in_salesforce = {
            ref(v, SALESFORCE)
            for v in single[_NOT_IN_SALESFORCE_EVERY - 1 :: _NOT_IN_SALESFORCE_EVERY]
            if (SALESFORCE, ref(v, SALESFORCE)) not in named
        }
        self._seed()

    # -- seeding -------------------------------------------------------------------------------

    def _seed(self) -> None:
        vendors = [entry["vendor"] for entry in self.network.vendors]
        for vendor in vendors:
            if ref(vendor, SALESFORCE) not in self.not_in_salesforce:
                self.salesforce.add("Account", _account(vendor))
        self._bc_numbers = self.bc.seed_vendors(len(vendors) + 1)
        self.bc.set_fields(self._bc_numbers[0], Blocked="All")
        for vendor in vendors:
            self.bc.set_fields(ref(vendor, BC), **_bc_vendor(vendor))
        providers = self.dispatch.seed_providers(len(vendors))
        self._provider_ids = [p["Id"] for p in providers]
        rng = random.Random(len(vendors))
        for vendor, provider in zip(vendors, providers, strict=True):
            if provider["Id"] != ref(vendor, DISPATCH):
                raise RuntimeError(f"dispatch numbering moved: {provider['Id']}")
            self.dispatch.touch_provider(provider["Id"], **_provider(vendor, rng))

    def counts(self) -> dict[str, int]:
        """Records each peer holds (Business Central's blocked supplier included)."""
        return {
            SALESFORCE: self.salesforce.count("Account"),
            BC: len(self._bc_numbers),
            DISPATCH: len(self._provider_ids),
        }

    # -- running -------------------------------------------------------------------------------

    @contextmanager
    def running(self) -> Iterator[DemoPeers]:
        with ExitStack() as stack:
            for peer in (self.salesforce, self.bc, self.dispatch):
                peer.start()
                stack.callback(peer.stop)
            yield self

    def describe(self) -> dict[str, tuple[str, str]]:
        """Each peer's address and what it speaks there."""
        return {
            SALESFORCE: (self.salesforce.url, f"REST API v{self.salesforce.api_version}, HTTPS"),
            BC: (self.bc.root_url, f"SOAP page service {self.bc.company}/{self.bc.page}"),
            DISPATCH: (self.dispatch.url, "REST API /v3, OAuth 2.0"),
        }

    def environment(self) -> dict[str, str]:
        """The secrets, by the environment variable each connection's settings name."""
        return {
            SECRET_ENV[SALESFORCE]: self.salesforce.client_secret,
            SECRET_ENV[BC]: self.bc.password,
            SECRET_ENV[DISPATCH]: self.dispatch.client_secret,
            WEBHOOK_SECRET_ENV: self.webhook_secret,
        }

    def connections(self) -> list[dict[str, Any]]:
        """POST /api/v1/connections bodies, pushing compliance back to every peer."""
        return [
            _connection(
                DISPATCH,
                "dispatch",
                {
                    "base_url": self.dispatch.url,
                    "client_id": self.dispatch.client_id,
                    "client_secret_env": SECRET_ENV[DISPATCH],
                    "retry_base_seconds": 0.01,
                    "timeout": 10,
                    "webhook_secret_env": WEBHOOK_SECRET_ENV,
                    "writeback": "flag",
                },
                "dispatch_provider",
                {
                    "remote": "WorkOrder",
                    "canonical": "work_order",
                    "sync_in": False,
                    "mapping_in": "dispatch_work_order_in",
                },
            ),
            _connection(
                BC,
                "business_central",
                {
                    "base_url": self.bc.base_url,
                    "company": self.bc.company,
                    "username": self.bc.username,
                    "password_env": SECRET_ENV[BC],
                    "block_payment": True,
                    "retry_base_seconds": 0.01,
                    "timeout": 10,
                },
                "business_central_vendor",
            ),
            _connection(
                SALESFORCE,
                "salesforce",
                {
                    "token_url": self.salesforce.token_url,
                    "client_id": self.salesforce.client_id,
                    "client_secret_env": SECRET_ENV[SALESFORCE],
                    "ca_bundle": self.salesforce.ca_bundle(),
                    "include_deleted": False,
                    "retry_base_seconds": 0.01,
                    "timeout": 10,
                },
                "salesforce_account",
            ),
        ]

    def create_work_order(
        self, order: dict[str, Any], contractor: dict[str, Any]
    ) -> dict[str, Any]:
        """A work order in the dispatch system like the sample gate request `order`: assigned to
        the contractor's provider at one of its locations, in the trade's dispatch code."""
        provider = self.dispatch.provider(ref(contractor, DISPATCH))
        if provider is None:
            raise KeyError(ref(contractor, DISPATCH))
        start = date.fromisoformat(order["scheduled_start"])
        return self.dispatch.create_work_order(
            ProviderId=provider["Id"],
            LocationId=provider["Locations"][0],
            Trade=_DISPATCH_TRADES[order["work_type"]],
            Nte=order["amount"] / 100,  # the sample's cents, the dispatch system's dollars
            ScheduledDate=datetime.combine(start, time(9), UTC).isoformat(),
        )

    def calls(self) -> dict[str, Counter[str]]:
        """HTTP requests each stand-in has served so far, by endpoint or operation."""
        return {
            SALESFORCE: Counter(self.salesforce.calls),
            BC: Counter(self.bc.calls),
            DISPATCH: Counter(self.dispatch.calls),
        }

    # -- what the peers hold now ---------------------------------------------------------------

    def salesforce_fields(self, account_id: str) -> dict[str, Any] | None:
        return self.salesforce.get("Account", account_id)

    def bc_fields(self, number: str) -> dict[str, Any] | None:
        return self.bc.vendor(number)

    def dispatch_fields(self, provider_id: str) -> dict[str, Any] | None:
        return self.dispatch.provider(provider_id)


def _connection(
    name: str, kind: str, settings: dict[str, Any], mapping: str, *more: dict[str, Any]
) -> dict[str, Any]:
    """A connection pushing compliance to its vendor object; `more` objects after it."""
    return {
        "name": name,
        "kind": kind,
        "settings": settings,
        "objects": [
            {
                "remote": OBJECTS[name],
                "canonical": "vendor",
                "push": True,
                "mapping_in": f"{mapping}_in",
                "mapping_out": f"{mapping}_out",
            },
            *more,
        ],
    }


def _account(vendor: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": ref(vendor, SALESFORCE),
        "Name": vendor["name"],
        "Type": "Vendor",
        "Email__c": vendor["email"],
        "Tax_ID__c": vendor["tax_id"],
        "Trades__c": ";".join(_SF_TRADES[t] for t in vendor["work_types"]),
        "Service_Regions__c": ";".join(vendor["regions"]),
        "Risk_Tier__c": _RISK_TIERS[vendor["risk_tier"]],
        "Active__c": "Yes",
    }


def _bc_vendor(vendor: dict[str, Any]) -> dict[str, str]:
    """The card of a US contractor: the network has no address, so none is kept."""
    return {
        "Name": vendor["name"],
        "E_Mail": vendor["email"],
        "VAT_Registration_No": vendor["tax_id"],
        "Address": "",
        "Address_2": "",
        "City": "",
        "Post_Code": "",
        "County": "",
        "Country_Region_Code": "US",
        "Phone_No": "",
        "Blocked": "_blank_",
    }


def _provider(vendor: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    region = vendor["regions"][0]
    base = 2_006_000 + 100 * REGIONS.index(region)
    return {
        "Name": vendor["name"],
        "Email": vendor["email"],
        "Trades": [_DISPATCH_TRADES[t] for t in vendor["work_types"]],
        "Region": region,
        "Locations": sorted(rng.sample(range(base, base + 40), rng.randint(1, 3))),
        "Status": "Active",
        "DoNotDispatch": False,
        "ComplianceNote": None,
        "ComplianceScore": None,
    }
