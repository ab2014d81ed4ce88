"""Renewal punctuality: how often a vendor's renewal arrived before the old policy expired."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from itertools import pairwise
from typing import NamedTuple

from connector.compliance.model import RenewalRecord


class PolicyReceipt(NamedTuple):
    line: str
    policy_number: str
    effective_date: date
    expiration_date: date
    received_on: date


def renewal_record(receipts: Iterable[PolicyReceipt]) -> RenewalRecord:
    """Count renewals (a policy of the same line starting no later than its predecessor's
    expiration and running past it) received before / after the predecessor expired.

    The same policy listed on several certificates counts once, at its earliest receipt.
    """
    first_seen: dict[tuple[str, str], PolicyReceipt] = {}
    for receipt in receipts:
        key = (receipt.line, receipt.policy_number)
        seen = first_seen.get(key)
        if seen is None or receipt.received_on < seen.received_on:
            first_seen[key] = receipt
    by_line: dict[str, list[PolicyReceipt]] = {}
    for receipt in first_seen.values():
        by_line.setdefault(receipt.line, []).append(receipt)
    timely = late = 0
    for receipts_of_line in by_line.values():
        receipts_of_line.sort(key=lambda r: (r.effective_date, r.expiration_date))
        for old, new in pairwise(receipts_of_line):
            renews = new.effective_date <= old.expiration_date < new.expiration_date
            if not renews:
                continue
            if new.received_on < old.expiration_date:
                timely += 1
            else:
                late += 1
    return RenewalRecord(timely=timely, late=late)
