"""The insurer table: A.M. Best ratings by NAIC code, loaded from a CSV an admin supplies."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select

from connector.schemas import insurer_row_schema
from connector.services import audit
from connector.services.context import Context
from connector.storage import models as m

COLUMNS = ("naic", "name", "am_best")


def parse_csv(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Validate every row first; any bad row rejects the whole file (nothing half-loaded)."""
    reader = csv.DictReader(lines)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ValidationError({"header": [f"missing column(s): {', '.join(missing)}"]})
    rows, errors = [], {}
    for number, raw in enumerate(reader, start=2):
        try:
            rows.append(insurer_row_schema.load({c: (raw.get(c) or "").strip() for c in COLUMNS}))
        except ValidationError as err:
            errors[f"line {number}"] = err.messages
    if errors:
        raise ValidationError(errors)
    return rows


def import_rows(ctx: Context, rows: list[dict[str, Any]]) -> dict[str, int]:
    session = ctx.session
    with session.begin():
        existing = {i.naic: i for i in session.scalars(select(m.Insurer))}
        created = updated = 0
        for row in rows:
            insurer = existing.get(row["naic"])
            if insurer is None:
                insurer = existing[row["naic"]] = m.Insurer(naic=row["naic"])
                session.add(insurer)
                created += 1
            elif (insurer.name, insurer.am_best) != (row["name"], row["am_best"]):
                updated += 1
            insurer.name, insurer.am_best = row["name"], row["am_best"]
        audit.record(
            session,
            ctx.actor,
            "insurers.import",
            "insurer",
            None,
            {"created": created, "updated": updated},
        )
        if created or updated:
            ctx.jobs.recompute(session, session.scalars(select(m.Vendor.id)).all())
    return {"created": created, "updated": updated, "rows": len(rows)}
