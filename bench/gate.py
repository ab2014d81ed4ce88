"""Gate throughput and latency under gunicorn, next to `/healthz` on the same server.

Builds a database of 10,000 vendors (bulk inserts, then one `recompute` so stored results
exist), starts the app under gunicorn with 2 workers on 127.0.0.1, and drives `/healthz` and
`POST /api/v1/gate` one after the other with the same load generator: `wrk` when it is on PATH,
else a Python client. Prints requests/s, p50 and p99 for each and the gate/healthz ratio.
Figures only, no assertions; only talks to 127.0.0.1.

Targets: the gate at >= 50% of `/healthz` throughput and p99 <= 25 ms at 16 connections.

Run: `.venv/bin/python bench/gate.py [--vendors N] [--connections N] [--duration S]
[--database-url URL] [--port N] [--client auto|wrk|python] [--server gunicorn|coi]`.
The default database is a fresh SQLite file in a temp dir. A PostgreSQL URL such as
`postgresql+psycopg://postgres@127.0.0.1:5432/coi_bench_gate` is created when it does not exist
and dropped afterwards; an existing database is used only when it holds no vendors. On
PostgreSQL the script runs ANALYZE after loading (what autovacuum would soon do on a live
database). The server runs without an access log unless `--server coi` (`coi serve`, which logs
every request) is chosen.

Each run prints, per target, how much of the machine other processes used while it was measured
("other CPU"); on a shared 2-core box that is the first thing to check before trusting a figure.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import math
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, suppress
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchdb import prepare_database
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from connector.api.auth import create_token
from connector.clock import today
from connector.config import Settings
from connector.demo.network import (
    HIGH_RISK_TRADES,
    HOLDER_ADDRESS,
    HOLDER_NAME,
    HOLDER_VARIANTS,
    REGIONS,
    TRADES,
    WRONG_HOLDERS,
    load_insurers,
    requirement_sets,
)
from connector.jobs import Jobs
from connector.schemas import requirement_set_schema
from connector.services.cancellations import normalise_insurer, normalise_policy_number
from connector.services.compliance import recompute
from connector.services.context import Context
from connector.services.requirements import put_set
from connector.storage import models as m
from connector.storage.db import make_engine, make_sessionmaker, upgrade

ROOT = Path(__file__).resolve().parent.parent
SEED = 20250301
TARGET_RATIO = 0.50
TARGET_P99_MS = 25.0
WARMUP_SECONDS = 2
HEALTH_WAIT_SECONDS = 30
HTTP_TIMEOUT = 10
MIX_SECONDS = 60

#: Scenario -> share of the vendor population (per cent).
SCENARIO_WEIGHTS = {
    "compliant": 78,
    "expiring": 7,
    "low_rated_insurer": 3,
    "wrong_certificate_holder": 2,
    "under_limit": 4,
    "missing_additional_insured": 2,
    "expired": 2,
    "no_certificate": 2,
}
#: Scenario -> how many of the rotated gate request bodies name such a vendor ("unknown": a
#: reference no vendor is bound to). 300 bodies, so allow, warn and block all occur.
GATE_BODY_MIX = {
    "compliant": 190,
    "expiring": 30,
    "low_rated_insurer": 20,
    "wrong_certificate_holder": 10,
    "under_limit": 20,
    "missing_additional_insured": 10,
    "expired": 10,
    "no_certificate": 5,
    "unknown": 5,
}
LARGE_JOB_SHARE = 0.10  # work orders of $50,000 or more: the `large_jobs` set applies
MILLION = 1_000_000
NOUNS = {
    "plumbing": "Plumbing",
    "electrical": "Electric",
    "hvac": "Heating & Air",
    "roofing": "Roofing",
    "landscaping": "Landscaping",
    "janitorial": "Cleaning Services",
    "painting": "Painting",
    "general_contractor": "Builders",
}
PREFIXES = (
    "Ridgeline", "Summit", "Cedar Grove", "Ironwood", "Keystone", "Pinnacle", "Evergreen",
    "Northstar", "Lakeside", "Redwood", "Silverline", "Canyon", "Bayview", "Timberline",
)  # fmt: skip
SUFFIXES = ("LLC", "Inc.", "Co.", "Corp.", "L.L.C.")
SECONDARY = {"general_contractor": "painting", "hvac": "plumbing", "janitorial": "landscaping"}


# -- data ------------------------------------------------------------------------------------


def _rank(rating: str) -> int:
    order = ("A++", "A+", "A", "A-", "B++", "B+", "B", "B-", "C++", "C+", "C", "C-", "D")
    return order.index(rating)


class Network:
    """Rows for a seeded vendor network of `count` vendors, as plain dicts for Core inserts."""

    def __init__(self, count: int, as_of: date) -> None:
        self.rng = random.Random(SEED)
        self.as_of = as_of
        insurers = load_insurers()
        self.insurers = insurers
        self.good = [i for i in insurers if _rank(i["am_best"]) <= _rank("A-")]
        self.low = [i for i in insurers if _rank(i["am_best"]) > _rank("A-")]
        self.vendors: list[dict[str, Any]] = []
        self.work_types: list[dict[str, Any]] = []
        self.regions: list[dict[str, Any]] = []
        self.bindings: list[dict[str, Any]] = []
        self.certificates: list[dict[str, Any]] = []
        self.policies: list[dict[str, Any]] = []
        #: vendor id -> (scenario, dispatch ref, first work type, first region)
        self.profile: dict[int, tuple[str, str, str, str]] = {}
        scenarios = list(SCENARIO_WEIGHTS)
        weights = list(SCENARIO_WEIGHTS.values())
        for vid in range(1, count + 1):
            self._vendor(vid, self.rng.choices(scenarios, weights)[0])

    def _vendor(self, vid: int, scenario: str) -> None:
        rng = self.rng
        trade = TRADES[vid % len(TRADES)]
        high = trade in HIGH_RISK_TRADES
        name = f"{rng.choice(PREFIXES)} {NOUNS[trade]} {vid:05d} {rng.choice(SUFFIXES)}"
        risk = (
            "high" if high else ("medium" if trade in ("plumbing", "general_contractor") else "low")
        )
        self.vendors.append(
            {
                "id": vid,
                "name": name,
                "email": f"office@vendor{vid:05d}.example",
                "tax_id": f"{20 + vid % 70:02d}-{1_000_000 + vid:07d}",
                "risk_tier": risk,
                "active": True,
            }
        )
        types = [trade]
        if trade in SECONDARY and rng.random() < 0.35:
            types.append(SECONDARY[trade])
        regions = rng.sample(REGIONS, rng.choice((1, 1, 2)))
        self.work_types += [{"vendor_id": vid, "work_type": w} for w in types]
        self.regions += [{"vendor_id": vid, "region": r} for r in regions]
        ref = f"CTR-{100_000 + vid}"
        self.bindings += [
            {"system": "dispatch", "object": "vendor", "external_id": ref, "vendor_id": vid},
            {
                "system": "salesforce",
                "object": "vendor",
                "external_id": f"0018c00002{vid:08d}",
                "vendor_id": vid,
            },
        ]
        self.profile[vid] = (scenario, ref, types[0], regions[0])
        if scenario != "no_certificate":
            self._certificate(vid, scenario, high, trade)

    def _certificate(self, vid: int, scenario: str, high: bool, trade: str) -> None:
        rng, as_of = self.rng, self.as_of
        occurrence = 2 * MILLION if high else rng.choice((MILLION, MILLION, MILLION, 2 * MILLION))
        el = MILLION if high else rng.choice((500_000, 500_000, MILLION))
        umbrella = (
            rng.choice((5, 5, 10)) * MILLION if high else rng.choice((0, 0, 0, 1, 2)) * MILLION
        )
        additional_insured = True
        holder = HOLDER_NAME
        package = rng.choice(self.good)
        wc_insurer = rng.choice(self.good)
        expires = as_of + timedelta(days=rng.randint(75, 340))
        wc_expires = as_of + timedelta(days=rng.randint(75, 360))
        if scenario == "compliant" and rng.random() < 0.1:
            holder = rng.choice(HOLDER_VARIANTS)
        elif scenario == "expiring":
            expires = as_of + timedelta(days=rng.randint(6, 25))
        elif scenario == "expired":
            expires = wc_expires = as_of - timedelta(days=rng.randint(3, 60))
        elif scenario == "under_limit":
            if high:
                el = 100_000
            else:
                occurrence, umbrella = 500_000, 0
        elif scenario == "missing_additional_insured":
            additional_insured = False
        elif scenario == "low_rated_insurer":
            package = rng.choice(self.low)
        elif scenario == "wrong_certificate_holder":
            holder = rng.choice(WRONG_HOLDERS)
        effective = expires - timedelta(days=365)
        received = min(effective + timedelta(days=rng.randint(-12, 10)), as_of - timedelta(days=1))
        cid = len(self.certificates) + 1
        self.certificates.append(
            {
                "id": cid,
                "vendor_id": vid,
                "producer": {"name": "Lakeshore Insurance Agency", "phone": "(312) 555-0147"},
                "insured_name": self.vendors[-1]["name"],
                "holder_name": holder,
                "holder_address": HOLDER_ADDRESS,
                "description_of_operations": f"{NOUNS[trade]} at client facilities.",
                "received_at": datetime(
                    received.year, received.month, received.day, 15, tzinfo=UTC
                ),
                "source": rng.choice(("pdf", "pdf", "email", "agent", "api")),
            }
        )

        def policy(line: str, prefix: str, insurer: dict, start: date, end: date, **kw) -> None:
            number = f"{prefix}-{vid:07d}"
            self.policies.append(
                {
                    "certificate_id": cid,
                    "vendor_id": vid,
                    "line": line,
                    "policy_number": number,
                    "policy_number_norm": normalise_policy_number(number),
                    "insurer_name": insurer["name"],
                    "insurer_name_norm": normalise_insurer(insurer["name"]),
                    "insurer_naic": insurer["naic"],
                    "am_best": None,
                    "effective_date": start,
                    "expiration_date": end,
                    "limits": kw.pop("limits"),
                    "statutory": kw.pop("statutory", False),
                    "additional_insured": kw.pop("additional_insured", False),
                    "waiver_of_subrogation": kw.pop("waiver_of_subrogation", False),
                    "primary_noncontributory": kw.pop("primary_noncontributory", False),
                    "claims_made": kw.pop("claims_made", False),
                    "cancelled_on": None,
                }
            )

        gl_limits = {
            "each_occurrence": occurrence,
            "damage_to_rented_premises": 300_000,
            "medical_expense": 10_000,
            "personal_advertising_injury": occurrence,
            "general_aggregate": 2 * occurrence,
            "products_completed_operations_aggregate": 2 * occurrence,
        }
        policy(
            "general_liability",
            "CGL",
            package,
            effective,
            expires,
            limits=gl_limits,
            additional_insured=additional_insured,
            waiver_of_subrogation=high or rng.random() < 0.6,
            primary_noncontributory=high or rng.random() < 0.5,
        )
        csl = rng.choice((MILLION, MILLION, 2 * MILLION))
        policy(
            "automobile_liability",
            "BAP",
            package,
            effective,
            expires,
            limits={"combined_single_limit": csl},
            additional_insured=additional_insured,
        )
        if umbrella:
            limits = {"each_occurrence": umbrella, "aggregate": umbrella}
            policy("umbrella_liability", "CUP", package, effective, expires, limits=limits)
        el_limits = dict.fromkeys(
            ("el_each_accident", "el_disease_each_employee", "el_disease_policy_limit"), el
        )
        wc_start = wc_expires - timedelta(days=365)
        policy(
            "workers_compensation",
            "WC",
            wc_insurer,
            wc_start,
            wc_expires,
            limits=el_limits,
            statutory=True,
            waiver_of_subrogation=True,
        )
        if trade in ("hvac", "plumbing", "general_contractor") and rng.random() < 0.3:
            limits = {"each_occurrence": MILLION, "aggregate": 2 * MILLION}
            policy("pollution_liability", "CPL", package, effective, expires, limits=limits)

    def gate_bodies(self) -> list[dict[str, Any]]:
        """Rotated gate request bodies: vendors of every scenario, windows inside the stored
        results' stable window (tomorrow .. +3 days), a tenth of them large jobs."""
        rng = random.Random(SEED + 1)
        by_scenario: dict[str, list[int]] = {}
        for vid, (scenario, *_rest) in self.profile.items():
            by_scenario.setdefault(scenario, []).append(vid)
        bodies = []
        for scenario, wanted in GATE_BODY_MIX.items():
            if scenario == "unknown":
                picks = [
                    (f"CTR-UNKNOWN-{k}", rng.choice(TRADES), rng.choice(REGIONS))
                    for k in range(wanted)
                ]
            else:
                pool = by_scenario.get(scenario, [])
                chosen = rng.sample(pool, min(wanted, len(pool)))
                picks = [self.profile[vid][1:] for vid in chosen]
            for ref, work_type, region in picks:
                start = self.as_of + timedelta(days=1)
                large = rng.random() < LARGE_JOB_SHARE
                bodies.append(
                    {
                        "work_order": {
                            "system": "dispatch",
                            "external_id": f"BENCH-WO-{len(bodies) + 1:04d}",
                        },
                        "vendor": {"system": "dispatch", "external_id": ref},
                        "work_type": work_type,
                        "region": region,
                        "scheduled_start": start.isoformat(),
                        "scheduled_end": (start + timedelta(days=rng.randint(0, 2))).isoformat(),
                        "amount": rng.randint(5_000_000, 20_000_000)
                        if large
                        else rng.randint(20_000, 2_000_000),
                    }
                )
        rng.shuffle(bodies)
        return bodies


def _bulk(conn, table, rows: list[dict[str, Any]], size: int = 5_000) -> None:
    for start in range(0, len(rows), size):
        conn.execute(insert(table), rows[start : start + size])


def build_database(url: str, vendors: int, as_of: date) -> tuple[str, list[dict], dict]:
    """Migrate, load the network, store results; returns (token, gate bodies, timings)."""
    timings: dict[str, float] = {}
    engine = make_engine(url)
    try:
        began = time.perf_counter()
        upgrade(engine)
        with engine.connect() as conn:
            if conn.scalar(select(func.count()).select_from(m.Vendor.__table__)):
                raise SystemExit(f"{_safe_url(url)} already holds vendors; give a new database")
        timings["migrate"] = time.perf_counter() - began

        began = time.perf_counter()
        sessions = make_sessionmaker(engine)
        jobs = Jobs(Settings(database_url=url), sessions)
        for key, body in requirement_sets(as_of):
            with sessions() as session:
                ctx = Context(session, jobs, "bench", as_of)
                put_set(ctx, key, requirement_set_schema.load(body))
        network = Network(vendors, as_of)
        with engine.begin() as conn:
            _bulk(conn, m.Insurer.__table__, network.insurers)
            _bulk(conn, m.Vendor.__table__, network.vendors)
            _bulk(conn, m.VendorWorkType.__table__, network.work_types)
            _bulk(conn, m.VendorRegion.__table__, network.regions)
            _bulk(conn, m.Binding.__table__, network.bindings)
            _bulk(conn, m.Certificate.__table__, network.certificates)
            _bulk(conn, m.Policy.__table__, network.policies)
            if engine.dialect.name == "postgresql":
                for table in ("vendors", "certificates"):
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
        timings["insert"] = time.perf_counter() - began

        began = time.perf_counter()
        with sessions() as session, session.begin():
            ids = session.scalars(select(m.Vendor.id)).all()
            recompute(session, ids, as_of)
            token = create_token(session, "bench-gate", "integration")
        timings["recompute"] = time.perf_counter() - began
        if engine.dialect.name == "postgresql":
            # What autovacuum does to a live database soon after a bulk load (it may be off on a
            # test server); without statistics the planner misjudges the alternatives query.
            began = time.perf_counter()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
            timings["analyze"] = time.perf_counter() - began
        counts = {
            "policies": len(network.policies),
            "certificates": len(network.certificates),
        }
        with engine.connect() as conn:
            counts["results"] = conn.scalar(
                select(func.count()).select_from(m.ComplianceResult.__table__)
            )
            counts["by_status"] = dict(
                conn.execute(select(m.Vendor.status, func.count()).group_by(m.Vendor.status)).all()
            )
        timings["counts"] = counts
        return token, network.gate_bodies(), timings
    finally:
        engine.dispose()


# -- database lifecycle ----------------------------------------------------------------------


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# -- server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    url: str,
    port: int,
    server: str,
    stack: ExitStack,
    extra_env: dict[str, str] | None = None,
    redis_url: str | None = None,
    workers: int = 2,
) -> subprocess.Popen:
    env = {**os.environ, **(extra_env or {}), "COI_DATABASE_URL": url}
    env.pop("COI_REDIS_URL", None)  # only with --redis-url: keep the run self-contained
    if redis_url:
        # A queue of the run's own, so nothing it might queue lands in a real one.
        env.update(COI_REDIS_URL=redis_url, COI_QUEUE=f"coi-bench-{port}")
    if server == "coi":
        argv = [str(Path(sys.executable).parent / "coi"), "serve", "--workers", str(workers)]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
    else:
        argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers)]
        argv += ["--worker-class", "sync"]
        argv += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
        argv += ["connector.app:create_app()"]
    log = open(Path(tempfile.gettempdir()) / f"coi-bench-gate-{port}.log", "w+b")  # noqa: SIM115
    stack.callback(_remove_log, log)
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
    )
    stack.callback(_stop_server, proc)
    deadline = time.monotonic() + HEALTH_WAIT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-3000:]
            raise SystemExit(f"gunicorn exited with {proc.returncode}:\n{tail}")
        with suppress(OSError):
            status, _ = _call(port, "GET", "/healthz", None, {})
            if status == 200:
                return proc
        time.sleep(0.1)
    raise SystemExit(f"the server did not answer /healthz within {HEALTH_WAIT_SECONDS} s")


def _remove_log(log) -> None:
    log.close()
    with suppress(OSError):
        os.unlink(log.name)


def _stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # gunicorn's master stops its workers
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what we started
        proc.wait(timeout=5)


def _call(port: int, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, None
    finally:
        conn.close()


def decision_mix(port: int, token: str, bodies: list[dict]) -> dict[str, int]:
    """Send every body once (also a warm-up) and count decisions and failures."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    mix: dict[str, int] = {}
    deadline = time.monotonic() + MIX_SECONDS
    for body in bodies:
        if time.monotonic() > deadline:
            mix["not sent (time limit)"] = len(bodies) - sum(mix.values())
            break
        status, data = _call(port, "POST", "/api/v1/gate", json.dumps(body).encode(), headers)
        key = data["decision"] if status == 200 and data else f"HTTP {status}"
        mix[key] = mix.get(key, 0) + 1
    return mix


# -- load generators -------------------------------------------------------------------------

Request = tuple[str, str, bytes | None, dict[str, str]]

# Thread k of n sends requests k, k + n, k + 2n, ...: the threads share the list without sending
# the same request twice in a round (signed webhook deliveries must be unique).
LUA = r"""
local requests = {}
local index = 0
local threads = 0

function setup(thread)
  thread:set("first", threads)
  threads = threads + 1
end

function init(args)
  for k, r in ipairs(specs) do
    requests[k] = wrk.format(r[1], r[2], r[3], r[4])
  end
  index = first or 0
end

function request()
  local r = requests[index % #requests + 1]
  index = index + nthreads
  return r
end

function done(summary, latency, requests_)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests": %d, "duration_us": %d, "status": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_string(value: str) -> str:
    level = "=" * 4
    if f"]{level}]" in value:
        raise ValueError("value cannot be a Lua long string")
    return f"[{level}[{value}]{level}]"


#: Requests per Lua function: a Lua function holds at most 65,536 constants, and every signed
#: webhook request brings a few of its own.
LUA_CHUNK = 5_000


def _lua_specs(requests: list[Request]) -> str:
    lines = ["specs = {}"]
    for start in range(0, len(requests), LUA_CHUNK):
        lines.append("local function chunk()")
        for method, path, body, headers in requests[start : start + LUA_CHUNK]:
            items = ", ".join(
                f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()
            )
            lua_body = _lua_string(body.decode()) if body is not None else "nil"
            lines.append(
                f"  specs[#specs + 1] = {{{_lua_string(method)}, {_lua_string(path)}, "
                f"{{{items}}}, {lua_body}}}"
            )
        lines.append("end")
        lines.append("chunk()")
    return "\n".join(lines)


def run_wrk(port: int, requests: list[Request], connections: int, seconds: int, folder: str):
    script = Path(folder) / f"wrk-{len(requests)}.lua"
    threads = min(2, connections)
    script.write_text(f"nthreads = {threads}\n" + _lua_specs(requests) + LUA)
    argv = ["wrk", "-t", str(threads), "-c", str(connections)]
    argv += ["-d", f"{seconds}s", "--timeout", f"{HTTP_TIMEOUT}s", "--latency", "-s", str(script)]
    argv.append(f"http://127.0.0.1:{port}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    found = re.search(r"^BENCH-RESULT (\{.*\})$", out.stdout, re.MULTILINE)
    if not found:
        raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    r = json.loads(found.group(1))
    errors = r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    return {
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50": r["p50_us"] / 1000,
        "p99": r["p99_us"] / 1000,
        "errors": errors,
        "requests": r["requests"],
    }


def _client_process(
    port: int,
    requests: list[Request],
    threads: int,
    offset: int,
    stride: int,
    start_at: float,
    seconds: float,
) -> tuple[list[float], int, float, float]:
    """One client process: `threads` connections; connection k of all `stride` sends requests
    k, k + stride, ... (no request twice in a round)."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    ends = [0.0] * threads

    def drive(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        i = offset + n
        mine = latencies[n]
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        while True:
            now = time.time()
            if now >= deadline:
                break
            method, path, body, headers = requests[i % len(requests)]
            i += stride
            began = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if not 200 <= response.status < 300:
                    errors[n] += 1
            except (OSError, http.client.HTTPException):
                errors[n] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
                continue
            mine.append((time.perf_counter() - began) * 1000)
        ends[n] = time.time()
        conn.close()

    workers = [threading.Thread(target=drive, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    merged = [x for part in latencies for x in part]
    return merged, sum(errors), start_at, max(ends)


def _ready() -> int:
    time.sleep(0.2)  # long enough for every process of the pool to take one
    return os.getpid()


def run_python(pool, processes: int, port: int, requests, connections: int, seconds: int):
    shares = [connections // processes + (k < connections % processes) for k in range(processes)]
    start_at = time.time() + 0.5
    futures = [
        pool.submit(
            _client_process,
            port,
            requests,
            share,
            sum(shares[:k]),
            connections,
            start_at,
            seconds,
        )
        for k, share in enumerate(shares)
        if share
    ]
    latencies: list[float] = []
    errors, first, last = 0, math.inf, 0.0
    for f in futures:
        lat, err, began, ended = f.result(timeout=seconds + 60)
        latencies += lat
        errors += err
        first, last = min(first, began), max(last, ended)
    latencies.sort()
    return {
        "rps": len(latencies) / (last - first),
        "p50": _percentile(latencies, 50),
        "p99": _percentile(latencies, 99),
        "errors": errors,
        "requests": len(latencies),
    }


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy() -> float | None:
    """Busy CPU seconds of the whole machine since boot (Linux), else None."""
    try:
        with open("/proc/stat") as f:
            t = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    return (sum(t) - t[3] - t[4]) / CLK_TCK  # all but idle and iowait


def _process_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


class CpuMeter:
    """Splits the machine's CPU time over a measurement into ours (the server and its workers,
    the database backends serving it, the load generator) and everybody else's."""

    def __init__(self, server_pid: int, extra_pids, engine) -> None:
        self.server_pid = server_pid
        self.extra_pids = extra_pids  # callable: client processes
        self.engine = engine  # PostgreSQL engine to find the backends, or None

    def _server_pids(self) -> set[int]:
        """gunicorn and its workers."""
        pids = {self.server_pid}
        for entry in os.listdir("/proc"):
            stat = _process_stat(int(entry)) if entry.isdigit() else None
            if stat and stat[0] == self.server_pid:
                pids.add(int(entry))
        return pids

    def _ours(self, server_pids: set[int]) -> dict[int, float]:
        pids = {*server_pids, os.getpid(), *self.extra_pids()}
        if self.engine is not None:
            with self.engine.connect() as conn:
                pids.update(
                    conn.scalars(
                        text(
                            "SELECT pid FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    )
                )
        return {pid: stat[1] for pid in pids if (stat := _process_stat(pid))}

    def __enter__(self) -> CpuMeter:
        self.machine = _machine_busy()
        self.began = time.monotonic()
        if self.machine is not None:
            self.before = self._ours(self._server_pids())
            self.children = _children_cpu()
        return self

    def __exit__(self, *exc) -> None:
        self.other = self.server = None
        if exc[0] is not None or self.machine is None:
            return
        wall = (time.monotonic() - self.began) * (os.cpu_count() or 1)
        machine = _machine_busy() - self.machine
        server_pids = self._server_pids()
        after = self._ours(server_pids)
        used = {pid: cpu - self.before.get(pid, 0.0) for pid, cpu in after.items()}
        ours = sum(used.values())
        #: CPU seconds of gunicorn and its workers (not the database, Redis or the client).
        self.server = sum(cpu for pid, cpu in used.items() if pid in server_pids)
        ours += _children_cpu() - self.children  # wrk, once it has exited
        self.other = max(0.0, machine - ours) / wall


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def other_work(seconds: float = 1.0) -> str:
    """How busy the machine is before we start anything (Linux: CPU share over one second)."""
    try:
        with open("/proc/stat") as f:
            first = [int(x) for x in f.readline().split()[1:]]
        time.sleep(seconds)
        with open("/proc/stat") as f:
            second = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return f"1-min load average {os.getloadavg()[0]:.2f}"
    delta = [b - a for a, b in zip(first, second, strict=True)]
    idle = delta[3] + delta[4]  # idle + iowait
    return f"CPU {100 * (1 - idle / max(1, sum(delta))):.0f}% busy with other work"


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# -- main ------------------------------------------------------------------------------------


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--vendors", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10, help="seconds per target and round")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of /healthz then the target (default 3)"
    )
    parser.add_argument("--database-url", default=None, help="default: a temp SQLite file")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--server",
        choices=("gunicorn", "coi"),
        default="gunicorn",
        help="gunicorn without access log (default) or `coi serve`, with --workers workers",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="the server's sync workers (default 2)"
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help="run the server with COI_REDIS_URL (webhook delivery claims in Redis); default: none",
    )
    return parser.parse_args()


def _processes_named(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        with suppress(OSError):
            if entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().strip() == name:
                found.append(int(entry))
    return found


class Run:
    """What a benchmark adds to the shared run: its setup on the loaded database, the requests
    it measures beside `/healthz`, and its targets."""

    name = "/api/v1/gate"
    ratio_goal = TARGET_RATIO
    p99_goal = TARGET_P99_MS
    server_env: dict[str, str] = {}

    def __init__(self, token: str, bodies: list[dict]):
        self.token, self.bodies = token, bodies

    def prepare(self, url: str) -> None:
        """Anything the target needs in the database before the server starts."""

    def warm(self, port: int) -> str:
        """Send every body once (also a warm-up); returns what to print about them."""
        mix = decision_mix(port, self.token, self.bodies)
        return f"gate bodies: {len(self.bodies)} rotated (each sent once first): " + ", ".join(
            f"{k} {v}" for k, v in sorted(mix.items())
        )

    def requests(self, seconds: float) -> list[Request]:
        """The requests to rotate for a measurement of `seconds`."""
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
        return [("POST", "/api/v1/gate", json.dumps(b).encode(), headers) for b in self.bodies]


def run_benchmark(args: argparse.Namespace, make_run, prefix: str) -> None:
    """The shared run: load the database, start the server, measure `/healthz` and the target
    with the same load generator, print the figures and the ratio."""
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    elif client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not on PATH")

    # Ctrl-C (even when started from a shell that ignores SIGINT) and SIGTERM unwind through
    # the ExitStack: the server stops, then the temp files or the database made here go.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    busy_before = other_work()
    as_of = today()
    with ExitStack() as stack:
        url = prepare_database(args.database_url, stack, prefix)
        backend = make_url(url).get_backend_name()
        print(f"database: {backend} ({_safe_url(url)})", flush=True)
        token, bodies, timings = build_database(url, args.vendors, as_of)
        run: Run = make_run(token, bodies)
        run.prepare(url)
        counts = timings.pop("counts")
        setup_seconds = time.perf_counter() - started
        print(
            f"setup: {args.vendors:,} vendors, {counts['certificates']:,} certificates, "
            f"{counts['policies']:,} policies, {counts['results']:,} stored results in "
            f"{setup_seconds:.1f} s ("
            + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
            + ")"
        )
        print("vendor status: " + ", ".join(f"{k} {v}" for k, v in counts["by_status"].items()))

        port = args.port or free_port()
        began = time.perf_counter()
        server = start_server(
            url, port, args.server, stack, run.server_env, args.redis_url, args.workers
        )
        print(
            f"server: {args.server} with {args.workers} sync workers on 127.0.0.1:{port} "
            f"(up in {time.perf_counter() - began:.1f} s)"
            + (f", Redis at {_safe_url(args.redis_url)}" if args.redis_url else ""),
            flush=True,
        )
        print(run.warm(port), flush=True)

        folder = tempfile.mkdtemp(prefix=f"{prefix}wrk-")
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        # Redis serves the server when configured: its CPU is the benchmark's, not other work.
        client_pids: list[int] = _processes_named("redis-server") if args.redis_url else []
        if client == "wrk":
            label = f"wrk {min(2, args.connections)} threads"

            def drive(requests, seconds):
                return run_wrk(port, requests, args.connections, seconds, folder)

        else:
            processes = max(1, min(args.connections, os.cpu_count() or 1))
            label = f"Python http.client, {processes} processes x threads"
            pool = stack.enter_context(
                concurrent.futures.ProcessPoolExecutor(
                    processes, mp_context=multiprocessing.get_context("spawn")
                )
            )
            started_up = [pool.submit(_ready) for _ in range(processes * 2)]
            client_pids += sorted({f.result(timeout=60) for f in started_up})

            def drive(requests, seconds):
                return run_python(pool, processes, port, requests, args.connections, seconds)

        print(
            f"load: {label}, {args.connections} connections, {WARMUP_SECONDS} s warm-up each, "
            f"then {args.rounds} rounds of {args.duration} s on /healthz and {args.duration} s "
            "on the target",
            flush=True,
        )
        if client == "python":
            print(
                "note: the Python client runs on the same cores as the server and competes "
                "with it for CPU; prefer wrk (apt-get install wrk)"
            )
        pg = None
        if backend.startswith("postgresql"):
            pg = create_engine(url, poolclass=NullPool)
            stack.callback(pg.dispose)
        meter = CpuMeter(server.pid, lambda: client_pids, pg)

        def requests_for(name: str, seconds: float) -> list[Request]:
            return [("GET", "/healthz", None, {})] if name == "/healthz" else run.requests(seconds)

        # Rounds alternate the two targets, so drift of the shared machine (a neighbour's load,
        # the host's clock speed) reaches both sides of a ratio alike; the first round warms up.
        rounds: list[dict[str, dict]] = []
        for number in range(args.rounds):
            results = {}
            for name in ("/healthz", run.name):
                if number == 0:
                    drive(requests_for(name, WARMUP_SECONDS), WARMUP_SECONDS)
                with meter:
                    results[name] = drive(requests_for(name, args.duration), args.duration)
                results[name]["other"] = meter.other
                results[name]["server_us"] = (
                    None
                    if meter.server is None or not results[name]["requests"]
                    else meter.server / results[name]["requests"] * 1e6
                )
            rounds.append(results)
        report(rounds, run, args.connections)
        print(
            f"machine: {os.cpu_count()} cores, {busy_before} before the run (other work on the "
            f"box skews the figures); total run time {time.perf_counter() - started:.0f} s"
        )


def report(rounds: list[dict[str, dict]], run: Run, connections: int) -> None:
    """Each round's figures, then the targets judged on the median round (every round shown)."""
    print()
    print(
        f"{'round':<6} {'target':<32} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'other CPU':>10} {'server µs':>10}"
    )
    for number, results in enumerate(rounds, 1):
        for name, r in results.items():
            other = "n/a" if r["other"] is None else f"{r['other']:.0%}"
            server = "n/a" if r.get("server_us") is None else f"{r['server_us']:.0f}"
            print(
                f"{number:<6} {name:<32} {r['rps']:>11.1f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                f"{r['errors']:>7} {other:>10} {server:>10}"
            )
    print(
        "(other CPU: share of the machine used by processes that are not this benchmark's "
        "server, database backends or load generator during the measurement; server µs: CPU "
        "of gunicorn and its workers per request answered)"
    )
    ratios = [
        r[run.name]["rps"] / r["/healthz"]["rps"] if r["/healthz"]["rps"] else math.nan
        for r in rounds
    ]
    p99s = [r[run.name]["p99"] for r in rounds]
    ratio, p99 = statistics.median(ratios), statistics.median(p99s)
    print()
    print(
        f"{run.name} / healthz throughput: {ratio:.1%}, median of "
        + ", ".join(f"{x:.1%}" for x in ratios)
        + f" (target >= {run.ratio_goal:.0%}: "
        + (
            "met"
            if ratio >= run.ratio_goal
            else f"missed by {100 * (run.ratio_goal - ratio):.1f} percentage points"
        )
        + ")"
    )
    print(
        f"{run.name} p99: {p99:.1f} ms at {connections} connections, median of "
        + ", ".join(f"{x:.1f}" for x in p99s)
        + f" (target <= {run.p99_goal:.0f} ms: "
        + ("met" if p99 <= run.p99_goal else f"missed by {p99 - run.p99_goal:.1f} ms")
        + ")"
    )


def main() -> None:
    run_benchmark(parse_args(__doc__.split("\n\n")[0]), Run, "coi-bench-gate-")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; the server was stopped and the data made for this run removed")
