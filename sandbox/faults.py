"""Faults a stand-in can be told to inject, shared by every stand-in.

Tests and benchmarks arm them in-process (`peer.faults.fail(3, status=503)`) or over HTTP
(`POST /__sandbox/faults` with the same fields as JSON). Every armed fault applies to the next
matching requests and then disarms itself.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class Fault:
    status: int
    remaining: int
    retry_after: float | None = None
    body: dict | None = None


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[Fault] = []
        self.delay_seconds = 0.0
        self.requests = 0

    def fail(
        self,
        count: int,
        status: int = 503,
        retry_after: float | None = None,
        body: dict | None = None,
    ) -> None:
        """The next `count` requests answer `status` (with Retry-After when given)."""
        with self._lock:
            self._errors.append(Fault(status, count, retry_after, body))

    def slow(self, seconds: float) -> None:
        """Every request waits this long before answering (0 turns it off)."""
        self.delay_seconds = seconds

    def reset(self) -> None:
        with self._lock:
            self._errors.clear()
        self.delay_seconds = 0.0

    def next_error(self) -> Fault | None:
        """Called by the stand-in once per request: the fault to answer with, if any."""
        with self._lock:
            self.requests += 1
            fault = next((f for f in self._errors if f.remaining > 0), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._errors.remove(fault)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        return fault

    def arm(self, spec: dict) -> None:
        """Arm from JSON: {"fail": n, "status": s, "retry_after": r} and/or {"slow": seconds}."""
        if spec.get("fail"):
            self.fail(int(spec["fail"]), int(spec.get("status", 503)), spec.get("retry_after"))
        if "slow" in spec:
            self.slow(float(spec["slow"]))
