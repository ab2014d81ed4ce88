"""What a connection says about inbound webhooks, and the writeback rules: pure functions of the
connection's settings and a gate decision (no I/O).

Settings (in `connection.settings`; see docs/webhooks.md):

- `webhook_scheme`: "standard" (Standard Webhooks, the default) or "hmac";
- `webhook_secret_env` / `webhook_secret_file`: where the secret is (never the secret itself);
  several whitespace-separated secrets are all accepted, for rotation;
- "hmac" only: `webhook_header` (default `X-Hmac-Hash`) and `webhook_encoding` ("hex", the
  default, or "base64"); the delivery id is the SHA-256 of the raw body (the only thing the
  signature covers);
- `writeback`: "none" (default), "note", "flag" or "unassign"; `writeback_on`: the decisions
  that cause it (default `["block"]`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhooks.signatures import ENCODINGS, SCHEMES

WRITEBACKS = ("none", "note", "flag", "unassign")
DECISIONS = ("allow", "warn", "block")
DEFAULT_HMAC_HEADER = "X-Hmac-Hash"
#: The work-order fields a writeback sets, by role: the dispatch adapter's names (see
#: docs/adapters/dispatch.md) unless the connection's `writeback_fields` names others.
WRITEBACK_FIELDS = {
    "note": "Note",
    "hold": "ComplianceHold",
    "message": "ComplianceNote",
    "assignee": "ProviderId",
}
MAX_MESSAGE = 2000
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,79}")

_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


@dataclass(frozen=True)
class ReceiverConfig:
    scheme: str
    header: str
    encoding: str
    writeback: str
    writeback_on: frozenset[str]
    #: The remote field names by role (`WRITEBACK_FIELDS` with the connection's own).
    fields: Mapping[str, str]


def settings_problems(settings: Mapping[str, Any]) -> dict[str, list[str]]:
    """Problems with a connection's webhook settings, keyed by setting; empty when valid."""
    problems: dict[str, list[str]] = {}
    scheme = settings.get("webhook_scheme", "standard")
    if scheme not in SCHEMES:
        problems["webhook_scheme"] = [f"one of: {', '.join(SCHEMES)}"]
    header = settings.get("webhook_header")
    if header is not None and not (isinstance(header, str) and _HEADER_NAME.fullmatch(header)):
        problems["webhook_header"] = ["an HTTP header name (letters, digits and '-')"]
    if settings.get("webhook_encoding", "hex") not in ENCODINGS:
        problems["webhook_encoding"] = [f"one of: {', '.join(ENCODINGS)}"]
    writeback = settings.get("writeback", "none")
    if writeback not in WRITEBACKS:
        problems["writeback"] = [f"one of: {', '.join(WRITEBACKS)}"]
    on = settings.get("writeback_on", ["block"])
    if not (isinstance(on, list) and on and all(d in DECISIONS for d in on)):
        problems["writeback_on"] = [f"a non-empty list of: {', '.join(DECISIONS)}"]
    elif writeback == "unassign" and "allow" in on:
        problems["writeback_on"] = ["an allowed vendor is never un-assigned"]
    names = settings.get("writeback_fields", {})
    if not (
        isinstance(names, Mapping)
        and set(names) <= set(WRITEBACK_FIELDS)
        and all(isinstance(v, str) and _FIELD_NAME.fullmatch(v) for v in names.values())
    ):
        problems["writeback_fields"] = [
            f"field names (letters, digits, '_', '.') for: {', '.join(WRITEBACK_FIELDS)}"
        ]
    return problems


def receiver_config(settings: Mapping[str, Any]) -> ReceiverConfig:
    """The settings as a config; raises ValueError when they are not valid (a connection stored
    before these settings were checked)."""
    problems = settings_problems(settings)
    if problems:
        raise ValueError("; ".join(f"{k}: {v[0]}" for k, v in problems.items()))
    return ReceiverConfig(
        scheme=settings.get("webhook_scheme", "standard"),
        header=settings.get("webhook_header") or DEFAULT_HMAC_HEADER,
        encoding=settings.get("webhook_encoding", "hex"),
        writeback=settings.get("writeback", "none"),
        writeback_on=frozenset(settings.get("writeback_on", ["block"])),
        fields={**WRITEBACK_FIELDS, **settings.get("writeback_fields", {})},
    )


def writeback_fields(config: ReceiverConfig, decision: Mapping[str, Any]) -> dict[str, Any]:
    """The work-order fields to write back for this decision; empty when nothing is to be
    written (writeback off, or the decision is not one it is asked for)."""
    if config.writeback == "none" or decision["decision"] not in config.writeback_on:
        return {}
    message = writeback_message(decision)
    name = config.fields
    if config.writeback == "note":
        return {name["note"]: message}
    if config.writeback == "flag":
        return {name["hold"]: decision["decision"] != "allow", name["message"]: message}
    return {name["assignee"]: None, name["message"]: message}


def writeback_message(decision: Mapping[str, Any]) -> str:
    """What a dispatcher reads on the work order: the decision, its reasons, the alternatives."""
    parts = [f"COI check: {decision['decision']}."]
    parts += [f"{r['message'].rstrip('.')}." for r in decision.get("reasons") or ()]
    alternatives = decision.get("alternatives") or ()
    if alternatives:
        named = ", ".join(f"{a['name']} (score {a['score']})" for a in alternatives)
        parts.append(f"Compliant alternatives: {named}.")
    message = " ".join(parts)
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
