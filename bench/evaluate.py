"""Bulk re-evaluation throughput of the compliance engine.

Builds 100,000 synthetic vendors (seeded) with 3-5 policies each and one realistic
requirement set, then times evaluating every vendor on one day, single core. Prints figures
only. Run: `.venv/bin/python bench/evaluate.py [vendors]`.
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from datetime import date, timedelta

from connector.compliance import (
    CoverageRequirement,
    Policy,
    RenewalRecord,
    RequirementSet,
    Waiver,
    evaluate,
)

TARGET_PER_SECOND = 20_000
AS_OF = date(2025, 6, 1)
HOLDERS = ("Acme Facilities, Inc.", "ACME Facilities Inc", "Acme Facilities Incorporated")
RATINGS = ("A++", "A+", "A+", "A", "A", "A", "A", "A-", "A-", "A-") * 3 + ("B++", "B+", None)

REQUIREMENT_SET = RequirementSet(
    key="facilities-standard",
    name="Facilities standard",
    coverages=(
        CoverageRequirement(
            "general_liability",
            {"each_occurrence": 1_000_000, "general_aggregate": 2_000_000},
            additional_insured=True,
            waiver_of_subrogation=True,
        ),
        CoverageRequirement("automobile_liability", {"combined_single_limit": 1_000_000}),
        CoverageRequirement("workers_compensation", {"el_each_accident": 500_000}, statutory=True),
    ),
    min_am_best="A-",
    certificate_holder="Acme Facilities, Inc.",
    umbrella_counts_toward=frozenset({"general_liability", "automobile_liability"}),
    severity={"certificate_holder_mismatch": "warn"},
)


def _policy(rng: random.Random, line: str, number: int, limits: dict[str, int]) -> Policy:
    start = AS_OF - timedelta(days=rng.randint(0, 380))
    cancelled = start + timedelta(days=rng.randint(30, 300)) if rng.random() < 0.03 else None
    return Policy(
        line=line,
        policy_number=f"{line[:2].upper()}-{number}",
        effective_date=start,
        expiration_date=start + timedelta(days=365),
        limits=limits,
        statutory=line == "workers_compensation" and rng.random() < 0.98,
        additional_insured=rng.random() < 0.97,
        waiver_of_subrogation=rng.random() < 0.97,
        primary_noncontributory=rng.random() < 0.7,
        am_best=rng.choice(RATINGS),
        certificate_holder=rng.choice(HOLDERS) if rng.random() < 0.95 else "Someone Else LLC",
        cancelled_on=cancelled,
    )


def make_vendor(rng: random.Random, number: int) -> list[Policy]:
    million = 1_000_000
    policies = [
        _policy(
            rng,
            "general_liability",
            number,
            {
                "each_occurrence": rng.choice((million,) * 6 + (2 * million,) * 3 + (500_000,)),
                "general_aggregate": rng.choice(
                    (2 * million,) * 6 + (4 * million,) * 3 + (million,)
                ),
            },
        ),
        _policy(
            rng,
            "automobile_liability",
            number,
            {"combined_single_limit": rng.choice((million,) * 8 + (500_000,) * 2)},
        ),
        _policy(
            rng,
            "workers_compensation",
            number,
            {"el_each_accident": rng.choice((500_000, million))},
        ),
    ]
    extra = rng.randint(0, 2)
    if extra >= 1:
        amount = rng.choice((million, 2 * million, 5 * million))
        policies.append(
            _policy(
                rng,
                "umbrella_liability",
                number,
                {"each_occurrence": amount, "aggregate": amount},
            )
        )
    if extra == 2:  # a renewal on file for a random line
        old = rng.choice(policies[:3])
        policies.append(
            Policy(
                line=old.line,
                policy_number=old.policy_number + "-R",
                effective_date=old.expiration_date,
                expiration_date=old.expiration_date + timedelta(days=365),
                limits=dict(old.limits),
                statutory=old.statutory,
                additional_insured=old.additional_insured,
                waiver_of_subrogation=old.waiver_of_subrogation,
                primary_noncontributory=old.primary_noncontributory,
                am_best=old.am_best,
                certificate_holder=old.certificate_holder,
            )
        )
    return policies


def main(count: int = 100_000) -> None:
    rng = random.Random(20250601)
    t0 = time.perf_counter()
    vendors = [make_vendor(rng, n) for n in range(count)]
    renewals = [RenewalRecord(rng.randint(0, 5), rng.randint(0, 2)) for _ in range(count)]
    waivers = [
        (Waiver("limit_below_minimum", "automobile_liability", AS_OF + timedelta(days=60)),)
        if rng.random() < 0.05
        else ()
        for _ in range(count)
    ]
    built = time.perf_counter() - t0
    policies = sum(len(v) for v in vendors)
    print(f"built {count:,} vendors ({policies:,} policies) in {built:.2f} s")

    t0 = time.perf_counter()
    results = [
        evaluate(v, REQUIREMENT_SET, AS_OF, waivers=w, renewals=r)
        for v, w, r in zip(vendors, waivers, renewals, strict=True)
    ]
    elapsed = time.perf_counter() - t0
    rate = count / elapsed
    print(f"1-day evaluation: {count:,} vendors in {elapsed:.2f} s = {rate:,.0f} vendors/s")
    print(f"target: >= {TARGET_PER_SECOND:,} vendors/s ({rate / TARGET_PER_SECOND:.2f}x target)")
    statuses = Counter(r.status for r in results)
    print("statuses: " + ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items())))

    sample = vendors[: count // 10]
    until = AS_OF + timedelta(days=13)
    t0 = time.perf_counter()
    for v in sample:
        evaluate(v, REQUIREMENT_SET, AS_OF, until)
    elapsed = time.perf_counter() - t0
    print(
        f"14-day window: {len(sample):,} vendors in {elapsed:.2f} s "
        f"= {len(sample) / elapsed:,.0f} vendors/s"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
