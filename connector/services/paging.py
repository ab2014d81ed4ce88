"""Offset pagination shared by every list endpoint: {items, page, per_page, total}."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


def paginate(
    session: Session, stmt: Select, query: dict[str, Any], render: Callable[[Any], dict]
) -> dict[str, Any]:
    page, per_page = query["page"], query["per_page"]
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.scalars(stmt.offset((page - 1) * per_page).limit(per_page))
    return {
        "items": [render(row) for row in rows],
        "page": page,
        "per_page": per_page,
        "total": total,
    }
