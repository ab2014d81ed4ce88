"""The bundled sample contractor network that ``coi demo`` loads.

``sample_network(as_of)`` returns plain JSON-ready bodies for the public API, so the demo (and
anyone exploring the product) can replay them with ordinary HTTP calls:

- ``requirement_sets``: ``(key, body)`` pairs for ``PUT /api/v1/requirement-sets/<key>``; the same
  key may appear twice when a future-dated version follows the current one;
- ``insurers``: the A.M. Best rating table keyed by NAIC code (bundled as ``insurers.csv``);
- ``vendors``: one entry per contractor, ``{"vendor": <POST /api/v1/vendors body>,
  "certificates": [<POST /api/v1/vendors/<id>/certificates body>, ...], "scenario": <label>}``;
- ``cancellation_notices``: notice bodies for the vendors of the ``cancelled`` scenario;
- ``work_orders``: gate request bodies showing allow, warn and block, with
  ``work_order_intents`` saying what each one is meant to show.

Everything is generated from a fixed seed with dates relative to ``as_of``: two calls with the
same date give equal data, and a call with another date gives the same network shifted in time.
The only I/O is reading the bundled ``insurers.csv`` through :mod:`importlib.resources`.

Each non-compliant scenario carries exactly one defect, against the requirement set that applies
to the vendor's trades (``standard`` for everyone, ``high_risk`` for roofing, electrical and
HVAC). Money on certificates and requirement sets is whole dollars; work-order amounts are cents.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

SEED = 250301

HOLDER_NAME = "Acme Facilities Management, Inc."
HOLDER_ADDRESS = "2100 Commerce Parkway, Suite 300, Columbus, OH 43215"
#: Spellings of the holder that must still match after normalisation.
HOLDER_VARIANTS = (
    "ACME FACILITIES MANAGEMENT INC",
    "Acme Facilities Management, Incorporated",
    "Acme Facilities Management Inc.",
)
#: Holders that are somebody else and must not match.
WRONG_HOLDERS = (
    "Apex Facilities Management, Inc.",
    "Acme Property Services LLC",
)

TRADES = (
    "plumbing",
    "electrical",
    "hvac",
    "roofing",
    "landscaping",
    "janitorial",
    "painting",
    "general_contractor",
)
HIGH_RISK_TRADES = ("roofing", "electrical", "hvac")
REGIONS = ("us-east", "us-west", "us-central", "us-south")

#: Scenario label -> what the vendor's certificates show.
SCENARIOS: dict[str, str] = {
    "compliant": "every required policy in force well beyond the next 60 days",
    "expiring": "compliant today, but the policies expire within 30 days",
    "expired": "the policies have expired (one of them on as_of itself, which is not covered)",
    "cancelled": "general liability cancelled by a carrier notice effective in the past",
    "under_limit": "one limit below the minimum (GL occurrence, auto CSL or employers' liability)",
    "missing_additional_insured": "general liability without the additional insured endorsement",
    "umbrella_stacked": "GL 500k occurrence topped up to the minimum by an umbrella policy",
    "renewal_on_file": "old policies expire soon, renewals starting on that day are on file",
    "low_rated_insurer": "liability policies written by an insurer rated below A-",
    "wrong_certificate_holder": "certificate names another company as holder",
    "not_yet_effective": "policies bound but starting after as_of",
    "no_certificate": "no certificate received",
}

#: Scenario label -> the deficiency code it is built to produce (None: no deficiency).
SCENARIO_DEFICIENCY: dict[str, str | None] = {
    "compliant": None,
    "expiring": None,
    "expired": "expired",
    "cancelled": "cancelled",
    "under_limit": "limit_below_minimum",
    "missing_additional_insured": "additional_insured_missing",
    "umbrella_stacked": None,
    "renewal_on_file": None,
    "low_rated_insurer": "insurer_rating_below_minimum",
    "wrong_certificate_holder": "certificate_holder_mismatch",
    "not_yet_effective": "not_yet_effective",
    "no_certificate": "no_certificate",
}

# (scenario, number of vendors, trades cycled through in order). The first vendor of a scenario
# gets the first trade, so the work orders below can rely on e.g. a compliant plumber existing.
_PLAN: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    (
        "compliant",
        26,
        (
            "plumbing",
            "roofing",
            "general_contractor",
            "electrical",
            "janitorial",
            "hvac",
            "landscaping",
            "painting",
        ),
    ),
    ("expiring", 6, ("plumbing", "electrical", "landscaping", "painting", "roofing", "janitorial")),
    ("expired", 4, ("hvac", "painting", "plumbing", "landscaping")),
    ("cancelled", 3, ("roofing", "janitorial", "general_contractor")),
    ("under_limit", 5, ("landscaping", "plumbing", "painting", "electrical", "janitorial")),
    ("missing_additional_insured", 3, ("painting", "hvac", "plumbing")),
    ("umbrella_stacked", 3, ("janitorial", "plumbing", "painting")),
    ("renewal_on_file", 3, ("electrical", "landscaping", "general_contractor")),
    ("low_rated_insurer", 3, ("janitorial", "roofing", "painting")),
    ("wrong_certificate_holder", 2, ("landscaping", "hvac")),
    ("not_yet_effective", 2, ("painting", "general_contractor")),
    ("no_certificate", 4, ("janitorial", "roofing", "plumbing", "landscaping")),
)

_RATING_ORDER = ("A++", "A+", "A", "A-", "B++", "B+", "B", "B-", "C++", "C+", "C", "C-", "D")
_MIN_RATING = "A-"

_NAME_PREFIXES = (
    "Ridgeline", "Summit", "Cedar Grove", "Ironwood", "Harbor Light", "Keystone", "Pinnacle",
    "Evergreen", "Northstar", "Copperleaf", "Lakeside", "Redwood", "Silverline", "Oak Hollow",
    "Prairie Wind", "Canyon", "Maple Street", "Bayview", "Blue Heron", "Twin Rivers", "Three Oaks",
    "Foxglove", "High Desert", "Lone Pine", "Millbrook", "Old Mill", "Pioneer", "Riverbend",
    "Sandstone", "Stillwater", "Timberline", "Valley View", "Westgate", "Whitestone", "Amberwood",
    "Birchwood", "Clearwater", "Driftwood", "Eagle Point", "Fairview", "Hearthstone", "Juniper",
    "Kingsley", "Liberty", "Meadowbrook", "Northfield", "Orchard", "Parkside", "Red Rock",
    "Sterling", "Trailhead", "Vantage", "Windmill", "Martinez & Sons", "O'Brien Brothers",
    "Nguyen Family", "Kowalski", "Delgado", "Hendricks", "Castellano", "Brennan",
)  # fmt: skip
_TRADE_PREFIXES: dict[str, tuple[str, ...]] = {
    "roofing": ("Top Notch", "High Peak", "Shingle Pro"),
    "electrical": ("Bright Spark", "Live Wire", "Voltline"),
    "hvac": ("Cool Breeze", "All Seasons", "Comfort Zone"),
    "plumbing": ("Clear Flow", "True Drain", "Copper Pipe"),
    "landscaping": ("Green Thumb", "Fresh Cut", "Evergrow"),
    "janitorial": ("Spotless", "Shine Bright", "Clean Slate"),
    "painting": ("Fresh Coat", "True Color", "Brushstroke"),
    "general_contractor": ("Cornerstone", "Solid Ground", "Benchmark"),
}
_TRADE_NOUNS: dict[str, tuple[str, ...]] = {
    "roofing": ("Roofing", "Roofing & Exteriors", "Roof Systems"),
    "electrical": ("Electric", "Electrical Contractors", "Electrical Services"),
    "hvac": ("Heating & Air", "Mechanical", "HVAC Services", "Climate Control"),
    "plumbing": ("Plumbing", "Plumbing & Drain", "Plumbing Services"),
    "landscaping": ("Landscaping", "Grounds Management", "Lawn & Landscape"),
    "janitorial": ("Janitorial", "Cleaning Services", "Building Services"),
    "painting": ("Painting", "Painting & Coatings", "Decorating"),
    "general_contractor": ("Builders", "Construction", "Contracting", "General Contractors"),
}
_LEGAL_SUFFIXES = ("LLC", "Inc.", "Co.", "Corp.", "LLC", "Inc.", "L.L.C.")
#: A second work type some vendors also take on (never a high-risk one for a low-risk vendor).
_SECONDARY_TRADE = {
    "general_contractor": "painting",
    "hvac": "plumbing",
    "janitorial": "landscaping",
    "landscaping": "janitorial",
}
_OPERATIONS = {
    "roofing": "Roofing repair, replacement and maintenance at client facilities",
    "electrical": "Electrical installation, repair and maintenance at client facilities",
    "hvac": "Heating, ventilation and air conditioning service and installation",
    "plumbing": "Plumbing repair, drain cleaning and fixture installation",
    "landscaping": "Grounds maintenance, landscaping and snow removal",
    "janitorial": "Janitorial and building cleaning services",
    "painting": "Interior and exterior painting and wall coverings",
    "general_contractor": "General contracting, tenant improvements and renovations",
}
_AGENCIES = (
    ("Lakeshore Insurance Agency", "certs@lakeshore-agency.example", "(312) 555-0147"),
    ("Tri-County Risk Partners", "coi@tricountyrisk.example", "(614) 555-0182"),
    ("Blue Mesa Insurance Brokers", "service@bluemesa-ins.example", "(505) 555-0120"),
    ("Harborview Insurance Group", "certificates@harborview-ins.example", "(617) 555-0163"),
    ("Pioneer Valley Agency", "certs@pioneervalley.example", "(413) 555-0191"),
    ("Gulf Coast Commercial Insurance", "coi@gulfcoastcommercial.example", "(713) 555-0135"),
    ("Sierra Crest Insurance Services", "certs@sierracrest.example", "(916) 555-0108"),
    ("Heartland Contractors Insurance", "service@heartlandci.example", "(816) 555-0174"),
)
_EIN_PREFIXES = (
    "20", "26", "27", "31", "33", "35", "36", "38", "45", "46", "47", "61", "81", "82", "83", "84",
    "85", "86", "87", "88", "90", "91", "92",
)  # fmt: skip
_SOURCES = ("pdf", "pdf", "pdf", "email", "email", "agent", "agent", "api")
_NOTICE_CHANNELS = ("mail", "email", "agent")
_POLICY_PREFIX = {
    "general_liability": "CGL",
    "automobile_liability": "BAP",
    "umbrella_liability": "CUP",
    "workers_compensation": "WC",
    "pollution_liability": "CPL",
}


@dataclass(frozen=True)
class SampleNetwork:
    """The demo data set; every body is plain JSON-ready data (strings, ints, bools, lists)."""

    as_of: date
    requirement_sets: list[tuple[str, dict[str, Any]]]
    insurers: list[dict[str, str]]
    vendors: list[dict[str, Any]]
    cancellation_notices: list[dict[str, Any]]
    work_orders: list[dict[str, Any]]
    #: One entry per work order: {"work_order": external_id, "intent": allow|warn|block, "why"}.
    work_order_intents: list[dict[str, str]]

    def scenario_counts(self) -> dict[str, int]:
        counts = Counter(entry["scenario"] for entry in self.vendors)
        return {label: counts[label] for label in SCENARIOS}


def sample_network(as_of: date) -> SampleNetwork:
    """Build the sample network with every date relative to ``as_of``."""
    insurers = load_insurers()
    gen = _Generator(as_of, insurers)
    vendors = gen.vendors()
    orders = gen.work_orders(vendors)
    return SampleNetwork(
        as_of=as_of,
        requirement_sets=requirement_sets(as_of),
        insurers=insurers,
        vendors=vendors,
        cancellation_notices=gen.notices,
        work_orders=[body for body, _ in orders],
        work_order_intents=[intent for _, intent in orders],
    )


def load_insurers() -> list[dict[str, str]]:
    """The bundled insurer table: [{naic, name, am_best}], in file order."""
    return [dict(row) for row in _insurer_rows()]


@lru_cache(maxsize=1)
def _insurer_rows() -> tuple[dict[str, str], ...]:
    text = resources.files(__package__).joinpath("insurers.csv").read_text(encoding="utf-8")
    return tuple(
        {"naic": row["naic"], "name": row["name"], "am_best": row["am_best"]}
        for row in csv.DictReader(io.StringIO(text))
    )


def requirement_sets(as_of: date) -> list[tuple[str, dict[str, Any]]]:
    """(key, body) pairs for ``PUT /api/v1/requirement-sets/<key>``, oldest version first."""
    workers_comp_500k = _wc_requirement(500_000)
    standard = {
        "name": "Standard contractor requirements",
        "applies_to": _applies_to(),
        "priority": 0,
        "expiring_window_days": 30,
        "certificate_holder": {"name": HOLDER_NAME},
        "min_am_best": _MIN_RATING,
        "coverages": [
            _coverage(
                "general_liability",
                {"each_occurrence": 1_000_000, "general_aggregate": 2_000_000},
                additional_insured=True,
            ),
            _coverage("automobile_liability", {"combined_single_limit": 1_000_000}),
            workers_comp_500k,
        ],
        "umbrella_counts_toward": ["general_liability", "automobile_liability"],
        "severity": {"insurer_rating_below_minimum": "warn"},
    }
    high_risk = {
        "name": "High-risk trades (roofing, electrical, HVAC)",
        "applies_to": _applies_to(work_types=list(HIGH_RISK_TRADES)),
        "priority": 10,
        "expiring_window_days": 30,
        "certificate_holder": {"name": HOLDER_NAME},
        "min_am_best": _MIN_RATING,
        "coverages": [
            _coverage(
                "general_liability",
                {
                    "each_occurrence": 2_000_000,
                    "general_aggregate": 4_000_000,
                    "products_completed_operations_aggregate": 4_000_000,
                },
                additional_insured=True,
                primary_noncontributory=True,
            ),
            _coverage("automobile_liability", {"combined_single_limit": 1_000_000}),
            _coverage("umbrella_liability", {"each_occurrence": 5_000_000, "aggregate": 5_000_000}),
            _wc_requirement(1_000_000),
        ],
        "umbrella_counts_toward": ["general_liability", "automobile_liability"],
        "severity": {"primary_noncontributory_missing": "warn"},
    }
    large_jobs = {
        "name": "Large jobs (work orders of $50,000 or more)",
        "applies_to": _applies_to(min_amount=5_000_000),
        "priority": 20,
        "expiring_window_days": 45,
        "certificate_holder": {"name": HOLDER_NAME},
        "min_am_best": _MIN_RATING,
        "coverages": [
            _coverage(
                "general_liability",
                {"each_occurrence": 2_000_000, "general_aggregate": 4_000_000},
                additional_insured=True,
                waiver_of_subrogation=True,
                primary_noncontributory=True,
            ),
            _coverage("automobile_liability", {"combined_single_limit": 1_000_000}),
            _coverage("umbrella_liability", {"each_occurrence": 5_000_000, "aggregate": 5_000_000}),
            _wc_requirement(1_000_000),
        ],
        "umbrella_counts_toward": ["general_liability", "automobile_liability"],
        "severity": {},
    }
    standard_next = {
        **standard,
        "name": "Standard contractor requirements (GL 2M occurrence)",
        "coverages": [
            _coverage(
                "general_liability",
                {"each_occurrence": 2_000_000, "general_aggregate": 2_000_000},
                additional_insured=True,
            ),
            *standard["coverages"][1:],
        ],
        "effective_from": (as_of + timedelta(days=60)).isoformat(),
    }
    return [
        ("standard", standard),
        ("high_risk", high_risk),
        ("large_jobs", large_jobs),
        ("standard", standard_next),
    ]


def _applies_to(
    *, work_types: list[str] | None = None, min_amount: int | None = None
) -> dict[str, Any]:
    return {
        "work_types": list(work_types or []),
        "regions": [],
        "risk_tiers": [],
        "min_amount": min_amount,
    }


def _coverage(
    line: str,
    limits: dict[str, int],
    *,
    additional_insured: bool = False,
    waiver_of_subrogation: bool = False,
    primary_noncontributory: bool = False,
    statutory: bool = False,
) -> dict[str, Any]:
    return {
        "line": line,
        "limits": dict(limits),
        "additional_insured": additional_insured,
        "waiver_of_subrogation": waiver_of_subrogation,
        "primary_noncontributory": primary_noncontributory,
        "statutory": statutory,
    }


def _wc_requirement(amount: int) -> dict[str, Any]:
    return _coverage(
        "workers_compensation",
        {
            "el_each_accident": amount,
            "el_disease_each_employee": amount,
            "el_disease_policy_limit": amount,
        },
        waiver_of_subrogation=True,
        statutory=True,
    )


def _profile(trade: str) -> str:
    if trade == "general_contractor":
        return "large"
    return "high" if trade in HIGH_RISK_TRADES else "standard"


def _risk_tier(trade: str) -> str:
    if trade in HIGH_RISK_TRADES:
        return "high"
    return "medium" if trade in ("plumbing", "general_contractor") else "low"


def _timestamp(day: date, rng: random.Random) -> str:
    moment = datetime(day.year, day.month, day.day, rng.randint(13, 22), rng.randint(0, 59))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Generator:
    """Draws the network from one seeded random stream; call ``vendors()`` once."""

    def __init__(self, as_of: date, insurers: list[dict[str, str]]) -> None:
        self.as_of = as_of
        self.rng = random.Random(SEED)
        good = [i for i in insurers if _rank(i["am_best"]) <= _rank(_MIN_RATING)]
        self.good_insurers = good
        self.low_insurers = [i for i in insurers if _rank(i["am_best"]) > _rank(_MIN_RATING)]
        self.notices: list[dict[str, Any]] = []
        self._names: set[str] = set()
        self._prefixes: set[str] = set()
        self._slugs: set[str] = set()
        self._tax_ids: set[str] = set()
        self._refs: set[str] = set()
        self._policy_numbers: set[str] = set()

    # -- vendors -----------------------------------------------------------------------------

    def vendors(self) -> list[dict[str, Any]]:
        specs = [
            (scenario, k, trades[k % len(trades)])
            for scenario, count, trades in _PLAN
            for k in range(count)
        ]
        self.rng.shuffle(specs)
        entries = []
        for n, (scenario, k, trade) in enumerate(specs):
            vendor = self._vendor(n, trade)
            certificates = self._certificates(vendor, scenario, k, trade)
            entries.append({"vendor": vendor, "certificates": certificates, "scenario": scenario})
        return entries

    def _vendor(self, n: int, trade: str) -> dict[str, Any]:
        rng = self.rng
        pool = _NAME_PREFIXES + _TRADE_PREFIXES[trade]
        pool = tuple(p for p in pool if p not in self._prefixes) or pool
        while True:
            prefix = rng.choice(pool)
            noun = rng.choice(_TRADE_NOUNS[trade])
            name = f"{prefix} {noun} {rng.choice(_LEGAL_SUFFIXES)}"
            slug = "".join(ch for ch in f"{prefix}{noun.split()[0]}".lower() if ch.isalnum())
            repeats = set(prefix.lower().split()) & set(noun.lower().split())
            if not repeats and name not in self._names and slug not in self._slugs:
                break
        self._names.add(name)
        self._slugs.add(slug)
        self._prefixes.add(prefix)
        work_types = [trade]
        if trade in _SECONDARY_TRADE and rng.random() < 0.35:
            work_types.append(_SECONDARY_TRADE[trade])
        regions = sorted(rng.sample(REGIONS, rng.choice((1, 1, 2))), key=REGIONS.index)
        return {
            "name": name,
            "email": f"{rng.choice(('office', 'info', 'admin', 'accounts'))}@{slug}.example",
            "tax_id": self._unique(self._tax_ids, self._ein),
            "work_types": work_types,
            "regions": regions,
            "risk_tier": _risk_tier(trade),
            "external_refs": [
                {"system": "salesforce", "external_id": self._unique(self._refs, self._sf_id)},
                {"system": "bc", "external_id": f"V{10010 + 10 * n}"},
                {"system": "dispatch", "external_id": f"P-{1001 + n}"},
            ],
        }

    def _ein(self) -> str:
        return f"{self.rng.choice(_EIN_PREFIXES)}-{self.rng.randint(1_000_000, 9_999_999)}"

    def _sf_id(self) -> str:
        """An 18-character Account id, as Salesforce gives them: 15 case-sensitive characters
        and the 3 that encode their case (so the Salesforce stand-in accepts it)."""
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        drawn = "".join(self.rng.choice(alphabet) for _ in range(8))
        return _salesforce_id18("0018c00002" + drawn[:5])

    def _unique(self, seen: set[str], draw: Any) -> str:
        while True:
            value = draw()
            if value not in seen:
                seen.add(value)
                return value

    # -- certificates ------------------------------------------------------------------------

    def _certificates(
        self, vendor: dict[str, Any], scenario: str, k: int, trade: str
    ) -> list[dict[str, Any]]:
        rng, as_of = self.rng, self.as_of
        profile = _profile(trade)
        if profile == "standard":
            program = {
                "gl_occurrence": rng.choice((1_000_000, 1_000_000, 1_000_000, 2_000_000)),
                "auto_csl": 1_000_000,
                "el": rng.choice((500_000, 500_000, 1_000_000)),
                "umbrella": rng.choice((None, None, None, 1_000_000, 2_000_000)),
                "gl_waiver": rng.random() < 0.5,
                "gl_pnc": rng.random() < 0.5,
            }
        else:
            program = {
                "gl_occurrence": 2_000_000,
                "auto_csl": rng.choice((1_000_000, 1_000_000, 2_000_000)),
                "el": 1_000_000,
                "umbrella": rng.choice((5_000_000, 5_000_000, 10_000_000)),
                "gl_waiver": True,
                "gl_pnc": True,
            }
        program["pollution"] = trade in ("hvac", "plumbing", "general_contractor") and (
            rng.random() < 0.4
        )
        program["additional_insured"] = True
        holder = HOLDER_NAME
        package_insurer = rng.choice(self.good_insurers)
        wc_insurer = rng.choice(self.good_insurers)
        agency = rng.choice(_AGENCIES)
        source = rng.choice(_SOURCES)

        # Policy terms: the liability package shares one term, workers' comp has its own.
        expires = as_of + timedelta(days=rng.randint(75, 340))
        wc_expires = as_of + timedelta(days=rng.randint(75, 360))
        effective = expires - timedelta(days=365)
        received_delay = rng.randint(-12, 10)

        if scenario == "compliant" and k % 6 == 3:
            holder = HOLDER_VARIANTS[(k // 6) % len(HOLDER_VARIANTS)]
        elif scenario == "expiring":
            expires = as_of + timedelta(days=rng.randint(4, 28))
            effective = expires - timedelta(days=365)
        elif scenario == "expired":
            expires = as_of - timedelta(days=0 if k == 0 else rng.randint(3, 45))
            effective = expires - timedelta(days=365)
            wc_expires = expires
        elif scenario == "not_yet_effective":
            effective = as_of + timedelta(days=rng.randint(5, 20))
            expires = effective + timedelta(days=365)
            wc_expires = expires
        elif scenario == "under_limit":
            kind = "el" if profile != "standard" else ("gl", "auto", "el")[k % 3]
            if kind == "gl":
                program.update(gl_occurrence=500_000, umbrella=None)
            elif kind == "auto":
                program.update(auto_csl=500_000, umbrella=None)
            else:
                program["el"] = "100/500/100"
        elif scenario == "missing_additional_insured":
            program["additional_insured"] = False
        elif scenario == "umbrella_stacked":
            program.update(gl_occurrence=500_000, umbrella=rng.choice((1_000_000, 2_000_000)))
        elif scenario == "low_rated_insurer":
            rating = ("B+", "B", "B++")[k % 3]
            package_insurer = next(i for i in self.low_insurers if i["am_best"] == rating)
        elif scenario == "wrong_certificate_holder":
            holder = WRONG_HOLDERS[k % len(WRONG_HOLDERS)]
        elif scenario == "renewal_on_file":
            expires = as_of + timedelta(days=rng.randint(3, 20))
            effective = expires - timedelta(days=365)
            wc_expires = expires
        elif scenario == "no_certificate":
            return []

        wc_effective = wc_expires - timedelta(days=365)
        received = min(effective + timedelta(days=received_delay), as_of - timedelta(days=1))
        policies = self._policies(
            program, package_insurer, wc_insurer, effective, expires, wc_effective, wc_expires
        )
        certificate = self._certificate(
            vendor, trade, holder, agency, source, received, policies, program
        )
        if scenario == "cancelled":
            gl = policies[0]
            self.notices.append(
                {
                    "policy_number": gl["policy_number"],
                    "insurer_name": gl["insurer"]["name"],
                    "effective_date": (as_of - timedelta(days=rng.randint(2, 20))).isoformat(),
                    "received_via": rng.choice(_NOTICE_CHANNELS),
                }
            )
        if scenario != "renewal_on_file":
            return [certificate]

        # The renewal: same program, new policy numbers, starting on the old expiration date.
        renewal_received = min(expires - timedelta(days=rng.randint(7, 25)), as_of)
        renewal_received = max(renewal_received, as_of - timedelta(days=10))
        renewal_policies = self._policies(
            program,
            package_insurer,
            wc_insurer,
            expires,
            expires + timedelta(days=365),
            expires,
            expires + timedelta(days=365),
        )
        renewal = self._certificate(
            vendor,
            trade,
            holder,
            agency,
            rng.choice(_SOURCES),
            renewal_received - timedelta(days=1),
            renewal_policies,
            program,
        )
        return [certificate, renewal]

    def _policies(
        self,
        program: dict[str, Any],
        package_insurer: dict[str, str],
        wc_insurer: dict[str, str],
        effective: date,
        expires: date,
        wc_effective: date,
        wc_expires: date,
    ) -> list[dict[str, Any]]:
        rng = self.rng
        occurrence = program["gl_occurrence"]
        policies = [
            self._policy(
                "general_liability",
                package_insurer,
                effective,
                expires,
                {
                    "each_occurrence": occurrence,
                    "damage_to_rented_premises": rng.choice((100_000, 300_000)),
                    "medical_expense": rng.choice((5_000, 10_000)),
                    "personal_advertising_injury": occurrence,
                    "general_aggregate": 2 * occurrence,
                    "products_completed_operations_aggregate": 2 * occurrence,
                },
                additional_insured=program["additional_insured"],
                waiver_of_subrogation=program["gl_waiver"],
                primary_noncontributory=program["gl_pnc"],
            ),
            self._policy(
                "automobile_liability",
                package_insurer,
                effective,
                expires,
                {"combined_single_limit": program["auto_csl"]},
                additional_insured=program["additional_insured"],
            ),
        ]
        if program["umbrella"]:
            policies.append(
                self._policy(
                    "umbrella_liability",
                    package_insurer,
                    effective,
                    expires,
                    {"each_occurrence": program["umbrella"], "aggregate": program["umbrella"]},
                )
            )
        if program["el"] == "100/500/100":
            el = {
                "el_each_accident": 100_000,
                "el_disease_each_employee": 100_000,
                "el_disease_policy_limit": 500_000,
            }
        else:
            el = dict.fromkeys(
                ("el_each_accident", "el_disease_each_employee", "el_disease_policy_limit"),
                program["el"],
            )
        policies.append(
            self._policy(
                "workers_compensation",
                wc_insurer,
                wc_effective,
                wc_expires,
                {"statutory": True, **el},
                waiver_of_subrogation=True,
            )
        )
        if program["pollution"]:
            policies.append(
                self._policy(
                    "pollution_liability",
                    package_insurer,
                    effective,
                    expires,
                    {"each_occurrence": 1_000_000, "aggregate": 2_000_000},
                    claims_made=True,
                )
            )
        return policies

    def _policy(
        self,
        line: str,
        insurer: dict[str, str],
        effective: date,
        expires: date,
        limits: dict[str, Any],
        *,
        additional_insured: bool = False,
        waiver_of_subrogation: bool = False,
        primary_noncontributory: bool = False,
        claims_made: bool = False,
    ) -> dict[str, Any]:
        prefix = _POLICY_PREFIX[line]
        number = self._unique(
            self._policy_numbers,
            lambda: f"{prefix}-{self.rng.randint(1_000_000, 9_999_999)}",
        )
        return {
            "line": line,
            "policy_number": number,
            "insurer": {"name": insurer["name"], "naic": insurer["naic"]},
            "effective_date": effective.isoformat(),
            "expiration_date": expires.isoformat(),
            "limits": limits,
            "additional_insured": additional_insured,
            "waiver_of_subrogation": waiver_of_subrogation,
            "primary_noncontributory": primary_noncontributory,
            "claims_made": claims_made,
        }

    def _certificate(
        self,
        vendor: dict[str, Any],
        trade: str,
        holder: str,
        agency: tuple[str, str, str],
        source: str,
        received: date,
        policies: list[dict[str, Any]],
        program: dict[str, Any],
    ) -> dict[str, Any]:
        description = _OPERATIONS[trade] + "."
        if program["additional_insured"]:
            description += (
                " Certificate holder is included as additional insured on general liability"
                " and auto liability where required by written contract."
            )
        return {
            "producer": {"name": agency[0], "email": agency[1], "phone": agency[2]},
            "insured": {"name": vendor["name"]},
            "certificate_holder": {"name": holder, "address": HOLDER_ADDRESS},
            "description_of_operations": description,
            "received_at": _timestamp(received, self.rng),
            "source": source,
            "policies": policies,
        }

    # -- work orders -------------------------------------------------------------------------

    def work_orders(
        self, vendors: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], dict[str, str]]]:
        """Gate request bodies with their intent; pure function of ``vendors`` and ``as_of``."""
        as_of = self.as_of
        trades = {scenario: pool for scenario, _, pool in _PLAN}

        def pick(scenario: str, k: int) -> dict[str, Any]:
            trade = trades[scenario][k]
            return next(
                entry
                for entry in vendors
                if entry["scenario"] == scenario and entry["vendor"]["work_types"][0] == trade
            )

        def ref(entry: dict[str, Any], system: str = "dispatch") -> dict[str, str]:
            found = next(r for r in entry["vendor"]["external_refs"] if r["system"] == system)
            return {"system": system, "external_id": found["external_id"]}

        def body(
            number: int,
            vendor: dict[str, str],
            work_type: str,
            region: str,
            start: int | date,
            end: int | date,
            amount: int,
        ) -> dict[str, Any]:
            start_day = start if isinstance(start, date) else as_of + timedelta(days=start)
            end_day = end if isinstance(end, date) else as_of + timedelta(days=end)
            return {
                "work_order": {"system": "dispatch", "external_id": f"WO-{number}"},
                "vendor": vendor,
                "work_type": work_type,
                "region": region,
                "scheduled_start": start_day.isoformat(),
                "scheduled_end": end_day.isoformat(),
                "amount": amount,
            }

        def first(entry: dict[str, Any], key: str) -> str:
            return entry["vendor"][key][0]

        plumber = pick("compliant", 0)
        roofer = pick("compliant", 1)
        builder = pick("compliant", 2)
        low_rated = pick("low_rated_insurer", 0)
        expired = pick("expired", 1)
        cancelled = pick("cancelled", 0)
        expiring = pick("expiring", 0)
        expiring_on = min(
            date.fromisoformat(p["expiration_date"])
            for p in expiring["certificates"][0]["policies"]
        )
        orders = [
            (
                body(208311, ref(plumber), "plumbing", first(plumber, "regions"), 2, 3, 185_000),
                "allow",
                "compliant plumber, standard requirements",
            ),
            (
                body(208317, ref(roofer), "roofing", first(roofer, "regions"), 5, 9, 1_875_000),
                "allow",
                "compliant roofer meets the high-risk requirements",
            ),
            (
                body(
                    208324,
                    ref(builder),
                    "general_contractor",
                    first(builder, "regions"),
                    10,
                    45,
                    12_500_000,
                ),
                "allow",
                "large job ($125,000) for a compliant general contractor",
            ),
            (
                body(
                    208330,
                    ref(low_rated),
                    "janitorial",
                    first(low_rated, "regions"),
                    1,
                    1,
                    42_000,
                ),
                "warn",
                "insurer rated B+, below A- (severity warn in the standard set)",
            ),
            (
                body(208342, ref(expired), "painting", first(expired, "regions"), 3, 4, 310_000),
                "block",
                "vendor's policies have expired",
            ),
            (
                body(
                    208355,
                    ref(cancelled, "salesforce"),
                    "roofing",
                    first(cancelled, "regions"),
                    4,
                    6,
                    960_000,
                ),
                "block",
                "general liability cancelled by carrier notice (vendor named by Salesforce id)",
            ),
            (
                body(
                    208361,
                    {"system": "dispatch", "external_id": "P-99999"},
                    "electrical",
                    "us-east",
                    2,
                    2,
                    75_000,
                ),
                "block",
                "unknown vendor",
            ),
            (
                body(
                    208376,
                    ref(expiring),
                    "plumbing",
                    first(expiring, "regions"),
                    2,
                    expiring_on + timedelta(days=3),
                    520_000,
                ),
                "block",
                f"window runs past the vendor's expiration on {expiring_on.isoformat()}",
            ),
        ]
        return [
            (order, {"work_order": order["work_order"]["external_id"], "intent": i, "why": why})
            for order, i, why in orders
        ]


def _salesforce_id18(id15: str) -> str:
    """Append the case-encoding suffix: per 5-character chunk, a bit per upper-case letter."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(id15[start : start + 5]) if "A" <= ch <= "Z")
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return id15 + suffix


def _rank(rating: str) -> int:
    return _RATING_ORDER.index(rating)
