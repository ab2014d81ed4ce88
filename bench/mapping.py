"""Throughput of the field-mapping engine against hand-written Python.

Builds 100,000 Salesforce-shaped Account records (seeded; as a SOQL query returns them, with
`attributes`, nulls and multi-select picklists) and maps them with the shipped default
`salesforce_account_in` mapping, compiled once. Beside it, in the same run, two baselines:

- `copy`: a dict comprehension copying the same nine fields, converting nothing;
- `hand-written`: the same comprehension doing the same conversions inline (strip, lower-case,
  split the picklists, translate the risk tier and Yes/No), i.e. the code the mapping replaces.

The target is the engine at >= 25% of the hand-written baseline's speed; its speed relative to
the bare copy is printed too. Single core, CPU time of this process; best of five
interleaved rounds. Prints figures only.
Run: `.venv/bin/python bench/mapping.py [records]`.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from typing import Any

from mappings import compile_mapping, default_spec

TARGET_SHARE = 0.25
TRADES = ("Plumbing", "HVAC", "Electrical", "Roofing", "Carpentry", "Painting", "Janitorial")
STATES = ("CA", "NV", "OR", "WA", "AZ", "TX", "NY", "NJ")
TIERS = ("Low", "Medium", "High", None)


def records(count: int) -> list[dict[str, Any]]:
    rng = random.Random(20260101)
    out = []
    for i in range(count):
        record_id = f"001{i:012d}AAA"
        out.append(
            {
                "attributes": {
                    "type": "Account",
                    "url": f"/services/data/v61.0/sobjects/Account/{record_id}",
                },
                "Id": record_id,
                "Name": f"  {rng.choice(('Acme', 'Bolt', 'Crest', 'Delta'))} Services {i} LLC ",
                "Email__c": f"Ops{i}@Example.COM" if rng.random() < 0.9 else None,
                "Phone": f"(555) 010-{i % 10000:04d}" if rng.random() < 0.8 else None,
                "Tax_ID__c": f"{rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}",
                "Trades__c": ";".join(rng.sample(TRADES, rng.randint(1, 3))),
                "Service_Regions__c": ";".join(rng.sample(STATES, rng.randint(1, 2))),
                "Risk_Tier__c": rng.choice(TIERS),
                "Active__c": rng.choice(("Yes", "Yes", "Yes", "No")),
                "BillingCity": "Springfield",
                "SystemModstamp": "2026-01-15T10:22:31.000+0000",
            }
        )
    return out


def copy_baseline(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "external_id": r["Id"],
            "name": r["Name"],
            "email": r["Email__c"],
            "phone": r["Phone"],
            "tax_id": r["Tax_ID__c"],
            "work_types": r["Trades__c"],
            "regions": r["Service_Regions__c"],
            "risk_tier": r["Risk_Tier__c"],
            "active": r["Active__c"],
        }
        for r in batch
    ]


TIER = {"low": "low", "medium": "medium", "high": "high"}
YES_NO = {"yes": True, "no": False}


def _tags(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [part.strip().lower() for part in text.split(";") if part.strip()]


def hand_written(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "external_id": r["Id"],
            "name": r["Name"].strip(),
            "email": r["Email__c"].strip().lower() if r["Email__c"] else None,
            "phone": r["Phone"].strip() if r["Phone"] else None,
            "tax_id": r["Tax_ID__c"].strip() if r["Tax_ID__c"] else None,
            "work_types": _tags(r["Trades__c"]),
            "regions": _tags(r["Service_Regions__c"]),
            "risk_tier": TIER[r["Risk_Tier__c"].lower()] if r["Risk_Tier__c"] else None,
            "active": YES_NO[r["Active__c"].lower()] if r["Active__c"] else True,
        }
        for r in batch
    ]


def best_rates(runs: dict[str, Callable[[], Any]], count: int, rounds: int = 5) -> dict:
    """Records per second of each run (CPU time of this process), best of `rounds`; the runs
    take turns, so a busy machine slows them alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - started)
    return {name: count / seconds for name, seconds in best.items()}


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    batch = records(count)
    mapping = compile_mapping(
        default_spec("salesforce_account_in"), object="vendor", direction="in"
    )
    apply = mapping.apply

    outcomes = [apply(r) for r in batch]
    failed = sum(not o.ok for o in outcomes)
    expected = hand_written(batch[:1000])
    for outcome, wanted in zip(outcomes, expected, strict=False):
        got = outcome.values
        assert all(got.get(k) == v for k, v in wanted.items()), (got, wanted)

    rates = best_rates(
        {
            "engine": lambda: [apply(r) for r in batch],
            "hand": lambda: hand_written(batch),
            "copy": lambda: copy_baseline(batch),
        },
        count,
    )
    engine, hand, copy = rates["engine"], rates["hand"], rates["copy"]

    print(f"records: {count:,} Salesforce Accounts, mapping salesforce_account_in (9 rules)")
    print(f"  rejected by the mapping: {failed}")
    print(f"  engine (compiled mapping):   {engine:12,.0f} records/s")
    print(f"  baseline, hand-written:      {hand:12,.0f} records/s  (same copies and conversions)")
    print(f"  baseline, bare copy:         {copy:12,.0f} records/s  (same copies, no conversion)")
    share = engine / hand
    verdict = "meets" if share >= TARGET_SHARE else "MISSES"
    print(f"  engine / hand-written: {share:.0%} ({verdict} the target of {TARGET_SHARE:.0%})")
    print(
        f"  engine / bare copy: {engine / copy:.0%} (the conversions alone, written by hand, "
        f"run at {hand / copy:.0%} of a bare copy)"
    )


if __name__ == "__main__":
    main()
